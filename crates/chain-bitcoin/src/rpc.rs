//! A minimal bitcoind JSON-RPC client: the calls a block/mempool watcher needs, typed, with
//! a timeout per request and errors that say what went wrong. Works against Bitcoin Core and
//! any node speaking its RPC (the test suite uses bcoin through `tools/bitcoin-regtest`).

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bitcoin::{BlockHash, Transaction, Txid};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::matching::{ParseError, parse_transaction_hex};

/// Core's code for "not found" (block, transaction, mempool entry).
pub const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;
/// Core's code for an out-of-range parameter (`getblockhash` above the tip).
pub const RPC_INVALID_PARAMETER: i64 = -8;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("bitcoind RPC at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("bitcoind RPC at {url} unreachable: {message}")]
    Transport { url: String, message: String },
    #[error("bitcoind RPC rejected the credentials (HTTP 401)")]
    Unauthorized,
    #[error("bitcoind RPC answered HTTP {status} without a JSON-RPC body")]
    Http { status: u16 },
    #[error("bitcoind RPC error {code} in {method}: {message}")]
    Rpc {
        method: &'static str,
        code: i64,
        message: String,
    },
    #[error("unexpected answer to {method}: {message}")]
    Decode {
        method: &'static str,
        message: String,
    },
}

impl RpcError {
    /// A "not found" answer (unknown block, transaction or mempool entry; height above tip).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RpcError::Rpc { code, .. }
            if *code == RPC_INVALID_ADDRESS_OR_KEY || *code == RPC_INVALID_PARAMETER)
    }

    /// Worth retrying with backoff (the node is down, slow or restarting).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RpcError::Timeout { .. } | RpcError::Transport { .. } | RpcError::Http { .. }
        ) || matches!(self, RpcError::Rpc { code: -28, .. }) // warming up
    }
}

/// `getblockchaininfo`, the fields a watcher uses.
#[derive(Debug, Clone, Deserialize)]
pub struct BlockchainInfo {
    pub chain: String,
    pub blocks: u64,
    #[serde(default)]
    pub headers: u64,
    pub bestblockhash: BlockHash,
    #[serde(default)]
    pub initialblockdownload: bool,
}

/// `getblockheader <hash> true`, the fields a watcher uses.
#[derive(Debug, Clone, Deserialize)]
pub struct BlockHeaderInfo {
    pub hash: BlockHash,
    /// -1 when the block is not on the active chain (reorged out).
    pub confirmations: i64,
    pub height: u64,
    pub time: u64,
    pub previousblockhash: Option<BlockHash>,
    pub nextblockhash: Option<BlockHash>,
    pub chainwork: String,
}

/// Connection settings of a bitcoind RPC endpoint.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// `http://127.0.0.1:8332/` (a wallet path such as `/wallet/name` is kept).
    pub url: String,
    pub user: String,
    pub password: String,
    pub timeout: Duration,
}

pub struct BitcoindRpc {
    config: RpcConfig,
    auth: String,
    http: reqwest::Client,
    next_id: AtomicU64,
}

impl std::fmt::Debug for BitcoindRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitcoindRpc")
            .field("url", &self.config.url)
            .field("user", &self.config.user)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: i64,
    #[serde(default)]
    message: String,
}

impl BitcoindRpc {
    pub fn new(config: RpcConfig) -> Result<Self, RpcError> {
        // reqwest is built with `rustls-no-provider` (no aws-lc in the tree); a client cannot
        // be built until a provider is installed, even for plain-HTTP use.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| RpcError::Transport {
                url: config.url.clone(),
                message: e.to_string(),
            })?;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", config.user, config.password))
        );
        Ok(Self {
            config,
            auth,
            http,
            next_id: AtomicU64::new(1),
        })
    }

    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// Any call, with its JSON result decoded into `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        let response = self
            .http
            .post(&self.config.url)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RpcError::Unauthorized);
        }
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        // Core answers errors with HTTP 500/404 and a JSON-RPC body.
        let parsed: Response = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(_) => {
                return Err(RpcError::Http {
                    status: status.as_u16(),
                });
            }
        };
        if let Some(error) = parsed.error {
            return Err(RpcError::Rpc {
                method,
                code: error.code,
                message: error.message,
            });
        }
        serde_json::from_value(parsed.result).map_err(|e| RpcError::Decode {
            method,
            message: e.to_string(),
        })
    }

    fn transport(&self, e: reqwest::Error) -> RpcError {
        if e.is_timeout() {
            RpcError::Timeout {
                url: self.config.url.clone(),
                timeout: self.config.timeout,
            }
        } else {
            RpcError::Transport {
                url: self.config.url.clone(),
                message: e.to_string(),
            }
        }
    }

    pub async fn get_blockchain_info(&self) -> Result<BlockchainInfo, RpcError> {
        self.call("getblockchaininfo", json!([])).await
    }

    /// The hash of the active chain's block at `height`; `is_not_found()` above the tip.
    pub async fn get_block_hash(&self, height: u64) -> Result<BlockHash, RpcError> {
        self.call("getblockhash", json!([height])).await
    }

    pub async fn get_block_header(&self, hash: &BlockHash) -> Result<BlockHeaderInfo, RpcError> {
        self.call("getblockheader", json!([hash.to_string(), true]))
            .await
    }

    /// The whole block, serialized (`getblock <hash> 0`), hex-decoded.
    pub async fn get_block_raw(&self, hash: &BlockHash) -> Result<Vec<u8>, RpcError> {
        let hex_str: String = self.call("getblock", json!([hash.to_string(), 0])).await?;
        hex::decode(hex_str.trim()).map_err(|e| RpcError::Decode {
            method: "getblock",
            message: e.to_string(),
        })
    }

    pub async fn get_raw_mempool(&self) -> Result<Vec<Txid>, RpcError> {
        self.call("getrawmempool", json!([false])).await
    }

    /// A transaction from the mempool or (with `-txindex`) the chain; `Ok(None)` if unknown.
    pub async fn get_raw_transaction(&self, txid: &Txid) -> Result<Option<Transaction>, RpcError> {
        match self
            .call::<String>("getrawtransaction", json!([txid.to_string(), false]))
            .await
        {
            Ok(hex_str) => parse_transaction_hex(&hex_str)
                .map(Some)
                .map_err(|e: ParseError| RpcError::Decode {
                    method: "getrawtransaction",
                    message: e.to_string(),
                }),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `getmempoolentry`'s `bip125-replaceable` (which includes inherited signalling);
    /// `Ok(None)` when the transaction is not in the mempool.
    pub async fn mempool_replaceable(&self, txid: &Txid) -> Result<Option<bool>, RpcError> {
        match self
            .call::<Value>("getmempoolentry", json!([txid.to_string()]))
            .await
        {
            Ok(entry) => Ok(Some(
                entry
                    .get("bip125-replaceable")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Parse a block hash given as hex (display order), e.g. from a config file.
pub fn parse_block_hash(s: &str) -> Result<BlockHash, RpcError> {
    BlockHash::from_str(s).map_err(|e| RpcError::Decode {
        method: "blockhash",
        message: e.to_string(),
    })
}
