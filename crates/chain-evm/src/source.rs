//! An EVM chain as a [`ChainSource`]: the tip and block hashes over JSON-RPC (several
//! endpoints with failover, their tips cross-checked), token transfers from one `eth_getLogs`
//! per range (the range adapts to what the provider accepts), native-coin transfers from the
//! blocks' transactions (counted only when their receipt says they succeeded). The loop
//! around it — cursor, reorgs, catch-up, health — is the one [`Watcher`].

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use async_trait::async_trait;
use coffer_core::{AssetId, BaseUnits, ChainId};
use coffer_engine::{BlockRef, ObservedTransfer};
use coffer_rail::{
    ChainSource, LegacyMetrics, Scanned, SourceConfig, SourceError, Tip, WatchSet, WatchSettings,
    Watcher,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::matcher::{RawLog, Tokens, match_log};
use crate::rpc::{Rpc, RpcError};

/// The one watcher over an EVM chain.
pub type EvmWatcher = Watcher<EvmSource>;

/// What one EVM chain's watcher needs to know.
#[derive(Debug, Clone)]
pub struct EvmWatchConfig {
    pub chain: ChainId,
    pub evm_chain_id: Option<u64>,
    pub rpc: Vec<String>,
    pub rpc_timeout: Duration,
    pub tokens: Tokens,
    pub native: Option<AssetId>,
    /// Largest `eth_getLogs` range tried; halved when a provider refuses, grown back on success.
    pub max_range: u64,
    /// Blocks fetched per JSON-RPC batch request.
    pub block_batch: u64,
    /// The loop's settings (poll interval, recent hashes, stall and lag limits, …).
    pub watch: WatchSettings,
}

impl EvmWatchConfig {
    pub fn new(chain: ChainId, rpc: Vec<String>) -> Self {
        Self {
            chain,
            evm_chain_id: None,
            rpc,
            rpc_timeout: Duration::from_secs(10),
            tokens: Tokens::default(),
            native: None,
            max_range: 2_000,
            block_batch: 100,
            watch: WatchSettings {
                poll_interval: Duration::from_secs(3),
                recent_blocks: 64,
                stall_after: Duration::from_secs(120),
                max_lag_blocks: 50,
                max_lag: Duration::from_secs(60),
                ..WatchSettings::default()
            },
        }
    }
}

impl SourceConfig for EvmWatchConfig {
    type Source = EvmSource;

    fn chain(&self) -> &ChainId {
        &self.chain
    }

    fn settings(&self) -> WatchSettings {
        self.watch.clone()
    }

    fn into_source(self) -> Result<EvmSource, SourceError> {
        EvmSource::new(self)
    }
}

/// Endpoint tips further apart than this make the chain not ready.
const MAX_TIP_SPREAD: u64 = 5;

pub struct EvmSource {
    chain: ChainId,
    evm_chain_id: Option<u64>,
    rpc: Rpc,
    tokens: Tokens,
    contracts: Vec<Address>,
    native: Option<AssetId>,
    block_batch: u64,
    /// Blocks this close to the tip have their hashes fetched (the reorg walk-back).
    recent_blocks: u64,
    max_range: u64,
    range: u64,
    /// Largest range to grow back to: below the last range a provider refused.
    range_ceiling: u64,
    /// Successful `eth_getLogs` since the last refusal.
    range_ok: u64,
    /// The tip read at the start of the step.
    tip: u64,
}

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

fn hex_hash(h: &B256) -> String {
    format!("{h:#x}")
}

fn block_time(secs: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn failed(e: RpcError) -> SourceError {
    SourceError::Failed(e.to_string())
}

impl EvmSource {
    pub fn new(cfg: EvmWatchConfig) -> Result<Self, SourceError> {
        let rpc = Rpc::new(&cfg.rpc, cfg.rpc_timeout).map_err(failed)?;
        let range = cfg.max_range.max(1);
        Ok(Self {
            contracts: cfg.tokens.contracts(),
            chain: cfg.chain,
            evm_chain_id: cfg.evm_chain_id,
            rpc,
            tokens: cfg.tokens,
            native: cfg.native,
            block_batch: cfg.block_batch.max(1),
            recent_blocks: u64::try_from(cfg.watch.recent_blocks.max(1)).unwrap_or(64),
            max_range: range,
            range,
            range_ceiling: range,
            range_ok: 0,
            tip: 0,
        })
    }

    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// Blocks `from..=to` in batches: their hashes, parents and times, and (with `full`) the
    /// native transfers to watched addresses (receipts not yet checked).
    async fn scan_blocks(
        &self,
        from: u64,
        to: u64,
        full: bool,
        watched: &WatchSet<Address>,
    ) -> Result<(Headers, Vec<NativeCandidate>), RpcError> {
        let mut headers = Headers::new();
        let mut candidates = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(self.block_batch - 1));
            let blocks = self.rpc.blocks(start, end, full).await?;
            for (height, block) in (start..=end).zip(blocks) {
                let Some(block) = block else {
                    return Err(RpcError::MissingBlock(height));
                };
                let time = block.timestamp.to::<u64>();
                headers.insert(height, (block.hash, block.parent_hash, time));
                for tx in block.transactions {
                    let Some(original) = tx.to.and_then(|to| watched.get(&to)) else {
                        continue;
                    };
                    let Ok(amount) = u128::try_from(tx.value) else {
                        continue;
                    };
                    if amount == 0 {
                        continue;
                    }
                    candidates.push(NativeCandidate {
                        txid: tx.hash,
                        to: original.to_owned(),
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

    /// After an `eth_getLogs` answer: grow the range back, but not past a range the provider
    /// refused, except for a fresh probe every so often (a refusal may have been transient).
    fn range_accepted(&mut self) {
        self.range_ok += 1;
        if self.range_ok.is_multiple_of(256) {
            self.range_ceiling = self.max_range;
        }
        self.range = (self.range.saturating_mul(2)).min(self.range_ceiling);
    }

    fn range_refused(&mut self, e: &RpcError) {
        self.range = (self.range / 2).max(1);
        self.range_ceiling = self.range;
        self.range_ok = 0;
        tracing::info!(chain = %self.chain, range = self.range, error = %e, "eth_getLogs refused; shrinking the range");
    }
}

#[async_trait]
impl ChainSource for EvmSource {
    type Key = Address;

    fn chain(&self) -> &ChainId {
        &self.chain
    }

    fn parse_address(&self, address: &str) -> Option<Address> {
        address.parse().ok()
    }

    /// The configured chain id against the node's `eth_chainId`.
    async fn check(&self) -> Result<(), SourceError> {
        let actual = self
            .rpc
            .chain_id()
            .await
            .map_err(|e| SourceError::Unreachable(e.to_string()))?;
        match self.evm_chain_id {
            Some(configured) if configured != actual => Err(SourceError::Mismatch(format!(
                "chain {}: configured chain_id {configured} but the node reports {actual}",
                self.chain
            ))),
            _ => Ok(()),
        }
    }

    async fn tip(&mut self) -> Result<Tip, SourceError> {
        // Every endpoint failed to answer the simplest call, several times: unreachable.
        let block = self
            .rpc
            .latest()
            .await
            .map_err(|e| SourceError::Unreachable(e.to_string()))?;
        let height = block
            .number
            .ok_or_else(|| SourceError::Failed("the latest block came without its number".into()))?
            .to::<u64>();
        self.tip = height;
        Ok(Tip {
            height,
            hash: hex_hash(&block.hash),
            time: i64::try_from(block.timestamp.to::<u64>()).ok(),
        })
    }

    async fn hash_at(&mut self, height: u64) -> Result<Option<String>, SourceError> {
        match self.rpc.block(height).await {
            Ok(b) => Ok(b.map(|b| hex_hash(&b.hash))),
            Err(RpcError::MissingBlock(_)) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    /// Token transfers: one `eth_getLogs` for the whole range. At the same time, the blocks:
    /// all of them with their transactions while any address is watched (native coin sent
    /// to any watched address is recorded, also to a token order's address, where it is
    /// flagged), otherwise only the headers near the tip (for the reorg walk-back).
    async fn scan(
        &mut self,
        from: u64,
        to: u64,
        parent: &str,
        watched: &WatchSet<Address>,
    ) -> Result<Scanned, SourceError> {
        let near_from = from.max(self.tip.saturating_sub(self.recent_blocks - 1));
        let native_scan = self.native.is_some() && !watched.is_empty();
        let scan_from = if native_scan { from } else { near_from.min(to) };
        let want_logs = !watched.is_empty() && !self.tokens.is_empty();
        let logs_fut = async {
            if want_logs {
                self.rpc
                    .transfer_logs(&self.contracts, from, to)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        };
        let blocks_fut = self.scan_blocks(scan_from, to, native_scan, watched);
        let (logs, scanned) = tokio::join!(logs_fut, blocks_fut);
        let logs = match logs {
            Ok(Some(logs)) => {
                self.range_accepted();
                logs
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                if self.range > 1 {
                    self.range_refused(&e);
                }
                return Err(failed(e));
            }
        };
        let (headers, candidates) = scanned.map_err(failed)?;
        let mut transfers = Vec::new();
        if let Some(asset) = &self.native {
            for c in candidates {
                // Only a transaction that succeeded moved the coin.
                let receipt = self.rpc.receipt(c.txid).await.map_err(failed)?;
                if !receipt.is_some_and(|r| r.status()) {
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
        let mut prev = (from - 1, parent.to_owned());
        for (height, (hash, parent_hash, _)) in &headers {
            if *height == prev.0 + 1 && hex_hash(parent_hash) != prev.1 {
                return Err(SourceError::ChangedDuringScan);
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
            let Some(m) = match_log(raw, &self.tokens, watched) else {
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
            if headers
                .get(&height)
                .is_some_and(|(h, _, _)| *h != block_hash)
            {
                return Err(SourceError::ChangedDuringScan);
            }
            let time = match (log.block_timestamp, block_times.get(&height)) {
                (Some(t), _) | (None, Some(&t)) => t,
                (None, None) => {
                    let t = self
                        .rpc
                        .header(height)
                        .await
                        .map_err(failed)?
                        .header
                        .timestamp;
                    block_times.insert(height, t);
                    t
                }
            };
            if !seen.insert((txid, index)) {
                continue;
            }
            transfers.push(ObservedTransfer {
                asset: m.asset.clone(),
                to: m.to.to_owned(),
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

        let mut hashes: Vec<(u64, String)> = headers
            .iter()
            .map(|(h, (hash, _, _))| (*h, hex_hash(hash)))
            .collect();
        let to_time = match headers.get(&to) {
            Some((_, _, t)) => *t,
            None => {
                let header = self.rpc.header(to).await.map_err(failed)?.header;
                hashes.push((to, hex_hash(&header.hash)));
                header.timestamp
            }
        };
        Ok(Scanned {
            transfers,
            hashes,
            to_time: i64::try_from(to_time).ok(),
        })
    }

    fn max_blocks_per_step(&self) -> u64 {
        self.range
    }

    fn facts(&self) -> Map<String, Value> {
        let mut facts = Map::new();
        facts.insert("endpoints".into(), json!(self.rpc.endpoint_count()));
        facts.insert("get_logs_range".into(), json!(self.range));
        facts
    }

    /// Endpoints whose tips are far apart: one of them is behind (or on another chain).
    async fn cross_check(&mut self) -> Option<String> {
        if self.rpc.endpoint_count() < 2 {
            return None;
        }
        let tips: Vec<u64> = self.rpc.tips().await.into_iter().flatten().collect();
        let (min, max) = (tips.iter().min()?, tips.iter().max()?);
        (max - min > MAX_TIP_SPREAD).then(|| format!("endpoint tips range {min}..{max}"))
    }

    fn legacy_metrics(&self) -> Option<LegacyMetrics> {
        Some(LegacyMetrics {
            prefix: "coffer_evm",
            names: &[
                "tip_height",
                "cursor_height",
                "stalled",
                "tip_disagreement",
                "reorgs_total",
            ],
        })
    }
}
