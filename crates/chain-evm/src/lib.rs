//! Coffer's EVM rail: receiving addresses derived from the merchant's account xpub, the
//! catalogue of well-known chains, and the watcher that scans whole blocks over JSON-RPC.
//! Only this crate depends on alloy.

pub mod catalogue;
pub mod derive;
pub mod matcher;
pub mod rpc;
pub mod testtools;
pub mod watcher;

pub use derive::{EvmDeriver, Xpub};
pub use matcher::{Tokens, Watched};
pub use rpc::{Rpc, RpcError, install_crypto_provider};
pub use watcher::{EvmWatchConfig, EvmWatcher, Health, Step, WatchError};
