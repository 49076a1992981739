//! A scripted TRON chain served over HTTP in java-tron's documented JSON shapes (the
//! `/wallet/*` and `/walletsolidity/*` calls the watcher makes), for tests, drills and the
//! benchmark: no TRON node installs on these machines. The shapes follow the java-tron HTTP
//! API documentation (`docs/chains-tron.md` says what is covered): hex addresses with the
//! `41` prefix, 20-byte log addresses, `transactions` and a successful transaction info's
//! `result` left out (proto defaults), `{}` for a missing block, `{"Error": …}` for a bad
//! request, millisecond timestamps, block ids starting with the height.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::address::TronAddress;
use crate::source::TRANSFER_TOPIC;

/// The failure a scripted transaction ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// `contractRet` / `receipt.result` `REVERT`.
    Revert,
    OutOfEnergy,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Revert => "REVERT",
            Outcome::OutOfEnergy => "OUT_OF_ENERGY",
        }
    }
}

/// One transaction of a scripted block.
#[derive(Debug, Clone)]
pub enum ScriptedTx {
    /// `TransferContract`: `sun` TRX.
    Trx {
        from: TronAddress,
        to: TronAddress,
        sun: u64,
        outcome: Outcome,
    },
    /// `TransferAssetContract` (TRC-10): `amount` of token `token_id`.
    Trc10 {
        from: TronAddress,
        to: TronAddress,
        token_id: String,
        amount: u64,
    },
    /// `TriggerSmartContract` calling `transfer` on `contract`, with the `Transfer` events
    /// `(from, to, amount)` it emitted (several for a batch sender).
    Trc20 {
        caller: TronAddress,
        contract: TronAddress,
        transfers: Vec<(TronAddress, TronAddress, u128)>,
        outcome: Outcome,
    },
}

impl ScriptedTx {
    pub fn trx(from: TronAddress, to: TronAddress, sun: u64) -> Self {
        ScriptedTx::Trx {
            from,
            to,
            sun,
            outcome: Outcome::Success,
        }
    }

    pub fn trc20(contract: TronAddress, from: TronAddress, to: TronAddress, amount: u128) -> Self {
        ScriptedTx::Trc20 {
            caller: from,
            contract,
            transfers: vec![(from, to, amount)],
            outcome: Outcome::Success,
        }
    }

    /// A TRC-20 transfer that failed. A real node records no event for a failed transaction;
    /// the scripted one keeps it, so that only the result check keeps it from counting.
    pub fn trc20_failed(
        contract: TronAddress,
        from: TronAddress,
        to: TronAddress,
        amount: u128,
        outcome: Outcome,
    ) -> Self {
        ScriptedTx::Trc20 {
            caller: from,
            contract,
            transfers: vec![(from, to, amount)],
            outcome,
        }
    }
}

#[derive(Debug, Clone)]
struct StoredBlock {
    json: Value,
    infos: Value,
}

#[derive(Debug)]
struct Chain {
    blocks: Vec<StoredBlock>,
    solid: u64,
    down: bool,
    api_key: Option<String>,
    /// Varies block ids on a fork.
    fork: u64,
    /// Added to the wall clock when a block is stamped (a block mined "later").
    offset_ms: i64,
    /// The newest block's timestamp: the next is later.
    last_ms: i64,
    /// Blocks 1..=count rendered on request (then nothing is mined).
    generated: Option<Generated>,
}

impl Chain {
    fn head(&self) -> u64 {
        match &self.generated {
            Some(g) => g.count,
            None => self.blocks.len() as u64 - 1,
        }
    }

    /// Block `h`, or with `infos` its transaction infos.
    fn block(&self, h: u64, infos: bool) -> Option<Value> {
        match &self.generated {
            Some(g) if h >= 1 && h <= g.count => {
                let (block, list) = g.render(h, infos);
                Some(if infos { list } else { block })
            }
            _ => {
                let b = self.blocks.get(usize::try_from(h).ok()?)?;
                Some(if infos {
                    b.infos.clone()
                } else {
                    b.json.clone()
                })
            }
        }
    }
}

fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// A scripted chain and the HTTP server serving it.
#[derive(Clone)]
pub struct ScriptedChain {
    chain: Arc<Mutex<Chain>>,
    requests: Arc<AtomicU64>,
    nonce: Arc<AtomicU64>,
}

fn hex_id(height: u64, seed: &[u8]) -> String {
    let digest = Sha256::digest(seed);
    let mut id = height.to_be_bytes().to_vec();
    id.extend_from_slice(&digest[8..]);
    hex::encode(id)
}

fn word(account: [u8; 20]) -> String {
    format!("{:0>64}", hex::encode(account))
}

