//! A TRON chain as a [`ChainSource`]: the tip is the **solidified** head
//! (`/walletsolidity/getnowblock`, irreversible), so what the watcher applies with a block is
//! final and one confirmation means "solidified". Whole blocks come from
//! `/wallet/getblockbylimitnext` (up to 100 a request); TRX transfers (`TransferContract`) and
//! TRC-10 transfers (`TransferAssetContract`) are read from the blocks, TRC-20 `Transfer`
//! events from `/wallet/gettransactioninfobyblocknum` (fetched only for blocks holding a
//! contract call). Only successful transactions count. Once caught up, the blocks between the
//! solidified head and the full node's head (`/wallet/getnowblock`) are read too and their
//! transfers reported without a block: the order shows "processing" about a minute before it
//! settles, and a transfer that leaves those blocks unsolidified is reported dropped.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::{AssetId, BaseUnits, ChainId, Symbol};
use coffer_engine::{BlockRef, ObservedTransfer};
use coffer_rail::config::Secret;
use coffer_rail::{
    ChainSource, Pending, Scanned, SourceConfig, SourceError, Tip, WatchSet, WatchSettings, Watcher,
};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::address::TronAddress;
use crate::api::{ApiError, Block, TransactionInfo, TransferValue, TronApi};

/// keccak256("Transfer(address,address,uint256)"), as TRON logs print topics (no `0x`).
pub const TRANSFER_TOPIC: &str = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// The one watcher over a TRON chain.
pub type TronWatcher = Watcher<TronSource>;

/// The TRC-20 contracts a chain watches, by contract.
#[derive(Debug, Clone, Default)]
pub struct Trc20Tokens(HashMap<TronAddress, AssetId>);

impl Trc20Tokens {
    pub fn new(tokens: impl IntoIterator<Item = (TronAddress, AssetId)>) -> Self {
        Self(tokens.into_iter().collect())
    }

