//! The one chain-watching loop. Over any [`ChainSource`] it follows the tip by polling, keeps
//! the watched addresses in memory (updated with what changed since the last step), scans
//! the next blocks, hands what they hold to the engine with the new cursor in one
//! transaction, and walks back to the common ancestor when the chain reorganises. It
//! catches up without waiting while behind, backs off on errors, and reports its health
//! (tip, lag, stalls, reachability) to `/readyz` and metrics the same way for every chain.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use coffer_core::ChainId;
use coffer_engine::{Applied, ChainBatch, Engine, EngineError};
use coffer_store::{ChainCursor, WatchedAddress};
use time::OffsetDateTime;

use crate::health::WatchHealth;
use crate::source::{ChainSource, Pending, Scanned, SourceConfig, SourceError, Tip};
use crate::watchset::WatchSet;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Source(SourceError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the chain changed during the scan; rescanning")]
    ChangedDuringScan,
}

impl From<SourceError> for WatchError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::ChangedDuringScan => WatchError::ChangedDuringScan,
            e => WatchError::Source(e),
        }
    }
}

impl WatchError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, WatchError::Source(e) if e.is_unreachable())
    }
}

/// How one chain is watched; every chain kind has its own defaults (see its config).
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Wait between polls once caught up (none while behind).
    pub poll_interval: Duration,
    /// How many recent block hashes are kept to find the common ancestor after a reorg.
    pub recent_blocks: usize,
    /// Where a chain never watched before starts: `None` = at the current tip.
    pub start_height: Option<u64>,
    /// The tip counts as stalled when it has not advanced (or the node has not answered)
    /// for this long.
    pub stall_after: Duration,
    /// The watched set is updated with what changed each step, and reloaded in full this
    /// often (a safety net).
    pub full_reload: Duration,
    /// The chain is not ready when the watcher is more than this many blocks behind the tip…
    pub max_lag_blocks: u64,
    /// …or this far behind it in time (or a step has been running this long).
    pub max_lag: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(3),
            recent_blocks: 64,
            start_height: None,
            stall_after: Duration::from_secs(120),
            full_reload: Duration::from_secs(600),
            max_lag_blocks: 50,
            max_lag: Duration::from_secs(60),
        }
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

/// How far back each incremental reload of the watched set looks before the previous one:
/// commit latency (and the clocks of several instances) may put a row's `updated_at` slightly
/// before a load that missed it. Every step re-reads this much, so it is kept short: at
/// 1,000 orders a second, 5 minutes would be 300,000 orders a step, which is how a watcher
/// fell behind under load (issue 25). Instances' clocks must agree to within this.
const WATCH_OVERLAP: time::Duration = time::Duration::seconds(10);
/// The source's endpoints are cross-checked every this many polls.
const CROSS_CHECK_EVERY: u64 = 10;
/// Backoff after errors grows up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A step slower than the poll interval (and at least this) is logged, at most every
/// `SLOW_LOG_EVERY`.
const SLOW_STEP: Duration = Duration::from_secs(1);
const SLOW_LOG_EVERY: Duration = Duration::from_secs(60);

/// Time spent in each part of a step.
#[derive(Debug, Default, Clone, Copy)]
struct Timings {
    reload: Duration,
    scan: Duration,
    apply: Duration,
}

impl Timings {
    fn slowest(&self) -> &'static str {
        let parts = [
            ("reload of the watched set", self.reload),
            ("scan", self.scan),
            ("apply", self.apply),
        ];
        parts
            .iter()
            .max_by_key(|(_, d)| *d)
            .map_or("scan", |(name, _)| *name)
    }
}

/// A full load of the watched set running as its own task; aborted if the watcher goes.
struct FullReload(tokio::task::JoinHandle<Result<Vec<WatchedAddress>, EngineError>>);

impl Drop for FullReload {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The watcher of one chain.
pub struct Watcher<S: ChainSource> {
    engine: Engine,
    source: S,
    settings: WatchSettings,
    chain: ChainId,
    watch: WatchSet<S::Key>,
    /// Engine time of the last load of the watched set, and when it was last loaded in full.
    loaded_at: Option<OffsetDateTime>,
    full_at: Option<Instant>,
    /// A full reload running beside the steps: the engine time it started at, and its rows.
    full_reload: Option<(OffsetDateTime, FullReload)>,
    health: Arc<Mutex<WatchHealth>>,
    /// The highest tip seen and when it was first seen: the tip advances when it exceeds it.
    highest_tip: Option<(u64, Instant)>,
    polls: u64,
    checked: bool,
    resumed: bool,
    last_slow_log: Option<Instant>,
}

impl<S: ChainSource> Watcher<S> {
    /// The watcher a chain's configuration describes.
    pub fn new<C: SourceConfig<Source = S>>(engine: Engine, config: C) -> Result<Self, WatchError> {
        let settings = config.settings();
        Ok(Self::with_source(engine, config.into_source()?, settings))
    }