impl ScriptedChain {
    /// A chain holding its genesis block, whose id ends with `genesis_suffix` (8 hex digits:
    /// `2b6653dc` is mainnet's), solidified.
    pub fn new(genesis_suffix: &str) -> Self {
        let genesis_ms = now_ms() - 3_600_000;
        let mut id = hex_id(0, b"genesis");
        id.replace_range(56.., genesis_suffix);
        let genesis = json!({
            "blockID": id,
            "block_header": {
                "raw_data": { "timestamp": genesis_ms, "txTrieRoot": "0".repeat(64), "parentHash": "0".repeat(64) },
                "witness_signature": ""
            }
        });
        Self {
            chain: Arc::new(Mutex::new(Chain {
                blocks: vec![StoredBlock {
                    json: genesis,
                    infos: json!([]),
                }],
                solid: 0,
                down: false,
                api_key: None,
                fork: 0,
                offset_ms: 0,
                last_ms: genesis_ms,
                generated: None,
            })),
            requests: Arc::new(AtomicU64::new(0)),
            nonce: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A chain of `count` solidified blocks after the genesis, each holding `per_block` TRC-20
    /// transfers of `contract` to other people, except that block `h` of each `(h, to,
    /// amount)` in `pays` pays `to` in its first transfer. Rendered on request; nothing more
    /// can be mined on it.
    pub fn generated(
        genesis_suffix: &str,
        count: u64,
        per_block: u32,
        contract: TronAddress,
        pays: Vec<(u64, TronAddress, u128)>,
    ) -> Self {
        let chain = Self::new(genesis_suffix);
        {
            let mut c = chain.lock();
            let genesis_ms = now_ms() - i64::try_from(count + 100).unwrap_or(0) * 3000;
            c.blocks[0].json["block_header"]["raw_data"]["timestamp"] = json!(genesis_ms);
            c.generated = Some(Generated {
                count,
                per_block,
                contract,
                pays,
                genesis_id: c.blocks[0].json["blockID"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                genesis_ms,
            });
            c.solid = count;
        }
        chain
    }

    fn lock(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append a block holding `txs`; returns its height and the txids.
    pub fn mine(&self, txs: Vec<ScriptedTx>) -> (u64, Vec<String>) {
        let mut c = self.lock();
        let height = c.blocks.len() as u64;
        let parent = c.blocks[c.blocks.len() - 1].json["blockID"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The wall clock (a scripted chain is mined faster than one block per 3 s), strictly
        // increasing.
        let time_ms = (now_ms() + c.offset_ms).max(c.last_ms + 1);
        c.last_ms = time_ms;
        let mut tx_json = Vec::new();
        let mut infos = Vec::new();
        let mut txids = Vec::new();
        for tx in txs {
            let n = self.nonce.fetch_add(1, Ordering::Relaxed);
            let txid = hex::encode(Sha256::digest(format!("tx {n} {height} {}", c.fork)));
            let (t, info) = render(&tx, &txid, height, time_ms);
            tx_json.push(t);
            infos.push(info);
            txids.push(txid);
        }
        let id = hex_id(
            height,
            format!("{parent} {} {}", c.fork, txids.join(",")).as_bytes(),
        );
        let block = block_json(&id, height, &parent, time_ms, tx_json);
        c.blocks.push(StoredBlock {
            json: block,
            infos: Value::Array(infos),
        });
        (height, txids)
    }

    /// Append `n` empty blocks; returns the new head.
    pub fn mine_empty(&self, n: u64) -> u64 {
        for _ in 0..n {
            self.mine(Vec::new());
        }
        self.head()
    }

    pub fn head(&self) -> u64 {
        self.lock().head()
    }

    pub fn solid(&self) -> u64 {
        self.lock().solid
    }

    /// Solidify up to `height` (capped at the head).
    pub fn solidify(&self, height: u64) {
        let mut c = self.lock();
        c.solid = height.min(c.blocks.len() as u64 - 1);
    }

    /// Solidify everything but the newest `behind` blocks.
    pub fn solidify_behind(&self, behind: u64) {
        let head = self.head();
        self.solidify(head.saturating_sub(behind));
    }

    /// Drop the blocks from `height` up (a fork switch): blocks mined next get other ids.
    /// Solidified blocks are kept unless `height` is below the solidified head, which a real
    /// chain never does (the watcher's reorg handling is what such a test exercises).
    pub fn reorg_from(&self, height: u64) {
        let mut c = self.lock();
        let keep = usize::try_from(height.max(1)).unwrap_or(usize::MAX);
        c.blocks.truncate(keep);
        c.fork += 1;
        c.last_ms = c.blocks[c.blocks.len() - 1].json["block_header"]["raw_data"]["timestamp"]
            .as_i64()
            .unwrap_or(c.last_ms);
        c.solid = c.solid.min(c.blocks.len() as u64 - 1);
    }

    /// Stamp the next blocks `ms` later than the wall clock (a payment that arrives late).
    pub fn advance_clock(&self, ms: i64) {
        self.lock().offset_ms += ms;
    }

    /// Answer every request with HTTP 503 (a node that is down), or serve again.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Refuse requests without this `TRON-PRO-API-KEY` header.
    pub fn require_api_key(&self, key: &str) {
        self.lock().api_key = Some(key.to_owned());
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The block id at `height`.
    pub fn block_id(&self, height: u64) -> Option<String> {
        let c = self.lock();
        let b = c.blocks.get(usize::try_from(height).ok()?)?;
        b.json["blockID"].as_str().map(str::to_owned)
    }

    /// Serve on `127.0.0.1:<port>` (0: any free port) until the task is dropped or aborted;
    /// returns the base URL.
    pub async fn serve_on(
        &self,
        port: u16,
    ) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/{*path}", any(handle))
            .with_state(self.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((format!("http://{addr}"), task))
    }

    pub async fn serve(&self) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
        self.serve_on(0).await
    }

    fn answer(&self, path: &str, body: &Value) -> Value {
        let c = self.lock();
        let num = |key: &str| body.get(key).and_then(Value::as_u64);
        let block = |h: u64| c.block(h, false);
        match path {
            "/wallet/getnowblock" => block(c.head()).unwrap_or(json!({})),
            "/walletsolidity/getnowblock" => block(c.solid).unwrap_or(json!({})),
            "/wallet/getblockbynum" | "/walletsolidity/getblockbynum" => {
                let limit = if path.starts_with("/walletsolidity") {
                    c.solid
                } else {
                    u64::MAX
                };
                match num("num") {
                    Some(h) if h <= limit => block(h).unwrap_or(json!({})),
                    Some(_) => json!({}),
                    None => json!({"Error": "class java.lang.NullPointerException : null"}),
                }
            }
            "/wallet/getblockbylimitnext" => match (num("startNum"), num("endNum")) {
                (Some(s), Some(e)) if e > s && e - s <= 100 => {
                    let list: Vec<Value> = (s..e).filter_map(block).collect();
                    if list.is_empty() {
                        json!({})
                    } else {
                        json!({ "block": list })
                    }
                }
                _ => {
                    json!({"Error": "class org.tron.core.exception.BadItemException : startNum and endNum are not valid"})
                }
            },
            "/wallet/gettransactioninfobyblocknum" => match num("num") {
                Some(0) | None => json!({}),
                Some(h) => c.block(h, true).unwrap_or(json!([])),
            },
            _ => Value::Null,
        }
    }
}

async fn handle(
    State(chain): State<ScriptedChain>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    chain.requests.fetch_add(1, Ordering::Relaxed);
    let (down, key) = {
        let c = chain.lock();
        (c.down, c.api_key.clone())
    };
    if down {
        return (StatusCode::SERVICE_UNAVAILABLE, "node down").into_response();
    }
    if let Some(key) = key {
        let sent = headers
            .get(crate::api::API_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        if sent != Some(key.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"Error": "ApiKey not exists"})),
            )
                .into_response();
        }
    }
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return Json(
                    json!({"Error": format!("class com.alibaba.fastjson.JSONException : {e}")}),
                )
                .into_response();
            }
        }
    };
    match chain.answer(uri.path(), &body) {
        Value::Null => (
            StatusCode::NOT_FOUND,
            Json(json!({"Error": "this API is unavailable due to config"})),
        )
            .into_response(),
        v => Json(v).into_response(),
    }
}

