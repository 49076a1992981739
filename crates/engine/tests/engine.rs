//! Engine behaviour on real databases (SQLite and PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use coffer_core::order::OrderLinks;
use coffer_core::{
    AssetId, AssetKind, BaseUnits, Cause, ChainId, ChainKind, EventType, FixedRates, OrderStatus,
    Price, Scope, StatusReason,
};
use coffer_engine::{
    AssetRegistry, Engine, EngineError, EngineParts, EngineSettings, ManualClock, Methods, NewOrder,
};
use coffer_store::{EventQuery, OrderQuery};
use coffer_testkit::fixtures::{self, TestDeriver};
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::Arc;
use time::Duration;
use time::macros::datetime;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn registry() -> AssetRegistry {
    AssetRegistry::new(
        vec![fixtures::bsc(15)],
        vec![
            fixtures::asset("bsc", "BNB", AssetKind::Native, 18, false),
            fixtures::asset("bsc", "USDT", fixtures::token("0x55d3"), 18, true),
        ],
    )
    .unwrap()
}

fn engine(db: &TestDb, clock: Arc<ManualClock>) -> Engine {
    let rates = FixedRates::new()
        .with("BNB", "USD", Price::new(dec("600")).unwrap())
        .with("USDT", "USD", Price::new(dec("0.9998")).unwrap());
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(rates),
        assets: Arc::new(registry()),
        methods: Methods::default().with(
            ChainKind::Evm,
            TestDeriver::new(|d, i| format!("{d}/{i}"))
                .xpub_only()
                .evm(),
        ),
        clock,
        settings: Arc::new(EngineSettings {
            public_url: "https://pay.example".into(),
            ..EngineSettings::default()
        }),
    })
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-05-01 10:00 UTC)))
}

fn usd(amount: &str) -> NewOrder {
    NewOrder {
        amount: dec(amount),
        currency: "USD".into(),
        ..NewOrder::default()
    }
}

/// A merchant whose buyers can pay: it has a wallet on the test chain.
async fn shop(e: &Engine) -> coffer_core::Merchant {
    let (m, _) = e.create_merchant("Shop").await.unwrap();
    e.set_wallet(&m.id, "bsc", "xpubA").await.unwrap();
    m
}

