//! The watched set as the watchers load it: every open address, once; what changed since a
//! time; never an address whose order's window closed; every address an order was ever
//! given; and the bulk path writing the rows the normal path writes. On SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeSet;
use std::str::FromStr;

use coffer_core::order::{Derivation, LockedRate};
use coffer_core::{
    AssetId, BaseUnits, ChainId, CheckoutToken, Merchant, MerchantId, Order, OrderId, OrderLinks,
    OrderState, PaymentTarget, Price, SettlementPolicy, Totals,
};
use coffer_store::seed::{self, Volume};
use coffer_store::{
    Changeset, DepositAccountQuery, DepositQuery, OrderQuery, OrderUpdate, PostgresBackend,
    SqlStore, SqliteBackend, WatchedAddress,
};
use coffer_testkit::{TestDb, both_backends, random_suffix};
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = time::macros::datetime!(2026-03-01 12:00 UTC);

fn bsc() -> ChainId {
    ChainId::parse("bsc").unwrap()
}

fn rnd<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap();
    b
}

fn target(asset: &str) -> PaymentTarget {
    PaymentTarget {
        asset: AssetId::from_str(asset).unwrap(),
        amount_due: BaseUnits::new(1_000_000),
        address: format!("0x{}", random_suffix()),
        derivation: Some(Derivation {
            index: 1,
            path: "m/0/1".into(),
        }),
        rate: LockedRate {
            price: Price::new(Decimal::ONE).unwrap(),
            source: "fixed".into(),
            at: T0,
        },
        details: Default::default(),
    }
}

/// An order on `asset`'s chain created at `at`, monitored for a day after a 30-minute lock.
fn order(merchant: &MerchantId, asset: &str, at: OffsetDateTime) -> Order {
    Order {
        id: OrderId::from_random(rnd()),
        merchant_id: merchant.clone(),
        order_no: None,
        checkout_token: CheckoutToken::from_random(rnd()),
        state: OrderState::NEW,
        amount: Decimal::from(10),
        currency: "USD".into(),
        fixed_stablecoin_rate: true,
        target: Some(target(asset)),
        totals: Totals::default(),
        policy: SettlementPolicy::default(),
        description: None,
        metadata: serde_json::Map::new(),
        links: OrderLinks::default(),
        dialect: "native".into(),
        dialect_data: serde_json::Map::new(),
        credential_id: None,
        expires_at: at + Duration::minutes(30),
        monitor_until: at + Duration::minutes(30) + Duration::hours(24),
        created_at: at,
        updated_at: at,
        version: 1,
        lock_window: Duration::minutes(30),
    }
}

