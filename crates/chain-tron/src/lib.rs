//! Coffer's TRON rail: [`TronRail`] (typed `[[chains]]` entries of kind `tron`, filled in from
//! the mainnet, Shasta or Nile preset), [`TronMethod`] (`T…` receiving addresses derived from
//! the merchant's account xpub at `m/44'/195'/0'`, `tron:` payment URIs, confirmations counted
//! in solidified blocks) and [`TronSource`], the chain as the one watcher (`coffer-rail`)
//! follows it: whole blocks over java-tron's HTTP API, TRX and TRC-20 transfers of successful
//! transactions, credited at the solidified head. [`scripted`] serves a scripted chain in
//! java-tron's JSON for tests: no TRON node runs on these machines.

pub mod address;
pub mod api;
pub mod config;
pub mod method;
pub mod scripted;
pub mod source;

pub use address::{AddressError, TronAddress};
pub use api::TronApi;
pub use config::{TronChainConfig, TronRail, TronRailChain, USDT_MAINNET};
pub use method::{TronMethod, tron_uri};
pub use source::{Trc20Tokens, TronSource, TronWatchConfig, TronWatcher};
