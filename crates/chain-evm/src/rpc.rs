//! JSON-RPC access to an EVM chain over several endpoints: each call goes to the current
//! endpoint with a timeout; an error, timeout or rate limit moves to the next endpoint, with
//! exponential backoff once every endpoint failed in a row.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::network::Ethereum;
use alloy::primitives::{Address, B256, U64, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::client::{BatchRequest, RpcClient};
use alloy::rpc::types::{Block, Filter, Log, TransactionReceipt};
use alloy::transports::http::Http;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("invalid RPC URL #{index}: {reason}")]
    Url { index: usize, reason: String },
    #[error("no RPC URL configured")]
    NoEndpoint,
    #[error("RPC call {method} failed on every endpoint: {last}")]
    Exhausted { method: &'static str, last: String },
    #[error("block {0} not found")]
    MissingBlock(u64),
}

/// A block as the watcher scans it: only the fields it reads are decoded (cheaper than a full
/// typed block, and indifferent to chain-specific transaction types such as OP-stack deposits
/// or Arbitrum's system transactions, which a typed Ethereum transaction would refuse).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannedBlock {
    /// Present in every node's answer; read for the latest block.
    #[serde(default)]
    pub number: Option<U64>,
    pub hash: B256,
    pub parent_hash: B256,
    pub timestamp: U64,
    /// Empty unless fetched with full transactions.
    #[serde(skip)]
    pub transactions: Vec<ScannedTx>,
}

/// [`ScannedBlock`] with its transactions (`eth_getBlockByNumber(n, true)`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct FullBlock {
    hash: B256,
    parent_hash: B256,
    timestamp: U64,
    transactions: Vec<ScannedTx>,
}

/// The part of a transaction a native-coin transfer is recognised by.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ScannedTx {
    pub hash: B256,
    pub from: Address,
    #[serde(default)]
    pub to: Option<Address>,
    #[serde(default)]
    pub value: U256,
}

/// One endpoint. The URL may carry an API key: it is never logged, only its index.
struct Endpoint {
    provider: RootProvider<Ethereum>,
}

/// Endpoints of one chain with failover.
#[derive(Clone)]
pub struct Rpc {
    endpoints: Arc<Vec<Endpoint>>,
    current: Arc<AtomicUsize>,
    timeout: Duration,
    rounds: u32,
}

