//! scale-bench: payments are seen within seconds while orders pour in, on a database that
//! already holds a long history (issue 25, item 5). The product as operators run it:
//!
//! - a database seeded with `--orders` orders (a million by default) through the store's own
//!   bulk path (`coffer_store::seed`), its history ending now, so that the newest ~10,000
//!   orders are still watched — on the chain the benchmark pays on (`bsc`, served by anvil);
//! - the release `coffer serve` on it, watching a real anvil that mines a block every second
//!   (`confirmations = 1`, `poll_interval = "1s"`);
//! - orders through the API at a fixed rate (`--rate`, open loop: each request has its
//!   planned send time, and latency counts from it, so a stalled server cannot hide);
//! - a payment every second to one of the newest orders, each timed from the moment its
//!   transaction is in a block on the node to the moment the API shows the order settled;
//! - `--rail bitcoin`: the same with BTC orders on the seed's second chain (`btc`), watched on
//!   the bcoin regtest node (tools/bitcoin-regtest), a block mined every second;
//! - every 200 ms: the node's tip and the watcher's cursor (`/metrics`), the server's RSS,
//!   the SQLite WAL's size.
//!
//! Afterwards: SIGTERM and the time to exit, and the orders in the database counted against
//! those the API acknowledged.
//!
//! ```text
//! cargo build --release -p coffer -p coffer-bench
//! target/release/scale-bench --db sqlite
//! scripts/with-postgres.sh target/release/scale-bench --db postgres
//! target/release/scale-bench --db sqlite --rail bitcoin
//! ```