/// A block as java-tron prints it (`transactions` left out when there are none).
fn block_json(id: &str, height: u64, parent: &str, time_ms: i64, txs: Vec<Value>) -> Value {
    let mut block = json!({
        "blockID": id,
        "block_header": {
            "raw_data": {
                "number": height,
                "txTrieRoot": "0".repeat(64),
                "witness_address": "41e7860196ad5b5718c1d6326babab039b70b8c1cd",
                "parentHash": parent,
                "version": 34,
                "timestamp": time_ms,
            },
            "witness_signature": "00"
        }
    });
    if !txs.is_empty() {
        block["transactions"] = Value::Array(txs);
    }
    block
}

/// A long chain rendered on request instead of held in memory (the benchmark's 10,000
/// blocks of 50 transfers would take about a gigabyte as JSON).
#[derive(Debug, Clone)]
struct Generated {
    count: u64,
    per_block: u32,
    contract: TronAddress,
    /// `(block, recipient, amount)`: the transfers to watched addresses.
    pays: Vec<(u64, TronAddress, u128)>,
    genesis_id: String,
    genesis_ms: i64,
}

impl Generated {
    fn id(&self, height: u64) -> String {
        if height == 0 {
            self.genesis_id.clone()
        } else {
            hex_id(height, format!("generated {height}").as_bytes())
        }
    }