async fn shop(db: &TestDb) -> Merchant {
    let m = Merchant {
        id: MerchantId::from_random(rnd()),
        name: "shop".into(),
        policy: SettlementPolicy::default(),
        created_at: T0,
    };
    db.store
        .commit(Changeset {
            new_merchants: vec![m.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    m
}

fn addresses(rows: &[WatchedAddress]) -> BTreeSet<String> {
    rows.iter().map(|w| w.address.clone()).collect()
}

fn address(o: &Order) -> String {
    o.target.as_ref().unwrap().address.clone()
}

/// The order as changed at `at` (a new version).
fn changed(o: &Order, at: OffsetDateTime, f: impl FnOnce(&mut Order)) -> Changeset {
    let mut next = o.clone();
    next.version += 1;
    next.updated_at = at;
    f(&mut next);
    Changeset {
        order_updates: vec![OrderUpdate {
            order: next,
            expected_version: o.version,
        }],
        ..Changeset::default()
    }
}

async fn a_closed_window_never_comes_back(db: &TestDb) {
    let m = shop(db).await;
    let o = order(&m.id, "bsc:USDT", T0);
    db.store
        .commit(Changeset {
            new_orders: vec![o.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    let open = o.monitor_until - Duration::seconds(1);
    assert_eq!(
        addresses(&db.store.watched_addresses(&bsc(), open).await.unwrap()),
        BTreeSet::from([address(&o)])
    );
    let since = db
        .store
        .watched_addresses_since(&bsc(), open, T0)
        .await
        .unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].order_id.as_ref(), Some(&o.id));
    assert_eq!(since[0].monitor_until, o.monitor_until);

    // At the end of its window (and after), the address is in neither load.
    for now in [o.monitor_until, o.monitor_until + Duration::hours(1)] {
        assert!(
            db.store
                .watched_addresses(&bsc(), now)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            db.store
                .watched_addresses_since(&bsc(), now, T0)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // Changed after its window closed (a late note, a merchant's action): still out.
    let late = o.monitor_until + Duration::hours(2);
    db.store
        .commit(changed(&o, late, |o| o.description = Some("late".into())))
        .await
        .unwrap();
    assert!(
        db.store
            .watched_addresses_since(&bsc(), late, late - Duration::minutes(5))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.store
            .watched_addresses(&bsc(), late)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn every_address_an_order_was_given_stays_watched(db: &TestDb) {
    let m = shop(db).await;
    let o = order(&m.id, "bsc:USDT", T0);
    db.store
        .commit(Changeset {
            new_orders: vec![o.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    // The buyer chooses BNB on the same chain (a new address, the window re-locked), then
    // BTC on another chain.
    let at = T0 + Duration::minutes(10);
    let bnb = target("bsc:BNB");
    let relocked = at + Duration::minutes(30) + Duration::hours(24);
    let to_bnb = changed(&o, at, |o| {
        o.target = Some(bnb.clone());
        o.expires_at = at + Duration::minutes(30);
        o.monitor_until = relocked;
    });
    let o2 = to_bnb.order_updates[0].order.clone();
    db.store.commit(to_bnb).await.unwrap();
    let now = at + Duration::minutes(1);
    let both = BTreeSet::from([address(&o), bnb.address.clone()]);
    let since = db
        .store
        .watched_addresses_since(&bsc(), now, at)
        .await
        .unwrap();
    assert_eq!(addresses(&since), both, "the incremental load sees both");
    assert!(since.iter().all(|w| w.monitor_until == relocked));
    assert!(
        since
            .iter()
            .all(|w| w.asset == Some(AssetId::from_str("bsc:BNB").unwrap()))
    );
    assert_eq!(
        addresses(&db.store.watched_addresses(&bsc(), now).await.unwrap()),
        both
    );

    let later = at + Duration::minutes(20);
    let btc = target("btc:BTC");
    db.store
        .commit(changed(&o2, later, |o| o.target = Some(btc.clone())))
        .await
        .unwrap();
    let btc_chain = ChainId::parse("btc").unwrap();
    assert_eq!(
        addresses(
            &db.store
                .watched_addresses_since(&btc_chain, later, later)
                .await
                .unwrap()
        ),
        BTreeSet::from([btc.address.clone()])
    );
    // Its addresses on the first chain are still watched there until the window closes.
    assert_eq!(
        addresses(
            &db.store
                .watched_addresses_since(&bsc(), later, later)
                .await
                .unwrap()
        ),
        both
    );
    assert!(
        db.store
            .watched_addresses(&bsc(), relocked)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A store on the same database as `db` that can take bulk loads.
async fn bulk(db: &TestDb, changesets: &[Changeset]) {
    match &db.url {
        Some(url) => SqlStore::new(PostgresBackend::connect(url, 2).await.unwrap())
            .bulk_commit(changesets)
            .await
            .unwrap(),
        None => SqlStore::new(
            SqliteBackend::open(&db.dir.path().join("coffer.db"))
                .await
                .unwrap(),
        )
        .bulk_commit(changesets)
        .await
        .unwrap(),
    }
}

async fn another(db: &TestDb) -> TestDb {
    match db.url {
        Some(_) => coffer_testkit::fresh_postgres().await.unwrap(),
        None => coffer_testkit::fresh_sqlite().await.unwrap(),
    }
}

/// Everything the seed writes, as the store reads it back.
async fn contents(db: &TestDb, v: &Volume, merchants: &[Merchant]) -> String {
    let mut out = Vec::new();
    let orders = db
        .store
        .list_orders(&OrderQuery {
            limit: 500,
            ..OrderQuery::default()
        })
        .await
        .unwrap();
    for o in &orders {
        out.push(format!("{o:?}"));
        out.push(format!(
            "{:?}",
            db.store.payments_for_order(&o.id).await.unwrap()
        ));
    }
    for chain in [seed::CHAIN, seed::OTHER_CHAIN] {
        let chain = ChainId::parse(chain).unwrap();
        let mut watched = db
            .store
            .watched_addresses(&chain, v.start_of_history())
            .await
            .unwrap();
        watched.sort_by(|a, b| a.address.cmp(&b.address));
        out.push(format!("{watched:?}"));
        for m in merchants {
            out.push(format!(
                "{:?}",
                db.store
                    .get_wallet(&m.id, &chain)
                    .await
                    .unwrap()
                    .map(|w| (w.descriptor, w.next_index))
            ));
        }
    }
    out.push(format!(
        "{:?}",
        db.store
            .list_deposit_accounts(&DepositAccountQuery {
                limit: 500,
                ..DepositAccountQuery::default()
            })
            .await
            .unwrap()
    ));
    out.push(format!(
        "{:?}",
        db.store
            .list_deposits(&DepositQuery {
                limit: 500,
                ..DepositQuery::default()
            })
            .await
            .unwrap()
    ));
    out.join("\n")
}

async fn the_bulk_path_writes_the_rows_commit_writes(db: &TestDb) {
    let v = Volume {
        orders: 400,
        deposit_accounts: 30,
        chunk: 150,
        ..Volume::million()
    };
    let merchants = seed::merchants(&v).unwrap();
    // Through the bulk path (and the seed's own order of work).
    let bulk_db = db;
    match &bulk_db.url {
        Some(url) => {
            let store = SqlStore::new(PostgresBackend::connect(url, 4).await.unwrap());
            seed::seed(&store, &v).await.unwrap();
        }
        None => {
            let store = SqlStore::new(
                SqliteBackend::open(&bulk_db.dir.path().join("coffer.db"))
                    .await
                    .unwrap(),
            );
            seed::seed(&store, &v).await.unwrap();
        }
    }
    // Through `commit`, one changeset at a time.
    let normal = another(db).await;
    normal
        .store
        .commit(Changeset {
            new_merchants: merchants.clone(),
            ..Changeset::default()
        })
        .await
        .unwrap();
    for m in &merchants {
        for chain in [seed::CHAIN, seed::OTHER_CHAIN] {
            normal
                .store
                .set_wallet(
                    &m.id,
                    &ChainId::parse(chain).unwrap(),
                    &seed::descriptor(&m.id, chain),
                    v.start_of_history(),
                )
                .await
                .unwrap();
        }
    }
    for c in seed::order_changesets(&v, &merchants, 0, v.orders).unwrap() {
        normal.store.commit(c).await.unwrap();
    }
    for c in seed::deposit_changesets(&v, &merchants, 0, v.deposit_accounts).unwrap() {
        normal.store.commit(c).await.unwrap();
    }
    let bulk_rows = contents(bulk_db, &v, &merchants).await;
    let normal_rows = contents(&normal, &v, &merchants).await;
    assert!(bulk_rows.len() > 10_000, "{bulk_rows}");
    assert_eq!(bulk_rows, normal_rows);
}

async fn pages_add_up_to_the_whole_set(db: &TestDb) {
    // More orders than one page, some changed at the same millisecond: a page boundary
    // falls inside a run of equal keys.
    let m = shop(db).await;
    let n = usize::try_from(coffer_store::WATCH_PAGE).unwrap() + 700;
    let at = T0 + Duration::minutes(1);
    let orders: Vec<Order> = (0..n)
        .map(|i| {
            order(
                &m.id,
                "bsc:USDT",
                at + Duration::milliseconds(i64::try_from(i / 3).unwrap()),
            )
        })
        .collect();
    bulk(
        db,
        &[Changeset {
            new_orders: orders.clone(),
            ..Changeset::default()
        }],
    )
    .await;
    let expected: BTreeSet<String> = orders.iter().map(address).collect();
    let now = at + Duration::hours(1);
    let full = db.store.watched_addresses(&bsc(), now).await.unwrap();
    assert_eq!(full.len(), n, "each address once");
    assert_eq!(addresses(&full), expected);
    let since = db
        .store
        .watched_addresses_since(&bsc(), now, at)
        .await
        .unwrap();
    assert_eq!(since.len(), n, "each address once");
    assert_eq!(addresses(&since), expected);
    // From the middle of a run of equal `updated_at`: that millisecond and later.
    let mid = at + Duration::milliseconds(1000);
    let later: BTreeSet<String> = orders
        .iter()
        .filter(|o| o.updated_at >= mid)
        .map(address)
        .collect();
    assert_eq!(
        addresses(
            &db.store
                .watched_addresses_since(&bsc(), now, mid)
                .await
                .unwrap()
        ),
        later
    );
}

both_backends! {
    a_closed_window_never_comes_back => a_closed_window_never_comes_back;
    every_address_an_order_was_given_stays_watched => every_address_an_order_was_given_stays_watched;
    the_bulk_path_writes_the_rows_commit_writes => the_bulk_path_writes_the_rows_commit_writes;
    pages_add_up_to_the_whole_set => pages_add_up_to_the_whole_set;
}
