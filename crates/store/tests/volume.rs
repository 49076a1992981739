//! At a million orders (issue 25): the plans of a chain watcher's statements and of order
//! creation use indexes, never a full scan (so a plan regression fails here); the watched
//! set's loads return exactly the open addresses; and an incremental load costs what changed:
//! twice the changed rows take at most 2.5 times as long. On SQLite and PostgreSQL, each on
//! a copy of a database seeded once through the store's bulk path (`coffer_store::seed`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
#![allow(clippy::float_arithmetic)] // timings and their ratio, not money

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::{Duration as StdDuration, Instant};

use coffer_core::{
    AssetId, Cause, ChainId, Event, EventId, EventType, KeyId, MatchStatus, Merchant, Order,
    OrderState, OrderStatus, Payment, PaymentId, PaymentStatus, StatusReason, TimelineEntry,
};
use coffer_store::seed::{self, Volume};
use coffer_store::{
    Backend, ChainCursor, Changeset, HotPlan, IdempotencyRecord, OrderUpdate, Probe, Store,
};
use coffer_testkit::volume::{Seeded, seeded_postgres, seeded_sqlite};
use time::Duration;

fn chain() -> ChainId {
    ChainId::parse(seed::CHAIN).unwrap()
}

/// Tables that stay small whatever the volume (a few merchants, their wallets and keys, one
/// cursor per chain): PostgreSQL may rightly read them whole.
const SMALL_TABLES: &[&str] = &[
    "merchants",
    "wallets",
    "wallet_keys",
    "chain_cursors",
    "api_credentials",
    "idempotency_keys",
];

/// The full scans in a plan: SQLite's `SCAN t` (of a table or a whole index; `page` is a
/// paged subquery's own rows), PostgreSQL's `Seq Scan on t` of a table that grows.
fn full_scans(kind: &str, plan: &[String]) -> Vec<String> {
    plan.iter()
        .map(|l| l.trim())
        .filter(|l| match kind {
            "sqlite" => l.starts_with("SCAN ") && !l.starts_with("SCAN page"),
            _ => l.split("Seq Scan on ").nth(1).is_some_and(|rest| {
                let table = rest.split_whitespace().next().unwrap_or("");
                !SMALL_TABLES.contains(&table)
            }),
        })
        .map(str::to_owned)
        .collect()
}

/// The indexes a statement must be planned with.
fn expected_indexes(kind: &str, name: &str) -> &'static [&'static str] {
    match (name, kind) {
        ("watched_addresses: open orders", _) => &["orders_monitored", "order_addresses_order"],
        ("watched_addresses_since: changed orders", _) => {
            &["orders_updated", "order_addresses_order"]
        }
        ("watched_addresses_since: new deposit addresses", _) => &["deposit_addresses_new"],
        ("open_payments", _) => &["payments_open"],
        ("orders_changed_since", _) => &["orders_updated"],
        ("open_deposits", _) => &["deposits_open"],
        ("orders_for_address", "sqlite") => &["sqlite_autoindex_order_addresses_1"],
        ("orders_for_address", _) => &["order_addresses_pkey"],
        ("deposit_address_owner", "sqlite") => &["sqlite_autoindex_deposit_addresses_1"],
        ("deposit_address_owner", _) => &["deposit_addresses_pkey"],
        ("get_order_by_no", "sqlite") => &["sqlite_autoindex_orders_3"],
        ("get_order_by_no", _) => &["orders_merchant_id_order_no_key"],
        _ => &[],
    }
}

/// Order `n` of the seeded history, as stored.
async fn seeded_order<B: Backend>(db: &Seeded<B>, n: u64) -> Order {
    let merchants = seed::merchants(&db.volume).unwrap();
    let id = seed::order_changesets(&db.volume, &merchants, n, n + 1).unwrap()[0].new_orders[0]
        .id
        .clone();
    db.store.find_order(&id).await.unwrap().unwrap()
}

fn event(o: &Order, kind: EventType) -> Event {
    Event {
        id: EventId::from_random([7; 16]),
        merchant_id: o.merchant_id.clone(),
        kind,
        subject: o.id.to_string(),
        data: serde_json::json!({"object": {"id": o.id}}),
        created_at: o.updated_at,
    }
}