    pub fn with_source(engine: Engine, source: S, settings: WatchSettings) -> Self {
        let health = WatchHealth {
            max_lag_blocks: settings.max_lag_blocks,
            max_lag: settings.max_lag,
            ..WatchHealth::default()
        };
        Self {
            engine,
            chain: source.chain().clone(),
            source,
            settings,
            watch: WatchSet::new(),
            loaded_at: None,
            full_at: None,
            full_reload: None,
            health: Arc::new(Mutex::new(health)),
            highest_tip: None,
            polls: 0,
            checked: false,
            resumed: false,
            last_slow_log: None,
        }
    }

    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn settings(&self) -> &WatchSettings {
        &self.settings
    }

    /// The addresses being watched.
    pub fn watched(&self) -> &WatchSet<S::Key> {
        &self.watch
    }

    pub fn health(&self) -> Arc<Mutex<WatchHealth>> {
        self.health.clone()
    }

    /// Check the node against the configuration (chain id, network). The first step does it
    /// too; start-up calls it to refuse a wrong node before serving.
    pub async fn check(&self) -> Result<(), SourceError> {
        self.source.check().await
    }

    fn set_health(&self, f: impl FnOnce(&mut WatchHealth)) {
        if let Ok(mut h) = self.health.lock() {
            f(&mut h);
        }
    }

    fn busy(&self, since: Instant, doing: &'static str) {
        self.set_health(|h| h.busy = Some((since, doing)));
    }

    fn gauge(&self, name: &'static str, value: f64) {
        let chain = self.chain.to_string();
        if let Some(legacy) = self.legacy(name) {
            metrics::gauge!(legacy, "chain" => chain.clone()).set(value);
        }
        metrics::gauge!(format!("coffer_chain_{name}"), "chain" => chain).set(value);
    }

    fn count(&self, name: &'static str, n: u64) {
        let chain = self.chain.to_string();
        if let Some(legacy) = self.legacy(name) {
            metrics::counter!(legacy, "chain" => chain.clone()).increment(n);
        }
        metrics::counter!(format!("coffer_chain_{name}"), "chain" => chain).increment(n);
    }

    /// The name this metric had before the one watcher, if the source kept it.
    fn legacy(&self, name: &str) -> Option<String> {
        let legacy = self.source.legacy_metrics()?;
        legacy
            .names
            .contains(&name)
            .then(|| format!("{}_{name}", legacy.prefix))
    }

    /// One poll: detect reorgs, scan the next blocks (and, once caught up, the mempool),
    /// apply them with the new cursor. Errors are recorded in the health before they return.
    pub async fn step(&mut self) -> Result<Step, WatchError> {
        // Its reads and commits go ahead of order creation's queue (connections kept for
        // chain watchers): a payment is not seen later because orders pour in.
        let result = coffer_store::chain_work(self.step_inner()).await;
        let stall_after = self.settings.stall_after;
        let since_advance = self.highest_tip.map(|(_, since)| since.elapsed());
        self.set_health(|h| {
            h.busy = None;
            match &result {
                Ok(_) => h.last_error = None,
                Err(WatchError::ChangedDuringScan) => {}
                Err(e) => {
                    h.last_error = Some(e.to_string());
                    h.unreachable = e.is_unreachable();
                    // No answer at all for `stall_after` is a stall too.
                    h.stalled |= since_advance.is_none_or(|d| d >= stall_after);
                }
            }
        });
        if matches!(&result, Err(e) if !matches!(e, WatchError::ChangedDuringScan)) {
            self.count("step_errors_total", 1);
        }
        result
    }

