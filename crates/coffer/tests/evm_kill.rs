//! The real `coffer` binary watching a real anvil, SIGKILLed while it catches up and started
//! again: no payment lost, none counted twice. On SQLite and PostgreSQL. Also the `wallet`
//! CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

mod common;

use coffer_chain_evm::testtools::Anvil;
use coffer_chain_evm::testtools::devchain::DevChain;
use coffer_core::{AssetId, ChainId, MerchantId, Order, OrderStatus};
use coffer_engine::NewOrder;
use coffer_testkit::{TestDb, both_backends};
use common::{XPUB, coffer, sigkill, status, wait_until};
use rust_decimal::Decimal;

const XPRV: &str = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";

fn config(dir: &Path, rpc: &str, usdt: &str) -> std::path::PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n\n[[chains]]\nid = \"anvil\"\nkind = \"evm\"\nnetwork = \"regtest\"\nchain_id = 31337\nrpc = [\"{rpc}\"]\nconfirmations = 1\npoll_interval = \"100ms\"\nnative = {{ symbol = \"ETH\", decimals = 18 }}\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"{usdt}\"\ndecimals = 6\n"
        ),
    )
    .unwrap();
    path
}

fn spawn_serve(config: &Path, db: &TestDb) -> Child {
    common::spawn_serve(coffer(config, db))
}