/// What creating an order and applying a chain batch to it write (explained, not written).
fn writes(v: &Volume, merchants: &[Merchant], existing: &Order) -> Vec<Changeset> {
    let mut creation = seed::order_changesets(v, merchants, v.orders + 7, v.orders + 8)
        .unwrap()
        .remove(0);
    let new = creation.new_orders[0].clone();
    creation.timeline.push((
        new.id.clone(),
        TimelineEntry {
            at: new.created_at,
            from: None,
            to: OrderState::NEW,
            cause: Cause::Created,
            note: None,
        },
    ));
    creation.events.push(event(&new, EventType::OrderCreated));
    creation.idempotency_reservations.push(IdempotencyRecord {
        merchant_id: new.merchant_id.clone(),
        key: "probe".into(),
        fingerprint: "POST /api/v1/orders".into(),
        response: None,
        created_at: new.created_at,
    });
    let target = existing.target.clone().unwrap();
    let mut paid = existing.clone();
    paid.version += 1;
    paid.state = OrderState::new(OrderStatus::Processing, StatusReason::None);
    let mut deposits = seed::deposit_changesets(v, merchants, 2, 3)
        .unwrap()
        .remove(0)
        .deposits;
    let mut confirmed = deposits[0].clone();
    confirmed.seq = 2;
    deposits.push(confirmed);
    let batch = Changeset {
        payments: vec![Payment {
            id: PaymentId::from_random([9; 16]),
            order_id: existing.id.clone(),
            merchant_id: existing.merchant_id.clone(),
            asset: target.asset.clone(),
            amount: target.amount_due,
            txid: "0xprobe".into(),
            output_index: 0,
            from_address: None,
            to_address: target.address.clone(),
            block_height: Some(1),
            block_hash: Some("0xb1".into()),
            confirmations: 1,
            status: PaymentStatus::Unconfirmed,
            match_status: MatchStatus::Matched,
            late: false,
            occurred_at: v.now,
            detected_at: v.now,
            updated_at: v.now,
            details: Default::default(),
        }],
        order_updates: vec![OrderUpdate {
            order: paid.clone(),
            expected_version: existing.version,
        }],
        timeline: vec![(
            paid.id.clone(),
            TimelineEntry {
                at: v.now,
                from: Some(existing.state),
                to: paid.state,
                cause: Cause::Payment,
                note: None,
            },
        )],
        events: vec![event(&paid, EventType::OrderProcessing)],
        cursor: Some(ChainCursor {
            chain: chain(),
            height: 1,
            hash: "0xb1".into(),
            recent: vec![(1, "0xb1".into())],
            updated_at: v.now,
        }),
        deposits,
        ..Changeset::default()
    };
    vec![creation, batch]
}

/// The hot statements and their plans (printed by the caller, for reading a failure).
async fn plans<B: Backend>(db: &Seeded<B>) -> Vec<HotPlan> {
    let v = &db.volume;
    let merchants = seed::merchants(v).unwrap();
    // An open order on the chain, two days' worth of orders before the end of the history.
    let order = seeded_order(db, v.orders - 7).await;
    assert_eq!(order.target.as_ref().unwrap().asset.chain(), &chain());
    let probe = Probe {
        chain: chain(),
        now: v.now,
        since: v.now - Duration::minutes(5),
        height: seed::height_at(seed::CHAIN, v.now) - 100,
        order: order.clone(),
        credential: KeyId::from_random([3; 16]),
        idempotency_key: "probe".into(),
        deposit_address: seed::deposit_address(2),
        deposit_transfer: (
            seed::deposit_txid(2),
            AssetId::from_str("bsc:USDT").unwrap(),
        ),
        writes: writes(v, &merchants, &order),
    };
    db.store.explain_hot(&probe).await.unwrap()
}

