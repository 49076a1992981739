//! Coffer's rails: what a chain kind plugs in to be watched.
//!
//! - [`ChainSource`]: one chain's node access — tip, block hash at a height, scanning a range
//!   of blocks for transfers to watched addresses, the mempool where the chain has one.
//!   `coffer-chain-evm` (`EvmSource`) and `coffer-chain-bitcoin` (`BitcoinSource`) implement
//!   it.
//! - [`Watcher`]: the one chain-watching loop over any source — cursor and recent block
//!   hashes, reorg walk-back, catch-up, backoff, the stall rule, lag, metrics
//!   (`coffer_chain_*{chain}`) and `/readyz` facts ([`WatchHealth`]), and the watched set
//!   ([`WatchSet`]) kept in memory and updated with what changed.
//! - [`RunningWatcher`]: a watcher of any kind, as `coffer serve` starts them.

mod health;
mod source;
mod watcher;
mod watchset;

pub use health::WatchHealth;
pub use source::{ChainSource, LegacyMetrics, Pending, Scanned, SourceConfig, SourceError, Tip};
pub use watcher::{RunningWatcher, Step, WatchError, WatchSettings, Watcher};
pub use watchset::WatchSet;