    pub fn asset(&self, contract: &TronAddress) -> Option<&AssetId> {
        self.0.get(contract)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one TRON chain's watcher needs to know.
#[derive(Debug, Clone)]
pub struct TronWatchConfig {
    pub chain: ChainId,
    /// Base URLs of java-tron HTTP APIs, tried in turn (no trailing `/`).
    pub urls: Vec<String>,
    pub api_key: Option<Secret>,
    pub timeout: Duration,
    /// The last 4 bytes (hex) the genesis block id must end with (the network check).
    pub genesis_suffix: Option<String>,
    pub trx: AssetId,
    pub tokens: Trc20Tokens,
    /// Blocks per `getblockbylimitnext` request (at most 100, the node's limit).
    pub blocks_per_request: u64,
    /// Blocks one watcher step scans.
    pub blocks_per_step: u64,
    /// `gettransactioninfobyblocknum` requests in flight at once.
    pub info_concurrency: usize,
    /// Report transfers in blocks not yet solidified (the order's "processing").
    pub processing: bool,
    pub watch: WatchSettings,
}

impl TronWatchConfig {
    pub fn new(chain: ChainId, urls: Vec<String>) -> Self {
        let trx = AssetId::new(
            chain.clone(),
            Symbol::parse("TRX").unwrap_or_else(|_| unreachable!("TRX is a valid symbol")),
        );
        Self {
            chain,
            urls,
            api_key: None,
            timeout: Duration::from_secs(10),
            genesis_suffix: None,
            trx,
            tokens: Trc20Tokens::default(),
            blocks_per_request: 50,
            blocks_per_step: 200,
            info_concurrency: 8,
            processing: true,
            watch: WatchSettings {
                poll_interval: Duration::from_secs(3),
                recent_blocks: 64,
                stall_after: Duration::from_secs(120),
                max_lag_blocks: 50,
                // The solidified head is about a minute old when it is read.
                max_lag: Duration::from_secs(180),
                ..WatchSettings::default()
            },
        }
    }
}

impl SourceConfig for TronWatchConfig {
    type Source = TronSource;

    fn chain(&self) -> &ChainId {
        &self.chain
    }

    fn settings(&self) -> WatchSettings {
        self.watch.clone()
    }

    fn into_source(self) -> Result<TronSource, SourceError> {
        TronSource::new(self)
    }
}

/// Solidified heads of two URLs further apart than this make the chain not ready.
const MAX_SOLID_SPREAD: u64 = 20;
/// More unsolidified blocks than this (a node far ahead of its solidity) are not read for
/// "processing".
const MAX_PROCESSING_BLOCKS: u64 = 100;

/// A transfer a block shows, to any address.
#[derive(Debug, Clone)]
struct Candidate {
    txid: String,
    index: u32,
    to: TronAddress,
    from: TronAddress,
    asset: AssetId,
    amount: u128,
}

pub struct TronSource {
    chain: ChainId,
    api: TronApi,
    genesis_suffix: Option<String>,
    trx: AssetId,
    tokens: Trc20Tokens,
    blocks_per_request: u64,
    blocks_per_step: u64,
    info_concurrency: usize,
    recent_blocks: u64,
    processing: bool,
    /// The solidified head read at the start of the step.
    solid: u64,
    /// The full node's head at the last "processing" read.
    head: Option<u64>,
    /// Unsolidified blocks already read: block id → its transfers.
    unsolid: HashMap<String, Vec<Candidate>>,
    /// Txids reported without a block and not yet seen solidified.
    followed: HashSet<String>,
    /// Txids found by this step's scan (they left "processing" for good).
    scanned_txids: HashSet<String>,
}

fn unreachable_err(e: ApiError) -> SourceError {
    SourceError::Unreachable(e.to_string())
}

fn failed(e: ApiError) -> SourceError {
    SourceError::Failed(e.to_string())
}

fn block_time(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The low 20 bytes of a 32-byte topic word.
fn topic_address(topic: &str) -> Option<TronAddress> {
    TronAddress::from_account_hex(topic.get(24..64)?)
}

/// A 32-byte hex word as an amount; `None` beyond u128 (no real token has such amounts).
fn word_amount(data: &str) -> Option<u128> {
    if data.len() != 64 || data.get(..32)?.bytes().any(|b| b != b'0') {
        return None;
    }
    u128::from_str_radix(data.get(32..)?, 16).ok()
}

impl TronSource {
    pub fn new(cfg: TronWatchConfig) -> Result<Self, SourceError> {
        let api = TronApi::new(cfg.urls, cfg.api_key.as_ref(), cfg.timeout).map_err(failed)?;
        Ok(Self {
            chain: cfg.chain,
            api,
            genesis_suffix: cfg.genesis_suffix,
            trx: cfg.trx,
            tokens: cfg.tokens,
            blocks_per_request: cfg.blocks_per_request.clamp(1, 100),
            blocks_per_step: cfg.blocks_per_step.max(1),
            info_concurrency: cfg.info_concurrency.max(1),
            recent_blocks: u64::try_from(cfg.watch.recent_blocks.max(1)).unwrap_or(64),
            processing: cfg.processing,
            solid: 0,
            head: None,
            unsolid: HashMap::new(),
            followed: HashSet::new(),
            scanned_txids: HashSet::new(),
        })
    }

    pub fn api(&self) -> &TronApi {
        &self.api
    }

    /// The asset of a token nobody configured, so that a transfer of it to an order address
    /// is recorded (as the wrong asset) rather than dropped: `TRC10.<token id>`, or
    /// `TRC20.<first 5 bytes of the contract>`; the txid identifies it fully.
    fn foreign_asset(&self, symbol: &str) -> Option<AssetId> {
        Symbol::parse(symbol)
            .ok()
            .map(|s| AssetId::new(self.chain.clone(), s))
    }

    /// Blocks `from..=to`, contiguous, in requests of `blocks_per_request`.
    async fn fetch_blocks(&self, from: u64, to: u64) -> Result<Vec<Block>, SourceError> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start + self.blocks_per_request - 1);
            let blocks = self.api.blocks(start, end + 1).await.map_err(failed)?;
            for (want, b) in (start..=end).zip(blocks.iter()) {
                if b.number() != want {
                    return Err(SourceError::Failed(format!(
                        "the node returned block {} where {want} was expected",
                        b.number()
                    )));
                }
            }
            if u64::try_from(blocks.len()).ok() != Some(end - start + 1) {
                return Err(SourceError::Failed(format!(
                    "the node returned {} of blocks {start}..={end}",
                    blocks.len()
                )));
            }
            out.extend(blocks);
            start = end + 1;
        }
        Ok(out)
    }

