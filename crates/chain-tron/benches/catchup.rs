//! TRON catch-up benchmark: the watcher catching up 10,000 blocks of 50 TRC-20 transfers each
//! from the scripted java-tron server (`coffer_chain_tron::scripted`, loopback HTTP), against a
//! bare fetch of the same blocks and transaction infos in the same process, same requests,
//! same concurrency. Ten orders are paid somewhere in the range; each round uses a fresh SQLite
//! database.
//!
//! Also (`latency`): block solidified → order settled, the watcher polling every second.
//!
//!   cargo bench -p coffer-chain-tron --bench catchup                 # both
//!   cargo bench -p coffer-chain-tron --bench catchup -- catchup
//!   cargo bench -p coffer-chain-tron --bench catchup -- latency
//!   COFFER_BENCH_BLOCKS=2000 COFFER_BENCH_ROUNDS=1 cargo bench -p coffer-chain-tron --bench catchup

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)] // timings, not money

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_chain_tron::scripted::ScriptedChain;
use coffer_chain_tron::{TronAddress, TronMethod, TronRailChain, TronWatcher, USDT_MAINNET};
use coffer_core::{AssetId, ChainKind, FixedRates, OrderStatus};
use coffer_engine::{AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder};
use coffer_rail::{RailChain, Step};
use futures_util::StreamExt;
use rust_decimal::Decimal;

/// m/44'/195'/0' of the mnemonic "abandon … about".
const XPUB: &str = "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd";
const PER_BLOCK: u32 = 50;
const ORDERS: u32 = 10;

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

async fn setup(dir: &std::path::Path, rail: &TronRailChain) -> (Engine, coffer_core::MerchantId) {
    let store = coffer_store::open(None, dir, 4).await.unwrap();
    store.migrate().await.unwrap();
    let engine = Engine::new(EngineParts {
        store,
        rates: Arc::new(FixedRates::new()),
        assets: Arc::new(AssetRegistry::new(vec![rail.chain()], rail.assets()).unwrap()),
        methods: Methods::default().with(ChainKind::Tron, Arc::new(TronMethod)),
        clock: Arc::new(coffer_engine::SystemClock),
        settings: Arc::new(EngineSettings::default()),
    });
    let (m, _) = engine.create_merchant("bench").await.unwrap();
    engine.set_wallet(&m.id, "tron", XPUB).await.unwrap();
    (engine, m.id)
}