    async fn step_inner(&mut self) -> Result<Step, WatchError> {
        let started = Instant::now();
        self.busy(started, "checking the node");
        if !self.checked {
            self.source.check().await?;
            self.checked = true;
        }
        if !self.resumed {
            self.source.resume(&self.engine).await?;
            self.resumed = true;
        }
        self.busy(started, "reading the tip");
        let tip = self.source.tip().await?;
        self.observe_tip(&tip);
        self.polls += 1;
        if self.polls % CROSS_CHECK_EVERY == 1 {
            let disagreement = self.source.cross_check().await;
            self.gauge(
                "tip_disagreement",
                if disagreement.is_some() { 1.0 } else { 0.0 },
            );
            self.set_health(|h| h.disagreement = disagreement);
        }

        self.busy(started, "finding the cursor");
        let saved = self.cursor(tip.height).await?;
        let rewound = self.rewind(&saved).await?;
        let orphaned_from = rewound.as_ref().map(|c| c.height + 1);
        let base = rewound.unwrap_or(saved);
        self.set_health(|h| h.cursor = Some(base.height));
        self.report_lag();

        // After the tip was read: every order that could have been paid in a block up to
        // that tip is already committed, and seen here.
        let mut timings = Timings::default();
        self.busy(started, "reload of the watched set");
        let t = Instant::now();
        self.reload_watched().await?;
        timings.reload = t.elapsed();

        let from = base.height + 1;
        let (to, scanned) = if from <= tip.height {
            let most = self.source.max_blocks_per_step().max(1);
            let to = tip.height.min(from.saturating_add(most - 1));
            self.busy(started, "scan");
            let t = Instant::now();
            let scanned = self.source.scan(from, to, &base.hash, &self.watch).await?;
            timings.scan = t.elapsed();
            if scanned.hashes.last().map(|(h, _)| *h) != Some(to) {
                return Err(SourceError::Failed(format!(
                    "the scan of blocks {from}..={to} did not return block {to}'s hash"
                ))
                .into());
            }
            self.count("blocks_scanned_total", to - base.height);
            (to, scanned)
        } else {
            (base.height, Scanned::default())
        };
        let pending = if to == tip.height {
            self.busy(started, "mempool");
            self.source.pending(&self.watch).await?
        } else {
            Pending::default()
        };

        let moved = to != base.height || orphaned_from.is_some();
        let cursor = moved.then(|| {
            let mut recent = base.recent.clone();
            recent.extend(scanned.hashes.iter().cloned());
            let excess = recent
                .len()
                .saturating_sub(self.settings.recent_blocks.max(1));
            recent.drain(..excess);
            let hash = scanned
                .hashes
                .last()
                .map_or_else(|| base.hash.clone(), |(_, h)| h.clone());
            ChainCursor {
                chain: self.chain.clone(),
                height: to,
                hash,
                recent,
                updated_at: self.engine.now(),
            }
        });
        let mut transfers = scanned.transfers.clone();
        transfers.extend(pending.transfers.iter().cloned());
        let batch = ChainBatch {
            chain: self.chain.clone(),
            transfers,
            orphaned_from,
            // Confirmations count to the highest block linked to the cursor.
            tip: to,
            cursor,
            dropped_txids: pending.dropped_txids.clone(),
            non_replaceable_txids: pending.non_replaceable_txids.clone(),
        };
        let mut applied = Applied::default();
        if moved || !batch.transfers.is_empty() || !batch.dropped_txids.is_empty() {
            self.busy(started, "apply");
            let t = Instant::now();
            applied = self.engine.apply_chain_batch(&batch).await?;
            timings.apply = t.elapsed();
        }
        if applied != Applied::default() {
            tracing::info!(chain = %self.chain, from, to, ?applied, "applied chain activity");
        }
        // Only now that the batch is durable.
        self.source.committed(&scanned, &pending);
        self.source
            .upkeep(&self.engine, applied != Applied::default())
            .await;

        let facts = self.source.facts();
        self.set_health(|h| {
            h.cursor = Some(to);
            if moved {
                h.cursor_time = scanned.to_time;
            }
            h.facts = facts;
        });
        self.gauge("cursor_height", to as f64);
        self.gauge("watched_addresses", self.watch.len() as f64);
        self.report_lag();
        self.report_timings(started.elapsed(), timings, to - base.height);
        Ok(if to == base.height {
            Step::Idle { tip: tip.height }
        } else {
            Step::Scanned {
                to,
                tip: tip.height,
            }
        })
    }

    /// The stall rule, one for every chain: the tip advances when its height exceeds every
    /// height seen before; stalled when it has not for `stall_after`.
    fn observe_tip(&mut self, tip: &Tip) {
        let now = Instant::now();
        let stalled = match self.highest_tip {
            Some((h, _)) if tip.height > h => {
                self.highest_tip = Some((tip.height, now));
                false
            }
            Some((_, since)) => now.duration_since(since) >= self.settings.stall_after,
            None => {
                self.highest_tip = Some((tip.height, now));
                false
            }
        };
        self.set_health(|h| {
            h.tip = Some(tip.height);
            h.tip_time = tip.time;
            h.stalled = stalled;
            h.unreachable = false;
        });
        self.gauge("tip_height", tip.height as f64);
        self.gauge("stalled", if stalled { 1.0 } else { 0.0 });
        let age = self.health.lock().ok().and_then(|h| h.tip_age_secs());
        if let Some(age) = age {
            self.gauge("tip_age_seconds", age as f64);
        }
    }

