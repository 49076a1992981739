#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Benchmark: blocks/s while the Bitcoin watcher catches up 1,000 regtest blocks (with
//! payments to watched addresses in them) from the real bcoin node, through the engine into a
//! fresh SQLite database (or PostgreSQL with COFFER_TEST_DATABASE_URL set, as the tests).
//!
//! ```sh
//! cargo run --release -p coffer-chain-bitcoin --example catch_up
//! # BENCH_BLOCKS=1000 BENCH_PAYMENTS=50 BENCH_BATCH=25 to change the shape
//! ```

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_chain_bitcoin::bitcoin::{BlockHash, Network as BtcNetwork};
use coffer_chain_bitcoin::regtest::RegtestNode;
use coffer_chain_bitcoin::{BitcoinMethod, BitcoinWatchConfig, BitcoinWatcher, RpcConfig, Step};
use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, Network,
    OrderStatus, Price,
};
use coffer_engine::{
    AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder, SystemClock,
};
use rust_decimal::Decimal;
use serde_json::json;

const TPUB: &str = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let blocks = env_u64("BENCH_BLOCKS", 1000);
    let payments = env_u64("BENCH_PAYMENTS", 50).clamp(1, blocks);
    let batch = env_u64("BENCH_BATCH", 25);

    let db = coffer_testkit::fresh_sqlite().await.unwrap();
    let node = RegtestNode::start().unwrap();
    let rpc = node.client(None).unwrap();
    let wallet = node.client(Some("coffer")).unwrap();
    let miner: String = wallet.call("getnewaddress", json!([])).await.unwrap();
    let mine = async |n: u64| {
        let _: Vec<BlockHash> = rpc
            .call("generatetoaddress", json!([n, miner]))
            .await
            .unwrap();
    };
    mine(110).await;

    let chain = Chain {
        id: ChainId::parse("bitcoin").unwrap(),
        kind: ChainKind::Bitcoin,
        network: Network::Regtest,
        name: "bitcoin".into(),
        confirmations: 1,
        evm_chain_id: None,
    };
    let btc = AssetId::from_str("bitcoin:BTC").unwrap();
    let engine = Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new().with(
            "BTC",
            "USD",
            Price::new(Decimal::from(50_000)).unwrap(),
        )),
        assets: Arc::new(
            AssetRegistry::new(
                vec![chain],
                vec![Asset {
                    id: btc.clone(),
                    kind: AssetKind::Native,
                    decimals: Decimals::new(8).unwrap(),
                    display_decimals: 8,
                    usd_stablecoin: false,
                }],
            )
            .unwrap(),
        ),
        methods: Methods::default().with(ChainKind::Bitcoin, Arc::new(BitcoinMethod::new())),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings::default()),
    });
    let (m, _) = engine.create_merchant("Bench").await.unwrap();
    engine.set_wallet(&m.id, "bitcoin", TPUB).await.unwrap();

    let mut cfg = BitcoinWatchConfig::new(
        ChainId::parse("bitcoin").unwrap(),
        btc.clone(),
        BtcNetwork::Regtest,
        RpcConfig {
            url: node.url(),
            user: node.user.clone(),
            password: node.password.clone(),
            timeout: Duration::from_secs(30),
        },
    );
    cfg.max_blocks_per_batch = batch;
    let mut watcher = BitcoinWatcher::new(engine.clone(), cfg).unwrap();
    // The cursor at the current tip: everything mined from here is caught up afterwards.
    while !matches!(watcher.step().await.unwrap(), Step::Idle { .. }) {}
    let start = db
        .store
        .chain_cursor(&ChainId::parse("bitcoin").unwrap())
        .await
        .unwrap()
        .unwrap()
        .height;

    // The downtime: `blocks` blocks, a payment to a watched address every blocks/payments.
    let every = blocks / payments;
    let mut orders = Vec::new();
    let mut mined = 0;
    let setup = Instant::now();
    for _ in 0..payments {
        let o = engine
            .create_order(
                &m.id,
                NewOrder {
                    amount: Decimal::from(25),
                    currency: "USD".into(),
                    asset: Some(btc.clone()),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order;
        let _: String = wallet
            .call(
                "sendtoaddress",
                json!([o.target.as_ref().unwrap().address, "0.0005"]),
            )
            .await
            .unwrap();
        mine(every).await;
        mined += every;
        orders.push(o);
    }
    if mined < blocks {
        mine(blocks - mined).await;
    }
    eprintln!(
        "mined {blocks} blocks with {payments} payments in {:.1?}",
        setup.elapsed()
    );

    let began = Instant::now();
    let mut steps = 0u32;
    loop {
        steps += 1;
        match watcher.step().await.unwrap() {
            Step::Scanned { to, tip } if to < tip => {}
            _ => break,
        }
    }
    let took = began.elapsed();
    for o in &orders {
        let stored = db.store.find_order(&o.id).await.unwrap().unwrap();
        assert_eq!(stored.state.status, OrderStatus::Settled, "{}", o.id);
    }
    let end = db
        .store
        .chain_cursor(&ChainId::parse("bitcoin").unwrap())
        .await
        .unwrap()
        .unwrap()
        .height;
    let caught = end - start;
    let per_sec = u128::from(caught) * 1_000_000 / took.as_micros().max(1);
    println!(
        "caught up {caught} blocks ({payments} payments, {steps} steps of ≤ {batch} blocks) in {took:.2?}: {per_sec} blocks/s"
    );
}
