//! `console-bench`: the web console's lists, searches and dashboard at volume, on SQLite and
//! PostgreSQL.
//!
//! A fresh database gets `--orders` orders (default a million) over a year, half of them one
//! merchant's (the one measured), with their addresses, payments, events, deliveries, payouts
//! and deposits, written straight with SQL (`coffer_testkit::sql_volume`). Then every console
//! query runs `--runs` times through the `Store` trait, as the console runs it, and its
//! latency is printed with the plan the database chose (`EXPLAIN QUERY PLAN` / `EXPLAIN`).
//!
//! ```text
//! cargo build --release -p coffer-bench --bin console-bench
//! target/release/console-bench --backend sqlite
//! scripts/with-postgres.sh target/release/console-bench --backend postgres
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use coffer_core::{Merchant, MerchantId, OrderStatus, SettlementPolicy, StatusReason, WebhookId};
use coffer_store::{Changeset, ConsoleOrderQuery, ListCursor, Store};
use coffer_testkit::sql_volume::{self as volume, Volume};
use sqlx::Connection;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(name = "console-bench")]
struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: BackendChoice,
    /// Orders in the database (half of them the measured merchant's).
    #[arg(long, default_value_t = 1_000_000)]
    orders: i64,
    /// Other merchants sharing the other half.
    #[arg(long, default_value_t = 9)]
    others: usize,
    /// Runs of each query.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, env = "COFFER_TEST_PG_URL")]
    pg_url: Option<String>,
}

const YEAR_MS: i64 = 365 * 86_400_000;

fn rnd16() -> [u8; 16] {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b
}

async fn merchant(store: &Arc<dyn Store>, name: &str) -> anyhow::Result<MerchantId> {
    let m = Merchant {
        id: MerchantId::from_random(rnd16()),
        name: name.into(),
        policy: SettlementPolicy::default(),
        created_at: OffsetDateTime::now_utc(),
    };
    store
        .commit(Changeset {
            new_merchants: vec![m.clone()],
            ..Changeset::default()
        })
        .await?;
    Ok(m.id)
}

fn ms(d: Duration) -> String {
    let us = d.as_micros();
    format!("{}.{:03}", us / 1000, us % 1000)
}

async fn measure<F, Fut, T>(runs: usize, mut f: F) -> anyhow::Result<(Duration, Duration, usize)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, coffer_store::StoreError>>,
{
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        let t = Instant::now();
        rows = f().await?.len();
        times.push(t.elapsed());
    }
    times.sort_unstable();
    let p50 = times[times.len() / 2];
    let max = *times.last().unwrap_or(&Duration::ZERO);
    Ok((p50, max, rows))
}

