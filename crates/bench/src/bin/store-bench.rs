//! `store-bench`: durable order inserts and their read-back, on SQLite and PostgreSQL.
//!
//! Each insert is one `Store::commit` of exactly what the engine writes when it creates an
//! order: the order (with a payment target at its own address), its `created` timeline
//! entry, its `order.created` event and the mark moving the merchant's wallet past the
//! order's derivation index (the store adds the event's outbox row and the order's address
//! row). C concurrent
//! tokio tasks insert until `--orders` are written (or `--duration` elapses); then the same
//! number of tasks read every inserted order back with `get_order(merchant, id)`.
//!
//! Every concurrency level runs on a fresh database: a new SQLite directory under
//! `target/bench-data/` (on the real disk, never tmpfs) or a new `coffer_bench_<random>`
//! database on the PostgreSQL server named by `--pg-url` / `COFFER_TEST_PG_URL`.
//!
//! ```text
//! cargo build --release -p coffer-bench
//! target/release/store-bench --backend sqlite --concurrency 1,16,64 --orders 20000
//! scripts/with-postgres.sh target/release/store-bench --backend postgres
//! ```

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use coffer_core::order::{Derivation, OrderLinks};
use coffer_core::{
    AssetId, BaseUnits, Cause, CheckoutToken, Event, EventId, EventType, LockedRate, Merchant,
    MerchantId, Order, OrderId, OrderState, PaymentTarget, Price, SettlementPolicy, TimelineEntry,
    Totals,
};
use coffer_store::{Changeset, Store, WalletMark};
use rust_decimal::Decimal;
use sqlx::Connection;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

/// Durable order inserts + read-back on SQLite and PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "store-bench")]
struct Args {
    /// Which database to measure.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendChoice,
    /// Concurrent writers (and readers), one run per value, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Orders to insert per run.
    #[arg(long, default_value_t = 20_000)]
    orders: usize,
    /// Insert for this many seconds instead of a fixed count.
    #[arg(long)]
    duration: Option<u64>,
    /// Where the SQLite databases go. Default: target/bench-data/run-<random> in the repository
    /// (the real disk: /tmp may be tmpfs, where fsync costs nothing).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Admin URL of a PostgreSQL server; a fresh database is created on it for each run.
    #[arg(long, env = "COFFER_TEST_PG_URL")]
    pg_url: Option<String>,
    /// PostgreSQL pool size (SQLite always has one writer connection).
    #[arg(long, default_value_t = 16)]
    max_connections: u32,
    /// Keep the databases afterwards instead of deleting them.
    #[arg(long)]
    keep: bool,
}

/// What one phase of one run measured.
struct Phase {
    ops: usize,
    elapsed: Duration,
    /// Sorted ascending.
    latencies: Vec<Duration>,
}

impl Phase {
    fn new(elapsed: Duration, mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Self {
            ops: latencies.len(),
            elapsed,
            latencies,
        }
    }

    fn per_second(&self) -> u128 {
        let nanos = self.elapsed.as_nanos().max(1);
        (self.ops as u128) * 1_000_000_000 / nanos
    }

    /// Nearest-rank percentile, `per_mille` in 0..=1000.
    fn percentile(&self, per_mille: usize) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = (n * per_mille).div_ceil(1000).clamp(1, n);
        self.latencies[rank - 1]
    }

    fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// An inserted order, as much as the read-back checks.
struct Inserted {
    id: OrderId,
    order_no: String,
}

struct Row {
    backend: &'static str,
    phase: &'static str,
    concurrency: usize,
    result: Phase,
}

fn rnd<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
    Ok(b)
}

/// The store keeps milliseconds; truncate so read-back compares equal.
fn now_ms() -> anyhow::Result<OffsetDateTime> {
    let now = OffsetDateTime::now_utc();
    Ok(now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)?)
}

/// The merchant's receiving wallet (any account xpub: the store only compares it).
const DESCRIPTOR: &str = "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189oLKnC5fSwqPfgyP3hooxujYzAu3fDVmz";

fn asset() -> anyhow::Result<AssetId> {
    Ok(AssetId::from_str("bsc:USDT")?)
}