#![allow(clippy::float_arithmetic)] // rates and latencies for people to read, not money

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use coffer_bench::product::{
    EVM_XPUB, Product, connect, cpu_seconds, exchange, get, load_average, metric, post_json,
    rss_bytes, tempdir,
};
use coffer_chain_bitcoin::BitcoindRpc;
use coffer_chain_bitcoin::regtest::RegtestNode;
use coffer_chain_evm::testtools::Anvil;
use coffer_chain_evm::testtools::devchain::{Address, DevChain};
use coffer_store::seed::{self, Volume};
use coffer_store::{PostgresBackend, SqlStore, SqliteBackend, Store};
use serde_json::{Value, json};
use sqlx::Connection;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RailKind {
    Evm,
    Bitcoin,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Db {
    Sqlite,
    Postgres,
}

#[derive(Parser)]
struct Args {
    /// The `coffer` binary (a release build).
    #[arg(long, default_value = "target/release/coffer")]
    coffer: PathBuf,
    #[arg(long, value_enum, default_value = "sqlite")]
    db: Db,
    /// Which chain the orders are on and the payments are made: an EVM chain (USDT on
    /// anvil) or Bitcoin (BTC on the bcoin regtest node of tools/bitcoin-regtest).
    #[arg(long, value_enum, default_value = "evm")]
    rail: RailKind,
    /// PostgreSQL server to create the benchmark's database on (`scripts/with-postgres.sh`
    /// sets it).
    #[arg(long, env = "COFFER_TEST_PG_URL")]
    pg_url: Option<String>,
    /// Orders already in the database before the load starts.
    #[arg(long, default_value_t = 1_000_000)]
    orders: u64,
    /// Seconds of order load (and of payments, one a second).
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Orders per second asked of the API.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Kept-alive connections the load is spread over.
    #[arg(long, default_value_t = 64)]
    connections: u64,
    /// Keep the data directory (and the PostgreSQL database) afterwards.
    #[arg(long)]
    keep: bool,
}

/// Account tpub (m/84'/1'/0') of the BIP-84 mnemonic "abandon … about", for the bench
/// merchant's Bitcoin wallet.
const TPUB: &str = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M";

/// The node the server watches and the benchmark pays through; it makes a block a second.
#[allow(clippy::large_enum_variant)] // one per run
enum Node {
    /// USDT on anvil, on the seed's main chain (`bsc`).
    Evm {
        anvil: Anvil,
        chain: DevChain,
        usdt: Address,
    },
    /// BTC on bcoin, on the seed's second chain (`btc`); blocks made by [`Node::mine_every_second`].
    Bitcoin {
        node: RegtestNode,
        rpc: BitcoindRpc,
        wallet: BitcoindRpc,
        miner: String,
    },
}

impl Node {
    async fn start(rail: RailKind) -> Result<Self> {
        match rail {
            RailKind::Evm => {
                let anvil = Anvil::start(&[])?;
                let chain = DevChain::new(&anvil.url())?;
                let usdt = chain.deploy_token("Tether USD", "USDT", 6).await?;
                // From now on a block a second, whatever is sent.
                chain.rpc("evm_setAutomine", json!([false])).await?;
                chain.rpc("evm_setIntervalMining", json!([1])).await?;
                Ok(Self::Evm { anvil, chain, usdt })
            }
            RailKind::Bitcoin => {
                let node = RegtestNode::start()?;
                let rpc = node.client(None)?;
                let wallet = node.client(Some("coffer"))?;
                let miner: String = wallet.call("getnewaddress", json!([])).await?;
                // Mature coinbase outputs to pay from.
                let _: Value = rpc.call("generatetoaddress", json!([110, miner])).await?;
                Ok(Self::Bitcoin {
                    node,
                    rpc,
                    wallet,
                    miner,
                })
            }
        }
    }

    fn chain(&self) -> &'static str {
        match self {
            Self::Evm { .. } => seed::CHAIN,
            Self::Bitcoin { .. } => seed::OTHER_CHAIN,
        }
    }

    fn asset(&self) -> String {
        match self {
            Self::Evm { .. } => format!("{}:USDT", seed::CHAIN),
            Self::Bitcoin { .. } => format!("{}:BTC", seed::OTHER_CHAIN),
        }
    }

    fn xpub(&self) -> &'static str {
        match self {
            Self::Evm { .. } => EVM_XPUB,
            Self::Bitcoin { .. } => TPUB,
        }
    }

    fn config(&self) -> String {
        match self {
            Self::Evm { chain: _, usdt, .. } => format!(
                "[[chains]]\nid = \"{}\"\nkind = \"evm\"\nnetwork = \"regtest\"\nchain_id = 31337\n\
                 rpc = [\"{}\"]\nconfirmations = 1\npoll_interval = \"1s\"\n\
                 native = {{ symbol = \"ETH\", decimals = 18 }}\n[[chains.tokens]]\nsymbol = \"USDT\"\n\
                 contract = \"{}\"\ndecimals = 6\n",
                self.chain(),
                self.url(),
                usdt.to_checksum(None)
            ),
            Self::Bitcoin { node, .. } => format!(
                "[rates.fixed]\n\"BTC/USD\" = \"50000\"\n\n\
                 [[chains]]\nid = \"{}\"\nkind = \"bitcoin\"\nnetwork = \"regtest\"\n\
                 rpc = [\"{}\"]\nrpc_user = \"{}\"\nrpc_password = \"{}\"\n\
                 confirmations = 1\npoll_interval = \"1s\"\n\
                 native = {{ symbol = \"BTC\", decimals = 8 }}\n",
                self.chain(),
                node.url(),
                node.user,
                node.password
            ),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Evm { anvil, .. } => anvil.url(),
            Self::Bitcoin { node, .. } => node.url(),
        }
    }

    async fn tip(&self) -> Result<u64> {
        Ok(match self {
            Self::Evm { chain, .. } => chain.tip().await?,
            Self::Bitcoin { rpc, .. } => rpc.call("getblockcount", json!([])).await?,
        })
    }

    /// Pay `amount` base units to `address`; the transaction's id.
    async fn pay(&self, address: &str, amount: u128) -> Result<String> {
        Ok(match self {
            Self::Evm { chain, usdt, .. } => {
                chain.pay_token(*usdt, address, amount).await?.to_string()
            }
            Self::Bitcoin { wallet, .. } => {
                let btc = format!("{}.{:08}", amount / 100_000_000, amount % 100_000_000);
                wallet.call("sendtoaddress", json!([address, btc])).await?
            }
        })
    }

    /// Whether `tx` is in a block.
    async fn mined(&self, tx: &str) -> Result<bool> {
        Ok(match self {
            Self::Evm { chain, .. } => !chain
                .rpc("eth_getTransactionReceipt", json!([tx]))
                .await?
                .is_null(),
            Self::Bitcoin { wallet, .. } => {
                let t: Value = wallet.call("gettransaction", json!([tx])).await?;
                t["confirmations"].as_u64().unwrap_or(0) >= 1
            }
        })
    }

    /// Bitcoin: a block a second until `stop` (anvil mines by itself).
    async fn mine_every_second(&self, stop: &AtomicBool) -> Result<()> {
        if let Self::Bitcoin { rpc, miner, .. } = self {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let _: Value = rpc.call("generatetoaddress", json!([1, miner])).await?;
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempdir("scale")?;
    println!(
        "scale-bench: {} with {} orders already in it; {} orders/s asked for {} s over {} connections; load average {}",
        match args.db {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        },
        args.orders,
        args.rate,
        args.seconds,
        args.connections,
        load_average()
    );
    let database = seed_database(&args, &dir).await?;
    let result = run(&args, &dir, database.as_deref()).await;
    if !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
        if let (Some(url), Some(admin)) = (&database, &args.pg_url) {
            drop_database(admin, url).await;
        }
    }
    result
}