async fn bench(
    kind: &str,
    store: Arc<dyn Store>,
    url: Option<&str>,
    file: &Path,
    args: &Args,
) -> anyhow::Result<()> {
    let big = merchant(&store, "Big shop").await?;
    let mut merchants = vec![big.clone(); args.others.max(1)];
    for i in 0..args.others {
        merchants.push(merchant(&store, &format!("Shop {i}")).await?);
    }
    let end_ms = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let step = (YEAR_MS / args.orders.max(1)).max(1);
    let v = Volume {
        orders: args.orders,
        merchants,
        start_ms: end_ms - step * args.orders,
        step_ms: step,
    };
    let t = Instant::now();
    volume::write(url, file, &v)
        .await
        .context("writing the volume")?;
    println!(
        "# {kind}: {} orders written in {} s",
        args.orders,
        t.elapsed().as_secs()
    );

    let now = OffsetDateTime::now_utc();
    let q = |f: &dyn Fn(&mut ConsoleOrderQuery)| {
        let mut query = ConsoleOrderQuery {
            merchant_id: Some(big.clone()),
            limit: 51,
            ..ConsoleOrderQuery::default()
        };
        f(&mut query);
        query
    };
    // A cursor half a year deep: keyset pages cost the same at any depth.
    let deep = store
        .console_orders(&q(&|o| {
            o.created_to = Some(now - time::Duration::days(180))
        }))
        .await?;
    let cursor = deep.last().map(|o| ListCursor {
        created_at: o.created_at,
        id: o.id.to_string(),
    });
    let some = deep.first().context("no orders")?.clone();
    let address = some
        .target
        .as_ref()
        .map(|t| t.address.to_uppercase())
        .unwrap_or_default();
    let txid = format!("0xTX{}", some.id);
    let endpoint = WebhookId::from_random(rnd16());
    let runs = args.runs;
    println!(
        "{:<26} {:>9} {:>9} {:>5}",
        format!("{kind} query"),
        "p50_ms",
        "max_ms",
        "rows"
    );
    macro_rules! row {
        ($name:expr, $f:expr) => {{
            let (p50, max, rows) = measure(runs, $f).await?;
            println!("{:<26} {:>9} {:>9} {:>5}", $name, ms(p50), ms(max), rows);
        }};
    }
    // Each run gets its own query: the future owns it.
    macro_rules! orders_row {
        ($name:expr, $f:expr) => {{
            let query = q($f);
            row!($name, || {
                let (store, query) = (store.clone(), query.clone());
                async move { store.console_orders(&query).await }
            });
        }};
    }
    orders_row!("orders", &|_| {});
    orders_row!("orders, page 180 days deep", &|o| o.after = cursor.clone());
    orders_row!("orders by status (pending)", &|o| o.status =
        Some(OrderStatus::Pending));
    orders_row!("orders by reason (late)", &|o| o.reason =
        Some(StatusReason::PaidLate));
    orders_row!("orders by asset", &|o| o.asset = "eth:ETH".parse().ok());
    orders_row!("orders by date (1 day)", &|o| {
        o.created_from = Some(now - time::Duration::days(101));
        o.created_to = Some(now - time::Duration::days(100));
    });
    row!("search by order number", || async {
        Ok::<_, coffer_store::StoreError>(
            store
                .get_order_by_no(&big, some.order_no.as_deref().unwrap_or_default())
                .await?
                .into_iter()
                .collect::<Vec<_>>(),
        )
    });
    row!("search by address", || store
        .orders_by_address(&big, &address));
    row!("search by txid", || store.orders_by_txid(&big, &txid));
    for days in [7, 30, 90] {
        row!(format!("dashboard, {days} days"), || store.order_stats(
            &big,
            now - time::Duration::days(days),
            now
        ));
    }
    row!("order events", || store.order_events(&big, &some.id));
    row!("order deliveries", || store
        .order_deliveries(&big, &some.id));
    row!("endpoint deliveries", || store
        .endpoint_deliveries(&big, &endpoint, None, 51));
    row!("payouts", || store
        .console_payouts(&big, None, None, None, 51));
    row!("deposit accounts", || store
        .console_deposit_accounts(&big, None, 51));
    row!("deposits", || store.console_deposits(&big, None, 51));
    println!();
    for (name, plan) in store
        .console_query_plans(&big, now - time::Duration::days(180))
        .await?
    {
        println!("## {kind}: {name}");
        for line in plan.lines() {
            println!("    {line}");
        }
    }
    println!();
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = match &args.data_dir {
        Some(d) => d.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/bench-data")
            .join(format!("console-{}", hex::encode(&rnd16()[..4]))),
    };
    std::fs::create_dir_all(&base)?;
    let base = base.canonicalize()?;
    if matches!(args.backend, BackendChoice::Sqlite | BackendChoice::Both) {
        let store = coffer_store::open(None, &base, 4).await?;
        store.migrate().await?;
        bench("sqlite", store, None, &base.join("coffer.db"), &args).await?;
    }
    if matches!(args.backend, BackendChoice::Postgres | BackendChoice::Both) {
        let admin_url = args
            .pg_url
            .clone()
            .context("PostgreSQL needs --pg-url or COFFER_TEST_PG_URL")?;
        let name = format!("coffer_console_bench_{}", hex::encode(&rnd16()[..8]));
        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        let url = coffer_testkit::with_database(&admin_url, &name);
        let result = async {
            let store = coffer_store::open(Some(&url), &base, 8).await?;
            store.migrate().await?;
            bench("postgres", store, Some(&url), &base, &args).await
        }
        .await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
        result?;
    }
    if args.data_dir.is_none() {
        std::fs::remove_dir_all(&base).ok();
    }
    Ok(())
}
