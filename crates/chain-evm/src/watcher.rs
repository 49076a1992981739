//! The watcher of one EVM chain: follows the tip by polling, scans whole block ranges (never
//! one address at a time), hands what it found to the engine with its new cursor in one
//! transaction, and walks back to the common ancestor when the chain reorganises.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use coffer_core::{AssetId, BaseUnits, ChainId};
use coffer_engine::{BlockRef, ChainBatch, Engine, EngineError, ObservedTransfer};
use coffer_store::{ChainCursor, StoreError};
use time::OffsetDateTime;

use crate::matcher::{RawLog, Tokens, Watched, match_log};
use crate::rpc::{Rpc, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("chain {chain}: configured chain_id {configured} but the node reports {actual}")]
    ChainIdMismatch {
        chain: ChainId,
        configured: u64,
        actual: u64,
    },
    #[error("the chain changed during the scan; rescanning")]
    ChangedDuringScan,
}

/// What one watcher needs to know about its chain.
#[derive(Debug, Clone)]
pub struct EvmWatchConfig {
    pub chain: ChainId,
    pub evm_chain_id: Option<u64>,
    pub rpc: Vec<String>,
    pub poll_interval: Duration,
    pub rpc_timeout: Duration,
    pub tokens: Tokens,
    pub native: Option<AssetId>,
    /// Largest `eth_getLogs` range tried; halved when a provider refuses, grown back on success.
    pub max_range: u64,
    /// How many recent block hashes are kept to find the common ancestor after a reorg.
    pub recent_blocks: usize,
    /// Where a chain never watched before starts: `None` = at the current tip.
    pub start_height: Option<u64>,
    /// The tip counts as stalled when it has not advanced for this long.
    pub stall_after: Duration,
    /// Blocks fetched per JSON-RPC batch request.
    pub block_batch: u64,
    /// The watched set is updated incrementally each step and reloaded in full this often.
    pub full_reload: Duration,
}

impl EvmWatchConfig {
    pub fn new(chain: ChainId, rpc: Vec<String>) -> Self {
        Self {
            chain,
            evm_chain_id: None,
            rpc,
            poll_interval: Duration::from_secs(3),
            rpc_timeout: Duration::from_secs(10),
            tokens: Tokens::default(),
            native: None,
            max_range: 2_000,
            recent_blocks: 64,
            start_height: None,
            stall_after: Duration::from_secs(120),
            block_batch: 100,
            full_reload: Duration::from_secs(600),
        }
    }
}

/// The watcher's health, for `/readyz` and metrics.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub tip: Option<u64>,
    pub cursor: Option<u64>,
    /// The tip has not advanced for `stall_after`.
    pub stalled: bool,
    /// Endpoints disagree on the tip by more than a few blocks.
    pub disagreement: Option<String>,
    pub last_error: Option<String>,
}

