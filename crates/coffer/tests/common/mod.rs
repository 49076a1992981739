//! Shared by the tests that run the real `coffer` binary against real nodes: starting the
//! binary on the test's database, killing it, waiting for a condition, and an engine over the
//! same database that sees the same chain as the binary (the tests create orders through it,
//! as the API would).

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, Network, Order,
    OrderId, OrderStatus, Price,
};
use coffer_engine::{
    AssetRegistry, Clock, Engine, EngineParts, EngineSettings, Methods, SystemClock,
};
use coffer_testkit::TestDb;
use rust_decimal::Decimal;
use serde_json::{Value, json};

pub mod dialects;

pub const BIN: &str = env!("CARGO_BIN_EXE_coffer");

/// Account xpub (m/44'/60'/0') of the test mnemonic; checked in chain-evm's derive tests.
pub const XPUB: &str = "xpub6BemYiVNp19ZzUSZng6uUnx3dQm5eRwcjTjZh2wBRosHnSF4QNykc8MvSiJcUseh3sA1WL82iquWY2bRBv8Qqsn8ugJK63aLXKyPosCnGUv";

/// `coffer --config CONFIG …` on the test's database, ignoring any `COFFER_*` variable of the
/// environment the test runs in.
pub fn coffer(config: &Path, db: &TestDb) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("COFFER_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("--config").arg(config);
    cmd.env("COFFER_DATA_DIR", db.dir.path());
    if let Some(url) = &db.url {
        cmd.env("COFFER_DATABASE_URL", url);
    }
    cmd
}

