//! SIGKILL of the real `coffer serve` while clients create orders with `Idempotency-Key`s, on
//! SQLite and PostgreSQL: after the restart every key either replays its one order or is
//! absent (and a retry creates the order then), never "in progress" with an order behind it,
//! and no key ends up with two orders.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_chain_evm::testtools::Anvil;
use coffer_testkit::{TestDb, both_backends};
use common::{XPUB, coffer, sigkill};
use serde_json::{Value, json};

/// Clients sending at once.
const CLIENTS: usize = 32;

/// The per-key rate limit is off: the drill sends as fast as the server answers.
fn config(dir: &Path, rpc: &str) -> std::path::PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n\n[api]\nrate_limit_per_minute = 0\n\n[rates]\nsources = [\"fixed\"]\n[rates.fixed]\n\"ETH/USD\" = \"2000\"\n\n[[chains]]\nid = \"anvil\"\nkind = \"evm\"\nnetwork = \"regtest\"\nchain_id = 31337\nrpc = [\"{rpc}\"]\nconfirmations = 1\npoll_interval = \"100ms\"\nnative = {{ symbol = \"ETH\", decimals = 18 }}\n"
        ),
    )
    .unwrap();
    path
}

/// `coffer serve` and the address it listens on (from its log).
fn serve(config: &Path, db: &TestDb) -> (Child, String) {
    let mut child = coffer(config, db)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "listening"
                && let Some(a) = v["address"].as_str()
            {
                let _ = tx.send(format!("http://{a}"));
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    (child, base)
}

/// The request a client sends for `key`: the key is also in the metadata, so its orders can
/// be found.
fn body(key: &str) -> Value {
    json!({"amount": "12.50", "currency": "USD", "asset": "anvil:ETH", "metadata": {"key": key}})
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body(key))
        .send()
        .await
}

/// Every order of the merchant: key (from the metadata) → order ids.
async fn orders_by_key(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/orders?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for order in page["data"].as_array().unwrap() {
            let key = order["metadata"]["key"].as_str().unwrap().to_owned();
            let id = order["id"].as_str().unwrap().to_owned();
            by_key.entry(key).or_default().push(id);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return by_key,
        }
    }
}

#[derive(Default)]
struct Seen {
    /// Keys whose request was sent.
    sent: BTreeSet<String>,
    /// Keys answered before the kill, with the order id of the answer.
    answered: BTreeMap<String, String>,
}

async fn killed_under_load(db: &TestDb) {
    let anvil = Anvil::start(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &anvil.url());
    let out = coffer(&cfg, db)
        .args(["merchant", "create", "--name", "Kill", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let merchant = created["merchant_id"].as_str().unwrap().to_owned();
    let token = created["api_key"].as_str().unwrap().to_owned();
    let out = coffer(&cfg, db)
        .args(["wallet", "set", "--merchant", &merchant])
        .args(["--chain", "anvil", "--xpub", XPUB])
        .output()
        .unwrap();
    assert!(out.status.success());

    let http = coffer_testkit::http_client();
    let (mut server, mut base) = serve(&cfg, db);
    let mut all_sent = BTreeSet::new();
    let mut caught_after_commit = 0;
    for round in 0..ROUNDS {
        let Seen { sent, answered } =
            load_then_kill(&http, &base, &token, round, &mut server).await;
        (server, base) = serve(&cfg, db);
        caught_after_commit += check_every_key(&http, &base, &token, &sent, &answered).await;
        all_sent.extend(sent);
    }
    eprintln!(
        "{caught_after_commit} keys were killed after their order committed but before the client had the answer"
    );
    let after = orders_by_key(&http, &base, &token).await;
    assert_eq!(after.len(), all_sent.len(), "one order per key");
    assert!(after.values().all(|ids| ids.len() == 1));
    sigkill(&mut server);
}

/// Rounds of load, kill and restart.
const ROUNDS: usize = 3;

/// Clients create orders with fresh keys until the server is killed under them.
async fn load_then_kill(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    round: usize,
    server: &mut Child,
) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, base, token, seen) = (
            http.clone(),
            base.to_owned(),
            token.to_owned(),
            seen.clone(),
        );
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                let key = format!("kill-{round}-{client}-{n}");
                seen.lock().unwrap().sent.insert(key.clone());
                let Ok(res) = post(&http, &base, &token, &key).await else {
                    return; // the server is gone
                };
                assert_eq!(res.status(), 201, "before the kill");
                let Ok(order) = res.json::<Value>().await else {
                    return;
                };
                let id = order["id"].as_str().unwrap().to_owned();
                seen.lock().unwrap().answered.insert(key, id);
            }
        }));
    }
    // Load for a while (the first answers prove it runs), then kill mid-flight.
    common::wait_until("the first answers", Duration::from_secs(60), async || {
        seen.lock().unwrap().answered.len() >= 30
    })
    .await;
    tokio::time::sleep(Duration::from_millis(150 * (round as u64 + 1))).await;
    sigkill(server);
    for c in clients {
        c.await.unwrap();
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let in_flight = seen.sent.len() - seen.answered.len();
    eprintln!(
        "round {round}: {} keys sent, {} answered before the kill, {in_flight} in flight",
        seen.sent.len(),
        seen.answered.len(),
    );
    assert!(in_flight > 0, "the kill must catch requests in flight");
    seen
}

/// After the restart: each key of the round replays its one order, or is absent and the retry
/// creates the order now. Returns how many unanswered keys had their order committed.
async fn check_every_key(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    sent: &BTreeSet<String>,
    answered: &BTreeMap<String, String>,
) -> usize {
    let before = orders_by_key(http, base, token).await;
    for (key, ids) in &before {
        assert_eq!(ids.len(), 1, "key {key} has several orders: {ids:?}");
    }
    for (key, id) in answered {
        assert_eq!(
            before.get(key),
            Some(&vec![id.clone()]),
            "answered {key} with {id}"
        );
    }
    let (mut replayed, mut absent) = (0, 0);
    for key in sent {
        let res = post(http, base, token, key).await.unwrap();
        let status = res.status();
        let replay = res
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let order: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "retry of {key}: {order}");
        let id = order["id"].as_str().unwrap().to_owned();
        match before.get(key) {
            Some(ids) => {
                assert!(replay, "{key} has an order but was not replayed");
                assert_eq!(ids, &vec![id], "{key} replays another order");
                replayed += 1;
            }
            None => {
                assert!(!replay, "{key} replayed an order that does not exist: {id}");
                absent += 1;
            }
        }
    }
    eprintln!("after the restart: {replayed} keys replayed their order, {absent} were absent");
    replayed - answered.len()
}

both_backends! {
    sigkill_under_load_leaves_each_key_with_its_order_or_absent => killed_under_load;
}
