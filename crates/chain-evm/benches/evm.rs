//! EVM rail benchmarks (release). Figures and machine go to docs/benchmarks.md.
//!
//!   cargo bench -p coffer-chain-evm --bench evm -- match      # (a) in-memory log matching
//!   cargo bench -p coffer-chain-evm --bench evm -- catchup    # (b) catch-up vs bare eth_getLogs
//!   cargo bench -p coffer-chain-evm --bench evm -- latency    # (c) block mined → order status
//!   cargo bench -p coffer-chain-evm --bench evm -- watched    # watched-set reload per poll
//!
//! (b) and (c) run a real anvil (COFFER_TEST_ANVIL or tests/evm/node_modules) and a SQLite database
//! in a temp dir.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Timing arithmetic only; no money is computed here.
#![allow(clippy::float_arithmetic)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use coffer_chain_evm::matcher::{RawLog, TRANSFER_TOPIC, Tokens, Watched, match_log};
use coffer_chain_evm::testtools::Anvil;
use coffer_chain_evm::testtools::devchain::DevChain;
use coffer_chain_evm::{EvmMethod, EvmWatchConfig, EvmWatcher, Step};
use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, Network,
    OrderStatus,
};
use coffer_engine::{
    AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder, SystemClock,
};
use rust_decimal::Decimal;
use serde_json::json;