async fn plans_use_indexes<B: Backend>(db: &Seeded<B>) {
    let kind = db.store.kind();
    let plans = plans(db).await;
    let mut failures = Vec::new();
    for p in &plans {
        eprintln!("-- {kind}: {}\n{}", p.name, p.plan.join("\n"));
        let scans = full_scans(kind, &p.plan);
        if !scans.is_empty() {
            failures.push(format!("{}: full scan {scans:?}", p.name));
        }
        for index in expected_indexes(kind, &p.name) {
            if !p.plan.iter().any(|l| l.contains(index)) {
                failures.push(format!("{}: does not use {index}", p.name));
            }
        }
    }
    let names: BTreeSet<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    for required in [
        "watched_addresses: open orders",
        "watched_addresses_since: changed orders",
        "open_payments",
        "open_deposits",
        "orders_for_address",
        "deposit_address_owner",
        "chain_cursor",
        "get_order_by_no",
        "orders_changed_since",
        "write Order",
        "write OrderAddress",
        "write OrderUpdate",
        "write Payment",
        "write Cursor",
        "write WalletMark",
        "write Deposit",
        "write DepositUpdate",
    ] {
        assert!(
            names.contains(required),
            "{required} not explained: {names:?}"
        );
    }
    assert!(failures.is_empty(), "{kind}:\n{}", failures.join("\n"));
}

/// The addresses on the chain of the orders in `changesets` (every address an order was
/// given).
fn chain_addresses(changesets: &[Changeset]) -> BTreeSet<String> {
    changesets
        .iter()
        .flat_map(|c| {
            c.new_orders
                .iter()
                .chain(c.order_updates.iter().map(|u| &u.order))
        })
        .filter_map(|o| o.target.as_ref())
        .filter(|t| t.asset.chain() == &chain())
        .map(|t| t.address.clone())
        .collect()
}

async fn loads_return_exactly_the_open_addresses<B: Backend>(db: &Seeded<B>) {
    let v = &db.volume;
    let merchants = seed::merchants(v).unwrap();
    // Orders created in the last 25 hours are the only ones that can still be open.
    let recent = u64::try_from(Duration::hours(25).whole_milliseconds()).unwrap()
        / u64::try_from(v.step_ms()).unwrap();
    let history = seed::order_changesets(v, &merchants, v.orders - recent, v.orders).unwrap();
    let open: Vec<Changeset> = history
        .into_iter()
        // (an order that moved to a second address has its update in a changeset of its own)
        .filter(|c| {
            c.new_orders
                .iter()
                .chain(c.order_updates.iter().map(|u| &u.order))
                .any(|o| o.monitor_until > v.now)
        })
        .collect();
    let mut expected = chain_addresses(&open);
    assert!(expected.len() > usize::try_from(coffer_store::WATCH_PAGE).unwrap());
    let deposits: BTreeSet<String> = (0..v.deposit_accounts).map(seed::deposit_address).collect();
    expected.extend(deposits.iter().cloned());

    let started = Instant::now();
    let full = db.store.watched_addresses(&chain(), v.now).await.unwrap();
    let took = started.elapsed();
    let got: BTreeSet<String> = full.iter().map(|w| w.address.clone()).collect();
    assert_eq!(got.len(), full.len(), "each address once");
    assert_eq!(got, expected);
    assert!(full.iter().all(|w| w.monitor_until > v.now));
    eprintln!(
        "{}: full load of {} open addresses at {} orders: {took:?}",
        db.store.kind(),
        full.len(),
        v.orders
    );
    // Nothing changed since the end of the history.
    assert!(
        db.store
            .watched_addresses_since(&chain(), v.now, v.now)
            .await
            .unwrap()
            .is_empty()
    );
}

/// CPU time used so far, in nanoseconds (`/proc/<pid>/task/*/schedstat`), by this process and,
/// on PostgreSQL, by the server processes serving the test's database (their titles name
/// it). The machine is shared: wall time varies fourfold with other people's builds, the CPU
/// a load costs much less.
fn cpu_ns(database: Option<&str>) -> u64 {
    let threads = |pid: &str| -> u64 {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    let mut total = threads("self");
    if let Some(name) = database {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let title = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&title).contains(name) {
                total += threads(&pid);
            }
        }
    }
    total
}

