//! Coffer's EVM rail: [`EvmRail`] (typed `[[chains]]` entries, filled in from the catalogue
//! of well-known chains), [`EvmMethod`] (receiving addresses derived from the merchant's
//! account xpub, EIP-681 payment URIs, the confirmation rule), and [`EvmSource`], the chain as
//! the one watcher (`coffer-rail`) follows it: whole block ranges scanned over JSON-RPC. Only this crate depends on alloy.

pub mod catalogue;
pub mod config;
pub mod derive;
pub mod matcher;
pub mod method;
pub mod rpc;
pub mod source;
pub mod testtools;

pub use coffer_rail::{Step, WatchError, WatchHealth, WatchSettings};
pub use config::{EvmChainConfig, EvmRail, EvmRailChain, TokenConfig};
pub use derive::{EvmDeriver, Xpub};
pub use matcher::{Tokens, Watched};
pub use method::{EvmMethod, eip681};
pub use rpc::{Rpc, RpcError, install_crypto_provider};
pub use source::{EvmSource, EvmWatchConfig, EvmWatcher};