    fn report_lag(&self) {
        let lag = self
            .health
            .lock()
            .ok()
            .map(|h| (h.lag(), h.lag_secs()))
            .unwrap_or_default();
        if let Some(blocks) = lag.0 {
            self.gauge("lag_blocks", blocks as f64);
        }
        if let Some(secs) = lag.1 {
            self.gauge("lag_seconds", secs as f64);
        }
    }

    /// Step duration metrics, and a warning naming the slow part when a step is slow or the
    /// watcher lags.
    fn report_timings(&mut self, total: Duration, t: Timings, blocks: u64) {
        let chain = self.chain.to_string();
        metrics::histogram!("coffer_chain_step_seconds", "chain" => chain)
            .record(total.as_secs_f64());
        self.gauge("reload_seconds", t.reload.as_secs_f64());
        self.gauge("scan_seconds", t.scan.as_secs_f64());
        self.gauge("apply_seconds", t.apply.as_secs_f64());
        let (lagging, lag) = self
            .health
            .lock()
            .ok()
            .map(|h| (h.lagging(), h.lag()))
            .unwrap_or_default();
        let slow = total >= self.settings.poll_interval.max(SLOW_STEP);
        if !(slow || lagging.is_some())
            || self
                .last_slow_log
                .is_some_and(|at| at.elapsed() < SLOW_LOG_EVERY)
        {
            return;
        }
        self.last_slow_log = Some(Instant::now());
        tracing::warn!(
            chain = %self.chain,
            step_ms = total.as_millis() as u64,
            reload_ms = t.reload.as_millis() as u64,
            scan_ms = t.scan.as_millis() as u64,
            apply_ms = t.apply.as_millis() as u64,
            blocks,
            lag_blocks = lag,
            watched = self.watch.len(),
            lagging = lagging.as_deref(),
            "watcher step slow: most time in {}", t.slowest()
        );
    }

    /// Bring the watched set up to date: the first time from every open address of the
    /// chain, otherwise from the addresses of orders and deposit accounts changed since the
    /// last load; then drop the addresses whose monitoring window closed (they do not come
    /// back unless their order is changed again).
    ///
    /// Every `full_reload` the whole set is read again, as a safety net, by a task beside the
    /// steps: at a thousand orders a second a day's open addresses are millions of rows, and
    /// reading them inside a step would hold the scan back for seconds (issue 25). When the
    /// task is done its set replaces the one in use, and the incremental load that follows
    /// looks back to when the task started, so nothing changed meanwhile is missed.
    async fn reload_watched(&mut self) -> Result<(), WatchError> {
        let now = self.engine.now();
        let Some(loaded) = self.loaded_at else {
            let rows = self.engine.watched_addresses(&self.chain, now).await?;
            self.watch.clear();
            self.insert_rows(rows);
            self.loaded_at = Some(now);
            self.full_at = Some(Instant::now());
            self.watch.expire(now);
            return Ok(());
        };
        let mut since = loaded;
        if self
            .full_reload
            .as_ref()
            .is_some_and(|(_, task)| task.0.is_finished())
            && let Some((started_at, mut task)) = self.full_reload.take()
        {
            match (&mut task.0).await {
                Ok(Ok(rows)) => {
                    self.watch.clear();
                    self.insert_rows(rows);
                    since = since.min(started_at);
                }
                Ok(Err(e)) => {
                    tracing::warn!(chain = %self.chain, error = %e, "full reload of the watched set failed; the incremental loads go on");
                }
                Err(e) => {
                    tracing::warn!(chain = %self.chain, error = %e, "full reload of the watched set ended abnormally");
                }
            }
            self.full_at = Some(Instant::now());
        }
        if self.full_reload.is_none()
            && self
                .full_at
                .is_none_or(|t| t.elapsed() >= self.settings.full_reload)
        {
            let (engine, chain) = (self.engine.clone(), self.chain.clone());
            let task = tokio::spawn(async move { engine.watched_addresses(&chain, now).await });
            self.full_reload = Some((now, FullReload(task)));
        }
        let rows = self
            .engine
            .watched_addresses_since(&self.chain, now, since - WATCH_OVERLAP)
            .await?;
        self.loaded_at = Some(now);
        self.insert_rows(rows);
        self.watch.expire(now);
        Ok(())
    }

