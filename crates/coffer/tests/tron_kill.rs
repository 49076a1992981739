//! The real `coffer` binary watching a scripted TRON chain (java-tron's documented JSON served
//! by `coffer_chain_tron::scripted`; no TRON node installs here), SIGKILLed while it catches up
//! and started again: no payment lost, none counted twice. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod common;

use coffer_chain_tron::scripted::{ScriptedChain, ScriptedTx};
use coffer_chain_tron::{TronAddress, TronMethod, TronRailChain, USDT_MAINNET};
use coffer_core::{AssetId, ChainId, ChainKind, FixedRates, MerchantId, Order, OrderStatus, Price};
use coffer_engine::{AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder};
use coffer_rail::RailChain;
use coffer_testkit::{TestDb, both_backends};
use common::{coffer, sigkill, status, wait_until};
use rust_decimal::Decimal;

/// m/44'/195'/0' of the mnemonic "abandon … about".
const TRON_XPUB: &str = "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd";

fn entry(rpc: &str) -> String {
    format!(
        "[[chains]]\nid = \"tron\"\nkind = \"tron\"\nrpc = [\"{rpc}\"]\npoll_interval = \"100ms\"\n"
    )
}

fn config(dir: &Path, rpc: &str) -> std::path::PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n\n{}",
            entry(rpc)
        ),
    )
    .unwrap();
    path
}

/// The test's engine over the same database, chain and assets as the binary's.
fn engine(db: &TestDb, rpc: &str) -> Engine {
    let text = entry(rpc);
    let table: toml::Value = toml::from_str(&text).unwrap();
    let rail = TronRailChain::parse(0, &table["chains"][0]).unwrap();
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new().with(
            "TRX",
            "USD",
            Price::new(Decimal::from_str("0.25").unwrap()).unwrap(),
        )),
        assets: Arc::new(AssetRegistry::new(vec![rail.chain()], rail.assets()).unwrap()),
        methods: Methods::default().with(ChainKind::Tron, Arc::new(TronMethod)),
        clock: Arc::new(coffer_engine::SystemClock),
        settings: Arc::new(EngineSettings::default()),
    })
}

fn pay(o: &Order) -> ScriptedTx {
    let t = o.target.as_ref().unwrap();
    let to: TronAddress = t.address.parse().unwrap();
    let payer: TronAddress = "TPL66VK2gCXNCD7EJg9pgJRfqcRazjhUZY".parse().unwrap();
    if t.asset.symbol().as_str() == "TRX" {
        ScriptedTx::trx(payer, to, u64::try_from(t.amount_due.get()).unwrap())
    } else {
        ScriptedTx::trc20(USDT_MAINNET.parse().unwrap(), payer, to, t.amount_due.get())
    }
}

/// Blocks full of USDT transfers to other people: each needs its transaction infos read.
fn busy_blocks(chain: &ScriptedChain, n: u64) {
    let usdt: TronAddress = USDT_MAINNET.parse().unwrap();
    for b in 0..n {
        let txs = (0..20u8)
            .map(|i| {
                let from = TronAddress::from_account([i; 20]);
                let to = TronAddress::from_account([
                    b as u8 ^ 0x5a,
                    i,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                ]);
                ScriptedTx::trc20(usdt, from, to, 1_000_000)
            })
            .collect();
        chain.mine(txs);
    }
    chain.solidify_behind(0);
}

async fn killed_and_restarted(db: &TestDb) {
    let chain = ScriptedChain::new("2b6653dc");
    chain.mine_empty(3);
    chain.solidify_behind(0);
    let (url, _server) = chain.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url);

    let created = common::cli_merchant(&cfg, db, "Tron shop");
    let merchant: MerchantId = created["merchant_id"].as_str().unwrap().parse().unwrap();
    common::cli_wallet(&cfg, db, merchant.as_str(), "tron", TRON_XPUB);

    let engine = engine(db, &url);
    let mut orders = Vec::new();
    for i in 0..8u32 {
        let asset = if i % 4 == 3 { "TRX" } else { "USDT" };
        let o = engine
            .create_order(
                &merchant,
                NewOrder {
                    amount: Decimal::from(10 + i),
                    currency: "USD".into(),
                    asset: Some(AssetId::from_str(&format!("tron:{asset}")).unwrap()),
                    fixed_stablecoin_rate: true,
                    dialect: "native".into(),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order;
        assert!(o.target.as_ref().unwrap().address.starts_with('T'));
        orders.push(o);
    }

    // First run: the watcher starts at the solidified head and sees the first payments.
    let mut serve = common::spawn_serve(coffer(&cfg, db));
    let chain_id = ChainId::parse("tron").unwrap();
    wait_until(
        "the watcher's cursor",
        Duration::from_secs(30),
        async || db.store.chain_cursor(&chain_id).await.unwrap().is_some(),
    )
    .await;
    for o in &orders[..4] {
        chain.mine(vec![pay(o)]);
        busy_blocks(&chain, 5);
    }
    wait_until(
        "the first order settled",
        Duration::from_secs(30),
        async || status(&engine, &orders[0]).await == OrderStatus::Settled,
    )
    .await;
    sigkill(&mut serve);

    // While it is down: more payments among many busy blocks.
    for o in &orders[4..] {
        chain.mine(vec![pay(o)]);
        busy_blocks(&chain, 150);
    }
    let before = db
        .store
        .chain_cursor(&chain_id)
        .await
        .unwrap()
        .unwrap()
        .height;
    // Second run, killed while catching up: once its first batch is durable, in the middle
    // of scanning the next.
    let mut serve = common::spawn_serve(coffer(&cfg, db));
    wait_until(
        "the first batch of the catch-up",
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
    eprintln!(
        "killed while catching up: cursor {before} -> {after}, solidified head {}",
        chain.solid()
    );
    assert!(after < chain.solid(), "killed before it caught up");

    // Third run catches up.
    let mut serve = common::spawn_serve(coffer(&cfg, db));
    for o in &orders {
        wait_until("every order settled", Duration::from_secs(90), async || {
            status(&engine, o).await == OrderStatus::Settled
        })
        .await;
    }
    sigkill(&mut serve);

    common::assert_each_paid_once(db, &orders).await;
}

both_backends! {
    sigkill_mid_scan_loses_nothing_counts_nothing_twice => killed_and_restarted;
}