impl Health {
    pub fn ok(&self) -> bool {
        self.tip.is_some() && !self.stalled && self.disagreement.is_none()
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Scanned up to `to`; more blocks wait if `to < tip`.
    Scanned { to: u64, tip: u64 },
    /// Nothing new.
    Idle { tip: u64 },
}

pub struct EvmWatcher {
    engine: Engine,
    cfg: EvmWatchConfig,
    rpc: Rpc,
    range: u64,
    /// Largest range to grow back to: below the last range a provider refused.
    range_ceiling: u64,
    /// Successful `eth_getLogs` since the last refusal.
    range_ok: u64,
    health: Arc<Mutex<Health>>,
    last_tip: Option<(u64, Instant)>,
    polls: u64,
    watch: WatchCache,
}

/// How far back each incremental reload of the watched set looks before the previous one.
const WATCH_OVERLAP: time::Duration = time::Duration::minutes(5);

/// Height → (hash, parent hash, timestamp).
type Headers = BTreeMap<u64, (B256, B256, u64)>;

/// A native transfer to a watched address, before its receipt is checked.
struct NativeCandidate {
    txid: B256,
    to: String,
    amount: u128,
    from: Address,
    block: BlockRef,
}

/// The watched addresses, kept in memory between steps and updated incrementally.
#[derive(Default)]
struct WatchCache {
    watched: Watched,
    /// Each address's end of monitoring (the latest of its orders').
    until: HashMap<Address, OffsetDateTime>,
    /// Addresses by end of monitoring, to drop them when it passes.
    expiry: BTreeMap<OffsetDateTime, Vec<Address>>,
    /// Engine time of the last load.
    loaded_at: Option<OffsetDateTime>,
    /// When the set was last loaded in full.
    full_at: Option<Instant>,
}

fn hex_hash(h: &B256) -> String {
    format!("{h:#x}")
}

fn block_time(secs: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl EvmWatcher {
    pub fn new(engine: Engine, cfg: EvmWatchConfig) -> Result<Self, WatchError> {
        let rpc = Rpc::new(&cfg.rpc, cfg.rpc_timeout)?;
        let range = cfg.max_range.max(1);
        Ok(Self {
            engine,
            cfg,
            rpc,
            range,
            range_ceiling: range,
            range_ok: 0,
            health: Arc::new(Mutex::new(Health::default())),
            last_tip: None,
            polls: 0,
            watch: WatchCache::default(),
        })
    }

    pub fn health(&self) -> Arc<Mutex<Health>> {
        self.health.clone()
    }

    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    fn set_health(&self, f: impl FnOnce(&mut Health)) {
        if let Ok(mut h) = self.health.lock() {
            f(&mut h);
        }
    }

    /// Check the configured chain id against the node's `eth_chainId`.
    pub async fn check_chain_id(&self) -> Result<(), WatchError> {
        let actual = self.rpc.chain_id().await?;
        match self.cfg.evm_chain_id {
            Some(configured) if configured != actual => Err(WatchError::ChainIdMismatch {
                chain: self.cfg.chain.clone(),
                configured,
                actual,
            }),
            _ => Ok(()),
        }
    }

    /// Bring the watched set up to date: the first time (and every `full_reload`) from every
    /// open address on the chain, otherwise only the addresses of orders changed since the
    /// last load (new orders, a changed asset), then drop the addresses whose monitoring
    /// window closed. Called after the tip was read, so every order that could have been paid
    /// in a block up to that tip is already committed and seen.
    async fn refresh_watched(&mut self) -> Result<(), WatchError> {
        let now = self.engine.now();
        let full = self.watch.loaded_at.is_none()
            || self
                .watch
                .full_at
                .is_none_or(|t| t.elapsed() >= self.cfg.full_reload);
        let rows = if full {
            self.engine.watched_addresses(&self.cfg.chain, now).await?
        } else {
            // Overlap the previous load generously: clocks of several instances and commit
            // latency may put a row's `updated_at` slightly before a load that missed it.
            let since = self
                .watch
                .loaded_at
                .map_or(OffsetDateTime::UNIX_EPOCH, |t| t - WATCH_OVERLAP);
            self.engine
                .watched_addresses_since(&self.cfg.chain, now, since)
                .await?
        };
        if full {
            self.watch = WatchCache {
                full_at: Some(Instant::now()),
                ..WatchCache::default()
            };
        }
        self.watch.loaded_at = Some(now);
        for row in rows {
            let Ok(addr) = row.address.parse::<Address>() else {
                continue;
            };
            let until = self
                .watch
                .until
                .get(&addr)
                .map_or(row.monitor_until, |u| (*u).max(row.monitor_until));
            self.watch.until.insert(addr, until);
            self.watch.expiry.entry(until).or_default().push(addr);
            self.watch.watched.insert(addr, row.address);
        }
        // Monitoring windows that closed.
        while let Some(entry) = self.watch.expiry.first_entry() {
            if *entry.key() > now {
                break;
            }
            for addr in entry.remove() {
                if self.watch.until.get(&addr).is_some_and(|u| *u <= now) {
                    self.watch.until.remove(&addr);
                    self.watch.watched.remove(&addr);
                }
            }
        }
        Ok(())
    }

    /// Blocks `from..=to` in batches: their hashes, parents and times, and (with `full`) the
    /// native transfers to watched addresses (receipts not yet checked).
    async fn scan_blocks(
        &self,
        from: u64,
        to: u64,
        full: bool,
        watched: &Watched,
    ) -> Result<(Headers, Vec<NativeCandidate>), WatchError> {
        let mut headers = Headers::new();
        let mut candidates = Vec::new();
        let batch = self.cfg.block_batch.max(1);
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(batch - 1));
            let blocks = self.rpc.blocks(start, end, full).await?;
            for (height, block) in (start..=end).zip(blocks) {
                let Some(block) = block else {
                    return Err(RpcError::MissingBlock(height).into());
                };
                let time = block.timestamp.to::<u64>();
                headers.insert(height, (block.hash, block.parent_hash, time));
                if !full {
                    continue;
                }
                for tx in block.transactions {
                    let Some(to_addr) = tx.to else { continue };
                    let Some(original) = watched.get(&to_addr) else {
                        continue;
                    };
                    if tx.value.is_zero() {
                        continue;
                    }
                    let Ok(amount) = u128::try_from(tx.value) else {
                        continue;
                    };
                    candidates.push(NativeCandidate {
                        txid: tx.hash,
                        to: original.clone(),
                        amount,
                        from: tx.from,
                        block: BlockRef {
                            height,
                            hash: hex_hash(&block.hash),
                            time: block_time(time),
                        },
                    });
                }
            }
            start = end.saturating_add(1);
        }
        Ok((headers, candidates))
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
        let hash = hex_hash(&self.rpc.header(height).await?.header.hash);
        Ok(self
            .engine
            .start_cursor(&self.cfg.chain, height, hash)
            .await?)
    }