    fn insert_rows(&mut self, rows: Vec<WatchedAddress>) {
        for row in rows {
            match self.source.parse_address(&row.address) {
                Some(key) => self.watch.insert(key, row.address, row.monitor_until),
                None => {
                    tracing::warn!(chain = %self.chain, address = %row.address, "watched address does not parse for this chain; ignored");
                }
            }
        }
    }

    /// The cursor, created at the start height (or the tip) the first time.
    async fn cursor(&mut self, tip: u64) -> Result<ChainCursor, WatchError> {
        if let Some(c) = self.engine.chain_cursor(&self.chain).await? {
            return Ok(c);
        }
        let height = match self.settings.start_height {
            Some(h) => h.saturating_sub(1).min(tip),
            None => tip,
        };
        let hash = self.hash_at(height).await?;
        Ok(self.engine.start_cursor(&self.chain, height, hash).await?)
    }

    async fn hash_at(&mut self, height: u64) -> Result<String, WatchError> {
        self.source
            .hash_at(height)
            .await?
            .ok_or_else(|| SourceError::Failed(format!("block {height} not found")).into())
    }

    /// Walk back from the cursor to the newest kept block still on the canonical chain.
    async fn rewind(&mut self, cursor: &ChainCursor) -> Result<Option<ChainCursor>, WatchError> {
        if self.source.hash_at(cursor.height).await?.as_deref() == Some(cursor.hash.as_str()) {
            return Ok(None);
        }
        for (i, (height, hash)) in cursor.recent.iter().enumerate().rev() {
            if *height >= cursor.height {
                continue;
            }
            if self.source.hash_at(*height).await?.as_deref() == Some(hash.as_str()) {
                tracing::warn!(chain = %self.chain, ancestor = height, was = cursor.height, "reorg: rewinding to the common ancestor");
                self.count("reorgs_total", 1);
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
        tracing::error!(chain = %self.chain, oldest, "reorg deeper than the kept block hashes");
        self.count("reorgs_total", 1);
        let hash = self.hash_at(oldest).await?;
        Ok(Some(ChainCursor {
            chain: cursor.chain.clone(),
            height: oldest,
            hash: hash.clone(),
            recent: vec![(oldest, hash)],
            updated_at: self.engine.now(),
        }))
    }

    /// Run until `stop` turns true: catch up as fast as the node answers, then poll; errors
    /// back off exponentially (up to a minute). A stop cancels the step in flight: its batch
    /// commits whole or not at all, so the cursor stays where the database says.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = self.settings.poll_interval;
        loop {
            if *stop.borrow() {
                break;
            }
            let started = Instant::now();
            let result = tokio::select! {
                r = self.step() => r,
                _ = stop.changed() => break,
            };
            let wait = match result {
                Ok(Step::Scanned { to, tip }) if to < tip => Duration::ZERO,
                // Polls start `poll_interval` apart, however long a step took: sleeping a
                // whole interval after a slow step made the period interval + step, and a
                // chain with blocks as frequent as the polls drifted behind (issue 25).
                Ok(_) => {
                    backoff = self.settings.poll_interval;
                    self.settings
                        .poll_interval
                        .saturating_sub(started.elapsed())
                }
                // Rescan soon (the next step's reorg check sees the new branch), without spinning.
                Err(WatchError::ChangedDuringScan) => self.settings.poll_interval / 4,
                Err(e) => {
                    tracing::warn!(chain = %self.chain, error = %e, "watcher step failed; retrying");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
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
        tracing::info!(chain = %self.chain, "watcher stopped");
    }
}

/// A watcher of any chain kind, as `coffer serve` starts them: one loop for all.
#[async_trait]
pub trait RunningWatcher: Send {
    fn chain(&self) -> &ChainId;
    /// The node against the configuration (see [`Watcher::check`]).
    async fn check(&self) -> Result<(), SourceError>;
    fn health(&self) -> Arc<Mutex<WatchHealth>>;
    /// The watcher's loop, until `stop` turns true.
    fn run(
        self: Box<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

#[async_trait]
impl<S: ChainSource> RunningWatcher for Watcher<S> {
    fn chain(&self) -> &ChainId {
        &self.chain
    }

    async fn check(&self) -> Result<(), SourceError> {
        self.source.check().await
    }

    fn health(&self) -> Arc<Mutex<WatchHealth>> {
        self.health.clone()
    }

    fn run(
        self: Box<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin((*self).run(stop))
    }
}