async fn counts(db: &TestDb) -> (usize, usize) {
    let orders = db
        .store
        .list_orders(&OrderQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let events = db
        .store
        .list_events(&EventQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    (orders.len(), events.len())
}

async fn keys_authenticate_and_revoke(db: &TestDb) {
    let clock = clock();
    let e = engine(db, clock.clone());
    let (merchant, admin) = e.create_merchant("Coffee Shop").await.unwrap();
    assert!(admin.token.starts_with("ck_"));
    let cred = e.authenticate(&admin.token).await.unwrap();
    assert_eq!(cred.merchant_id, merchant.id);
    assert!(cred.allows(Scope::WalletsWrite));

    let mut tampered = admin.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    assert!(matches!(
        e.authenticate(&tampered).await,
        Err(EngineError::Unauthorized)
    ));
    assert!(matches!(
        e.authenticate("ck_nope").await,
        Err(EngineError::Unauthorized)
    ));

    let expiring = e
        .create_key(
            &merchant.id,
            "ci",
            vec![Scope::OrdersRead],
            Some(clock.now_plus(Duration::hours(1))),
        )
        .await
        .unwrap();
    assert!(e.authenticate(&expiring.token).await.is_ok());
    clock.advance(Duration::hours(1));
    assert!(matches!(
        e.authenticate(&expiring.token).await,
        Err(EngineError::Unauthorized)
    ));

    e.revoke_key(&merchant.id, &admin.credential.id)
        .await
        .unwrap();
    assert!(matches!(
        e.authenticate(&admin.token).await,
        Err(EngineError::Unauthorized)
    ));
    // Another merchant cannot revoke (or learn about) this merchant's keys.
    let (other, _) = e.create_merchant("Other").await.unwrap();
    let live = e
        .create_key(&merchant.id, "live", vec![Scope::OrdersWrite], None)
        .await
        .unwrap();
    assert!(matches!(
        e.revoke_key(&other.id, &live.credential.id).await,
        Err(EngineError::NotFound("key"))
    ));
    assert!(e.authenticate(&live.token).await.is_ok());
}

trait ClockExt {
    fn now_plus(&self, d: Duration) -> time::OffsetDateTime;
}

impl ClockExt for ManualClock {
    fn now_plus(&self, d: Duration) -> time::OffsetDateTime {
        coffer_engine::Clock::now(self) + d
    }
}

async fn fiat_order_is_created_with_event(db: &TestDb) {
    let e = engine(db, clock());
    let m = shop(&e).await;
    let created = e
        .create_order(
            &m.id,
            NewOrder {
                order_no: Some("A-1".into()),
                ..usd("25.50")
            },
        )
        .await
        .unwrap();
    assert!(created.created);
    let o = created.order;
    assert_eq!(
        (o.state.status, o.state.reason),
        (OrderStatus::Pending, StatusReason::None)
    );
    assert_eq!(o.expires_at - o.created_at, Duration::minutes(30));
    assert_eq!(o.monitor_until - o.expires_at, Duration::hours(24));
    assert!(
        o.target.is_none(),
        "the buyer chooses the asset on the checkout page"
    );
    let events = db.store.pending_outbox(10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.kind, EventType::OrderCreated);
    assert_eq!(events[0].event.data["object"]["id"], o.id.as_str());
    assert_eq!(events[0].event.data["object"]["amount"], "25.5");
    assert_eq!(
        events[0].event.data["object"]["checkout_url"],
        format!("https://pay.example/pay/{}", o.checkout_token)
    );
    assert_eq!(db.store.timeline(&o.id).await.unwrap().len(), 1);
}

async fn order_no_replays_or_conflicts(db: &TestDb) {
    let e = engine(db, clock());
    let m = shop(&e).await;
    let first = e
        .create_order(
            &m.id,
            NewOrder {
                order_no: Some("R-7".into()),
                ..usd("10")
            },
        )
        .await
        .unwrap();
    let again = e
        .create_order(
            &m.id,
            NewOrder {
                order_no: Some("R-7".into()),
                ..usd("10.00")
            },
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.order.id, first.order.id);
    let before = counts(db).await;
    let clash = e
        .create_order(
            &m.id,
            NewOrder {
                order_no: Some("R-7".into()),
                ..usd("11")
            },
        )
        .await;
    assert!(
        matches!(
            clash,
            Err(EngineError::Conflict {
                code: "order_no_conflict",
                ..
            })
        ),
        "{clash:?}"
    );
    assert_eq!(counts(db).await, before, "a conflict writes nothing");

    // Concurrent identical requests: exactly one order.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let e = e.clone();
        let m = m.id.clone();
        tasks.push(tokio::spawn(async move {
            e.create_order(
                &m,
                NewOrder {
                    order_no: Some("RACE-1".into()),
                    ..usd("5")
                },
            )
            .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        created += usize::from(r.created);
        ids.insert(r.order.id);
    }
    assert_eq!((created, ids.len()), (1, 1));
}

async fn bad_input_is_refused_and_writes_nothing(db: &TestDb) {
    let e = engine(db, clock());
    let (m, _) = e.create_merchant("Shop").await.unwrap();
    let before = counts(db).await;
    let mut big = serde_json::Map::new();
    big.insert("blob".into(), "x".repeat(5000).into());
    let cases: Vec<(NewOrder, &str, &str)> = vec![
        (usd("0"), "invalid_amount", "amount"),
        (usd("-5"), "invalid_amount", "amount"),
        (usd("1.005"), "invalid_amount", "amount"),
        (
            NewOrder {
                currency: "XYZ".into(),
                ..usd("1")
            },
            "unknown_currency",
            "currency",
        ),
        (
            NewOrder {
                asset: Some(AssetId::from_str("eth:USDT").unwrap()),
                ..usd("1")
            },
            "unknown_asset",
            "asset",
        ),
        (
            NewOrder {
                metadata: big,
                ..usd("1")
            },
            "metadata_too_large",
            "metadata",
        ),
        (
            NewOrder {
                order_no: Some("has space".into()),
                ..usd("1")
            },
            "invalid_order_no",
            "order_no",
        ),
        (
            NewOrder {
                order_no: Some("x".repeat(129)),
                ..usd("1")
            },
            "invalid_order_no",
            "order_no",
        ),
        (
            NewOrder {
                links: OrderLinks {
                    callback_url: Some("ftp://x.example/cb".into()),
                    ..Default::default()
                },
                ..usd("1")
            },
            "invalid_url",
            "callback_url",
        ),
        (
            NewOrder {
                links: OrderLinks {
                    success_url: Some("not a url".into()),
                    ..Default::default()
                },
                ..usd("1")
            },
            "invalid_url",
            "success_url",
        ),
        (
            NewOrder {
                expires_in: Some(Duration::seconds(5)),
                ..usd("1")
            },
            "invalid_expires_in",
            "expires_in",
        ),
    ];
    for (input, code, field) in cases {
        match e.create_order(&m.id, input).await {
            Err(EngineError::Invalid {
                code: c, field: f, ..
            }) => {
                assert_eq!((c, f), (code, Some(field)));
            }
            other => panic!("expected {code} on {field}, got {other:?}"),
        }
    }
    assert_eq!(counts(db).await, before);
}

async fn asset_orders_are_priced_up_and_locked(db: &TestDb) {
    let e = engine(db, clock());
    let (m, _) = e.create_merchant("Shop").await.unwrap();
    let bsc_usdt = AssetId::from_str("bsc:USDT").unwrap();
    // Without a wallet there is no address to hand out: a clear error, nothing written.
    let before = counts(db).await;
    let no_wallet = e
        .create_order(
            &m.id,
            NewOrder {
                asset: Some(bsc_usdt.clone()),
                ..usd("10")
            },
        )
        .await;
    assert!(
        matches!(
            no_wallet,
            Err(EngineError::Invalid {
                code: "wallet_not_configured",
                ..
            })
        ),
        "{no_wallet:?}"
    );
    assert_eq!(counts(db).await, before);
    assert!(matches!(
        e.set_wallet(&m.id, "bsc", "zpub-wrong").await,
        Err(EngineError::Invalid {
            code: "invalid_wallet",
            ..
        })
    ));
    assert!(matches!(
        e.set_wallet(&m.id, "solana", "xpubA").await,
        Err(EngineError::Invalid {
            code: "unknown_chain",
            ..
        })
    ));
    e.set_wallet(&m.id, "bsc", "xpubA").await.unwrap();
    // Market rate: 10 USD at 0.9998 USD/USDT = 10.002000400080016003… → rounded up at 18 dp.
    let market = e
        .create_order(
            &m.id,
            NewOrder {
                asset: Some(bsc_usdt.clone()),
                ..usd("10")
            },
        )
        .await
        .unwrap()
        .order;
    let t = market.target.unwrap();
    assert_eq!(t.amount_due, BaseUnits::new(10_002_000_400_080_016_004));
    assert_eq!(t.rate.source, "fixed");
    assert_eq!(t.address, "xpubA/0");
    // Pegged: exactly 10 USDT.
    let pegged = e
        .create_order(
            &m.id,
            NewOrder {
                asset: Some(bsc_usdt),
                fixed_stablecoin_rate: true,
                ..usd("10")
            },
        )
        .await
        .unwrap()
        .order;
    let t = pegged.target.unwrap();
    assert_eq!(t.amount_due, BaseUnits::new(10_000_000_000_000_000_000));
    assert_eq!(t.rate.source, "peg");
    assert_eq!(t.address, "xpubA/1", "a new address for every order");
    // No rate → explicit error, nothing written.
    let before = counts(db).await;
    let eur = e
        .create_order(
            &m.id,
            NewOrder {
                asset: Some(AssetId::from_str("bsc:BNB").unwrap()),
                currency: "EUR".into(),
                ..usd("10")
            },
        )
        .await;
    assert!(
        matches!(eur, Err(EngineError::RateUnavailable { .. })),
        "{eur:?}"
    );
    assert_eq!(counts(db).await, before);

    // Re-submitting the same key keeps the index; another merchant's wallet is separate.
    e.set_wallet(&m.id, "bsc", "xpubA").await.unwrap();
    let third = e
        .create_order(
            &m.id,
            NewOrder {
                asset: Some(AssetId::from_str("bsc:BNB").unwrap()),
                ..usd("6")
            },
        )
        .await
        .unwrap()
        .order;
    let t = third.target.unwrap();
    assert_eq!(
        t.address, "xpubA/2",
        "the refused EUR order failed before taking an index"
    );
    assert_eq!(
        t.amount_due,
        BaseUnits::new(10_000_000_000_000_000),
        "6 USD at 600 = 0.01 BNB"
    );
}

async fn two_instances_never_hand_out_the_same_address(db: &TestDb) {
    // Two engines over one database, as two Coffer instances on PostgreSQL would be: each
    // hands out indexes from its own memory, and the database arbitrates.
    let a = engine(db, clock());
    let b = engine(db, clock());
    let (m, _) = a.create_merchant("Shop").await.unwrap();
    a.set_wallet(&m.id, "bsc", "xpubR").await.unwrap();
    let usdt = || NewOrder {
        asset: Some(AssetId::from_str("bsc:USDT").unwrap()),
        fixed_stablecoin_rate: true,
        ..usd("1")
    };
    let first = a.create_order(&m.id, usdt()).await.unwrap().order;
    let second = b.create_order(&m.id, usdt()).await.unwrap().order;
    // A still believes index 1 is next; the database refuses the reuse and A retries.
    let third = a.create_order(&m.id, usdt()).await.unwrap().order;
    let addresses: Vec<String> = [first, second, third]
        .into_iter()
        .map(|o| o.target.unwrap().address)
        .collect();
    assert_eq!(addresses, vec!["xpubR/0", "xpubR/1", "xpubR/2"]);
    let wallet = db
        .store
        .get_wallet(&m.id, &ChainId::parse("bsc").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        wallet.next_index, 3,
        "the durable high-water mark moved with the orders"
    );
    // Concurrent creates in one instance: all distinct, no gaps.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let e = a.clone();
        let m = m.id.clone();
        tasks.push(tokio::spawn(
            async move { e.create_order(&m, usdt()).await },
        ));
    }
    let mut indexes = Vec::new();
    for t in tasks {
        let o = t.await.unwrap().unwrap().order;
        indexes.push(o.target.unwrap().derivation.unwrap().index);
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (3..15).collect::<Vec<u32>>());
}

async fn choosing_an_asset_relocks_the_rate(db: &TestDb) {
    let clock = clock();
    let e = engine(db, clock.clone());
    let (m, _) = e.create_merchant("Shop").await.unwrap();
    e.set_wallet(&m.id, "bsc", "xpubB").await.unwrap();
    let o = e.create_order(&m.id, usd("12")).await.unwrap().order;
    clock.advance(Duration::minutes(20));
    let chosen = e
        .choose_asset(&m.id, &o.id, &AssetId::from_str("bsc:BNB").unwrap())
        .await
        .unwrap();
    let t = chosen.target.clone().unwrap();
    assert_eq!(t.amount_due, BaseUnits::new(20_000_000_000_000_000));
    assert_eq!(t.address, "xpubB/0");
    assert_eq!(
        chosen.expires_at - o.expires_at,
        Duration::minutes(20),
        "the 30-minute lock restarts"
    );
    assert_eq!(e.get_order(&m.id, &o.id).await.unwrap(), chosen);
    // Changing again: a new address and amount.
    let changed = e
        .choose_asset(&m.id, &o.id, &AssetId::from_str("bsc:USDT").unwrap())
        .await
        .unwrap();
    assert_eq!(changed.target.unwrap().address, "xpubB/1");
    // Not once the lock lapsed.
    clock.advance(Duration::minutes(31));
    let late = e
        .choose_asset(&m.id, &o.id, &AssetId::from_str("bsc:BNB").unwrap())
        .await;
    assert!(
        matches!(
            late,
            Err(EngineError::Conflict {
                code: "invalid_state",
                ..
            })
        ),
        "{late:?}"
    );
    // Unknown asset.
    let o2 = e.create_order(&m.id, usd("1")).await.unwrap().order;
    let bad = e
        .choose_asset(&m.id, &o2.id, &AssetId::from_str("eth:USDT").unwrap())
        .await;
    assert!(
        matches!(
            bad,
            Err(EngineError::Invalid {
                code: "unknown_asset",
                ..
            })
        ),
        "{bad:?}"
    );
}

async fn expiry_and_manual_actions_follow_the_state_machine(db: &TestDb) {
    let clock = clock();
    let e = engine(db, clock.clone());
    let m = shop(&e).await;
    let soon = e.create_order(&m.id, usd("1")).await.unwrap().order;
    let later = e
        .create_order(
            &m.id,
            NewOrder {
                expires_in: Some(Duration::hours(2)),
                ..usd("1")
            },
        )
        .await
        .unwrap()
        .order;
    clock.advance(Duration::minutes(31));
    assert_eq!(e.expire_due(100).await.unwrap(), 1);
    assert_eq!(e.expire_due(100).await.unwrap(), 0, "idempotent");
    let expired = e.get_order(&m.id, &soon.id).await.unwrap();
    assert_eq!(expired.state.status, OrderStatus::Expired);
    assert_eq!(expired.version, 2);
    let timeline = db.store.timeline(&soon.id).await.unwrap();
    assert_eq!(timeline.last().unwrap().cause, Cause::Expiry);
    assert_eq!(
        e.get_order(&m.id, &later.id).await.unwrap().state.status,
        OrderStatus::Pending
    );
    let expired_events = db
        .store
        .list_events(&EventQuery {
            kind: Some(EventType::OrderExpired),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(expired_events.len(), 1);
    assert_eq!(expired_events[0].event.data["previous_status"], "pending");

    // Cancel is only for unpaid pending orders; resolve needs a partial payment.
    let resolve = e
        .manual_action(&m.id, &later.id, Cause::Resolve, None)
        .await;
    assert!(
        matches!(
            resolve,
            Err(EngineError::Conflict {
                code: "invalid_state",
                ..
            })
        ),
        "{resolve:?}"
    );
    let cancelled = e
        .manual_action(
            &m.id,
            &later.id,
            Cause::Cancel,
            Some("customer left".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        (cancelled.state.status, cancelled.state.reason),
        (OrderStatus::Invalid, StatusReason::Marked)
    );
    let settled = e
        .manual_action(
            &m.id,
            &soon.id,
            Cause::MarkSettled,
            Some("paid in cash".into()),
        )
        .await
        .unwrap();
    assert_eq!(settled.state.reason, StatusReason::Marked);
    // Other merchants see nothing.
    let (other, _) = e.create_merchant("Other").await.unwrap();
    assert!(matches!(
        e.manual_action(&other.id, &soon.id, Cause::MarkInvalid, None)
            .await,
        Err(EngineError::NotFound("order"))
    ));
}

/// An order the buyer would choose an asset for is refused when nothing could be chosen:
/// no chain on the server, or no wallet of the merchant's on any (issue 19, item 5).
async fn orders_nobody_can_pay_are_refused(db: &TestDb) {
    let e = engine(db, clock());
    let (m, _) = e.create_merchant("New shop").await.unwrap();
    let before = counts(db).await;
    let refused = e.create_order(&m.id, usd("10")).await.unwrap_err();
    let EngineError::Invalid {
        code,
        field,
        message,
    } = &refused
    else {
        panic!("{refused:?}");
    };
    assert_eq!((*code, *field), ("wallet_not_configured", Some("asset")));
    assert!(
        message.contains("no wallet yet") && message.contains("bsc"),
        "{message}"
    );
    assert!(e.payable_chains(&m.id).await.unwrap().is_empty());

    // A server with no chain at all says so, whatever the merchant did.
    let bare = Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new()),
        assets: Arc::new(AssetRegistry::new(vec![], vec![]).unwrap()),
        methods: Methods::default(),
        clock: clock(),
        settings: Arc::new(EngineSettings::default()),
    });
    let refused = bare.create_order(&m.id, usd("10")).await.unwrap_err();
    assert_eq!(refused.code(), "no_chain_configured", "{refused}");
    assert!(refused.to_string().contains("[[chains]]"), "{refused}");
    assert_eq!(counts(db).await, before, "a refused order writes nothing");

    e.set_wallet(&m.id, "bsc", "xpubA").await.unwrap();
    let chains = e.payable_chains(&m.id).await.unwrap();
    assert_eq!(
        chains.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["bsc"]
    );
    assert!(e.create_order(&m.id, usd("10")).await.unwrap().created);
}

/// Two instances on one database: what one changes, the other's hot caches (which remember
/// keys, suspensions and wallets) see within `HOT_TTL`; the instance that made the change sees
/// it at once.
async fn changes_by_another_instance_are_seen_within_the_hot_ttl(db: &TestDb) {
    let a = engine(db, clock());
    let b = engine(db, clock());
    let (merchant, admin) = a.create_merchant("Two instances").await.unwrap();
    let spare = a
        .create_key(&merchant.id, "spare", vec![Scope::OrdersWrite], None)
        .await
        .unwrap();
    // Remembered by both.
    for e in [&a, &b] {
        e.authenticate(&admin.token).await.unwrap();
        e.authenticate(&spare.token).await.unwrap();
        assert!(matches!(
            e.create_order(&merchant.id, usd("10")).await,
            Err(EngineError::Invalid { .. })
        ));
    }
    b.revoke_key(&merchant.id, &spare.credential.id)
        .await
        .unwrap();
    b.set_merchant_suspended(&merchant.id, true).await.unwrap();
    b.set_wallet(&merchant.id, "bsc", "xpub-two-instances")
        .await
        .unwrap();
    for token in [&admin.token, &spare.token] {
        assert!(matches!(
            b.authenticate(token).await,
            Err(EngineError::Unauthorized)
        ));
    }
    assert!(
        b.create_order(&merchant.id, usd("10"))
            .await
            .unwrap()
            .created
    );
    tokio::time::sleep(coffer_engine::HOT_TTL + std::time::Duration::from_millis(200)).await;
    for token in [&admin.token, &spare.token] {
        assert!(matches!(
            a.authenticate(token).await,
            Err(EngineError::Unauthorized)
        ));
    }
    assert!(
        a.create_order(&merchant.id, usd("10"))
            .await
            .unwrap()
            .created
    );
}

both_backends! {
    changes_by_another_instance_are_seen_within_the_hot_ttl => changes_by_another_instance_are_seen_within_the_hot_ttl;
    keys_authenticate_and_revoke => keys_authenticate_and_revoke;
    orders_nobody_can_pay_are_refused => orders_nobody_can_pay_are_refused;
    fiat_order_is_created_with_event => fiat_order_is_created_with_event;
    order_no_replays_or_conflicts => order_no_replays_or_conflicts;
    bad_input_is_refused_and_writes_nothing => bad_input_is_refused_and_writes_nothing;
    asset_orders_are_priced_up_and_locked => asset_orders_are_priced_up_and_locked;
    choosing_an_asset_relocks_the_rate => choosing_an_asset_relocks_the_rate;
    two_instances_never_hand_out_the_same_address => two_instances_never_hand_out_the_same_address;
    expiry_and_manual_actions_follow_the_state_machine => expiry_and_manual_actions_follow_the_state_machine;
}