/// Seed the history; the PostgreSQL URL of the new database (SQLite: in `dir`).
async fn seed_database(args: &Args, dir: &std::path::Path) -> Result<Option<String>> {
    let volume = Volume {
        orders: args.orders,
        now: time::OffsetDateTime::now_utc(),
        ..Volume::million()
    };
    let started = Instant::now();
    let (report, url) = match args.db {
        Db::Sqlite => {
            let store =
                SqlStore::new(SqliteBackend::open_for_bulk_load(&dir.join("coffer.db")).await?);
            store.migrate().await?;
            let report = seed::seed(&store, &volume).await?;
            store.close().await;
            (report, None)
        }
        Db::Postgres => {
            let admin = args
                .pg_url
                .as_deref()
                .context("--db postgres needs --pg-url or COFFER_TEST_PG_URL")?;
            let name = format!("coffer_scale_{}", coffer_testkit::random_suffix());
            let mut conn = sqlx::PgConnection::connect(admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await?;
            let url = coffer_testkit::with_database(admin, &name);
            let store = SqlStore::new(PostgresBackend::connect(&url, 4).await?);
            store.migrate().await?;
            let report = seed::seed(&store, &volume).await?;
            store.close().await;
            (report, Some(url))
        }
    };
    println!(
        "seeded {} orders ({} addresses, {} payments, {} deposit accounts) in {:.0} s",
        report.orders,
        report.order_addresses,
        report.payments,
        report.deposit_accounts,
        started.elapsed().as_secs_f64()
    );
    Ok(url)
}

async fn drop_database(admin: &str, url: &str) {
    let Some(name) = url
        .rsplit('/')
        .next()
        .map(|n| n.split('?').next().unwrap_or(n))
    else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

/// What the load, the payer and the sampler saw.
#[derive(Default)]
struct Seen {
    /// Orders the API acknowledged (201).
    created: AtomicU64,
    /// Answers other than 201, and broken connections.
    failed: AtomicU64,
    /// Newest acknowledged orders: (id, address, amount in base units).
    recent: Mutex<VecDeque<(String, String, u128)>>,
}

async fn run(args: &Args, dir: &std::path::Path, database_url: Option<&str>) -> Result<()> {
    let node = Arc::new(Node::start(args.rail).await?);
    let config = node.config();
    let product = Product::new(&args.coffer, dir, &config, database_url.map(str::to_owned))?;
    let (merchant, key) = product.merchant(&[(node.chain(), node.xpub())])?;
    let (mut server, addr) = product.serve(&[])?;
    let pid = server.id();
    let stop_mining = Arc::new(AtomicBool::new(false));
    let miner = {
        let (node, stop) = (node.clone(), stop_mining.clone());
        tokio::spawn(async move { node.mine_every_second(&stop).await })
    };
    let outcome = measure(args, dir, &node, addr, pid, &key).await;
    stop_mining.store(true, Ordering::Relaxed);
    miner.await??;
    // SIGTERM, as an operator stops it; how long it takes to exit.
    let stopping = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.wait();
    let stopped_in = stopping.elapsed();
    let created = outcome?;
    println!(
        "shutdown: SIGTERM -> exited in {:.2} s",
        stopped_in.as_secs_f64()
    );
    let stored = count_orders(args.db, dir, database_url, &merchant).await?;
    println!(
        "database: {stored} orders of the benchmark's merchant stored, {created} acknowledged{}",
        if stored == created {
            ""
        } else {
            "  <-- MISMATCH"
        }
    );
    if stored != created {
        bail!("{created} orders acknowledged, {stored} stored");
    }
    Ok(())
}

/// Orders of `merchant` in the database, read after the server stopped.
async fn count_orders(
    db: Db,
    dir: &std::path::Path,
    url: Option<&str>,
    merchant: &str,
) -> Result<u64> {
    const SQL: &str = "SELECT COUNT(*) FROM orders WHERE merchant_id = $1";
    let n: i64 = match (db, url) {
        (Db::Postgres, Some(url)) => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            sqlx::query_scalar(SQL)
                .bind(merchant)
                .fetch_one(&mut conn)
                .await?
        }
        _ => {
            let url = format!("sqlite://{}?mode=ro", dir.join("coffer.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await?;
            sqlx::query_scalar(SQL)
                .bind(merchant)
                .fetch_one(&mut conn)
                .await?
        }
    };
    Ok(u64::try_from(n)?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1_048_576.0)
}

/// The load, the payments and the samples; the number of acknowledged orders.
async fn measure(
    args: &Args,
    dir: &std::path::Path,
    node: &Arc<Node>,
    addr: std::net::SocketAddr,
    pid: u32,
    key: &str,
) -> Result<u64> {
    // The watcher has a cursor once it has stepped.
    let started = Instant::now();
    let label = format!("chain=\"{}\"", node.chain());
    let watched = loop {
        let text = scrape(addr).await.unwrap_or_default();
        if metric(&text, "coffer_chain_cursor_height", Some(&label)).is_some() {
            break metric(&text, "coffer_chain_watched_addresses", Some(&label)).unwrap_or(0.0);
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the watcher never reported a cursor");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rss_start = rss_bytes(pid)?;
    println!(
        "server up: watcher stepped {:.1} s after start, {watched} addresses watched; RSS {}",
        started.elapsed().as_secs_f64(),
        mib(rss_start)
    );

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_seconds(pid)?;
    let began = Instant::now();
    let window = Duration::from_secs(args.seconds);
    let run_id = coffer_testkit::random_suffix();

    // The load: worker k sends requests k, k + W, k + 2W, … each at its planned time.
    let mut load = tokio::task::JoinSet::new();
    for k in 0..args.connections {
        let (seen, key, run_id, asset) =
            (seen.clone(), key.to_owned(), run_id.clone(), node.asset());
        let (rate, workers) = (args.rate, args.connections);
        load.spawn(async move {
            let mut latencies = Vec::new();
            let mut conn = None;
            let mut i = k;
            loop {
                let planned = began + Duration::from_nanos(i * 1_000_000_000 / rate);
                // The load lasts the window: a server slower than the rate leaves the rest
                // of the plan unsent (counted), not a queue that outlasts the run.
                if planned >= began + window || began.elapsed() >= window {
                    break;
                }
                tokio::time::sleep_until(planned.into()).await;
                let body = format!(
                    r#"{{"amount":"10","currency":"USD","asset":"{asset}","fixed_stablecoin_rate":true,"order_no":"scale-{run_id}-{i}"}}"#
                );
                let request = post_json("/api/v1/orders", &key, &body);
                if conn.is_none() {
                    conn = connect(addr).await.ok();
                }
                let answer = match conn.as_mut() {
                    Some(c) => exchange(c, &request).await.ok(),
                    None => None,
                };
                latencies.push(planned.elapsed());
                match answer {
                    Some((201, body)) => {
                        seen.created.fetch_add(1, Ordering::Relaxed);
                        if let Ok(order) = serde_json::from_slice::<Value>(&body)
                            && let (Some(id), Some(address), Some(amount)) = (
                                order["id"].as_str(),
                                order["payment"]["address"].as_str(),
                                order["payment"]["amount_due_base_units"]
                                    .as_str()
                                    .and_then(|a| a.parse::<u128>().ok()),
                            )
                            && let Ok(mut recent) = seen.recent.lock()
                        {
                            recent.push_back((id.to_owned(), address.to_owned(), amount));
                            if recent.len() > 64 {
                                recent.pop_front();
                            }
                        }
                    }
                    Some(_) => {
                        seen.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        seen.failed.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                    }
                }
                i += workers;
            }
            latencies
        });
    }

    // The sampler: the watcher's distance from the tip, the WAL, the RSS.
    let sampler = {
        let (node, stop, label, seen) = (node.clone(), stop.clone(), label.clone(), seen.clone());
        let wal_path = dir.join("coffer.db-wal");
        tokio::spawn(async move {
            // A line a minute: how the run goes, and whether memory levels off.
            let mut next_report = began + Duration::from_secs(60);
            let mut minute_lag = 0u64;
            let (mut lag_blocks, mut lag_seconds, mut wal, mut wal_metric, mut rss) =
                (0u64, 0f64, 0u64, 0f64, 0u64);
            // The slowest part of a watcher step seen: reload, scan, apply (seconds).
            let mut slowest = [0f64; 3];
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let (Ok(tip), Ok(text)) = (node.tip().await, scrape(addr).await) {
                    if let Some(cursor) = metric(&text, "coffer_chain_cursor_height", Some(&label))
                    {
                        let lag = tip.saturating_sub(cursor as u64);
                        lag_blocks = lag_blocks.max(lag);
                        minute_lag = minute_lag.max(lag);
                        samples += 1;
                    }
                    if let Some(s) = metric(&text, "coffer_chain_lag_seconds", Some(&label)) {
                        lag_seconds = lag_seconds.max(s);
                    }
                    if let Some(w) = metric(&text, "coffer_sqlite_wal_bytes", None) {
                        wal_metric = wal_metric.max(w);
                    }
                    for (i, part) in ["reload", "scan", "apply"].iter().enumerate() {
                        let name = format!("coffer_chain_{part}_seconds");
                        if let Some(v) = metric(&text, &name, Some(&label)) {
                            slowest[i] = slowest[i].max(v);
                        }
                    }
                }
                if let Ok(m) = std::fs::metadata(&wal_path) {
                    wal = wal.max(m.len());
                }
                let now_rss = rss_bytes(pid).unwrap_or(0);
                rss = rss.max(now_rss);
                if Instant::now() >= next_report {
                    println!(
                        "  at {:>4.0} s: {} orders acknowledged; watcher at most {minute_lag} blocks behind this minute; RSS {}; WAL {}",
                        began.elapsed().as_secs_f64(),
                        seen.created.load(Ordering::Relaxed),
                        mib(now_rss),
                        mib(std::fs::metadata(&wal_path).map_or(0, |m| m.len())),
                    );
                    next_report += Duration::from_secs(60);
                    minute_lag = 0;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (
                lag_blocks,
                lag_seconds,
                wal,
                wal_metric as u64,
                rss,
                samples,
                slowest,
            )
        })
    };

    // A payment a second to the newest order, each timed from its receipt to the status
    // change the API shows.
    let mut timers = tokio::task::JoinSet::new();
    let mut paid = 0u64;
    let mut unpaid = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while began.elapsed() < window {
        tick.tick().await;
        let newest = seen.recent.lock().ok().and_then(|mut r| r.pop_back());
        let Some((id, address, amount)) = newest else {
            unpaid += 1;
            continue;
        };
        let tx = match node.pay(&address, amount).await {
            Ok(tx) => tx,
            Err(e) => {
                eprintln!("payment to {id} failed: {e}");
                unpaid += 1;
                continue;
            }
        };
        paid += 1;
        let (node, key) = (node.clone(), key.to_owned());
        timers.spawn(async move { time_payment(&node, &tx, addr, &key, &id).await });
    }
    let mut latencies = Vec::new();
    for handle in load.join_all().await {
        latencies.extend(handle);
    }
    let load_elapsed = began.elapsed();
    let cpu = (cpu_seconds(pid)? - cpu_before) / load_elapsed.as_secs_f64();
    let mut seen_in = Vec::new();
    let mut never = 0u64;
    while let Some(done) = timers.join_next().await {
        match done? {
            Ok(d) => seen_in.push(d),
            Err(e) => {
                eprintln!("{e}");
                never += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (lag_blocks, lag_seconds, wal, wal_metric, rss_max, samples, slowest) = sampler.await?;
    let rss_end = rss_bytes(pid)?;

    latencies.sort();
    seen_in.sort();
    let created = seen.created.load(Ordering::Relaxed);
    let failed = seen.failed.load(Ordering::Relaxed);
    let unsent = (args.rate * args.seconds).saturating_sub(latencies.len() as u64);
    println!(
        "orders: {created} acknowledged in {:.1} s = {:.0}/s (asked {}/s; {unsent} planned requests never sent: the server was slower than the rate), {failed} failed; latency from planned send p50 {} p99 {} max {}",
        load_elapsed.as_secs_f64(),
        created as f64 / load_elapsed.as_secs_f64(),
        args.rate,
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    println!(
        "payments: {paid} sent ({unpaid} seconds without one), {} seen, {never} never seen; block -> status p50 {} p99 {} max {}",
        seen_in.len(),
        ms(percentile(&seen_in, 0.5)),
        ms(percentile(&seen_in, 0.99)),
        ms(seen_in.last().copied().unwrap_or_default()),
    );
    println!(
        "watcher: at most {lag_blocks} blocks behind the tip ({samples} samples, every 200 ms); lag_seconds metric at most {lag_seconds:.0} s; slowest step parts: reload {}, scan {}, apply {}",
        ms(Duration::from_secs_f64(slowest[0])),
        ms(Duration::from_secs_f64(slowest[1])),
        ms(Duration::from_secs_f64(slowest[2])),
    );
    if args.db == Db::Sqlite {
        println!(
            "SQLite WAL: at most {} on disk (sampled), {} by coffer_sqlite_wal_bytes",
            mib(wal),
            mib(wal_metric)
        );
    }
    println!(
        "server: {cpu:.2} cores during the load; RSS {} at start, at most {}, {} at the end",
        mib(rss_start),
        mib(rss_max),
        mib(rss_end)
    );
    Ok(created)
}

/// `/metrics` as text.
async fn scrape(addr: std::net::SocketAddr) -> Result<String> {
    let mut conn = connect(addr).await?;
    let (status, body) = exchange(&mut conn, &get("/metrics", "")).await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    Ok(String::from_utf8(body)?)
}

/// From the moment `tx` is in a block to the moment the API shows order `id` settled.
async fn time_payment(
    node: &Node,
    tx: &str,
    addr: std::net::SocketAddr,
    key: &str,
    id: &str,
) -> Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mined = loop {
        if node.mined(tx).await? {
            break Instant::now();
        }
        if Instant::now() > deadline {
            bail!("{tx} not mined within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut conn = connect(addr).await?;
    let request = get(&format!("/api/v1/orders/{id}"), key);
    loop {
        let (status, body) = exchange(&mut conn, &request).await?;
        if status == 200 {
            let order: Value = serde_json::from_slice(&body)?;
            if order["status"] == "settled" {
                return Ok(mined.elapsed());
            }
        }
        if Instant::now() > deadline {
            bail!("order {id} not settled 60 s after its payment");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
