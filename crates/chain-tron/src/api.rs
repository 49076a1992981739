//! java-tron's HTTP API (what TronGrid proxies) over several base URLs: each call goes to the
//! current URL with a timeout; an error, an `{"Error": …}` body, a non-JSON answer (a lite
//! full node) or a timeout moves to the next URL, with backoff once every URL failed in a row.
//! Only the fields Coffer reads are decoded; addresses come as hex (`visible` is left false).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coffer_rail::config::Secret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The header TronGrid reads its API key from.
pub const API_KEY_HEADER: &str = "TRON-PRO-API-KEY";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{path} failed on every URL: {last}")]
    Exhausted { path: &'static str, last: String },
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// `protocol.Block` as `/wallet/getnowblock`, `getblockbynum` and `getblockbylimitnext` show it.
#[derive(Debug, Clone, Deserialize)]
pub struct Block {
    #[serde(rename = "blockID")]
    pub block_id: String,
    pub block_header: BlockHeader,
    /// Absent for an empty block (a proto default).
    #[serde(default)]
    pub transactions: Vec<Transaction>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BlockHeader {
    pub raw_data: BlockRaw,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BlockRaw {
    /// Absent for the genesis block (a proto default).
    #[serde(default)]
    pub number: u64,
    #[serde(rename = "parentHash", default)]
    pub parent_hash: String,
    /// Milliseconds.
    #[serde(default)]
    pub timestamp: i64,
}

impl Block {
    pub fn number(&self) -> u64 {
        self.block_header.raw_data.number
    }

    pub fn parent_hash(&self) -> &str {
        &self.block_header.raw_data.parent_hash
    }

    /// Unix seconds.
    pub fn time(&self) -> i64 {
        self.block_header.raw_data.timestamp.div_euclid(1000)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transaction {
    #[serde(rename = "txID")]
    pub tx_id: String,
    #[serde(default)]
    pub ret: Vec<Ret>,
    pub raw_data: TransactionRaw,
}

impl Transaction {
    /// `ret[0].contractRet == "SUCCESS"`.
    pub fn succeeded(&self) -> bool {
        self.ret
            .first()
            .and_then(|r| r.contract_ret.as_deref())
            .is_some_and(|r| r == "SUCCESS")
    }

    /// The transaction's (only) contract.
    pub fn contract(&self) -> Option<&Contract> {
        self.raw_data.contract.first()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Ret {
    #[serde(rename = "contractRet", default)]
    pub contract_ret: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TransactionRaw {
    #[serde(default)]
    pub contract: Vec<Contract>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Contract {
    #[serde(rename = "type")]
    pub kind: String,
    pub parameter: Parameter,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Parameter {
    pub value: Value,
}

/// `TransferContract` (TRX) and `TransferAssetContract` (TRC-10) values.
#[derive(Debug, Clone, Deserialize)]
pub struct TransferValue {
    /// Sun (TRX) or the token's base units; absent when zero.
    #[serde(default)]
    pub amount: i64,
    pub owner_address: String,
    pub to_address: String,
    /// TRC-10: the token id, hex-encoded bytes of its decimal string (`31303032303030`).
    #[serde(default)]
    pub asset_name: Option<String>,
}

/// `TransactionInfo` as `/wallet/gettransactioninfobyblocknum` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct TransactionInfo {
    pub id: String,
    /// Absent on success; `"FAILED"` otherwise.
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub receipt: Receipt,
    #[serde(default)]
    pub log: Vec<Log>,
}

impl TransactionInfo {
    /// Both checks the documentation asks for: no top-level `result` (or not `FAILED`) and
    /// `receipt.result == "SUCCESS"`.
    pub fn succeeded(&self) -> bool {
        self.result.as_deref().is_none_or(|r| r != "FAILED")
            && self.receipt.result.as_deref() == Some("SUCCESS")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Receipt {
    #[serde(default)]
    pub result: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Log {
    /// 20-byte hex, no `41`.
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub data: String,
}

#[derive(Debug, Deserialize)]
struct BlockList {
    #[serde(default)]
    block: Vec<Block>,
}

/// Base URLs of one chain's java-tron HTTP API, with failover.
#[derive(Clone)]
pub struct TronApi {
    urls: Arc<Vec<String>>,
    client: reqwest::Client,
    current: Arc<AtomicUsize>,
    timeout: Duration,
    rounds: u32,
}

impl std::fmt::Debug for TronApi {
    /// URLs may hold keys: only their number is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TronApi")
            .field("urls", &self.urls.len())
            .finish_non_exhaustive()
    }
}

/// What one request came back with.
enum Answer {
    Json(Value),
    Failed(String),
}

impl TronApi {
    pub fn new(
        urls: Vec<String>,
        api_key: Option<&Secret>,
        timeout: Duration,
    ) -> Result<Self, ApiError> {
        // reqwest is built with `rustls-no-provider`: install ring once (https URLs).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = api_key {
            let mut value = reqwest::header::HeaderValue::from_str(key.expose())
                .map_err(|_| ApiError::Client("api_key is not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.insert(API_KEY_HEADER, value);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| ApiError::Client(e.to_string()))?;
        Ok(Self {
            urls: Arc::new(urls),
            client,
            current: Arc::new(AtomicUsize::new(0)),
            timeout,
            rounds: 3,
        })
    }

    pub fn url_count(&self) -> usize {
        self.urls.len()
    }

    /// How many rounds over every URL a call tries before it gives up (default 3).
    pub fn set_rounds(&mut self, rounds: u32) {
        self.rounds = rounds.max(1);
    }

    async fn once(&self, url: &str, path: &str, body: &Value) -> Answer {
        let sent = self.client.post(format!("{url}{path}")).json(body).send();
        let response = match tokio::time::timeout(self.timeout, sent).await {
            Err(_) => return Answer::Failed(format!("timed out after {:?}", self.timeout)),
            // reqwest's error names the URL, which may hold a key: only its kind is kept.
            Ok(Err(e)) if e.is_connect() => return Answer::Failed("connection refused".into()),
            Ok(Err(e)) if e.is_timeout() => return Answer::Failed("timed out".into()),
            Ok(Err(_)) => return Answer::Failed("request failed".into()),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(_) => return Answer::Failed(format!("HTTP {status}: body not read")),
        };
        if !status.is_success() {
            return Answer::Failed(format!("HTTP {status}: {}", short(&text)));
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(o)) if o.contains_key("Error") => {
                Answer::Failed(format!("node error: {}", short(&o["Error"].to_string())))
            }
            Ok(v) => Answer::Json(v),
            Err(_) => Answer::Failed(format!("not JSON: {}", short(&text))),
        }
    }

    /// POST `body` to `path` on the current URL, failing over to the next on any failure.
    pub async fn call(&self, path: &'static str, body: Value) -> Result<Value, ApiError> {
        let n = self.urls.len().max(1);
        let mut last = String::from("no URL configured");
        let mut backoff = Duration::from_millis(100);
        for round in 0..self.rounds {
            for _ in 0..n {
                let i = self.current.load(Ordering::Relaxed) % n;
                let Some(url) = self.urls.get(i) else { break };
                match self.once(url, path, &body).await {
                    Answer::Json(v) => return Ok(v),
                    Answer::Failed(e) => {
                        tracing::debug!(url = i, path, error = %e, "TRON API call failed; trying the next URL");
                        last = format!("URL #{i}: {e}");
                        let _ = self.current.compare_exchange(
                            i,
                            (i + 1) % n,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                }
            }
            if round + 1 < self.rounds {
                tokio::time::sleep(backoff).await;
                backoff *= 4;
            }
        }
        Err(ApiError::Exhausted { path, last })
    }

    async fn typed<T: DeserializeOwned>(
        &self,
        path: &'static str,
        body: Value,
    ) -> Result<T, ApiError> {
        let v = self.call(path, body).await?;
        serde_json::from_value(v).map_err(|e| ApiError::Exhausted {
            path,
            last: format!("unexpected answer: {e}"),
        })
    }

    /// The latest block of the full node.
    pub async fn now_block(&self) -> Result<Block, ApiError> {
        self.typed("/wallet/getnowblock", json!({})).await
    }

    /// The latest solidified (irreversible) block.
    pub async fn solid_block(&self) -> Result<Block, ApiError> {
        self.typed("/walletsolidity/getnowblock", json!({})).await
    }

    /// The block at `num`, `None` when the node has none (`{}`).
    pub async fn block_by_num(&self, num: u64) -> Result<Option<Block>, ApiError> {
        let v = self
            .call("/wallet/getblockbynum", json!({ "num": num }))
            .await?;
        if v.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(None);
        }
        serde_json::from_value(v)
            .map(Some)
            .map_err(|e| ApiError::Exhausted {
                path: "/wallet/getblockbynum",
                last: format!("unexpected answer: {e}"),
            })
    }

    /// Blocks `start..end` (end exclusive, at most 100), in order; fewer when the node has
    /// fewer.
    pub async fn blocks(&self, start: u64, end: u64) -> Result<Vec<Block>, ApiError> {
        let list: BlockList = self
            .typed(
                "/wallet/getblockbylimitnext",
                json!({ "startNum": start, "endNum": end }),
            )
            .await?;
        let mut blocks = list.block;
        blocks.sort_by_key(Block::number);
        Ok(blocks)
    }

    /// The transaction infos (results and logs) of every transaction in block `num`.
    pub async fn infos(&self, num: u64) -> Result<Vec<TransactionInfo>, ApiError> {
        let v = self
            .call(
                "/wallet/gettransactioninfobyblocknum",
                json!({ "num": num }),
            )
            .await?;
        match v {
            Value::Object(o) if o.is_empty() => Ok(Vec::new()),
            v => serde_json::from_value(v).map_err(|e| ApiError::Exhausted {
                path: "/wallet/gettransactioninfobyblocknum",
                last: format!("unexpected answer: {e}"),
            }),
        }
    }

    /// Every URL's solidified height (`None` where it does not answer): the cross-check.
    pub async fn solid_heights(&self) -> Vec<Option<u64>> {
        let mut out = Vec::with_capacity(self.urls.len());
        for url in self.urls.iter() {
            let h = match self
                .once(url, "/walletsolidity/getnowblock", &json!({}))
                .await
            {
                Answer::Json(v) => serde_json::from_value::<Block>(v).ok().map(|b| b.number()),
                Answer::Failed(_) => None,
            };
            out.push(h);
        }
        out
    }
}

fn short(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}
