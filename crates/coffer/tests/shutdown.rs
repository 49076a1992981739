//! SIGTERM under order load (issue 25): the real `coffer serve`, watching a real anvil, with
//! orders pouring in through the API and every webhook delivery hanging, exits within its
//! `shutdown_timeout`; started again, it resumes: every order acknowledged before the signal
//! is stored, and the payments made before and while it was down are each counted once. On
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

use coffer_chain_evm::testtools::Anvil;
use coffer_chain_evm::testtools::devchain::DevChain;
use coffer_core::{ChainId, Order, OrderId, OrderStatus};
use coffer_testkit::{TestDb, both_backends};
use common::{Server, XPUB, coffer, order_load, status, wait_until};
use serde_json::{Value, json};

/// Short, so the test is; the default (10 s) is checked by the configuration's tests.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
/// Beyond the timeout: the runtime's own shutdown (0.5 s) and the process exit.
const SLACK: Duration = Duration::from_secs(2);

fn config(dir: &Path, rpc: &str, usdt: &str) -> std::path::PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\nshutdown_timeout = \"3s\"\n\n\
             [webhooks]\nallow_private = true\ntimeout = \"30s\"\nlease = \"60s\"\n\n\
             [[chains]]\nid = \"anvil\"\nkind = \"evm\"\nnetwork = \"regtest\"\nchain_id = 31337\n\
             rpc = [\"{rpc}\"]\nconfirmations = 1\npoll_interval = \"200ms\"\n\
             native = {{ symbol = \"ETH\", decimals = 18 }}\n[[chains.tokens]]\nsymbol = \"USDT\"\n\
             contract = \"{usdt}\"\ndecimals = 6\n"
        ),
    )
    .unwrap();
    path
}

/// A webhook endpoint that accepts every connection and never answers: each delivery
/// attempt runs until `webhooks.timeout` (30 s here), far beyond the shutdown timeout.
async fn hanging_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}/hook")
}

async fn sigterm_under_load(db: &TestDb) {
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let usdt_s = usdt.to_checksum(None);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &anvil.url(), &usdt_s);
    let cli = |args: &[&str]| {
        let out = coffer(&cfg, db).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let created: Value = serde_json::from_slice(&cli(&[
        "merchant",
        "create",
        "--name",
        "Busy shop",
        "--json",
    ]))
    .unwrap();
    let merchant = created["merchant_id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    cli(&[
        "wallet",
        "set",
        "--merchant",
        &merchant,
        "--chain",
        "anvil",
        "--xpub",
        XPUB,
    ]);
    let engine = common::anvil_engine(db, "anvil", &usdt_s);
    let chain_id = ChainId::parse("anvil").unwrap();
    let order = async |id: &OrderId| db.store.find_order(id).await.unwrap().unwrap();
    let pay = async |o: &Order| {
        let t = o.target.as_ref().unwrap();
        chain
            .pay_token(usdt, &t.address, t.amount_due.get())
            .await
            .unwrap();
        chain.mine(1).await.unwrap();
    };

    let mut server = Server::start(coffer(&cfg, db));
    let http = coffer_testkit::http_client();
    let hook = hanging_endpoint().await;
    let resp = http
        .post(format!("{}/api/v1/webhooks", server.base))
        .bearer_auth(&key)
        .json(&json!({ "url": hook }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    wait_until(
        "the watcher's cursor",
        Duration::from_secs(30),
        async || db.store.chain_cursor(&chain_id).await.unwrap().is_some(),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = order_load(&server.base, &key, 8, stop.clone());
    // Paid while the load runs: seen and settled.
    let first = wait_for_orders(db, &merchant, 20).await;
    let paid_early = order(&first[0]).await;
    pay(&paid_early).await;
    wait_until(
        "the early payment settled",
        Duration::from_secs(30),
        async || status(&engine, &paid_early).await == OrderStatus::Settled,
    )
    .await;
    // Paid just before the signal: perhaps seen by this run, perhaps by the next.
    let paid_late = order(&first[1]).await;
    pay(&paid_late).await;

    let (took, code) = server.terminate();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for task in load {
        acknowledged.extend(task.await.unwrap());
    }
    eprintln!(
        "{}: SIGTERM after {} orders acknowledged: exited in {took:?} (code {code:?})",
        db.kind(),
        acknowledged.len()
    );
    assert!(
        server.logged("shutdown_timeout reached: abandoning the work still in progress"),
        "the hanging deliveries outlast the timeout, which must cut them off"
    );
    assert!(
        took <= SHUTDOWN_TIMEOUT + SLACK,
        "exited {took:?} after SIGTERM, beyond shutdown_timeout {SHUTDOWN_TIMEOUT:?}"
    );
    assert_eq!(code, Some(0), "a stop on request is a clean exit");
    assert!(
        acknowledged.len() >= 20,
        "the load ran: {}",
        acknowledged.len()
    );
    // Acknowledged means durable.
    for id in &acknowledged {
        assert!(
            db.store.find_order(id).await.unwrap().is_some(),
            "order {id} was acknowledged but is not stored"
        );
    }
    let cursor_at_stop = db.store.chain_cursor(&chain_id).await.unwrap().unwrap();

    // While it is down: another payment, more blocks.
    let paid_while_down = order(&first[2]).await;
    pay(&paid_while_down).await;
    chain.mine(5).await.unwrap();

    let mut server = Server::start(coffer(&cfg, db));
    for o in [&paid_early, &paid_late, &paid_while_down] {
        wait_until(
            "every paid order settled",
            Duration::from_secs(60),
            async || status(&engine, o).await == OrderStatus::Settled,
        )
        .await;
    }
    let cursor = db.store.chain_cursor(&chain_id).await.unwrap().unwrap();
    assert!(cursor.height > cursor_at_stop.height, "the watcher resumed");
    for o in [&paid_early, &paid_late, &paid_while_down] {
        let payments = db.store.payments_for_order(&o.id).await.unwrap();
        assert_eq!(payments.len(), 1, "one payment for {}", o.id);
    }
    // Nothing in progress now: a quick, clean stop.
    let (took, code) = server.terminate();
    assert_eq!(code, Some(0));
    assert!(took <= SHUTDOWN_TIMEOUT + SLACK, "idle stop took {took:?}");
}

/// The first `n` orders of the load, once stored.
async fn wait_for_orders(db: &TestDb, merchant: &str, n: usize) -> Vec<OrderId> {
    let merchant: coffer_core::MerchantId = merchant.parse().unwrap();
    let mut ids = Vec::new();
    wait_until(
        "orders from the load",
        Duration::from_secs(30),
        async || {
            ids = db
                .store
                .list_orders(&coffer_store::OrderQuery {
                    merchant_id: Some(merchant.clone()),
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.id)
                .collect();
            ids.len() >= n
        },
    )
    .await;
    ids
}

both_backends! {
    sigterm_under_order_load_exits_in_time_and_resumes => sigterm_under_load;
}