/// The changeset `Engine::create_order` commits for an order with an asset.
fn create_order_changeset(
    merchant: &MerchantId,
    i: usize,
) -> anyhow::Result<(Changeset, Inserted)> {
    let now = now_ms()?;
    let order_no = format!("BENCH-{i}");
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "cart".into(),
        serde_json::json!({"items": [1, 2], "note": "bench ✓"}),
    );
    let index = u32::try_from(i % (u32::MAX as usize))?;
    let order = Order {
        id: OrderId::from_random(rnd()?),
        merchant_id: merchant.clone(),
        order_no: Some(order_no.clone()),
        checkout_token: CheckoutToken::from_random(rnd()?),
        state: OrderState::NEW,
        amount: Decimal::from_str("19.99")?,
        currency: "USD".into(),
        fixed_stablecoin_rate: true,
        target: Some(PaymentTarget {
            asset: asset()?,
            amount_due: BaseUnits::new(19_990_000_000_000_000_000),
            // Addresses are unique per order (migration 0007).
            address: format!("0x{}", hex::encode(rnd::<20>()?)),
            derivation: Some(Derivation {
                index,
                path: format!("m/44'/60'/0'/0/{index}"),
            }),
            rate: LockedRate {
                price: Price::new(Decimal::ONE)?,
                source: "peg".into(),
                at: now,
            },
            details: Default::default(),
        }),
        totals: Totals::default(),
        policy: SettlementPolicy::default(),
        description: Some("Two coffees".into()),
        metadata,
        links: OrderLinks {
            success_url: Some("https://shop.example/ok?o={order_id}".into()),
            expired_url: None,
            callback_url: Some("https://shop.example/cb".into()),
        },
        dialect: "native".into(),
        expires_at: now + coffer_core::order::DEFAULT_EXPIRES_IN,
        monitor_until: now
            + coffer_core::order::DEFAULT_EXPIRES_IN
            + coffer_core::order::DEFAULT_MONITOR_FOR,
        created_at: now,
        updated_at: now,
        version: 1,
        dialect_data: Default::default(),
        credential_id: None,
        lock_window: time::Duration::minutes(30),
    };
    // The engine's event carries the order's API view; the serialized order is a payload of
    // about the same size.
    let event = Event {
        id: EventId::from_random(rnd()?),
        merchant_id: merchant.clone(),
        kind: EventType::OrderCreated,
        subject: order.id.to_string(),
        data: serde_json::json!({
            "object": serde_json::to_value(&order)?,
            "previous_status": null,
            "previous_reason": null,
        }),
        created_at: now,
    };
    let inserted = Inserted {
        id: order.id.clone(),
        order_no,
    };
    let changes = Changeset {
        timeline: vec![(
            order.id.clone(),
            TimelineEntry {
                at: now,
                from: None,
                to: order.state,
                cause: Cause::Created,
                note: None,
            },
        )],
        new_orders: vec![order],
        events: vec![event],
        wallet_marks: vec![WalletMark {
            merchant_id: merchant.clone(),
            chain: asset()?.chain().clone(),
            descriptor: DESCRIPTOR.into(),
            index,
        }],
        ..Changeset::default()
    };
    Ok((changes, inserted))
}

async fn insert_phase(
    store: &Arc<dyn Store>,
    merchant: &MerchantId,
    concurrency: usize,
    orders: usize,
    deadline: Option<Duration>,
) -> anyhow::Result<(Phase, Vec<Inserted>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let stop_at = deadline.map(|d| start + d);
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let store = store.clone();
        let merchant = merchant.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut inserted = Vec::new();
            loop {
                if stop_at.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if stop_at.is_none() && i >= orders {
                    break;
                }
                let (changes, order) = create_order_changeset(&merchant, i)?;
                let t = Instant::now();
                store
                    .commit(changes)
                    .await
                    .with_context(|| format!("commit of order {i}"))?;
                latencies.push(t.elapsed());
                inserted.push(order);
            }
            anyhow::Ok((latencies, inserted))
        }));
    }
    let mut latencies = Vec::new();
    let mut inserted = Vec::new();
    for task in tasks {
        let (l, o) = task.await??;
        latencies.extend(l);
        inserted.extend(o);
    }
    Ok((Phase::new(start.elapsed(), latencies), inserted))
}

