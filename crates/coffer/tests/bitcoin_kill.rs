//! The real `coffer` binary watching the real bcoin regtest node (tools/bitcoin-regtest),
//! SIGKILLed while it catches up and started again: no payment lost, none counted twice. On
//! SQLite and PostgreSQL. Also `merchant set --confirmations` and `/readyz`'s chain entry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{coffer, sigkill, status, wait_until};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use coffer_chain_bitcoin::bitcoin::BlockHash;
use coffer_chain_bitcoin::regtest::RegtestNode;
use coffer_chain_bitcoin::{BitcoinMethod, BitcoindRpc};
use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, EventType, FixedRates,
    MerchantId, Network, Order, OrderStatus, PaymentStatus, Price,
};
use coffer_engine::{
    AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder, SystemClock,
};
use coffer_store::EventQuery;
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;
use serde_json::json;

// m/84'/1'/0' of the BIP-84 mnemonic "abandon … about".
const TPUB: &str = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M";

fn config(dir: &Path, node: &RegtestNode) -> std::path::PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n\n[[chains]]\nid = \"bitcoin\"\nkind = \"bitcoin\"\nnetwork = \"regtest\"\nrpc = [\"{}\"]\nrpc_user = \"{}\"\nrpc_password = \"{}\"\nconfirmations = 1\npoll_interval = \"100ms\"\nnative = {{ symbol = \"BTC\", decimals = 8 }}\n",
            node.url(),
            node.user,
            node.password
        ),
    )
    .unwrap();
    path
}

fn engine(db: &TestDb) -> Engine {
    let chain = Chain {
        id: ChainId::parse("bitcoin").unwrap(),
        kind: ChainKind::Bitcoin,
        network: Network::Regtest,
        name: "bitcoin".into(),
        confirmations: 1,
        evm_chain_id: None,
    };
    let btc = Asset {
        id: AssetId::from_str("bitcoin:BTC").unwrap(),
        kind: AssetKind::Native,
        decimals: Decimals::new(8).unwrap(),
        display_decimals: 8,
        usd_stablecoin: false,
    };
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new().with(
            "BTC",
            "USD",
            Price::new(Decimal::from(50_000)).unwrap(),
        )),
        assets: Arc::new(AssetRegistry::new(vec![chain], vec![btc]).unwrap()),
        methods: Methods::default().with(ChainKind::Bitcoin, Arc::new(BitcoinMethod::new())),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings::default()),
    })
}

/// Runs `coffer serve`; returns the child and the address it listens on.
fn spawn_serve(config: &Path, db: &TestDb) -> (Child, String) {
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
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
                && let Some(a) = v["address"].as_str()
            {
                let _ = tx.send(a.to_owned());
            }
        }
    });
    let address = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    (child, address)
}

fn btc_string(sat: u128) -> String {
    format!("{}.{:08}", sat / 100_000_000, sat % 100_000_000)
}

async fn mine(rpc: &BitcoindRpc, n: u32, to: &str) {
    let _: Vec<BlockHash> = rpc.call("generatetoaddress", json!([n, to])).await.unwrap();
}

async fn killed_and_restarted(db: &TestDb) {
    let node = RegtestNode::start().unwrap();
    let rpc = node.client(None).unwrap();
    let wallet = node.client(Some("coffer")).unwrap();
    let miner: String = wallet.call("getnewaddress", json!([])).await.unwrap();
    mine(&rpc, 110, &miner).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &node);

    let created = common::cli_merchant(&cfg, db, "Kill shop");
    let merchant: MerchantId = created["merchant_id"].as_str().unwrap().parse().unwrap();
    common::cli_wallet(&cfg, db, merchant.as_str(), "bitcoin", TPUB);
    // Confirmation policy per merchant: 6 is fine, 3 is refused with a clear message; set 2.
    let out = coffer(&cfg, db)
        .args(["merchant", "set", "--merchant", merchant.as_str()])
        .args(["--confirmations", "bitcoin=3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0, 1, 2 or 6"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = coffer(&cfg, db)
        .args(["merchant", "set", "--merchant", merchant.as_str()])
        .args(["--confirmations", "bitcoin=2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["policy"]["chain_confirmations"]["bitcoin"], json!(2));

    let engine = engine(db);
    let mut orders = Vec::new();
    for i in 0..6u32 {
        let o = engine
            .create_order(
                &merchant,
                NewOrder {
                    amount: Decimal::from(10 + i),
                    currency: "USD".into(),
                    asset: Some(AssetId::from_str("bitcoin:BTC").unwrap()),
                    dialect: "native".into(),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order;
        assert_eq!(o.policy.confirmations_for("bitcoin"), Some(2));
        orders.push(o);
    }
    let pay = async |o: &Order| {
        let t = o.target.as_ref().unwrap();
        let _: String = wallet
            .call(
                "sendtoaddress",
                json!([t.address, btc_string(t.amount_due.get())]),
            )
            .await
            .unwrap();
    };

    // First run: the watcher starts at the tip and sees the first payments.
    let (mut serve, address) = spawn_serve(&cfg, db);
    let chain_id = ChainId::parse("bitcoin").unwrap();
    wait_until(
        "the watcher's cursor",
        Duration::from_secs(30),
        async || db.store.chain_cursor(&chain_id).await.unwrap().is_some(),
    )
    .await;
    let http = coffer_testkit::http_client();
    let ready: serde_json::Value = http
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready.to_string().contains("chain:bitcoin"), "{ready}");
    for o in &orders[..3] {
        pay(o).await;
        mine(&rpc, 3, &miner).await;
    }
    wait_until(
        "the first order settled",
        Duration::from_secs(30),
        async || status(&engine, &orders[0]).await == OrderStatus::Settled,
    )
    .await;
    sigkill(&mut serve);

    // While it is down: more payments, many blocks.
    for o in &orders[3..] {
        pay(o).await;
        mine(&rpc, 150, &miner).await;
    }
    // Second run, killed while catching up (25 blocks per transaction).
    let before = db
        .store
        .chain_cursor(&chain_id)
        .await
        .unwrap()
        .unwrap()
        .height;
    let (mut serve, _) = spawn_serve(&cfg, db);
    // Killed right after its first catch-up transaction committed: mid-scan.
    wait_until(
        "the first catch-up batch",
        Duration::from_secs(30),
        async || {
            db.store
                .chain_cursor(&chain_id)
                .await
                .unwrap()
                .unwrap()
                .height
                > before
        },
    )
    .await;
    sigkill(&mut serve);
    let after = db
        .store
        .chain_cursor(&chain_id)
        .await
        .unwrap()
        .unwrap()
        .height;
    let tip = rpc.get_blockchain_info().await.unwrap().blocks;
    eprintln!("killed while catching up: cursor {before} -> {after}, tip {tip}");
    assert!(after < tip, "killed before it caught up");

    // Third run catches up.
    let (mut serve, _) = spawn_serve(&cfg, db);
    for o in &orders {
        wait_until("every order settled", Duration::from_secs(60), async || {
            status(&engine, o).await == OrderStatus::Settled
        })
        .await;
    }
    sigkill(&mut serve);

    common::wait_out_event_gap(db).await;
    let events = db
        .store
        .list_events(&EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    for o in &orders {
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
            "{}",
            o.id
        );
        assert_eq!(
            count(EventType::PaymentDetected, payments[0].id.to_string()),
            1
        );
        assert_eq!(
            count(EventType::PaymentConfirmed, payments[0].id.to_string()),
            1
        );
    }
}

both_backends! {
    sigkill_mid_scan_loses_nothing_counts_nothing_twice => killed_and_restarted;
}
