//! The watcher of one Bitcoin chain over bitcoind's JSON-RPC: follows the tip by polling,
//! fetches whole blocks raw (`getblock <hash> 0`) and matches their outputs against the
//! watched scriptPubKeys, follows the mempool (new txids only), and hands everything to the
//! engine with its new cursor in one transaction. Reorgs walk back to the common ancestor
//! (as on EVM); a watched unconfirmed transaction that leaves the mempool unmined is reported
//! as dropped (→ `payment.reversed`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::{Address, BlockHash, ScriptBuf, Txid};
use coffer_core::{AssetId, ChainId};
use coffer_engine::{BlockRef, ChainBatch, Engine, EngineError, ObservedTransfer};
use coffer_store::{ChainCursor, StoreError};
use time::OffsetDateTime;

use crate::matching::{ParseError, WatchedScripts, match_transaction, parse_block, signals_rbf};
use crate::rpc::{BitcoindRpc, RpcConfig, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("block {height}: {source}")]
    Parse { height: u64, source: ParseError },
    #[error("chain {chain}: configured network {configured} but the node reports {actual}")]
    NetworkMismatch {
        chain: ChainId,
        configured: String,
        actual: String,
    },
    #[error("the chain changed during the scan; rescanning")]
    ChangedDuringScan,
}

/// What one watcher needs to know about its chain.
#[derive(Debug, Clone)]
pub struct BitcoinWatchConfig {
    pub chain: ChainId,
    /// The chain's native asset (`bitcoin:BTC`).
    pub asset: AssetId,
    pub network: bitcoin::Network,
    pub rpc: RpcConfig,
    pub poll_interval: Duration,
    /// Blocks applied per engine transaction while catching up.
    pub max_blocks_per_batch: u64,
    /// How many recent block hashes are kept to find the common ancestor after a reorg.
    pub recent_blocks: usize,
    /// Where a chain never watched before starts: `None` = at the current tip.
    pub start_height: Option<u64>,
    /// The tip counts as stalled when it has not advanced (or the node has not answered) for
    /// this long. Bitcoin blocks can be an hour apart: keep this generous.
    pub stall_after: Duration,
    /// Follow the mempool (unconfirmed payments, zero-conf, replacements).
    pub mempool: bool,
}

impl BitcoinWatchConfig {
    pub fn new(chain: ChainId, asset: AssetId, network: bitcoin::Network, rpc: RpcConfig) -> Self {
        Self {
            chain,
            asset,
            network,
            rpc,
            poll_interval: Duration::from_secs(5),
            max_blocks_per_batch: 25,
            recent_blocks: 32,
            start_height: None,
            stall_after: Duration::from_secs(3 * 3600),
            mempool: true,
        }
    }
}

/// The watcher's health, for `/readyz` and metrics.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub tip: Option<u64>,
    pub cursor: Option<u64>,
    /// Seconds since the tip block's timestamp (informational: blocks can be far apart).
    pub tip_age_secs: Option<u64>,
    /// The tip has not advanced (or the node has not answered) for `stall_after`.
    pub stalled: bool,
    /// The last poll could not reach the node.
    pub unreachable: bool,
    pub last_error: Option<String>,
    /// Unconfirmed watched transactions being followed.
    pub mempool_watched: usize,
}

impl Health {
    pub fn ok(&self) -> bool {
        self.tip.is_some() && !self.stalled && !self.unreachable
    }