async fn read_phase(
    store: &Arc<dyn Store>,
    merchant: &MerchantId,
    concurrency: usize,
    inserted: Vec<Inserted>,
) -> anyhow::Result<Phase> {
    let inserted = Arc::new(inserted);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let store = store.clone();
        let merchant = merchant.clone();
        let next = next.clone();
        let inserted = inserted.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some(want) = inserted.get(next.fetch_add(1, Ordering::Relaxed)) {
                let t = Instant::now();
                let got = store.get_order(&merchant, &want.id).await?;
                latencies.push(t.elapsed());
                match got {
                    Some(o) if o.order_no.as_deref() == Some(want.order_no.as_str()) => {}
                    other => bail!("order {} read back as {other:?}", want.id),
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let phase = Phase::new(start.elapsed(), latencies);
    if phase.ops != inserted.len() {
        bail!("read {} orders, inserted {}", phase.ops, inserted.len());
    }
    Ok(phase)
}

/// One run on an opened, migrated, empty store.
async fn run(
    store: Arc<dyn Store>,
    concurrency: usize,
    args: &Args,
    out: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let merchant = Merchant {
        id: MerchantId::from_random(rnd()?),
        name: "Bench shop".into(),
        policy: SettlementPolicy::default(),
        created_at: now_ms()?,
    };
    store
        .commit(Changeset {
            new_merchants: vec![merchant.clone()],
            ..Changeset::default()
        })
        .await?;
    store
        .set_wallet(&merchant.id, asset()?.chain(), DESCRIPTOR, now_ms()?)
        .await?;
    let backend = store.kind();
    // Other work on the machine skews every figure: say how busy it was.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let one_minute = load.split_whitespace().next().unwrap_or("?");
        println!("# {backend} c={concurrency}: load average {one_minute} before the run");
    }
    let (insert, inserted) = insert_phase(
        &store,
        &merchant.id,
        concurrency,
        args.orders,
        args.duration.map(Duration::from_secs),
    )
    .await?;
    print_row(backend, "insert", concurrency, &insert);
    out.push(Row {
        backend,
        phase: "insert",
        concurrency,
        result: insert,
    });
    let read = read_phase(&store, &merchant.id, concurrency, inserted).await?;
    print_row(backend, "read", concurrency, &read);
    out.push(Row {
        backend,
        phase: "read",
        concurrency,
        result: read,
    });
    Ok(())
}

async fn run_sqlite(
    base: &Path,
    concurrency: usize,
    args: &Args,
    out: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let dir = base.join(format!("sqlite-c{concurrency}"));
    let store = coffer_store::open(None, &dir, args.max_connections)
        .await
        .with_context(|| format!("opening SQLite in {}", dir.display()))?;
    store.migrate().await?;
    let result = run(store, concurrency, args, out).await;
    if !args.keep {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    result
}

async fn run_postgres(
    admin_url: &str,
    base: &Path,
    concurrency: usize,
    args: &Args,
    out: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let name = format!("coffer_bench_{}", hex::encode(rnd::<8>()?));
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connecting to the PostgreSQL admin URL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let url = with_database(admin_url, &name);
    let result = async {
        let store = coffer_store::open(Some(&url), base, args.max_connections).await?;
        store.migrate().await?;
        run(store, concurrency, args, out).await
    }
    .await;
    if args.keep {
        eprintln!("kept PostgreSQL database {name}");
    } else {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
    }
    admin.close().await?;
    result
}

/// Replace the database name in a `postgres://…/name?params` URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, Some(p)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match params {
        Some(p) => format!("{host_part}/{database}?{p}"),
        None => format!("{host_part}/{database}"),
    }
}

fn us(d: Duration) -> u128 {
    d.as_micros()
}

fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

const HEADER: &str =
    "backend   phase   conc     ops  elapsed_s      ops/s   p50_us   p99_us   max_us";

fn print_row(backend: &str, phase: &str, concurrency: usize, r: &Phase) {
    println!(
        "{backend:<9} {phase:<6} {concurrency:>5} {:>7} {:>10} {:>10} {:>8} {:>8} {:>8}",
        r.ops,
        secs(r.elapsed),
        r.per_second(),
        us(r.percentile(500)),
        us(r.percentile(990)),
        us(r.max()),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency.contains(&0) {
        bail!("--concurrency values must be at least 1");
    }
    let base = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/bench-data")
            .join(format!("run-{}", hex::encode(rnd::<4>()?))),
    };
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let base = base.canonicalize()?;
    let want_sqlite = matches!(args.backend, BackendChoice::Sqlite | BackendChoice::Both);
    let want_pg = matches!(args.backend, BackendChoice::Postgres | BackendChoice::Both);
    let pg_url = if want_pg {
        Some(args.pg_url.clone().context(
            "PostgreSQL needs --pg-url or COFFER_TEST_PG_URL (scripts/with-postgres.sh sets it)",
        )?)
    } else {
        None
    };
    match &args.duration {
        Some(s) => println!("# inserting for {s} s per run"),
        None => println!("# {} orders per run", args.orders),
    }
    println!("# one commit = order + created timeline entry + order.created event (+ outbox row)");
    if want_sqlite {
        println!("# SQLite data: {}", base.display());
    }
    if want_pg {
        println!("# PostgreSQL pool: {} connections", args.max_connections);
    }
    println!("{HEADER}");

    let mut rows = Vec::new();
    if want_sqlite {
        for &c in &args.concurrency {
            run_sqlite(&base, c, &args, &mut rows).await?;
        }
    }
    if let Some(url) = &pg_url {
        for &c in &args.concurrency {
            run_postgres(url, &base, c, &args, &mut rows).await?;
        }
    }
    if !args.keep && args.data_dir.is_none() {
        std::fs::remove_dir_all(&base).ok();
    }

    println!();
    println!("# summary");
    println!("{HEADER}");
    for row in &rows {
        print_row(row.backend, row.phase, row.concurrency, &row.result);
    }
    Ok(())
}