/// One incremental load since `since`: the CPU it cost (see [`cpu_ns`]), its wall time, and
/// how many addresses it returned.
async fn reload<B: Backend>(
    db: &Seeded<B>,
    now: time::OffsetDateTime,
    since: time::OffsetDateTime,
) -> (StdDuration, StdDuration, usize) {
    let database = db.database.as_deref();
    let cpu = cpu_ns(database);
    let started = Instant::now();
    let got = db
        .store
        .watched_addresses_since(&chain(), now, since)
        .await
        .unwrap();
    let wall = started.elapsed();
    let cpu = StdDuration::from_nanos(cpu_ns(database).saturating_sub(cpu));
    (cpu, wall, got.len())
}

async fn reloads_cost_what_changed<B: Backend>(db: &Seeded<B>) {
    let v = &db.volume;
    let merchants = seed::merchants(v).unwrap();
    // Two batches of new orders after the end of the history, each changed (created) after
    // the one before: a load since the second batch's first order returns one batch, a load
    // since the end of the history both.
    let batch = 10_000;
    let first = seed::order_changesets(v, &merchants, v.orders, v.orders + batch).unwrap();
    let second =
        seed::order_changesets(v, &merchants, v.orders + batch, v.orders + 2 * batch).unwrap();
    db.store.bulk_commit(&first).await.unwrap();
    db.store.bulk_commit(&second).await.unwrap();
    let second_since = second[0].new_orders[0].created_at;
    // Both sizes measured in turn, each read once untimed first (so the timed run finds the
    // caches warm whichever size ran before it); the least CPU of each kept.
    let (mut one, mut two) = (StdDuration::MAX, StdDuration::MAX);
    let (mut rows_one, mut rows_two) = (0, 0);
    let mut runs = Vec::new();
    for _ in 0..11 {
        reload(db, v.now, second_since).await;
        let (c1, w1, n) = reload(db, v.now, second_since).await;
        (one, rows_one) = (one.min(c1), n);
        reload(db, v.now, v.now).await;
        let (c2, w2, n) = reload(db, v.now, v.now).await;
        (two, rows_two) = (two.min(c2), n);
        runs.push(format!(
            "{:.0}/{:.0} ({:.0}/{:.0})",
            c1.as_secs_f64() * 1e3,
            c2.as_secs_f64() * 1e3,
            w1.as_secs_f64() * 1e3,
            w2.as_secs_f64() * 1e3
        ));
    }
    eprintln!(
        "{}: reload runs, CPU ms 1x/2x (wall ms 1x/2x): {}",
        db.store.kind(),
        runs.join(" ")
    );
    assert_eq!(rows_one, chain_addresses(&second).len());
    assert_eq!(rows_two, rows_one + chain_addresses(&first).len());
    eprintln!(
        "{}: incremental load at {} orders: {rows_one} rows in {one:?} of CPU, {rows_two} rows in {two:?} ({:.2}x)",
        db.store.kind(),
        v.orders,
        two.as_secs_f64() / one.as_secs_f64()
    );
    assert!(
        two.as_secs_f64() <= 2.5 * one.as_secs_f64(),
        "twice the changed rows took {two:?} of CPU, more than 2.5 times {one:?}"
    );
}

async fn at_a_million_orders<B: Backend>(db: Seeded<B>) {
    eprintln!(
        "{}: seeded {:?}, copied in {:?}",
        db.store.kind(),
        db.seeded_in,
        db.copied_in
    );
    plans_use_indexes(&db).await;
    loads_return_exactly_the_open_addresses(&db).await;
    reloads_cost_what_changed(&db).await;
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_a_million_orders() {
        let db = super::seeded_sqlite(&super::Volume::million())
            .await
            .unwrap();
        super::at_a_million_orders(db).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_a_million_orders() {
        if !coffer_testkit::postgres_wanted() {
            eprintln!(
                "skipping PostgreSQL: {} is set",
                coffer_testkit::SKIP_PG_VAR
            );
            return;
        }
        let db = super::seeded_postgres(&super::Volume::million())
            .await
            .unwrap();
        super::at_a_million_orders(db).await;
    }
}