/// Install the ring crypto provider for rustls once (https RPC URLs); idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Rpc {
    pub fn new(urls: &[String], timeout: Duration) -> Result<Self, RpcError> {
        if urls.is_empty() {
            return Err(RpcError::NoEndpoint);
        }
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| RpcError::Url {
                index: 0,
                reason: e.to_string(),
            })?;
        let mut endpoints = Vec::with_capacity(urls.len());
        for (index, raw) in urls.iter().enumerate() {
            let url: url::Url = raw.parse().map_err(|e: url::ParseError| RpcError::Url {
                index,
                reason: e.to_string(),
            })?;
            let transport = Http::with_client(client.clone(), url);
            let rpc = RpcClient::new(transport, false);
            endpoints.push(Endpoint {
                provider: RootProvider::new(rpc),
            });
        }
        Ok(Self {
            endpoints: Arc::new(endpoints),
            current: Arc::new(AtomicUsize::new(0)),
            timeout,
            rounds: 3,
        })
    }

    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Run `call` on the current endpoint, failing over to the next on error.
    async fn with_failover<T, F, Fut>(&self, method: &'static str, call: F) -> Result<T, RpcError>
    where
        F: Fn(RootProvider<Ethereum>) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let n = self.endpoints.len();
        let mut last = String::new();
        let mut backoff = Duration::from_millis(100);
        for round in 0..self.rounds {
            for _ in 0..n {
                let i = self.current.load(Ordering::Relaxed) % n;
                let provider = self.endpoints[i].provider.clone();
                match tokio::time::timeout(self.timeout, call(provider)).await {
                    Ok(Ok(v)) => return Ok(v),
                    Ok(Err(e)) => last = e,
                    Err(_) => last = format!("timed out after {:?}", self.timeout),
                }
                tracing::warn!(method, endpoint = i, error = %last, "RPC call failed; trying the next endpoint");
                metrics::counter!("coffer_evm_rpc_errors_total", "method" => method).increment(1);
                self.current.store((i + 1) % n, Ordering::Relaxed);
            }
            if round + 1 < self.rounds {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(4);
            }
        }
        Err(RpcError::Exhausted { method, last })
    }

    pub async fn chain_id(&self) -> Result<u64, RpcError> {
        self.with_failover("eth_chainId", |p| async move {
            p.get_chain_id().await.map_err(|e| e.to_string())
        })
        .await
    }

    pub async fn block_number(&self) -> Result<u64, RpcError> {
        self.with_failover("eth_blockNumber", |p| async move {
            p.get_block_number().await.map_err(|e| e.to_string())
        })
        .await
    }

    /// Every endpoint's tip (for the cross-check), `None` where it failed.
    pub async fn tips(&self) -> Vec<Option<u64>> {
        let mut out = Vec::with_capacity(self.endpoints.len());
        for e in self.endpoints.iter() {
            let tip = tokio::time::timeout(self.timeout, e.provider.get_block_number()).await;
            out.push(tip.ok().and_then(Result::ok));
        }
        out
    }

    /// The block header (with transaction hashes only).
    pub async fn header(&self, number: u64) -> Result<Block, RpcError> {
        let block = self
            .with_failover("eth_getBlockByNumber", |p| async move {
                p.get_block_by_number(BlockNumberOrTag::Number(number))
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        block.ok_or(RpcError::MissingBlock(number))
    }

    /// Block `number` as the watcher reads it (hash, parent, time); `None` above the tip.
    pub async fn block(&self, number: u64) -> Result<Option<ScannedBlock>, RpcError> {
        self.block_at(BlockNumberOrTag::Number(number)).await
    }

    /// The latest block (number, hash, time): the tip in one call.
    pub async fn latest(&self) -> Result<ScannedBlock, RpcError> {
        self.block_at(BlockNumberOrTag::Latest)
            .await?
            .ok_or(RpcError::MissingBlock(u64::MAX))
    }

    async fn block_at(&self, at: BlockNumberOrTag) -> Result<Option<ScannedBlock>, RpcError> {
        self.with_failover("eth_getBlockByNumber", |p| async move {
            p.client()
                .request::<_, Option<ScannedBlock>>("eth_getBlockByNumber", (at, false))
                .await
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// The block with full transactions (for native transfers).
    pub async fn full_block(&self, number: u64) -> Result<Block, RpcError> {
        let block = self
            .with_failover("eth_getBlockByNumber", |p| async move {
                p.get_block_by_number(BlockNumberOrTag::Number(number))
                    .full()
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        block.ok_or(RpcError::MissingBlock(number))
    }

    /// Blocks `from..=to` in one JSON-RPC batch request, reduced to what the watcher reads
    /// (see [`ScannedBlock`]); with `full`, their transactions too. `None` for a block the
    /// endpoint does not have.
    pub async fn blocks(
        &self,
        from: u64,
        to: u64,
        full: bool,
    ) -> Result<Vec<Option<ScannedBlock>>, RpcError> {
        if !full {
            return self.batch_blocks::<ScannedBlock>(from, to, false).await;
        }
        let blocks = self.batch_blocks::<FullBlock>(from, to, true).await?;
        Ok(blocks
            .into_iter()
            .map(|b| {
                b.map(|b| ScannedBlock {
                    number: None,
                    hash: b.hash,
                    parent_hash: b.parent_hash,
                    timestamp: b.timestamp,
                    transactions: b.transactions,
                })
            })
            .collect())
    }

    async fn batch_blocks<
        T: serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    >(
        &self,
        from: u64,
        to: u64,
        full: bool,
    ) -> Result<Vec<Option<T>>, RpcError> {
        self.with_failover("eth_getBlockByNumber", |p| async move {
            let client = p.client();
            let mut batch = BatchRequest::new(client);
            let mut waiters = Vec::new();
            for n in from..=to {
                let w = batch
                    .add_call::<_, Option<T>>(
                        "eth_getBlockByNumber",
                        &(BlockNumberOrTag::Number(n), full),
                    )
                    .map_err(|e| e.to_string())?;
                waiters.push(w);
            }
            batch.send().await.map_err(|e| e.to_string())?;
            let mut out = Vec::with_capacity(waiters.len());
            for w in waiters {
                out.push(w.await.map_err(|e| e.to_string())?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn receipt(&self, tx: B256) -> Result<Option<TransactionReceipt>, RpcError> {
        self.with_failover("eth_getTransactionReceipt", |p| async move {
            p.get_transaction_receipt(tx)
                .await
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// `eth_getLogs` of `Transfer` events of `contracts` over `[from, to]`. A single attempt per
    /// endpoint: the caller adapts the range when the provider refuses it.
    pub async fn transfer_logs(
        &self,
        contracts: &[Address],
        from: u64,
        to: u64,
    ) -> Result<Vec<Log>, RpcError> {
        let filter = Filter::new()
            .address(contracts.to_vec())
            .event_signature(crate::matcher::TRANSFER_TOPIC)
            .from_block(from)
            .to_block(to);
        self.with_failover("eth_getLogs", |p| {
            let filter = filter.clone();
            async move { p.get_logs(&filter).await.map_err(|e| e.to_string()) }
        })
        .await
    }
}