    /// Blocks between the tip and what has been applied.
    pub fn lag(&self) -> Option<u64> {
        Some(self.tip?.saturating_sub(self.cursor?))
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applied blocks up to `to`; more wait if `to < tip`.
    Scanned { to: u64, tip: u64 },
    /// No new block (the mempool may still have been polled).
    Idle { tip: u64 },
}

pub struct BitcoinWatcher {
    engine: Engine,
    cfg: BitcoinWatchConfig,
    rpc: BitcoindRpc,
    health: Arc<Mutex<Health>>,
    last_tip: Option<(u64, Instant)>,
    /// Watched addresses and their scripts (parsed once per address).
    scripts: HashMap<String, ScriptBuf>,
    watched: WatchedScripts,
    by_script: HashMap<ScriptBuf, String>,
    /// The mempool txids already fetched (the last snapshot applied).
    mempool_seen: HashSet<Txid>,
    /// Watched transactions known unconfirmed: they must be mined or they are dropped.
    pending: HashSet<Txid>,
    seeded: bool,
    last_gap_check: Option<Instant>,
    /// Longest unpaid run last reported per merchant (a warning is logged when it changes).
    gap_runs: HashMap<coffer_core::MerchantId, u32>,
}

/// How often the gap-limit reports are refreshed without chain activity (new orders lengthen
/// runs too).
const GAP_CHECK_EVERY: Duration = Duration::from_secs(60);

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

impl BitcoinWatcher {
    pub fn new(engine: Engine, cfg: BitcoinWatchConfig) -> Result<Self, WatchError> {
        let rpc = BitcoindRpc::new(cfg.rpc.clone())?;
        Ok(Self {
            engine,
            cfg,
            rpc,
            health: Arc::new(Mutex::new(Health::default())),
            last_tip: None,
            scripts: HashMap::new(),
            watched: WatchedScripts::new(),
            by_script: HashMap::new(),
            mempool_seen: HashSet::new(),
            pending: HashSet::new(),
            seeded: false,
            last_gap_check: None,
            gap_runs: HashMap::new(),
        })
    }

    pub fn health(&self) -> Arc<Mutex<Health>> {
        self.health.clone()
    }

    pub fn rpc(&self) -> &BitcoindRpc {
        &self.rpc
    }

    fn set_health(&self, f: impl FnOnce(&mut Health)) {
        if let Ok(mut h) = self.health.lock() {
            f(&mut h);
        }
    }

    /// Check the configured network against the node's `getblockchaininfo.chain`.
    pub async fn check_network(&self) -> Result<(), WatchError> {
        let info = self.rpc.get_blockchain_info().await?;
        let configured = core_chain_name(self.cfg.network);
        if info.chain != configured {
            return Err(WatchError::NetworkMismatch {
                chain: self.cfg.chain.clone(),
                configured: configured.into(),
                actual: info.chain,
            });
        }
        Ok(())
    }

    /// Refresh the watched scripts from the store; only addresses not seen before are parsed.
    async fn refresh_watched(&mut self) -> Result<(), WatchError> {
        let rows = self
            .engine
            .watched_addresses(&self.cfg.chain, self.engine.now())
            .await?;
        let current: HashSet<&str> = rows.iter().map(|r| r.address.as_str()).collect();
        if current.len() == self.scripts.len()
            && current.iter().all(|a| self.scripts.contains_key(*a))
        {
            return Ok(());
        }
        self.scripts.retain(|a, _| current.contains(a.as_str()));
        for row in &rows {
            if self.scripts.contains_key(&row.address) {
                continue;
            }
            let parsed = row
                .address
                .parse::<Address<_>>()
                .ok()
                .and_then(|a| a.require_network(self.cfg.network).ok());
            match parsed {
                Some(addr) => {
                    self.scripts
                        .insert(row.address.clone(), addr.script_pubkey());
                }
                None => {
                    tracing::warn!(chain = %self.cfg.chain, address = %row.address, "watched address does not parse for this network; ignored");
                }
            }
        }
        self.watched = self.scripts.values().cloned().collect();
        self.by_script = self
            .scripts
            .iter()
            .map(|(a, s)| (s.clone(), a.clone()))
            .collect();
        metrics::gauge!("coffer_bitcoin_watched_scripts", "chain" => self.cfg.chain.to_string())
            .set(self.watched.len() as f64);
        Ok(())
    }

    /// After a restart: the unconfirmed payments still without a block must be followed.
    async fn seed_pending(&mut self) -> Result<(), WatchError> {
        if self.seeded {
            return Ok(());
        }
        let open = self.engine.open_payments(&self.cfg.chain, u64::MAX).await?;
        for p in open {
            if p.block_height.is_none()
                && let Ok(txid) = p.txid.parse::<Txid>()
            {
                self.pending.insert(txid);
            }
        }
        self.seeded = true;
        Ok(())
    }

