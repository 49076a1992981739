//! Bitcoin for Coffer.
//!
//! - [`config`]: [`BitcoinRail`], typed `[[chains]]` entries of kind `bitcoin`.
//! - [`method`]: [`BitcoinMethod`], the engine's [`coffer_engine::PaymentMethod`] for
//!   Bitcoin chains: addresses from [`BitcoinDeriver`], BIP21 URIs, zero-conf policies.
//! - [`derive`]: receiving addresses from a merchant's xpub/ypub/zpub (tpub/upub/vpub) or a
//!   `wpkh`/`sh(wpkh)`/`pkh` descriptor.
//! - [`matching`]: parse raw blocks and transactions with the `bitcoin` crate and match
//!   outputs against the watched scriptPubKeys; BIP-125 replaceability; mempool diffs.
//! - [`rpc`]: a minimal bitcoind JSON-RPC client for a watcher.
//! - [`gap`]: gap-limit awareness (runs of unpaid issued addresses).
//! - [`source`]: [`BitcoinSource`], the chain as the one watcher (`coffer-rail`) follows it
//!   (tip, raw blocks, mempool, dropped transactions, the gap-limit report).

pub mod config;
pub mod derive;
pub mod gap;
pub mod matching;
pub mod method;
pub mod regtest;
pub mod rpc;
pub mod source;

pub use coffer_rail::{Step, WatchError, WatchHealth, WatchSettings};
pub use config::{BitcoinChainConfig, BitcoinRail, BitcoinRailChain};
pub use derive::{BitcoinDeriver, ScriptKind, Wallet, WalletError, descriptor_checksum};
pub use gap::{GAP_LIMIT_WARNING, GapReport, gap_report};
pub use matching::{
    MatchedBlock, MempoolDiff, ParseError, ScriptSet, Transfer, WatchedScripts, is_replaceable,
    match_block, match_transaction, mempool_diff, parse_and_match_block, parse_block,
    parse_block_hex, parse_transaction_hex, signals_rbf,
};
pub use method::{BitcoinMethod, bip21};
pub use rpc::{BitcoindRpc, BlockHeaderInfo, BlockchainInfo, RpcConfig, RpcError};
pub use source::{BitcoinSource, BitcoinWatchConfig, BitcoinWatcher};

/// Re-exported so callers use the same `bitcoin` version.
pub use bitcoin;