    /// Block `height` (1..=count), or with `infos` its transaction infos (the other is left
    /// `Null`).
    fn render(&self, height: u64, infos_wanted: bool) -> (Value, Value) {
        let time_ms = self.genesis_ms + i64::try_from(height).unwrap_or(0) * 3000;
        let mut txs = Vec::new();
        let mut infos = Vec::new();
        let pay = self.pays.iter().find(|(h, _, _)| *h == height);
        for i in 0..self.per_block {
            let seed = Sha256::digest(format!("generated {height} {i}"));
            let account =
                |offset: usize| -> [u8; 20] { std::array::from_fn(|j| seed[(j + offset) % 32]) };
            let (to, amount) = match pay {
                Some((_, to, amount)) if i == 0 => (*to, *amount),
                _ => (
                    TronAddress::from_account(account(0)),
                    1_000_000 + u128::from(i),
                ),
            };
            let from = TronAddress::from_account(account(12));
            let tx = ScriptedTx::trc20(self.contract, from, to, amount);
            let (t, info) = render(&tx, &hex::encode(seed), height, time_ms);
            if infos_wanted {
                infos.push(info);
            } else {
                txs.push(t);
            }
        }
        if infos_wanted {
            return (Value::Null, Value::Array(infos));
        }
        let block = block_json(&self.id(height), height, &self.id(height - 1), time_ms, txs);
        (block, Value::Null)
    }
}

/// A transaction and its transaction info, as java-tron prints them.
fn render(tx: &ScriptedTx, txid: &str, height: u64, time_ms: i64) -> (Value, Value) {
    let contract = |kind: &str, value: Value| {
        json!([{
            "parameter": { "value": value, "type_url": format!("type.googleapis.com/protocol.{kind}") },
            "type": kind
        }])
    };
    let (contract, outcome, mut info) = match tx {
        ScriptedTx::Trx {
            from,
            to,
            sun,
            outcome,
        } => (
            contract(
                "TransferContract",
                json!({ "amount": sun, "owner_address": from.to_hex(), "to_address": to.to_hex() }),
            ),
            *outcome,
            json!({ "receipt": { "net_fee": 267000 }, "fee": 267000 }),
        ),
        ScriptedTx::Trc10 {
            from,
            to,
            token_id,
            amount,
        } => (
            contract(
                "TransferAssetContract",
                json!({
                    "amount": amount,
                    "asset_name": hex::encode(token_id),
                    "owner_address": from.to_hex(),
                    "to_address": to.to_hex(),
                }),
            ),
            Outcome::Success,
            json!({ "receipt": { "net_usage": 283 } }),
        ),
        ScriptedTx::Trc20 {
            caller,
            contract: token,
            transfers,
            outcome,
        } => {
            let (_, first_to, first_amount) =
                transfers.first().copied().unwrap_or((*caller, *caller, 0));
            let data = format!("a9059cbb{}{:064x}", word(first_to.account()), first_amount);
            let logs: Vec<Value> = transfers
                .iter()
                .map(|(from, to, amount)| {
                    json!({
                        "address": hex::encode(token.account()),
                        "topics": [TRANSFER_TOPIC, word(from.account()), word(to.account())],
                        "data": format!("{amount:064x}"),
                    })
                })
                .collect();
            let mut info = json!({
                "fee": 13844850,
                "contract_address": token.to_hex(),
                "receipt": {
                    "energy_fee": 13499850, "energy_usage_total": 64285, "net_fee": 345000,
                    "result": outcome.as_str()
                },
                "log": logs,
            });
            if *outcome != Outcome::Success {
                info["result"] = json!("FAILED");
                info["resMessage"] = json!(hex::encode("REVERT opcode executed"));
            }
            (
                contract(
                    "TriggerSmartContract",
                    json!({ "data": data, "owner_address": caller.to_hex(), "contract_address": token.to_hex() }),
                ),
                *outcome,
                info,
            )
        }
    };
    info["id"] = json!(txid);
    info["blockNumber"] = json!(height);
    info["blockTimeStamp"] = json!(time_ms);
    info["contractResult"] = json!([""]);
    let tx = json!({
        "ret": [{ "contractRet": outcome.as_str() }],
        "signature": ["00"],
        "txID": txid,
        "raw_data": {
            "contract": contract,
            "ref_block_bytes": "262b",
            "ref_block_hash": "85cd6b02033f4c3e",
            "expiration": time_ms + 60_000,
            "timestamp": time_ms - 2000,
        },
        "raw_data_hex": "0a02262b",
    });
    (tx, info)
}