    async fn hash_at(&self, height: u64) -> Result<Option<BlockHash>, WatchError> {
        match self.rpc.get_block_hash(height).await {
            Ok(h) => Ok(Some(h)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The cursor, created at the start height (or the tip) the first time.
    async fn cursor(&self, tip: u64) -> Result<ChainCursor, WatchError> {
        if let Some(c) = self.engine.chain_cursor(&self.cfg.chain).await? {
            return Ok(c);
        }
        let height = match self.cfg.start_height {
            Some(h) => h.saturating_sub(1).min(tip),
            None => tip,
        };
        let hash = self.rpc.get_block_hash(height).await?.to_string();
        Ok(self
            .engine
            .start_cursor(&self.cfg.chain, height, hash)
            .await?)
    }

    /// Walk back from the cursor to the newest kept block still on the active chain.
    async fn rewind(&self, cursor: &ChainCursor) -> Result<Option<ChainCursor>, WatchError> {
        if self.hash_at(cursor.height).await?.map(|h| h.to_string()) == Some(cursor.hash.clone()) {
            return Ok(None);
        }
        for (i, (height, hash)) in cursor.recent.iter().enumerate().rev() {
            if *height >= cursor.height {
                continue;
            }
            if self.hash_at(*height).await?.map(|h| h.to_string()) == Some(hash.clone()) {
                tracing::warn!(chain = %self.cfg.chain, ancestor = height, was = cursor.height, "reorg: rewinding to the common ancestor");
                metrics::counter!("coffer_bitcoin_reorgs_total", "chain" => self.cfg.chain.to_string()).increment(1);
                return Ok(Some(ChainCursor {
                    chain: cursor.chain.clone(),
                    height: *height,
                    hash: hash.clone(),
                    recent: cursor.recent[..=i].to_vec(),
                    updated_at: self.engine.now(),
                }));
            }
        }
        // Deeper than the hashes kept: restart from the oldest kept height's parent.
        let oldest = cursor
            .recent
            .first()
            .map_or(cursor.height, |(h, _)| *h)
            .saturating_sub(1);
        tracing::error!(chain = %self.cfg.chain, oldest, "reorg deeper than the kept block hashes");
        let hash = self.rpc.get_block_hash(oldest).await?.to_string();
        Ok(Some(ChainCursor {
            chain: cursor.chain.clone(),
            height: oldest,
            hash: hash.clone(),
            recent: vec![(oldest, hash)],
            updated_at: self.engine.now(),
        }))
    }

    fn observe_tip(&mut self, tip: u64, tip_time: Option<u64>) {
        let now = Instant::now();
        let stalled = match self.last_tip {
            Some((t, _)) if tip != t => {
                self.last_tip = Some((tip, now));
                false
            }
            Some((_, since)) => now.duration_since(since) >= self.cfg.stall_after,
            None => {
                self.last_tip = Some((tip, now));
                false
            }
        };
        let age = tip_time.map(|t| {
            u64::try_from(self.engine.now().unix_timestamp())
                .unwrap_or(0)
                .saturating_sub(t)
        });
        metrics::gauge!("coffer_bitcoin_tip_height", "chain" => self.cfg.chain.to_string())
            .set(tip as f64);
        metrics::gauge!("coffer_bitcoin_stalled", "chain" => self.cfg.chain.to_string())
            .set(if stalled { 1.0 } else { 0.0 });
        if let Some(age) = age {
            metrics::gauge!("coffer_bitcoin_tip_age_seconds", "chain" => self.cfg.chain.to_string()).set(age as f64);
        }
        self.set_health(|h| {
            h.tip = Some(tip);
            h.tip_age_secs = age;
            h.stalled = stalled;
            h.unreachable = false;
        });
    }

    fn transfers_of(
        &self,
        tx: &bitcoin::Transaction,
        block: Option<&BlockRef>,
    ) -> Vec<ObservedTransfer> {
        match_transaction(tx, &self.watched)
            .into_iter()
            .filter_map(|t| {
                let to = self.by_script.get(&t.script_pubkey)?.clone();
                Some(ObservedTransfer {
                    asset: self.cfg.asset.clone(),
                    to,
                    amount: t.amount,
                    txid: t.txid.to_string(),
                    index: t.vout,
                    from: None,
                    block: block.cloned(),
                })
            })
            .collect()
    }

    /// One poll: detect reorgs, apply the next blocks, and (once at the tip) the mempool.
    pub async fn step(&mut self) -> Result<Step, WatchError> {
        let info = self.rpc.get_blockchain_info().await?;
        let tip = info.blocks;
        let best = info.bestblockhash;
        let tip_time = self
            .rpc
            .get_block_header(&info.bestblockhash)
            .await
            .ok()
            .map(|h| h.time);
        self.observe_tip(tip, tip_time);
        self.seed_pending().await?;
        self.refresh_watched().await?;

        let saved = self.cursor(tip).await?;
        let rewound = self.rewind(&saved).await?;
        let orphaned_from = rewound.as_ref().map(|c| c.height + 1);
        let base = rewound.unwrap_or(saved);
        let from = base.height + 1;
        let to = if from > tip {
            base.height
        } else {
            tip.min(from.saturating_add(self.cfg.max_blocks_per_batch.max(1) - 1))
        };

        let mut transfers = Vec::new();
        let mut recent = base.recent.clone();
        let mut prev_hash = base.hash.clone();
        let mut mined: HashSet<Txid> = HashSet::new();
        for height in from..=to {
            let Some(hash) = self.hash_at(height).await? else {
                return Err(WatchError::ChangedDuringScan);
            };
            let raw = self.rpc.get_block_raw(&hash).await?;
            let block = parse_block(&raw).map_err(|source| WatchError::Parse { height, source })?;
            if block.block_hash() != hash {
                return Err(WatchError::ChangedDuringScan);
            }
            if block.header.prev_blockhash.to_string() != prev_hash {
                return Err(WatchError::ChangedDuringScan);
            }
            let at = BlockRef {
                height,
                hash: hash.to_string(),
                time: block_time(u64::from(block.header.time)),
            };
            for tx in &block.txdata {
                let found = self.transfers_of(tx, Some(&at));
                if !found.is_empty() || !self.pending.is_empty() {
                    let txid = tx.compute_txid();
                    if !found.is_empty() || self.pending.contains(&txid) {
                        mined.insert(txid);
                    }
                }
                transfers.extend(found);
            }
            prev_hash = hash.to_string();
            recent.push((height, prev_hash.clone()));
            metrics::counter!("coffer_bitcoin_blocks_scanned_total", "chain" => self.cfg.chain.to_string()).increment(1);
        }
        let excess = recent.len().saturating_sub(self.cfg.recent_blocks.max(1));
        recent.drain(..excess);

        // The mempool, once caught up: new txids only.
        let mut snapshot: Option<HashSet<Txid>> = None;
        let mut non_replaceable = Vec::new();
        let mut dropped = Vec::new();
        let mut newly_pending = Vec::new();
        if self.cfg.mempool && to == tip {
            let current: HashSet<Txid> = self.rpc.get_raw_mempool().await?.into_iter().collect();
            if !self.watched.is_empty() {
                for txid in current.difference(&self.mempool_seen) {
                    let Some(tx) = self.rpc.get_raw_transaction(txid).await? else {
                        continue; // left the mempool meanwhile: the next poll sees where it went
                    };
                    let found = self.transfers_of(&tx, None);
                    if found.is_empty() {
                        continue;
                    }
                    let replaceable = signals_rbf(&tx)
                        || self.rpc.mempool_replaceable(txid).await?.unwrap_or(true);
                    if !replaceable {
                        non_replaceable.push(txid.to_string());
                    }
                    newly_pending.push(*txid);
                    transfers.extend(found);
                }
            }
            let gone: Vec<Txid> = self
                .pending
                .iter()
                .filter(|t| !current.contains(*t) && !mined.contains(*t))
                .copied()
                .collect();
            // A block found meanwhile may hold them: decide on the next poll, after applying it
            // (this also keeps a node without -txindex from reporting a mined one as dropped).
            let settled_tip =
                gone.is_empty() || self.rpc.get_blockchain_info().await?.bestblockhash == best;
            for txid in gone.iter().filter(|_| settled_tip) {
                // Gone from the mempool without being seen in a block here: mined in a block
                // not applied yet (the index knows it), or dropped (replaced, double spent,
                // evicted).
                if self.rpc.get_raw_transaction(txid).await?.is_none() {
                    tracing::warn!(chain = %self.cfg.chain, %txid, "watched unconfirmed transaction left the mempool unmined");
                    dropped.push(txid.to_string());
                }
            }
            snapshot = Some(current);
        }

        let cursor = ChainCursor {
            chain: self.cfg.chain.clone(),
            height: to,
            hash: prev_hash,
            recent,
            updated_at: self.engine.now(),
        };
        let moved = to != base.height || orphaned_from.is_some();
        let batch = ChainBatch {
            chain: self.cfg.chain.clone(),
            transfers,
            orphaned_from,
            tip: to,
            cursor: moved.then_some(cursor),
            dropped_txids: dropped.clone(),
            non_replaceable_txids: non_replaceable,
        };
        let mut activity = false;
        if moved || !batch.transfers.is_empty() || !batch.dropped_txids.is_empty() {
            let applied = self.engine.apply_chain_batch(&batch).await?;
            if applied != Default::default() {
                activity = true;
                tracing::info!(chain = %self.cfg.chain, from, to, ?applied, "applied chain activity");
            }
        }
        if activity
            || self
                .last_gap_check
                .is_none_or(|at| at.elapsed() >= GAP_CHECK_EVERY)
        {
            self.last_gap_check = Some(Instant::now());
            if let Err(e) = self.check_gaps().await {
                tracing::warn!(chain = %self.cfg.chain, error = %e, "gap-limit check failed");
            }
        }
        // Only now that the batch is durable: remember what it covered.
        for txid in &mined {
            self.pending.remove(txid);
        }
        for txid in newly_pending {
            if !mined.contains(&txid) {
                self.pending.insert(txid);
            }
        }
        for txid in &dropped {
            if let Ok(t) = txid.parse::<Txid>() {
                self.pending.remove(&t);
            }
        }
        if let Some(current) = snapshot {
            // A txid still pending but no longer in the mempool was mined somewhere we have
            // not applied yet; it stays pending until its block is applied.
            self.mempool_seen = current;
        }
        let pending = self.pending.len();
        metrics::gauge!("coffer_bitcoin_cursor_height", "chain" => self.cfg.chain.to_string())
            .set(to as f64);
        metrics::gauge!("coffer_bitcoin_lag_blocks", "chain" => self.cfg.chain.to_string())
            .set(tip.saturating_sub(to) as f64);
        metrics::gauge!("coffer_bitcoin_mempool_watched", "chain" => self.cfg.chain.to_string())
            .set(pending as f64);
        self.set_health(|h| {
            h.cursor = Some(to);
            h.last_error = None;
            h.mempool_watched = pending;
        });
        if to == base.height {
            Ok(Step::Idle { tip })
        } else {
            Ok(Step::Scanned { to, tip })
        }
    }

    /// Gap-limit awareness: for every merchant wallet on this chain, the longest run of
    /// issued but unpaid addresses, as a metric (`coffer_bitcoin_gap_longest_run`) and a
    /// `warn` log line when it exceeds the limit (logged again only when it changes). The API
    /// shows the same report on the wallet (`gap_warning`).
    pub async fn check_gaps(&mut self) -> Result<(), WatchError> {
        for m in self.engine.list_merchants().await? {
            let has_wallet = self.engine.wallet(&m.id, &self.cfg.chain).await?.is_some();
            if !has_wallet {
                continue;
            }
            let Some(report) = self.engine.wallet_gap(&m.id, &self.cfg.chain).await? else {
                continue;
            };
            metrics::gauge!("coffer_bitcoin_gap_longest_run",
                "merchant" => m.id.to_string(), "chain" => self.cfg.chain.to_string())
            .set(f64::from(report.longest_run));
            let before = self.gap_runs.insert(m.id.clone(), report.longest_run);
            if report.warn && before != Some(report.longest_run) {
                tracing::warn!(
                    chain = %self.cfg.chain,
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

    /// Run until `stop` turns true: catch up as fast as the node answers, then poll; RPC
    /// failures back off exponentially (up to a minute).
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = self.cfg.poll_interval;
        loop {
            if *stop.borrow() {
                break;
            }
            let wait = match self.step().await {
                Ok(Step::Scanned { to, tip }) if to < tip => Duration::ZERO,
                Ok(_) => {
                    backoff = self.cfg.poll_interval;
                    self.cfg.poll_interval
                }
                Err(WatchError::ChangedDuringScan) => self.cfg.poll_interval / 4,
                Err(e) => {
                    tracing::warn!(chain = %self.cfg.chain, error = %e, "bitcoin watcher step failed; retrying");
                    metrics::counter!("coffer_bitcoin_rpc_errors_total", "chain" => self.cfg.chain.to_string())
                        .increment(1);
                    let msg = e.to_string();
                    let unreachable = matches!(&e, WatchError::Rpc(r) if r.is_transient());
                    let stalled = self
                        .last_tip
                        .is_none_or(|(_, since)| since.elapsed() >= self.cfg.stall_after);
                    self.set_health(|h| {
                        h.last_error = Some(msg);
                        h.unreachable = unreachable;
                        h.stalled |= stalled;
                    });
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    backoff
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!(chain = %self.cfg.chain, "bitcoin watcher stopped");
    }
}