async fn catchup() {
    let blocks = env("COFFER_BENCH_BLOCKS", 10_000);
    let rounds = env("COFFER_BENCH_ROUNDS", 3);
    let usdt: TronAddress = USDT_MAINNET.parse().unwrap();
    // The orders' addresses: indexes 0..ORDERS of the xpub, as every fresh database hands out.
    let addresses: Vec<String> = (0..ORDERS)
        .map(|i| coffer_chain_tron::method::derive(XPUB, i).unwrap().address)
        .collect();
    let pays = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let at = (i as u64 + 1) * blocks / (u64::from(ORDERS) + 1);
            (at.max(1), a.parse().unwrap(), 1_000_000u128)
        })
        .collect();
    let chain = ScriptedChain::generated("2b6653dc", blocks, PER_BLOCK, usdt, pays);
    let (url, _server) = chain.serve().await.unwrap();
    let entry: toml::Value = toml::from_str(&format!(
        "id = \"tron\"\nkind = \"tron\"\nrpc = [\"{url}\"]\npoll_interval = \"10ms\"\nstart_block = 1\n"
    ))
    .unwrap();
    let rail = TronRailChain::parse(0, &entry).unwrap();

    for round in 1..=rounds {
        let dir = tempfile::tempdir().unwrap();
        let (engine, m) = setup(dir.path(), &rail).await;
        let mut orders = Vec::new();
        for _ in 0..ORDERS {
            let o = engine
                .create_order(
                    &m,
                    NewOrder {
                        amount: Decimal::from(1),
                        currency: "USD".into(),
                        asset: Some(AssetId::from_str("tron:USDT").unwrap()),
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
        let got: Vec<String> = orders
            .iter()
            .map(|o| o.target.as_ref().unwrap().address.clone())
            .collect();
        assert_eq!(got, addresses);
        let cfg = rail.watch_config().unwrap().unwrap();
        let (per_request, per_step, concurrency) = (
            cfg.blocks_per_request,
            cfg.blocks_per_step,
            cfg.info_concurrency,
        );
        let mut watcher = TronWatcher::new(engine.clone(), cfg).unwrap();

        // Bare fetch: the same blocks and transaction infos, decoded into the same types, in
        // the watcher's steps, requests and concurrency; nothing matched or stored.
        let api = watcher.source().api().clone();
        let t = Instant::now();
        let mut logs = 0usize;
        let mut from = 1;
        while from <= blocks {
            let to = blocks.min(from + per_step - 1);
            let mut got = Vec::new();
            let mut start = from;
            while start <= to {
                let end = to.min(start + per_request - 1);
                got.extend(api.blocks(start, end + 1).await.unwrap());
                start = end + 1;
            }
            let infos: Vec<_> =
                futures_util::stream::iter(got.iter().map(|b| api.infos(b.number())))
                    .buffered(concurrency)
                    .collect()
                    .await;
            for i in infos {
                logs += i.unwrap().iter().map(|i| i.log.len()).sum::<usize>();
            }
            from = to + 1;
        }
        let bare = t.elapsed().as_secs_f64();

        // Coffer's watcher from its first step (it creates the cursor) to the solidified head.
        let t = Instant::now();
        let mut steps = 0;
        loop {
            steps += 1;
            match watcher.step().await.unwrap() {
                Step::Scanned { to, tip } if to < tip => continue,
                _ => break,
            }
        }
        let coffer = t.elapsed().as_secs_f64();
        let mut settled = 0;
        for o in &orders {
            let o = engine.find_order(&o.id).await.unwrap().unwrap();
            settled += usize::from(o.state.status == OrderStatus::Settled);
        }
        println!(
            "tron catchup round {round}: {blocks} blocks, {logs} Transfer logs: bare fetch {bare:.2} s, Coffer watcher {coffer:.2} s ({steps} steps) = {:.2}× ({settled}/{ORDERS} watched orders settled)",
            coffer / bare
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Block solidified → order settled, with the watcher running its loop at a 1 s poll (as
/// configured by default it polls every 3 s; 1 s is the target setting).
async fn latency() {
    let rounds = env("COFFER_BENCH_LATENCY_ROUNDS", 20) as usize;
    let chain = ScriptedChain::new("2b6653dc");
    chain.mine_empty(3);
    chain.solidify_behind(0);
    let (url, _server) = chain.serve().await.unwrap();
    let entry: toml::Value = toml::from_str(&format!(
        "id = \"tron\"\nkind = \"tron\"\nrpc = [\"{url}\"]\npoll_interval = \"1s\"\n"
    ))
    .unwrap();
    let rail = TronRailChain::parse(0, &entry).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, m) = setup(dir.path(), &rail).await;
    let watcher = TronWatcher::new(engine.clone(), rail.watch_config().unwrap().unwrap()).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(watcher.run(stop_rx));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let usdt: TronAddress = USDT_MAINNET.parse().unwrap();
    let payer = TronAddress::from_account([9; 20]);
    let mut lat = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let o = engine
            .create_order(
                &m,
                NewOrder {
                    amount: Decimal::from(1),
                    currency: "USD".into(),
                    asset: Some(AssetId::from_str("tron:USDT").unwrap()),
                    fixed_stablecoin_rate: true,
                    dialect: "native".into(),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order;
        let t = o.target.as_ref().unwrap();
        let (height, _) = chain.mine(vec![coffer_chain_tron::scripted::ScriptedTx::trc20(
            usdt,
            payer,
            t.address.parse().unwrap(),
            t.amount_due.get(),
        )]);
        chain.mine_empty(18);
        // Seen as processing first (from the blocks above the solidified head).
        loop {
            let now = engine.find_order(&o.id).await.unwrap().unwrap();
            if now.state.status == OrderStatus::Processing {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A phase that varies against the poll timer.
        tokio::time::sleep(Duration::from_millis(137 * (round as u64 % 7))).await;
        chain.solidify(height);
        let solidified = Instant::now();
        loop {
            let now = engine.find_order(&o.id).await.unwrap().unwrap();
            if now.state.status == OrderStatus::Settled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lat.push(solidified.elapsed().as_secs_f64() * 1e3);
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    lat.sort_by(f64::total_cmp);
    let p = |q: usize| lat[(lat.len() * q / 100).min(lat.len() - 1)];
    println!(
        "tron latency: block solidified → order settled at 1 s poll, {rounds} payments: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        p(50),
        p(90),
        lat[lat.len() - 1]
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    if want("catchup") {
        rt.block_on(catchup());
    }
    if want("latency") {
        rt.block_on(latency());
    }
}
