//! TRON catch-up benchmark: the watcher catching up 10,000 blocks of 50 TRC-20 transfers each
//! from the scripted java-tron server (`coffer_chain_tron::scripted`, loopback HTTP), against a
//! bare fetch of the same blocks and transaction infos in the same process, same requests,
//! same concurrency. Ten orders are paid somewhere in the range; each round uses a fresh SQLite
//! database.
//!
//!   cargo bench -p coffer-chain-tron --bench catchup
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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(catchup());
}