    /// The transfers `block` shows: TRX and TRC-10 from its transactions, TRC-20 `Transfer`
    /// events from its transaction infos (fetched here when it holds a contract call). Only
    /// successful transactions; infos that do not belong to the block's transactions mean the
    /// block was replaced between the two reads.
    async fn block_transfers(&self, block: &Block) -> Result<Vec<Candidate>, SourceError> {
        let mut out = Vec::new();
        let mut calls = HashSet::new();
        for tx in &block.transactions {
            let Some(contract) = tx.contract() else {
                continue;
            };
            match contract.kind.as_str() {
                "TransferContract" | "TransferAssetContract" => {
                    if !tx.succeeded() {
                        continue;
                    }
                    let Ok(v) =
                        serde_json::from_value::<TransferValue>(contract.parameter.value.clone())
                    else {
                        continue;
                    };
                    let (Ok(to), Ok(from), Ok(amount)) = (
                        TronAddress::from_hex(&v.to_address),
                        TronAddress::from_hex(&v.owner_address),
                        u128::try_from(v.amount),
                    ) else {
                        continue;
                    };
                    let asset = match &v.asset_name {
                        None if contract.kind == "TransferContract" => Some(self.trx.clone()),
                        Some(name) => hex::decode(name)
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok())
                            .and_then(|id| self.foreign_asset(&format!("TRC10.{id}"))),
                        None => None,
                    };
                    let Some(asset) = asset else { continue };
                    if amount > 0 {
                        out.push(Candidate {
                            txid: tx.tx_id.clone(),
                            index: 0,
                            to,
                            from,
                            asset,
                            amount,
                        });
                    }
                }
                // Contract calls (and deployments, whose constructor may mint) emit events.
                "TriggerSmartContract" | "CreateSmartContract" => {
                    calls.insert(tx.tx_id.as_str());
                }
                _ => {}
            }
        }
        if calls.is_empty() {
            return Ok(out);
        }
        let infos = self.api.infos(block.number()).await.map_err(failed)?;
        let ids: HashSet<&str> = infos.iter().map(|i| i.id.as_str()).collect();
        if !calls.iter().all(|c| ids.contains(c)) {
            return Err(SourceError::ChangedDuringScan);
        }
        for info in &infos {
            self.info_transfers(info, &mut out);
        }
        Ok(out)
    }

    fn info_transfers(&self, info: &TransactionInfo, out: &mut Vec<Candidate>) {
        if !info.succeeded() {
            return;
        }
        for (i, log) in info.log.iter().enumerate() {
            let [topic0, from, to] = log.topics.as_slice() else {
                continue;
            };
            if !topic0.eq_ignore_ascii_case(TRANSFER_TOPIC) {
                continue;
            }
            let (Some(from), Some(to), Some(contract), Some(amount)) = (
                topic_address(from),
                topic_address(to),
                TronAddress::from_account_hex(&log.address),
                word_amount(&log.data),
            ) else {
                continue;
            };
            let asset = match self.tokens.asset(&contract) {
                Some(a) => Some(a.clone()),
                None => self.foreign_asset(&format!(
                    "TRC20.{}",
                    hex::encode_upper(&contract.account()[..5])
                )),
            };
            let (Some(asset), Ok(index)) = (asset, u32::try_from(i)) else {
                continue;
            };
            if amount > 0 {
                out.push(Candidate {
                    txid: info.id.clone(),
                    index,
                    to,
                    from,
                    asset,
                    amount,
                });
            }
        }
    }

    /// The transfers of `blocks` (each read concurrently).
    async fn transfers_of(&self, blocks: &[Block]) -> Result<Vec<Vec<Candidate>>, SourceError> {
        // Boxed and collected first: a closure in the stream's type trips async_trait's
        // lifetimes.
        let reads: Vec<futures_util::future::BoxFuture<'_, Result<Vec<Candidate>, SourceError>>> =
            blocks
                .iter()
                .map(|b| Box::pin(self.block_transfers(b)) as _)
                .collect();
        futures_util::stream::iter(reads)
            .buffered(self.info_concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// [`ChainSource::pending`]'s reads: the blocks between the solidified head and the full
    /// node's head (each read once, by its id), their transfers to watched addresses, and the
    /// followed txids that are in none of them any more.
    async fn unsolidified(
        &mut self,
        watched: &WatchSet<TronAddress>,
    ) -> Result<Pending, SourceError> {
        let head = self.api.now_block().await.map_err(failed)?.number();
        self.head = Some(head);
        if head <= self.solid || head - self.solid > MAX_PROCESSING_BLOCKS {
            self.unsolid.clear();
            return Ok(Pending::default());
        }
        let blocks = self.fetch_blocks(self.solid + 1, head).await?;
        let fresh: Vec<Block> = blocks
            .iter()
            .filter(|b| !self.unsolid.contains_key(&b.block_id))
            .cloned()
            .collect();
        let found = self.transfers_of(&fresh).await?;
        for (b, candidates) in fresh.iter().zip(found) {
            self.unsolid.insert(b.block_id.clone(), candidates);
        }
        let ids: HashSet<&str> = blocks.iter().map(|b| b.block_id.as_str()).collect();
        self.unsolid.retain(|id, _| ids.contains(id.as_str()));
        let mut pending = Pending::default();
        let mut present = HashSet::new();
        for b in &blocks {
            for c in self.unsolid.get(&b.block_id).into_iter().flatten() {
                present.insert(c.txid.clone());
                if let Some(original) = watched.get(&c.to) {
                    pending.transfers.push(Self::observed(c, original, None));
                }
            }
        }
        pending.dropped_txids = self
            .followed
            .iter()
            .filter(|t| !present.contains(*t) && !self.scanned_txids.contains(*t))
            .cloned()
            .collect();
        Ok(pending)
    }

    fn observed(c: &Candidate, to: &str, block: Option<&Block>) -> ObservedTransfer {
        ObservedTransfer {
            asset: c.asset.clone(),
            to: to.to_owned(),
            amount: BaseUnits::new(c.amount),
            txid: c.txid.clone(),
            index: c.index,
            from: Some(c.from.to_base58()),
            block: block.map(|b| BlockRef {
                height: b.number(),
                hash: b.block_id.clone(),
                time: block_time(b.time()),
            }),
        }
    }
}

#[async_trait]
impl ChainSource for TronSource {
    type Key = TronAddress;

    fn chain(&self) -> &ChainId {
        &self.chain
    }

    fn parse_address(&self, address: &str) -> Option<TronAddress> {
        TronAddress::from_base58(address).ok()
    }

    /// The node answers, and for a preset network its genesis block is that network's.
    async fn check(&self) -> Result<(), SourceError> {
        let Some(suffix) = &self.genesis_suffix else {
            self.api.solid_block().await.map_err(unreachable_err)?;
            return Ok(());
        };
        let genesis = self
            .api
            .block_by_num(0)
            .await
            .map_err(unreachable_err)?
            .ok_or_else(|| SourceError::Failed("the node has no genesis block".into()))?;
        if !genesis.block_id.ends_with(suffix.as_str()) {
            return Err(SourceError::Mismatch(format!(
                "chain {}: the node's genesis block {} is not the configured network's (…{suffix})",
                self.chain, genesis.block_id
            )));
        }
        Ok(())
    }

    async fn tip(&mut self) -> Result<Tip, SourceError> {
        let block = self.api.solid_block().await.map_err(unreachable_err)?;
        self.solid = block.number();
        Ok(Tip {
            height: block.number(),
            hash: block.block_id.clone(),
            time: Some(block.time()),
        })
    }

    async fn hash_at(&mut self, height: u64) -> Result<Option<String>, SourceError> {
        let block = self.api.block_by_num(height).await.map_err(failed)?;
        Ok(block.map(|b| b.block_id))
    }

    /// Whole blocks while any address is watched; otherwise only those near the tip (their
    /// ids are the reorg walk-back's).
    async fn scan(
        &mut self,
        from: u64,
        to: u64,
        parent: &str,
        watched: &WatchSet<TronAddress>,
    ) -> Result<Scanned, SourceError> {
        self.scanned_txids.clear();
        let scan_from = if watched.is_empty() {
            from.max(self.solid.saturating_sub(self.recent_blocks - 1))
                .min(to)
        } else {
            from
        };
        let blocks = self.fetch_blocks(scan_from, to).await?;
        let mut prev = (from - 1, parent.to_owned());
        for b in &blocks {
            if b.number() == prev.0 + 1 && b.parent_hash() != prev.1 {
                return Err(SourceError::ChangedDuringScan);
            }
            prev = (b.number(), b.block_id.clone());
        }
        let mut transfers = Vec::new();
        if !watched.is_empty() {
            let found = self.transfers_of(&blocks).await?;
            for (block, candidates) in blocks.iter().zip(found) {
                for c in candidates {
                    if let Some(original) = watched.get(&c.to) {
                        self.scanned_txids.insert(c.txid.clone());
                        transfers.push(Self::observed(&c, original, Some(block)));
                    }
                }
            }
        }
        Ok(Scanned {
            transfers,
            hashes: blocks
                .iter()
                .map(|b| (b.number(), b.block_id.clone()))
                .collect(),
            to_time: blocks.last().map(Block::time),
        })
    }

    /// Transfers in blocks above the solidified head (not final: reported without a block),
    /// and the ones reported before that are in none of them any more (dropped). Best
    /// effort: when these reads fail, the step still applies the solidified blocks it scanned
    /// (crediting never waits for "processing").
    async fn pending(&mut self, watched: &WatchSet<TronAddress>) -> Result<Pending, SourceError> {
        if !self.processing || (watched.is_empty() && self.followed.is_empty()) {
            return Ok(Pending::default());
        }
        match self.unsolidified(watched).await {
            Ok(p) => Ok(p),
            Err(e) => {
                tracing::warn!(chain = %self.chain, error = %e, "reading the blocks above the solidified head failed; processing skipped this poll");
                Ok(Pending::default())
            }
        }
    }

    fn committed(&mut self, scanned: &Scanned, pending: &Pending) {
        for t in &scanned.transfers {
            self.followed.remove(&t.txid);
        }
        for t in &pending.dropped_txids {
            self.followed.remove(t);
        }
        for t in &pending.transfers {
            self.followed.insert(t.txid.clone());
        }
    }

    fn max_blocks_per_step(&self) -> u64 {
        self.blocks_per_step
    }

    fn facts(&self) -> Map<String, Value> {
        let mut facts = Map::new();
        facts.insert("endpoints".into(), json!(self.api.url_count()));
        facts.insert("solidified_height".into(), json!(self.solid));
        if let Some(head) = self.head {
            facts.insert("head_height".into(), json!(head));
        }
        facts.insert("trc20_tokens".into(), json!(self.tokens.len()));
        facts
    }

    /// URLs whose solidified heads are far apart: one of them is behind (or another chain).
    async fn cross_check(&mut self) -> Option<String> {
        if self.api.url_count() < 2 {
            return None;
        }
        let heights: Vec<u64> = self
            .api
            .solid_heights()
            .await
            .into_iter()
            .flatten()
            .collect();
        let (min, max) = (heights.iter().min()?, heights.iter().max()?);
        (max - min > MAX_SOLID_SPREAD).then(|| format!("solidified heads range {min}..{max}"))
    }
}