async fn killed_and_restarted(db: &TestDb) {
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let usdt_s = usdt.to_checksum(None);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &anvil.url(), &usdt_s);

    // merchant and wallet through the CLI
    let created = common::cli_merchant(&cfg, db, "Kill shop");
    let merchant: MerchantId = created["merchant_id"].as_str().unwrap().parse().unwrap();
    let out = coffer(&cfg, db)
        .args([
            "wallet",
            "set",
            "--merchant",
            merchant.as_str(),
            "--chain",
            "anvil",
            "--xpub",
            XPRV,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a private key is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PRIVATE"));
    common::cli_wallet(&cfg, db, merchant.as_str(), "anvil", XPUB);
    let out = coffer(&cfg, db)
        .args(["wallet", "list", "--merchant", merchant.as_str(), "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["chain"], "anvil");
    assert_eq!(list[0]["xpub"], XPUB);

    let engine = common::anvil_engine(db, "anvil", &usdt_s);
    let mut orders = Vec::new();
    for i in 0..8u32 {
        let asset = if i % 4 == 3 { "ETH" } else { "USDT" };
        let o = engine
            .create_order(
                &merchant,
                NewOrder {
                    amount: Decimal::from(10 + i),
                    currency: "USD".into(),
                    asset: Some(AssetId::from_str(&format!("anvil:{asset}")).unwrap()),
                    fixed_stablecoin_rate: true,
                    dialect: "native".into(),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order;
        orders.push(o);
    }
    let pay = async |o: &Order| {
        let t = o.target.as_ref().unwrap();
        if t.asset.symbol().as_str() == "ETH" {
            chain
                .send(
                    Some(t.address.parse().unwrap()),
                    Vec::new(),
                    alloy_u256(t.amount_due.get()),
                )
                .await
                .unwrap();
        } else {
            chain
                .pay_token(usdt, &t.address, t.amount_due.get())
                .await
                .unwrap();
        }
    };

    // first run: the watcher starts at the tip and sees the first payments
    let mut serve = spawn_serve(&cfg, db);
    let chain_id = ChainId::parse("anvil").unwrap();
    wait_until(
        "the watcher's cursor",
        Duration::from_secs(30),
        async || db.store.chain_cursor(&chain_id).await.unwrap().is_some(),
    )
    .await;
    for o in &orders[..4] {
        pay(o).await;
        chain.mine(20).await.unwrap();
    }
    wait_until(
        "the first order settled",
        Duration::from_secs(30),
        async || status(&engine, &orders[0]).await == OrderStatus::Settled,
    )
    .await;
    sigkill(&mut serve);

    // while it is down: more payments, many blocks
    for o in &orders[4..] {
        pay(o).await;
        chain.mine(400).await.unwrap();
    }
    // second run, killed while catching up (native payments make it fetch every block, and
    // the whole range commits as one transaction at its end)
    let before = db
        .store
        .chain_cursor(&chain_id)
        .await
        .unwrap()
        .unwrap()
        .height;
    let mut serve = spawn_serve(&cfg, db);
    tokio::time::sleep(Duration::from_millis(400)).await;
    sigkill(&mut serve);
    let after = db
        .store
        .chain_cursor(&chain_id)
        .await
        .unwrap()
        .unwrap()
        .height;
    let tip = chain.tip().await.unwrap();
    eprintln!("killed while catching up: cursor {before} -> {after}, tip {tip}");

    // third run catches up
    let mut serve = spawn_serve(&cfg, db);
    for o in &orders {
        wait_until("every order settled", Duration::from_secs(60), async || {
            status(&engine, o).await == OrderStatus::Settled
        })
        .await;
    }
    sigkill(&mut serve);

    common::assert_each_paid_once(db, &orders).await;
}

fn alloy_u256(v: u128) -> coffer_chain_evm::testtools::devchain::U256 {
    coffer_chain_evm::testtools::devchain::U256::from(v)
}

both_backends! {
    sigkill_mid_scan_loses_nothing_counts_nothing_twice => killed_and_restarted;
}

/// `coffer serve` checks each chain's `chain_id` against the node's `eth_chainId` and refuses
/// to start on a mismatch; once running, `/readyz` and `/metrics` report the chain watcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_checks_chain_id_and_reports_the_chain() {
    let db = coffer_testkit::fresh_sqlite().await.unwrap();
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = config(dir.path(), &anvil.url(), &usdt.to_checksum(None));
    let text = std::fs::read_to_string(&good).unwrap();

    // configured for BSC (56), but the node is anvil (31337): refused at start-up
    let bad = dir.path().join("wrong-chain.toml");
    std::fs::write(&bad, text.replace("chain_id = 31337", "chain_id = 56")).unwrap();
    let out = tokio::task::spawn_blocking({
        let mut cmd = coffer(&bad, &db);
        move || cmd.arg("serve").output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "serve must refuse a wrong chain id");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("56") && stderr.contains("31337"),
        "the error names both ids: {stderr}"
    );

    // the right one: it serves, and reports the watcher
    let mut child = coffer(&good, &db)
        .arg("serve")
        .env("COFFER_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("coffer serve did not report its address");
            let Ok(log) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if log["message"] == "listening" {
                break format!("http://{}", log["address"].as_str().unwrap());
            }
        }
    })
    .await
    .unwrap();
    let http = coffer_testkit::http_client();
    chain.mine(3).await.unwrap();
    let tip = chain.tip().await.unwrap();
    let mut ready = serde_json::Value::Null;
    wait_until(
        "the watcher to reach the tip",
        Duration::from_secs(20),
        async || {
            // A poll that fails in transit (a pooled connection closed under load) is retried.
            let Ok(resp) = http.get(format!("{base}/readyz")).send().await else {
                return false;
            };
            let Ok(body) = resp.json().await else {
                return false;
            };
            ready = body;
            ready["checks"]["chain:anvil"]["cursor"] == serde_json::json!(tip)
        },
    )
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        ready["checks"]["chain:anvil"]["tip"],
        serde_json::json!(tip)
    );
    assert_eq!(ready["checks"]["chain:anvil"]["stalled"], false);
    // `/readyz` shows the cursor at the tip while the first step is still running; its
    // duration is recorded when it ends.
    let mut metrics = String::new();
    wait_until(
        "the first step to end",
        Duration::from_secs(20),
        async || {
            let Ok(resp) = http.get(format!("{base}/metrics")).send().await else {
                return false;
            };
            metrics = resp.text().await.unwrap_or_default();
            metrics.contains("coffer_chain_step_seconds")
        },
    )
    .await;
    for m in [
        "coffer_evm_tip_height{chain=\"anvil\"}",
        "coffer_evm_cursor_height{chain=\"anvil\"}",
        "coffer_evm_stalled{chain=\"anvil\"}",
    ] {
        assert!(metrics.contains(m), "{m} in {metrics}");
    }
    // The one watcher's lag facts and metric names (the names above are kept as aliases).
    let check = &ready["checks"]["chain:anvil"];
    assert_eq!(
        (check["lag"].clone(), check["lagging"].clone()),
        (serde_json::json!(0), serde_json::json!(false)),
        "{ready}"
    );
    assert!(
        check["reason"].is_null() && check.get("lag_secs").is_some(),
        "{ready}"
    );
    for m in [
        "coffer_chain_tip_height{chain=\"anvil\"}",
        "coffer_chain_lag_blocks{chain=\"anvil\"}",
        "coffer_chain_step_seconds",
    ] {
        assert!(metrics.contains(m), "{m} in {metrics}");
    }
    sigkill(&mut child);
}