/// `coffer merchant create --name NAME --json` on the test's database; the created merchant
/// (`merchant_id`, `api_key`, …). Fails the test with the CLI's stderr if refused.
pub fn cli_merchant(config: &Path, db: &TestDb, name: &str) -> Value {
    let out = coffer(config, db)
        .args(["merchant", "create", "--name", name, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `coffer wallet set` for `merchant` on `chain`; fails the test if refused.
pub fn cli_wallet(config: &Path, db: &TestDb, merchant: &str, chain: &str, xpub: &str) {
    let out = coffer(config, db)
        .args(["wallet", "set", "--merchant", merchant, "--chain", chain])
        .args(["--xpub", xpub])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `coffer … serve` from `cmd` with its log read and dropped (a full pipe would block it).
pub fn spawn_serve(mut cmd: Command) -> Child {
    let mut child = cmd
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    child
}

/// Kill without warning (no graceful shutdown), and reap.
pub fn sigkill(child: &mut Child) {
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

/// SIGTERM by pid, then wait up to `within` for the exit; its code.
pub fn sigterm(child: &mut Child, within: Duration) -> Option<i32> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "no exit within {within:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll `f` every 100 ms until it holds; panic naming `what` after `deadline`.
pub async fn wait_until(what: &str, deadline: Duration, mut f: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

pub async fn status(engine: &Engine, o: &Order) -> OrderStatus {
    engine
        .find_order(&o.id)
        .await
        .unwrap()
        .unwrap()
        .state
        .status
}

/// An engine over the test's database for one anvil chain (`chain_id` 31337, 1 confirmation)
/// named `chain`, with ETH and a 6-decimal USDT at `usdt`: the same chain and assets as the
/// binary's configuration in these tests.
pub fn anvil_engine(db: &TestDb, chain: &str, usdt: &str) -> Engine {
    anvil_engine_with(db, chain, usdt, 1, Arc::new(SystemClock))
}

/// [`anvil_engine`] with the chain's confirmations and the engine's clock given.
pub fn anvil_engine_with(
    db: &TestDb,
    chain: &str,
    usdt: &str,
    confirmations: u32,
    clock: Arc<dyn Clock>,
) -> Engine {
    let chain_def = Chain {
        id: ChainId::parse(chain).unwrap(),
        kind: ChainKind::Evm,
        network: Network::Regtest,
        name: chain.into(),
        confirmations,
        evm_chain_id: Some(31337),
    };
    let asset = |s: &str, kind, d: u8, stable| Asset {
        id: AssetId::from_str(&format!("{chain}:{s}")).unwrap(),
        kind,
        decimals: Decimals::new(d).unwrap(),
        display_decimals: 6,
        usd_stablecoin: stable,
    };
    let assets = AssetRegistry::new(
        vec![chain_def],
        vec![
            asset("ETH", AssetKind::Native, 18, false),
            asset(
                "USDT",
                AssetKind::Token {
                    contract: usdt.into(),
                },
                6,
                true,
            ),
        ],
    )
    .unwrap();
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new().with(
            "ETH",
            "USD",
            Price::new(Decimal::from(2000)).unwrap(),
        )),
        assets: Arc::new(assets),
        methods: Methods::default().with(ChainKind::Evm, Arc::new(coffer_chain_evm::EvmMethod)),
        clock,
        settings: Arc::new(EngineSettings::default()),
    })
}

/// `coffer serve`, its base URL once it listens, and its log lines.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line.clone());
                    log.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("coffer serve did not report its address");
            };
            let entry: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if entry["message"] == "listening" {
                let base = format!("http://{}", entry["address"].as_str().unwrap());
                return Server { child, base, log };
            }
        }
    }

    /// SIGTERM, then wait for the exit: how long it took and the exit code (`None`: still
    /// running after a minute, then killed).
    pub fn terminate(&mut self) -> (Duration, Option<i32>) {
        let sent = Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (sent.elapsed(), status.code());
            }
            if sent.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (sent.elapsed(), None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logged(&self, message: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["message"].as_str() == Some(message))
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tasks` clients creating orders as fast as the server answers, until `stop`: the ids of
/// the orders acknowledged with `201`.
pub fn order_load(
    base: &str,
    key: &str,
    tasks: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<OrderId>>> {
    (0..tasks)
        .map(|t| {
            let (base, key, stop) = (base.to_owned(), key.to_owned(), stop.clone());
            tokio::spawn(async move {
                let http = coffer_testkit::http_client();
                let mut acknowledged = Vec::new();
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let sent = http
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(&key)
                        .json(&json!({
                            "amount": "10", "currency": "USD", "asset": "anvil:USDT",
                            "fixed_stablecoin_rate": true, "order_no": format!("load-{t}-{i}"),
                        }))
                        .send()
                        .await;
                    let Ok(resp) = sent else {
                        // Refused once the listener closed.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    if resp.status() == 201
                        && let Ok(body) = resp.json::<Value>().await
                    {
                        acknowledged.push(body["id"].as_str().unwrap().parse().unwrap());
                    }
                }
                acknowledged
            })
        })
        .collect()
}

/// On PostgreSQL the event feed holds back events above a gap in `seq` for 5 s (a
/// transaction that may still commit): a killed server's rolled-back transaction leaves such a
/// gap, and the last run's events sit above it. A drill counts events once the gap has aged.
pub async fn wait_out_event_gap(db: &TestDb) {
    if db.url.is_some() {
        tokio::time::sleep(Duration::from_millis(5_500)).await;
    }
}

/// After a crash drill: every order has exactly one confirmed payment covering what it owed,
/// was settled once and its payment detected once.
pub async fn assert_each_paid_once(db: &TestDb, orders: &[Order]) {
    use coffer_core::{EventType, PaymentStatus};
    wait_out_event_gap(db).await;
    let events = db
        .store
        .list_events(&coffer_store::EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    for o in orders {
        let payments = db.store.payments_for_order(&o.id).await.unwrap();
        assert_eq!(payments.len(), 1, "exactly one payment for {}", o.id);
        assert_eq!(payments[0].status, PaymentStatus::Confirmed);
        let stored = db.store.find_order(&o.id).await.unwrap().unwrap();
        assert_eq!(
            stored.totals.confirmed,
            o.target.as_ref().unwrap().amount_due
        );
        let count = |kind: EventType, subject: String| {
            events
                .iter()
                .filter(|e| e.event.subject == subject && e.event.kind == kind)
                .count()
        };
        assert_eq!(
            count(EventType::OrderSettled, o.id.to_string()),
            1,
            "settled exactly once: {}",
            o.id
        );
        assert_eq!(
            count(EventType::PaymentDetected, payments[0].id.to_string()),
            1,
            "detected exactly once: {}",
            o.id
        );
    }
}