/// The test mnemonic's account xpub (see tests/derive.rs).
const XPUB: &str = "xpub6BemYiVNp19ZzUSZng6uUnx3dQm5eRwcjTjZh2wBRosHnSF4QNykc8MvSiJcUseh3sA1WL82iquWY2bRBv8Qqsn8ugJK63aLXKyPosCnGUv";

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn address(&mut self) -> Address {
        let mut b = [0u8; 20];
        for chunk in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Address::from(b)
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn bench_match() {
    const N: usize = 1_000_000;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let token: Address = "0x55d398326f99059fF775485246999027B3197955"
        .parse()
        .unwrap();
    let tokens = Tokens::new([(token, AssetId::from_str("bsc:USDT").unwrap())]);
    let before = rss_kib();
    // monitored for as long as the benchmark runs
    let until = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let mut watched = Watched::with_capacity(N);
    let mut addrs = Vec::with_capacity(N);
    for _ in 0..N {
        let a = rng.address();
        watched.insert(a, a.to_checksum(None), until);
        addrs.push(a);
    }
    let after = rss_kib();
    // 1,000,000 Transfer logs: 1 in 100 pays a watched address, the rest go elsewhere.
    let amount = U256::from(1_000_000u64).to_be_bytes::<32>();
    let mut logs = Vec::with_capacity(N);
    for i in 0..N {
        let to = if i % 100 == 0 {
            addrs[(rng.next() as usize) % N]
        } else {
            rng.address()
        };
        let from = rng.address();
        logs.push([TRANSFER_TOPIC, from.into_word(), to.into_word()]);
    }
    let mut best = f64::MAX;
    let mut hits = 0;
    for _ in 0..5 {
        let start = Instant::now();
        hits = 0;
        for topics in &logs {
            let raw = RawLog {
                contract: token,
                topics,
                data: &amount,
            };
            if match_log(raw, &tokens, &watched).is_some() {
                hits += 1;
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let per_addr = (after.saturating_sub(before) * 1024) / N as u64;
    println!(
        "match: {N} logs against {N} watched addresses: best of 5 {:.1} ms = {:.0} logs/s on one core; {hits} matches; memory ≈ {per_addr} bytes per watched address (RSS {before} → {after} KiB, address + EIP-55 string + end of monitoring + hash slot + expiry index)",
        best * 1e3,
        N as f64 / best
    );
}

fn registry(usdt: Address) -> AssetRegistry {
    let chain = Chain {
        id: ChainId::parse("anvil").unwrap(),
        kind: ChainKind::Evm,
        network: Network::Regtest,
        name: "anvil".into(),
        confirmations: 1,
        evm_chain_id: Some(31337),
    };
    AssetRegistry::new(
        vec![chain],
        vec![
            Asset {
                id: AssetId::from_str("anvil:ETH").unwrap(),
                kind: AssetKind::Native,
                decimals: Decimals::new(18).unwrap(),
                display_decimals: 6,
                usd_stablecoin: false,
            },
            Asset {
                id: AssetId::from_str("anvil:USDT").unwrap(),
                kind: AssetKind::Token {
                    contract: usdt.to_checksum(None),
                },
                decimals: Decimals::new(6).unwrap(),
                display_decimals: 6,
                usd_stablecoin: true,
            },
        ],
    )
    .unwrap()
}

async fn setup(dir: &std::path::Path, usdt: Address) -> (Engine, coffer_core::MerchantId) {
    let store = coffer_store::open(None, dir, 4).await.unwrap();
    store.migrate().await.unwrap();
    let engine = Engine::new(EngineParts {
        store,
        rates: Arc::new(FixedRates::new()),
        assets: Arc::new(registry(usdt)),
        methods: Methods::default().with(ChainKind::Evm, Arc::new(EvmMethod)),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings::default()),
    });
    let (m, _) = engine.create_merchant("bench").await.unwrap();
    engine.set_wallet(&m.id, "anvil", XPUB).await.unwrap();
    (engine, m.id)
}

async fn new_order(engine: &Engine, m: &coffer_core::MerchantId) -> coffer_core::Order {
    engine
        .create_order(
            m,
            NewOrder {
                amount: Decimal::from(1),
                currency: "USD".into(),
                asset: Some(AssetId::from_str("anvil:USDT").unwrap()),
                fixed_stablecoin_rate: true,
                dialect: "native".into(),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order
}

fn watch_cfg(url: &str, usdt: Address, poll: Duration) -> EvmWatchConfig {
    let mut cfg = EvmWatchConfig::new(ChainId::parse("anvil").unwrap(), vec![url.to_owned()]);
    cfg.watch.poll_interval = poll;
    cfg.tokens = Tokens::new([(usdt, AssetId::from_str("anvil:USDT").unwrap())]);
    cfg.native = Some(AssetId::from_str("anvil:ETH").unwrap());
    cfg
}

async fn bench_catchup() {
    // COFFER_BENCH_BLOCKS shortens the run (default: the 10,000 blocks of the target);
    // COFFER_BENCH_ROUNDS: how many (bare, Coffer) pairs are measured on the generated chain.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let blocks = env("COFFER_BENCH_BLOCKS", 10_000);
    let rounds = env("COFFER_BENCH_ROUNDS", 3);
    const PER_BLOCK: u64 = 20;
    const ORDERS: u64 = 10;
    // anvil's mining slows down as its chain and state grow; keeping no historical states
    // (`--prune-history`) and paying a fixed pool of recipients (the state stops growing)
    // keeps generation time manageable. Blocks, receipts and logs are all kept.
    let anvil = Anvil::start(&["--prune-history"]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    // The watched orders' addresses: index 0..ORDERS of the xpub, the same in every round's
    // fresh database.
    let addresses: Vec<String> = {
        let dir = tempfile::tempdir().unwrap();
        let (engine, m) = setup(dir.path(), usdt).await;
        let mut v = Vec::new();
        for _ in 0..ORDERS {
            v.push(new_order(&engine, &m).await.target.unwrap().address);
        }
        v
    };
    let start_height = chain.tip().await.unwrap() + 1;

    // Generation (not timed against anything): one transferBatch per block, i.e. 20 real
    // ERC-20 Transfer logs per block, to fresh addresses and (10 of them) to the orders.
    chain.rpc("evm_setAutomine", json!([false])).await.unwrap();
    let mut rng = Rng(42);
    let pool: Vec<Address> = (0..500).map(|_| rng.address()).collect();
    let every = (blocks / ORDERS).max(1);
    let t0 = Instant::now();
    let mut lap = Instant::now();
    for b in 0..blocks {
        let mut to = Vec::with_capacity(PER_BLOCK as usize);
        for i in 0..PER_BLOCK {
            if b % every == 0 && i == 0 && b / every < ORDERS {
                to.push(addresses[(b / every) as usize].parse::<Address>().unwrap());
            } else {
                to.push(pool[(rng.next() % pool.len() as u64) as usize]);
            }
        }
        send_batch(&chain, usdt, to).await.unwrap();
        chain.rpc("evm_mine", json!([])).await.unwrap();
        if (b + 1) % 1_000 == 0 {
            eprintln!(
                "generated {} blocks ({:.1} s for the last 1,000)",
                b + 1,
                lap.elapsed().as_secs_f64()
            );
            lap = Instant::now();
        }
    }
    chain.rpc("evm_setAutomine", json!([true])).await.unwrap();
    let tip = chain.tip().await.unwrap();
    assert_eq!(tip + 1 - start_height, blocks, "one block per batch");
    eprintln!(
        "generated {blocks} blocks × {PER_BLOCK} transfers in {:.0} s",
        t0.elapsed().as_secs_f64()
    );

    for round in 1..=rounds {
        let dir = tempfile::tempdir().unwrap();
        let (engine, m) = setup(dir.path(), usdt).await;
        let mut orders = Vec::new();
        for _ in 0..ORDERS {
            orders.push(new_order(&engine, &m).await);
        }
        assert_eq!(
            orders
                .iter()
                .map(|o| o.target.as_ref().unwrap().address.clone())
                .collect::<Vec<_>>(),
            addresses
        );
        let mut cfg = watch_cfg(&anvil.url(), usdt, Duration::from_millis(250));
        cfg.watch.start_height = Some(start_height);
        // profiling knobs: COFFER_BENCH_NATIVE=0 leaves the native coin out (no block bodies),
        // COFFER_BENCH_BATCH sets the blocks per JSON-RPC batch
        if env("COFFER_BENCH_NATIVE", 1) == 0 {
            cfg.native = None;
        }
        cfg.block_batch = env("COFFER_BENCH_BATCH", cfg.block_batch);
        let mut watcher = EvmWatcher::new(engine.clone(), cfg).unwrap();

        // bare eth_getLogs of the same range, same 2,000-block chunks as the watcher
        let rpc = watcher.source().rpc().clone();
        let t = Instant::now();
        let mut n = 0;
        let mut from = start_height;
        while from <= tip {
            let to = tip.min(from + 1_999);
            n += rpc.transfer_logs(&[usdt], from, to).await.unwrap().len();
            from = to + 1;
        }
        let bare = t.elapsed().as_secs_f64();

        // Coffer's watcher from its first step (it creates the cursor) to the tip
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
        if env("COFFER_BENCH_PROFILE", 0) == 1 {
            // the parts on their own: block bodies (batched as the watcher does), headers only
            for full in [true, false] {
                let t = Instant::now();
                let mut from = start_height;
                while from <= tip {
                    let to = tip.min(from + 99);
                    rpc.blocks(from, to, full).await.unwrap();
                    from = to + 1;
                }
                println!(
                    "  profile: eth_getBlockByNumber(full={full}) of the range in 100-block batches: {:.2} s",
                    t.elapsed().as_secs_f64()
                );
            }
        }
        let mut settled = 0;
        for o in &orders {
            let o = engine.find_order(&o.id).await.unwrap().unwrap();
            settled += usize::from(o.state.status == OrderStatus::Settled);
        }
        println!(
            "catchup round {round}: {} blocks, {n} Transfer logs: bare eth_getLogs {:.2} s, Coffer watcher {:.2} s ({steps} steps) = {:.2}× ({settled}/{ORDERS} watched orders settled)",
            tip + 1 - start_height,
            bare,
            coffer,
            coffer / bare
        );
    }
}

/// `transferBatch(to, 1 USDT)` from the payer: one transaction, one Transfer log per recipient.
async fn send_batch(
    chain: &DevChain,
    token: Address,
    to: Vec<Address>,
) -> Result<serde_json::Value, coffer_chain_evm::testtools::devchain::DevError> {
    use alloy::sol_types::SolCall;
    alloy::sol! { function transferBatch(address[] to, uint256 value) returns (bool); }
    let data = transferBatchCall {
        to,
        value: U256::from(1_000_000u64),
    }
    .abi_encode();
    let tx = json!({"from": coffer_chain_evm::testtools::devchain::PAYER,
        "to": token.to_checksum(None), "data": format!("0x{}", alloy::hex::encode(data)), "gas": "0x200000"});
    chain.rpc("eth_sendTransaction", json!([tx])).await
}

async fn bench_latency() {
    const ROUNDS: usize = 40;
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, m) = setup(dir.path(), usdt).await;
    let watcher = EvmWatcher::new(
        engine.clone(),
        watch_cfg(&anvil.url(), usdt, Duration::from_millis(250)),
    )
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(watcher.run(stop_rx));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut lat = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let o = new_order(&engine, &m).await;
        let t = o.target.as_ref().unwrap();
        // random phase against the poll timer
        tokio::time::sleep(Duration::from_millis(37)).await;
        let _hash: B256 = chain
            .pay_token(usdt, &t.address, t.amount_due.get())
            .await
            .unwrap();
        let mined = Instant::now();
        loop {
            let now = engine.find_order(&o.id).await.unwrap().unwrap();
            if now.state != o.state {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lat.push(mined.elapsed().as_secs_f64() * 1e3);
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    lat.sort_by(f64::total_cmp);
    let p = |q: usize| lat[(lat.len() * q / 100).min(lat.len() - 1)];
    println!(
        "latency: block mined → order status changed at 250 ms poll, {ROUNDS} payments: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        p(50),
        p(90),
        lat[lat.len() - 1]
    );
}

/// The watched set's reload per poll: in full (what every poll did before) vs the incremental
/// query of orders updated since the previous poll, with COFFER_BENCH_ORDERS open orders.
async fn bench_watched() {
    let n: usize = std::env::var("COFFER_BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let usdt: Address = "0x55d398326f99059fF775485246999027B3197955"
        .parse()
        .unwrap();
    let (engine, m) = setup(dir.path(), usdt).await;
    let t = Instant::now();
    for _ in 0..n {
        new_order(&engine, &m).await;
    }
    eprintln!("created {n} orders in {:.1} s", t.elapsed().as_secs_f64());
    let chain = ChainId::parse("anvil").unwrap();
    let now = engine.now();
    let (mut full, mut full_rows) = (f64::MAX, 0);
    for _ in 0..5 {
        let t = Instant::now();
        full_rows = engine.watched_addresses(&chain, now).await.unwrap().len();
        full = full.min(t.elapsed().as_secs_f64());
    }
    // one poll later: nothing changed since the previous load
    let later = now + time::Duration::seconds(3);
    let (mut delta, mut delta_rows) = (f64::MAX, 0);
    for _ in 0..5 {
        let t = Instant::now();
        delta_rows = engine
            .watched_addresses_since(&chain, later, now + time::Duration::seconds(1))
            .await
            .unwrap()
            .len();
        delta = delta.min(t.elapsed().as_secs_f64());
    }
    println!(
        "watched: {n} open orders (SQLite): full reload {:.1} ms ({full_rows} rows), incremental {:.2} ms ({delta_rows} rows), best of 5",
        full * 1e3,
        delta * 1e3
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = which.is_empty();
    let want = |name: &str| all || which.iter().any(|w| w == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if want("match") {
        bench_match();
    }
    if want("latency") {
        rt.block_on(bench_latency());
    }
    if want("watched") {
        rt.block_on(bench_watched());
    }
    if want("catchup") {
        rt.block_on(bench_catchup());
    }
}
