//! A Bitcoin chain as a [`ChainSource`], over bitcoind's JSON-RPC: whole blocks fetched raw
//! (`getblock <hash> 0`) and their outputs matched against the watched scriptPubKeys; the
//! mempool followed (new txids only); a watched unconfirmed transaction that leaves the
//! mempool unmined reported as dropped (→ `payment.reversed`); the gap-limit report kept up.
//! The loop around it — cursor, reorgs, catch-up, health — is the one [`Watcher`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bitcoin::{Address, BlockHash, ScriptBuf, Txid};
use coffer_core::{AssetId, ChainId, MerchantId};
use coffer_engine::{BlockRef, Engine, EngineError, ObservedTransfer};
use coffer_rail::{
    ChainSource, LegacyMetrics, Pending, Scanned, SourceConfig, SourceError, Tip, WatchError,
    WatchSet, WatchSettings, Watcher,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::matching::{match_transaction, parse_block, signals_rbf};
use crate::rpc::{BitcoindRpc, RpcConfig, RpcError};

/// The one watcher over a Bitcoin chain.
pub type BitcoinWatcher = Watcher<BitcoinSource>;

/// What one Bitcoin chain's watcher needs to know.
#[derive(Debug, Clone)]
pub struct BitcoinWatchConfig {
    pub chain: ChainId,
    /// The chain's native asset (`bitcoin:BTC`).
    pub asset: AssetId,
    pub network: bitcoin::Network,
    pub rpc: RpcConfig,
    /// Blocks applied per engine transaction while catching up.
    pub max_blocks_per_batch: u64,
    /// Follow the mempool (unconfirmed payments, zero-conf, replacements).
    pub mempool: bool,
    /// The loop's settings. Bitcoin blocks can be an hour apart: the stall limit is generous.
    pub watch: WatchSettings,
}

impl BitcoinWatchConfig {
    pub fn new(chain: ChainId, asset: AssetId, network: bitcoin::Network, rpc: RpcConfig) -> Self {
        Self {
            chain,
            asset,
            network,
            rpc,
            max_blocks_per_batch: 25,
            mempool: true,
            watch: WatchSettings {
                poll_interval: Duration::from_secs(5),
                recent_blocks: 32,
                stall_after: Duration::from_secs(3 * 3600),
                max_lag_blocks: 3,
                max_lag: Duration::from_secs(3600),
                ..WatchSettings::default()
            },
        }
    }
}

impl SourceConfig for BitcoinWatchConfig {
    type Source = BitcoinSource;

    fn chain(&self) -> &ChainId {
        &self.chain
    }

    fn settings(&self) -> WatchSettings {
        self.watch.clone()
    }

    fn into_source(self) -> Result<BitcoinSource, SourceError> {
        BitcoinSource::new(self)
    }
}

/// How often the gap-limit reports are refreshed without chain activity (new orders lengthen
/// runs too).
const GAP_CHECK_EVERY: Duration = Duration::from_secs(60);

/// What the current step learned, for the mempool and the bookkeeping once it is durable.
#[derive(Default)]
struct StepState {
    /// The best block hash read with the tip.
    best: Option<BlockHash>,
    /// Followed transactions seen in the step's blocks.
    mined: HashSet<Txid>,
    /// The mempool snapshot read, once caught up.
    snapshot: Option<HashSet<Txid>>,
}

pub struct BitcoinSource {
    chain: ChainId,
    asset: AssetId,
    network: bitcoin::Network,
    rpc: BitcoindRpc,
    max_blocks_per_batch: u64,
    mempool: bool,
    /// The mempool txids already fetched (the last snapshot applied).
    mempool_seen: HashSet<Txid>,
    /// Watched transactions known unconfirmed: they must be mined or they are dropped.
    pending: HashSet<Txid>,
    step: StepState,
    last_gap_check: Option<Instant>,
    /// Longest unpaid run last reported per merchant (a warning is logged when it changes).
    gap_runs: HashMap<MerchantId, u32>,
}

fn block_time(secs: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn core_chain_name(network: bitcoin::Network) -> &'static str {
    match network {
        bitcoin::Network::Bitcoin => "main",
        bitcoin::Network::Testnet => "test",
        bitcoin::Network::Signet => "signet",
        bitcoin::Network::Regtest => "regtest",
        _ => "testnet4",
    }
}

impl BitcoinSource {
    pub fn new(cfg: BitcoinWatchConfig) -> Result<Self, SourceError> {
        let rpc = BitcoindRpc::new(cfg.rpc).map_err(|e| SourceError::Failed(e.to_string()))?;
        Ok(Self {
            chain: cfg.chain,
            asset: cfg.asset,
            network: cfg.network,
            rpc,
            max_blocks_per_batch: cfg.max_blocks_per_batch.max(1),
            mempool: cfg.mempool,
            mempool_seen: HashSet::new(),
            pending: HashSet::new(),
            step: StepState::default(),
            last_gap_check: None,
            gap_runs: HashMap::new(),
        })
    }

    pub fn rpc(&self) -> &BitcoindRpc {
        &self.rpc
    }

    /// An RPC failure as the watcher sees it (counted in `coffer_bitcoin_rpc_errors_total`).
    fn fail(&self, e: RpcError) -> SourceError {
        metrics::counter!("coffer_bitcoin_rpc_errors_total", "chain" => self.chain.to_string())
            .increment(1);
        if e.is_transient() {
            SourceError::Unreachable(e.to_string())
        } else {
            SourceError::Failed(e.to_string())
        }
    }

    async fn block_hash(&self, height: u64) -> Result<Option<BlockHash>, SourceError> {
        match self.rpc.get_block_hash(height).await {
            Ok(h) => Ok(Some(h)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn transfers_of(
        &self,
        tx: &bitcoin::Transaction,
        block: Option<&BlockRef>,
        watched: &WatchSet<ScriptBuf>,
    ) -> Vec<ObservedTransfer> {
        match_transaction(tx, watched)
            .into_iter()
            .filter_map(|t| {
                Some(ObservedTransfer {
                    asset: self.asset.clone(),
                    to: watched.get(&t.script_pubkey)?.to_owned(),
                    amount: t.amount,
                    txid: t.txid.to_string(),
                    index: t.vout,
                    from: None,
                    block: block.cloned(),
                })
            })
            .collect()
    }

    /// Gap-limit awareness: for every merchant wallet on this chain, the longest run of
    /// issued but unpaid addresses, as a metric (`coffer_bitcoin_gap_longest_run`) and a
    /// `warn` log line when it exceeds the limit (logged again only when it changes). The API
    /// shows the same report on the wallet (`gap_warning`).
    pub async fn check_gaps(&mut self, engine: &Engine) -> Result<(), EngineError> {
        for m in engine.list_merchants().await? {
            if engine.wallet(&m.id, &self.chain).await?.is_none() {
                continue;
            }
            let Some(report) = engine.wallet_gap(&m.id, &self.chain).await? else {
                continue;
            };
            metrics::gauge!("coffer_bitcoin_gap_longest_run",
                "merchant" => m.id.to_string(), "chain" => self.chain.to_string())
            .set(f64::from(report.longest_run));
            let before = self.gap_runs.insert(m.id.clone(), report.longest_run);
            if report.warn && before != Some(report.longest_run) {
                tracing::warn!(
                    chain = %self.chain,
                    merchant = %m.id,
                    longest_unpaid_run = report.longest_run,
                    run_start_index = report.run_start,
                    payment_beyond_gap = report.payment_beyond_gap,
                    "more than {} consecutive receiving addresses are unpaid: the merchant's wallet may not show later payments until its gap limit is raised",
                    coffer_core::gap::GAP_LIMIT_WARNING
                );
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ChainSource for BitcoinSource {
    type Key = ScriptBuf;

    fn chain(&self) -> &ChainId {
        &self.chain
    }

    fn parse_address(&self, address: &str) -> Option<ScriptBuf> {
        address
            .parse::<Address<_>>()
            .ok()?
            .require_network(self.network)
            .ok()
            .map(|a| a.script_pubkey())
    }

    /// The configured network against the node's `getblockchaininfo.chain`.
    async fn check(&self) -> Result<(), SourceError> {
        let info = self
            .rpc
            .get_blockchain_info()
            .await
            .map_err(|e| self.fail(e))?;
        let configured = core_chain_name(self.network);
        if info.chain != configured {
            return Err(SourceError::Mismatch(format!(
                "chain {}: configured network {configured} but the node reports {}",
                self.chain, info.chain
            )));
        }
        Ok(())
    }

    async fn tip(&mut self) -> Result<Tip, SourceError> {
        self.step = StepState::default();
        let info = self
            .rpc
            .get_blockchain_info()
            .await
            .map_err(|e| self.fail(e))?;
        let time = self
            .rpc
            .get_block_header(&info.bestblockhash)
            .await
            .ok()
            .and_then(|h| i64::try_from(h.time).ok());
        self.step.best = Some(info.bestblockhash);
        Ok(Tip {
            height: info.blocks,
            hash: info.bestblockhash.to_string(),
            time,
        })
    }

    async fn hash_at(&mut self, height: u64) -> Result<Option<String>, SourceError> {
        Ok(self.block_hash(height).await?.map(|h| h.to_string()))
    }

    async fn scan(
        &mut self,
        from: u64,
        to: u64,
        parent: &str,
        watched: &WatchSet<ScriptBuf>,
    ) -> Result<Scanned, SourceError> {
        let mut scanned = Scanned::default();
        let mut prev_hash = parent.to_owned();
        for height in from..=to {
            let Some(hash) = self.block_hash(height).await? else {
                return Err(SourceError::ChangedDuringScan);
            };
            let raw = self
                .rpc
                .get_block_raw(&hash)
                .await
                .map_err(|e| self.fail(e))?;
            let block = parse_block(&raw)
                .map_err(|e| SourceError::Failed(format!("block {height}: {e}")))?;
            if block.block_hash() != hash || block.header.prev_blockhash.to_string() != prev_hash {
                return Err(SourceError::ChangedDuringScan);
            }
            let at = BlockRef {
                height,
                hash: hash.to_string(),
                time: block_time(u64::from(block.header.time)),
            };
            for tx in &block.txdata {
                let found = self.transfers_of(tx, Some(&at), watched);
                if !found.is_empty() || !self.pending.is_empty() {
                    let txid = tx.compute_txid();
                    if !found.is_empty() || self.pending.contains(&txid) {
                        self.step.mined.insert(txid);
                    }
                }
                scanned.transfers.extend(found);
            }
            prev_hash = hash.to_string();
            scanned.hashes.push((height, prev_hash.clone()));
            scanned.to_time = Some(i64::from(block.header.time));
        }
        Ok(scanned)
    }

    /// The mempool: new txids only; and the followed transactions that left it unmined.
    async fn pending(&mut self, watched: &WatchSet<ScriptBuf>) -> Result<Pending, SourceError> {
        metrics::gauge!("coffer_bitcoin_watched_scripts", "chain" => self.chain.to_string())
            .set(watched.len() as f64);
        let mut out = Pending::default();
        if !self.mempool {
            return Ok(out);
        }
        let current: HashSet<Txid> = self
            .rpc
            .get_raw_mempool()
            .await
            .map_err(|e| self.fail(e))?
            .into_iter()
            .collect();
        if !watched.is_empty() {
            for txid in current.difference(&self.mempool_seen) {
                let tx = self
                    .rpc
                    .get_raw_transaction(txid)
                    .await
                    .map_err(|e| self.fail(e))?;
                let Some(tx) = tx else {
                    continue; // left the mempool meanwhile: the next poll sees where it went
                };
                let found = self.transfers_of(&tx, None, watched);
                if found.is_empty() {
                    continue;
                }
                let replaceable = signals_rbf(&tx)
                    || self
                        .rpc
                        .mempool_replaceable(txid)
                        .await
                        .map_err(|e| self.fail(e))?
                        .unwrap_or(true);
                if !replaceable {
                    out.non_replaceable_txids.push(txid.to_string());
                }
                out.transfers.extend(found);
            }
        }
        let gone: Vec<Txid> = self
            .pending
            .iter()
            .filter(|t| !current.contains(*t) && !self.step.mined.contains(*t))
            .copied()
            .collect();
        // A block found meanwhile may hold them: decide on the next poll, after applying it
        // (this also keeps a node without -txindex from reporting a mined one as dropped).
        let settled_tip = gone.is_empty()
            || Some(
                self.rpc
                    .get_blockchain_info()
                    .await
                    .map_err(|e| self.fail(e))?
                    .bestblockhash,
            ) == self.step.best;
        for txid in gone.iter().filter(|_| settled_tip) {
            // Gone from the mempool without being seen in a block here: mined in a block not
            // applied yet (the index knows it), or dropped (replaced, double spent, evicted).
            let known = self
                .rpc
                .get_raw_transaction(txid)
                .await
                .map_err(|e| self.fail(e))?;
            if known.is_none() {
                tracing::warn!(chain = %self.chain, %txid, "watched unconfirmed transaction left the mempool unmined");
                out.dropped_txids.push(txid.to_string());
            }
        }
        self.step.snapshot = Some(current);
        Ok(out)
    }

    /// The batch is durable: remember what it covered.
    fn committed(&mut self, _scanned: &Scanned, pending: &Pending) {
        let step = std::mem::take(&mut self.step);
        for txid in &step.mined {
            self.pending.remove(txid);
        }
        for t in &pending.transfers {
            if let Ok(txid) = t.txid.parse::<Txid>()
                && !step.mined.contains(&txid)
            {
                self.pending.insert(txid);
            }
        }
        for txid in &pending.dropped_txids {
            if let Ok(t) = txid.parse::<Txid>() {
                self.pending.remove(&t);
            }
        }
        if let Some(current) = step.snapshot {
            // A txid still pending but no longer in the mempool was mined somewhere not
            // applied yet; it stays pending until its block is applied.
            self.mempool_seen = current;
        }
        metrics::gauge!("coffer_bitcoin_mempool_watched", "chain" => self.chain.to_string())
            .set(self.pending.len() as f64);
    }

    fn max_blocks_per_step(&self) -> u64 {
        self.max_blocks_per_batch
    }

    fn facts(&self) -> Map<String, Value> {
        let mut facts = Map::new();
        facts.insert("mempool_watched".into(), json!(self.pending.len()));
        facts
    }

    /// After a restart: the unconfirmed payments still without a block must be followed.
    async fn resume(&mut self, engine: &Engine) -> Result<(), WatchError> {
        for p in engine.open_payments(&self.chain, u64::MAX).await? {
            if p.block_height.is_none()
                && let Ok(txid) = p.txid.parse::<Txid>()
            {
                self.pending.insert(txid);
            }
        }
        Ok(())
    }

    async fn upkeep(&mut self, engine: &Engine, activity: bool) {
        if !activity
            && self
                .last_gap_check
                .is_some_and(|at| at.elapsed() < GAP_CHECK_EVERY)
        {
            return;
        }
        self.last_gap_check = Some(Instant::now());
        if let Err(e) = self.check_gaps(engine).await {
            tracing::warn!(chain = %self.chain, error = %e, "gap-limit check failed");
        }
    }

    fn legacy_metrics(&self) -> Option<LegacyMetrics> {
        Some(LegacyMetrics {
            prefix: "coffer_bitcoin",
            names: &[
                "tip_height",
                "cursor_height",
                "stalled",
                "lag_blocks",
                "tip_age_seconds",
                "blocks_scanned_total",
                "reorgs_total",
            ],
        })
    }
}