    /// Walk back from the cursor to the newest block still on the canonical chain.
    async fn rewind(&self, cursor: &ChainCursor) -> Result<Option<ChainCursor>, WatchError> {
        let head = self.rpc.header(cursor.height).await;
        match head {
            Ok(b) if hex_hash(&b.header.hash) == cursor.hash => return Ok(None),
            Ok(_) | Err(RpcError::MissingBlock(_)) => {}
            Err(e) => return Err(e.into()),
        }
        for (i, (height, hash)) in cursor.recent.iter().enumerate().rev() {
            if *height >= cursor.height {
                continue;
            }
            match self.rpc.header(*height).await {
                Ok(b) if hex_hash(&b.header.hash) == *hash => {
                    tracing::warn!(chain = %self.cfg.chain, ancestor = height, was = cursor.height, "reorg: rewinding to the common ancestor");
                    metrics::counter!("coffer_evm_reorgs_total", "chain" => self.cfg.chain.to_string()).increment(1);
                    return Ok(Some(ChainCursor {
                        chain: cursor.chain.clone(),
                        height: *height,
                        hash: hash.clone(),
                        recent: cursor.recent[..=i].to_vec(),
                        updated_at: self.engine.now(),
                    }));
                }
                Ok(_) | Err(RpcError::MissingBlock(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Deeper than the hashes kept: restart from the oldest kept height's parent.
        let oldest = cursor
            .recent
            .first()
            .map_or(cursor.height, |(h, _)| *h)
            .saturating_sub(1);
        tracing::error!(chain = %self.cfg.chain, oldest, "reorg deeper than the kept block hashes");
        let hash = hex_hash(&self.rpc.header(oldest).await?.header.hash);
        Ok(Some(ChainCursor {
            chain: cursor.chain.clone(),
            height: oldest,
            hash: hash.clone(),
            recent: vec![(oldest, hash)],
            updated_at: self.engine.now(),
        }))
    }

    fn observe_tip(&mut self, tip: u64) {
        let now = Instant::now();
        let stalled = match self.last_tip {
            Some((t, _)) if tip > t => {
                self.last_tip = Some((tip, now));
                false
            }
            Some((_, since)) => now.duration_since(since) >= self.cfg.stall_after,
            None => {
                self.last_tip = Some((tip, now));
                false
            }
        };
        let chain = self.cfg.chain.to_string();
        metrics::gauge!("coffer_evm_tip_height", "chain" => chain.clone()).set(tip as f64);
        metrics::gauge!("coffer_evm_stalled", "chain" => chain).set(if stalled {
            1.0
        } else {
            0.0
        });
        self.set_health(|h| {
            h.tip = Some(tip);
            h.stalled = stalled;
        });
    }

    async fn cross_check(&self) {
        if self.rpc.endpoint_count() < 2 {
            return;
        }
        let tips: Vec<u64> = self.rpc.tips().await.into_iter().flatten().collect();
        let (Some(min), Some(max)) = (tips.iter().min(), tips.iter().max()) else {
            return;
        };
        let disagreement = (max - min > 5).then(|| format!("endpoint tips range {min}..{max}"));
        metrics::gauge!("coffer_evm_tip_disagreement", "chain" => self.cfg.chain.to_string())
            .set(if disagreement.is_some() { 1.0 } else { 0.0 });
        self.set_health(|h| h.disagreement = disagreement);
    }

    /// One poll: detect reorgs, scan the next range, apply it with the new cursor.
    pub async fn step(&mut self) -> Result<Step, WatchError> {
        let tip = self.rpc.block_number().await?;
        self.observe_tip(tip);
        self.polls += 1;
        if self.polls % 10 == 1 {
            self.cross_check().await;
        }
        let saved = self.cursor(tip).await?;
        let rewound = self.rewind(&saved).await?;
        let orphaned_from = rewound.as_ref().map(|c| c.height + 1);
        let base = rewound.unwrap_or(saved);
        let from = base.height + 1;
        if from > tip {
            // Nothing new; still update confirmations and apply a reorg to a shorter chain.
            let batch = ChainBatch {
                chain: self.cfg.chain.clone(),
                transfers: Vec::new(),
                orphaned_from,
                tip,
                cursor: orphaned_from.map(|_| base.clone()),
                dropped_txids: Vec::new(),
                non_replaceable_txids: Vec::new(),
            };
            self.engine.apply_chain_batch(&batch).await?;
            metrics::gauge!("coffer_evm_cursor_height", "chain" => self.cfg.chain.to_string())
                .set(base.height as f64);
            self.set_health(|h| h.cursor = Some(base.height));
            return Ok(Step::Idle { tip });
        }
        let to = tip.min(from.saturating_add(self.range - 1));
        self.refresh_watched().await?;
        let watched = &self.watch.watched;

        // Token transfers: one eth_getLogs for the whole range. At the same time, the blocks:
        // all of them with their transactions while any address is watched (native coin sent
        // to any watched address is recorded, also to a token order's address, where it is
        // flagged), otherwise only the headers near the tip (for the reorg check).
        let keep = u64::try_from(self.cfg.recent_blocks.max(1)).unwrap_or(64);
        let near_from = from.max(tip.saturating_sub(keep - 1));
        let native_scan = self.cfg.native.is_some() && !watched.is_empty();
        let scan_from = if native_scan { from } else { near_from.min(to) };
        let want_logs = !watched.is_empty() && !self.cfg.tokens.is_empty();
        let contracts = self.cfg.tokens.contracts();
        let logs_fut = async {
            if want_logs {
                self.rpc.transfer_logs(&contracts, from, to).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let blocks_fut = self.scan_blocks(scan_from, to, native_scan, watched);
        let (logs, scanned) = tokio::join!(logs_fut, blocks_fut);
        let logs = match logs {
            Ok(Some(logs)) => {
                // Grow back, but not past a range the provider refused, except for a fresh
                // probe every so often (a refusal may have been a transient error).
                self.range_ok += 1;
                if self.range_ok.is_multiple_of(256) {
                    self.range_ceiling = self.cfg.max_range.max(1);
                }
                self.range = (self.range.saturating_mul(2)).min(self.range_ceiling);
                logs
            }
            Ok(None) => Vec::new(),
            Err(e) if self.range > 1 => {
                self.range = (self.range / 2).max(1);
                self.range_ceiling = self.range;
                self.range_ok = 0;
                tracing::info!(chain = %self.cfg.chain, range = self.range, error = %e, "eth_getLogs refused; shrinking the range");
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let (headers, candidates) = scanned?;
        let watched = &self.watch.watched;
        let mut transfers = Vec::new();
        if let Some(asset) = &self.cfg.native {
            for c in candidates {
                // Only a transaction that succeeded moved the coin.
                let succeeded = self.rpc.receipt(c.txid).await?.is_some_and(|r| r.status());
                if !succeeded {
                    continue;
                }
                transfers.push(ObservedTransfer {
                    asset: asset.clone(),
                    to: c.to,
                    amount: BaseUnits::new(c.amount),
                    txid: hex_hash(&c.txid),
                    index: 0,
                    from: Some(c.from.to_checksum(None)),
                    block: Some(c.block),
                });
            }
        }
        // The scanned blocks must link up with the cursor and with each other.
        let mut prev = (base.height, base.hash.clone());
        for (height, (hash, parent, _)) in &headers {
            if *height == prev.0 + 1 && hex_hash(parent) != prev.1 {
                return Err(WatchError::ChangedDuringScan);
            }
            prev = (*height, hex_hash(hash));
        }

        let mut seen = HashSet::new();
        let mut block_times: BTreeMap<u64, u64> =
            headers.iter().map(|(h, (_, _, t))| (*h, *t)).collect();
        for log in &logs {
            if log.removed {
                continue;
            }
            let raw = RawLog {
                contract: log.address(),
                topics: log.topics(),
                data: &log.data().data,
            };
            let Some(m) = match_log(raw, &self.cfg.tokens, watched) else {
                continue;
            };
            let (Some(height), Some(block_hash), Some(txid), Some(index)) = (
                log.block_number,
                log.block_hash,
                log.transaction_hash,
                log.log_index,
            ) else {
                continue;
            };
            if let Some((hash, _, _)) = headers.get(&height)
                && *hash != block_hash
            {
                return Err(WatchError::ChangedDuringScan);
            }
            let time = match (log.block_timestamp, block_times.get(&height)) {
                (Some(t), _) | (None, Some(&t)) => t,
                (None, None) => {
                    let t = self.rpc.header(height).await?.header.timestamp;
                    block_times.insert(height, t);
                    t
                }
            };
            if !seen.insert((txid, index)) {
                continue;
            }
            transfers.push(ObservedTransfer {
                asset: m.asset.clone(),
                to: m.to.clone(),
                amount: m.amount,
                txid: hex_hash(&txid),
                index: u32::try_from(index).unwrap_or(u32::MAX),
                from: Some(m.from.to_checksum(None)),
                block: Some(BlockRef {
                    height,
                    hash: hex_hash(&block_hash),
                    time: block_time(time),
                }),
            });
        }

        let to_hash = match headers.get(&to) {
            Some((hash, _, _)) => hex_hash(hash),
            None => hex_hash(&self.rpc.header(to).await?.header.hash),
        };
        let mut recent = base.recent.clone();
        recent.extend(headers.iter().map(|(h, (hash, _, _))| (*h, hex_hash(hash))));
        if recent.last().map(|(h, _)| *h) != Some(to) {
            recent.push((to, to_hash.clone()));
        }
        let excess = recent.len().saturating_sub(self.cfg.recent_blocks.max(1));
        recent.drain(..excess);
        let cursor = ChainCursor {
            chain: self.cfg.chain.clone(),
            height: to,
            hash: to_hash,
            recent,
            updated_at: self.engine.now(),
        };
        let batch = ChainBatch {
            chain: self.cfg.chain.clone(),
            transfers,
            orphaned_from,
            tip,
            cursor: Some(cursor),
            dropped_txids: Vec::new(),
            non_replaceable_txids: Vec::new(),
        };
        let applied = self.engine.apply_chain_batch(&batch).await?;
        if applied != Default::default() {
            tracing::info!(chain = %self.cfg.chain, from, to, ?applied, "applied chain activity");
        }
        metrics::gauge!("coffer_evm_cursor_height", "chain" => self.cfg.chain.to_string())
            .set(to as f64);
        self.set_health(|h| {
            h.cursor = Some(to);
            h.last_error = None;
        });
        Ok(Step::Scanned { to, tip })
    }

    /// Run until `stop` turns true: catch up as fast as the node answers, then poll.
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
                // Rescan soon (the next step's reorg check sees the new branch), without spinning.
                Err(WatchError::ChangedDuringScan) => self.cfg.poll_interval / 4,
                Err(e) => {
                    tracing::warn!(chain = %self.cfg.chain, error = %e, "watcher step failed; retrying");
                    let msg = e.to_string();
                    // No answer at all for `stall_after` (every endpoint down) is a stall too.
                    let stalled = self
                        .last_tip
                        .is_none_or(|(_, since)| since.elapsed() >= self.cfg.stall_after);
                    self.set_health(|h| {
                        h.last_error = Some(msg);
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
        tracing::info!(chain = %self.cfg.chain, "watcher stopped");
    }
}
