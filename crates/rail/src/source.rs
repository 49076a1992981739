//! What a chain kind implements to be watched: [`ChainSource`], its node access. Everything
//! that is the same for every chain (cursor, reorgs, catch-up, backoff, health, the watched
//! set) is the [`crate::Watcher`]'s.

use std::hash::Hash;

use async_trait::async_trait;
use coffer_core::ChainId;
use coffer_engine::{Engine, ObservedTransfer};
use serde_json::{Map, Value};

use crate::watcher::{WatchError, WatchSettings};
use crate::watchset::WatchSet;

/// Why a source call failed. The watcher retries every kind with backoff; the kind decides
/// what health reports and what start-up does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The node could not be reached (down, timing out, warming up): the chain reports
    /// `unreachable` until it answers again.
    #[error("{0}")]
    Unreachable(String),
    /// The node is not the configured chain (chain id, network): `coffer serve` refuses to
    /// start on it.
    #[error("{0}")]
    Mismatch(String),
    /// Blocks did not link up with each other or with the cursor: rescanned at once.
    #[error("the chain changed during the scan; rescanning")]
    ChangedDuringScan,
    /// Anything else: a refused request, an answer that does not decode, a missing block.
    #[error("{0}")]
    Failed(String),
}

impl SourceError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SourceError::Unreachable(_))
    }
}

/// The chain's best block as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub height: u64,
    pub hash: String,
    /// The block's timestamp (Unix seconds), when the source has it.
    pub time: Option<i64>,
}

/// What a scan of `from..=to` found.
#[derive(Debug, Clone, Default)]
pub struct Scanned {
    /// Transfers to watched addresses, each with its block.
    pub transfers: Vec<ObservedTransfer>,
    /// `(height, hash)` of scanned blocks, ascending, ending with `to`: they become the
    /// cursor's recent hashes (the reorg walk-back). Blocks far below the tip may be left out.
    pub hashes: Vec<(u64, String)>,
    /// Timestamp of block `to` (Unix seconds), when known: the lag in seconds.
    pub to_time: Option<i64>,
}

/// What the chain shows beyond its blocks (a mempool), once the watcher is caught up.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// Unconfirmed transfers to watched addresses (`block: None`).
    pub transfers: Vec<ObservedTransfer>,
    /// Followed transactions that left the mempool unmined (replaced, double spent, evicted).
    pub dropped_txids: Vec<String>,
    /// Unconfirmed transactions that cannot be replaced (zero-conf may count them).
    pub non_replaceable_txids: Vec<String>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.transfers.is_empty() && self.dropped_txids.is_empty()
    }
}

/// Metric names a source published before the one watcher existed: the watcher publishes
/// `coffer_chain_<name>` and, for the names listed, `<prefix>_<name>` too, so dashboards keep
/// working.
#[derive(Debug, Clone, Copy)]
pub struct LegacyMetrics {
    /// e.g. `coffer_evm`.
    pub prefix: &'static str,
    pub names: &'static [&'static str],
}

/// One chain's node access, as the watcher uses it. Calls come in this order each step:
/// `tip`, (`hash_at` while looking for a reorg), `scan` when there are new blocks, `pending`
/// once caught up, then `committed` after the batch is durable.
#[async_trait]
pub trait ChainSource: Send + Sync + 'static {
    /// The source's parsed form of a watched address (EVM `Address`, Bitcoin `ScriptBuf`).
    type Key: Eq + Hash + Clone + Send + Sync;

    fn chain(&self) -> &ChainId;
    /// `None` for an address that does not belong to this chain (logged, not watched).
    fn parse_address(&self, address: &str) -> Option<Self::Key>;
    /// At start-up: the node is the configured chain (`SourceError::Mismatch` if not).
    async fn check(&self) -> Result<(), SourceError>;
    async fn tip(&mut self) -> Result<Tip, SourceError>;
    /// The hash of the canonical block at `height`; `None` above the tip.
    async fn hash_at(&mut self, height: u64) -> Result<Option<String>, SourceError>;
    /// Blocks `from..=to`, linked to `parent` (the hash at `from - 1`): transfers to watched
    /// addresses and the blocks' hashes. `Err(ChangedDuringScan)` when they do not link.
    async fn scan(
        &mut self,
        from: u64,
        to: u64,
        parent: &str,
        watched: &WatchSet<Self::Key>,
    ) -> Result<Scanned, SourceError>;
    /// Once caught up: unconfirmed transactions (default: none).
    async fn pending(&mut self, watched: &WatchSet<Self::Key>) -> Result<Pending, SourceError> {
        let _ = watched;
        Ok(Pending::default())
    }
    /// Called once the step's batch is durable (mempool bookkeeping).
    fn committed(&mut self, scanned: &Scanned, pending: &Pending) {
        let _ = (scanned, pending);
    }
    /// The most blocks one step scans (adaptive on EVM).
    fn max_blocks_per_step(&self) -> u64;
    /// Extra `/readyz` facts of this chain.
    fn facts(&self) -> Map<String, Value> {
        Map::new()
    }
    /// Once, before the first step: what the source picks up from the database after a
    /// restart (Bitcoin: the unconfirmed payments it must follow).
    async fn resume(&mut self, engine: &Engine) -> Result<(), WatchError> {
        let _ = engine;
        Ok(())
    }
    /// Failover bookkeeping, every few polls: why the endpoints cannot be trusted (EVM: their
    /// tips disagree), `None` when they can. Makes the chain not ready.
    async fn cross_check(&mut self) -> Option<String> {
        None
    }
    /// After every step: chain-specific upkeep (Bitcoin: the gap-limit report). `activity`:
    /// the step changed a payment or an order.
    async fn upkeep(&mut self, engine: &Engine, activity: bool) {
        let _ = (engine, activity);
    }
    /// Metric names kept from before the one watcher (none for a new chain kind).
    fn legacy_metrics(&self) -> Option<LegacyMetrics> {
        None
    }
}

/// A chain's watch configuration: builds its source and the watcher's settings, so that
/// `Watcher::new(engine, config)` works for every chain kind.
pub trait SourceConfig {
    type Source: ChainSource;
    fn chain(&self) -> &ChainId;
    fn settings(&self) -> WatchSettings;
    fn into_source(self) -> Result<Self::Source, SourceError>;
}
