//! Coffer's rails: what a chain kind plugs in.
//!
//! - [`Rail`]: a chain kind's typed `[[chains]]` entry parsed into a [`RailChain`] (the
//!   chain, its assets, its explorer link, its watcher) and its payment method
//!   ([`coffer_engine::PaymentMethod`]). `coffer-chain-evm` (`EvmRail`) and
//!   `coffer-chain-bitcoin` (`BitcoinRail`) implement it; the binary lists them in
//!   `registry.rs` and [`parse_chain`] dispatches each entry to its rail by `kind`.
//! - [`config`]: what every rail's config parser shares — [`Secret`](config::Secret),
//!   [`ConfigDuration`](config::ConfigDuration), [`ConfigError`](config::ConfigError)
//!   naming `chains[i].key`, the native coin and asset builders.
//! - [`ChainSource`]: one chain's node access — tip, block hash at a height, scanning a range
//!   of blocks for transfers to watched addresses, the mempool where the chain has one.
//!   `coffer-chain-evm` (`EvmSource`) and `coffer-chain-bitcoin` (`BitcoinSource`) implement
//!   it.
//! - [`Watcher`]: the one chain-watching loop over any source — cursor and recent block
//!   hashes, reorg walk-back, catch-up, backoff, the stall rule, lag, metrics
//!   (`coffer_chain_*{chain}`) and `/readyz` facts ([`WatchHealth`]), and the watched set
//!   ([`WatchSet`]) kept in memory and updated with what changed.
//! - [`RunningWatcher`]: a watcher of any kind, as `coffer serve` starts them.

pub mod config;
mod health;
mod rail;
mod source;
mod watcher;
mod watchset;

pub use health::WatchHealth;
pub use rail::{Rail, RailChain, StartError, parse_chain, rail_for, start_watcher};
pub use source::{ChainSource, LegacyMetrics, Pending, Scanned, SourceConfig, SourceError, Tip};
pub use watcher::{RunningWatcher, Step, WatchError, WatchSettings, Watcher};
pub use watchset::WatchSet;
