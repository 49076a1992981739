//! One conformance suite, run against SQLite and a real PostgreSQL server.
//! Every test gets a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use coffer_core::order::{Derivation, OrderLinks};
use coffer_core::{
    ApiCredential, AssetId, BaseUnits, Cause, ChainId, CheckoutToken, DeliveryId, Deposit,
    DepositId, Event, EventId, EventType, KeyId, LockedRate, MatchStatus, Merchant, MerchantId,
    Order, OrderId, OrderState, OrderStatus, Payment, PaymentId, PaymentStatus, PaymentTarget,
    PayoutId, PayoutKind, PayoutRequest, PayoutStatus, Price, Scope, SettlementPolicy,
    StatusReason, TimelineEntry, Totals, WebhookId,
};
use coffer_store::{
    Changeset, CredentialRecord, DepositAddressRecord, DialectCredentialRecord, EventQuery,
    IdempotencyRecord, MerchantLoginRecord, NewDelivery, NewDepositAccount, OrderCursor,
    OrderFilter, OrderQuery, OrderUpdate, StoreError, StoredEvent, Unique, WebhookEndpointRecord,
};
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-03-01 12:00:00.123 UTC);

fn rnd16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b
}

fn rnd32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

fn merchant(name: &str) -> Merchant {
    Merchant {
        id: MerchantId::from_random(rnd16()),
        name: name.into(),
        policy: SettlementPolicy::default(),
        created_at: T0,
    }
}

fn order(merchant: &MerchantId, order_no: Option<&str>, created_at: OffsetDateTime) -> Order {
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "cart".into(),
        serde_json::json!({"items": [1, 2], "note": "ünïcode ✓"}),
    );
    Order {
        id: OrderId::from_random(rnd16()),
        merchant_id: merchant.clone(),
        order_no: order_no.map(str::to_owned),
        checkout_token: CheckoutToken::from_random(rnd32()),
        state: OrderState::NEW,
        amount: Decimal::from_str("19.99").unwrap(),
        currency: "USD".into(),
        fixed_stablecoin_rate: true,
        target: Some(PaymentTarget {
            asset: AssetId::from_str("bsc:USDT").unwrap(),
            // 18-decimal token amounts exceed u64 and i64: they must survive as text.
            amount_due: BaseUnits::new(19_990_000_000_000_000_000),
            // Addresses are unique per order (migration 0007).
            address: format!("0x{}", hex::encode(&rnd32()[..20])),
            derivation: Some(Derivation {
                index: 7,
                path: "m/44'/60'/0'/0/7".into(),
            }),
            rate: LockedRate {
                price: Price::new(Decimal::ONE).unwrap(),
                source: "peg".into(),
                at: created_at,
            },
            details: Default::default(),
        }),
        totals: Totals::default(),
        policy: SettlementPolicy {
            underpayment_tolerance_percent: Decimal::from_str("0.5").unwrap(),
            confirmations: Some(12),
            ..SettlementPolicy::default()
        },
        description: Some("Two coffees".into()),
        metadata,
        links: OrderLinks {
            success_url: Some("https://shop.example/ok?o={order_id}".into()),
            expired_url: None,
            callback_url: Some("https://shop.example/cb".into()),
        },
        dialect: "native".into(),
        expires_at: created_at + Duration::minutes(30),
        monitor_until: created_at + Duration::hours(24),
        created_at,
        updated_at: created_at,
        version: 1,
        dialect_data: Default::default(),
        credential_id: Some("dcr_conformance".into()),
        lock_window: Duration::minutes(30),
    }
}

fn event(merchant: &MerchantId, kind: EventType, subject: &str, at: OffsetDateTime) -> Event {
    Event {
        id: EventId::from_random(rnd16()),
        merchant_id: merchant.clone(),
        kind,
        subject: subject.into(),
        data: serde_json::json!({"object": {"id": subject}, "previous_status": null}),
        created_at: at,
    }
}

fn created_entry(at: OffsetDateTime) -> TimelineEntry {
    TimelineEntry {
        at,
        from: None,
        to: OrderState::NEW,
        cause: Cause::Created,
        note: None,
    }
}

async fn seed_merchant(db: &TestDb, name: &str) -> Merchant {
    let m = merchant(name);
    db.store
        .commit(Changeset {
            new_merchants: vec![m.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    m
}

/// What the engine commits when it creates an order.
fn creation(o: &Order) -> Changeset {
    Changeset {
        new_orders: vec![o.clone()],
        timeline: vec![(o.id.clone(), created_entry(o.created_at))],
        events: vec![event(
            &o.merchant_id,
            EventType::OrderCreated,
            o.id.as_str(),
            o.created_at,
        )],
        ..Changeset::default()
    }
}

async fn create(db: &TestDb, o: &Order) -> Result<(), StoreError> {
    db.store.commit(creation(o)).await
}

/// Every stored event, in order.
async fn all_events(db: &TestDb) -> Vec<StoredEvent> {
    let mut all: Vec<StoredEvent> = Vec::new();
    loop {
        let page = db
            .store
            .list_events(&EventQuery {
                after_seq: all.last().map(|e| e.seq),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Commit every changeset from its own task, all released at once, and return the outcomes
/// in the same order.
async fn commit_concurrently(
    db: &TestDb,
    changesets: Vec<Changeset>,
) -> Vec<Result<(), StoreError>> {
    let start = Arc::new(tokio::sync::Barrier::new(changesets.len()));
    let tasks: Vec<_> = changesets
        .into_iter()
        .map(|changes| {
            let store = db.store.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store.commit(changes).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

async fn merchants_roundtrip(db: &TestDb) {
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;
    assert_eq!(db.store.get_merchant(&a.id).await.unwrap(), Some(a.clone()));
    let all = db.store.list_merchants().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&a) && all.contains(&b));
    let unknown = MerchantId::from_random(rnd16());
    assert_eq!(db.store.get_merchant(&unknown).await.unwrap(), None);
    let dup = db
        .store
        .commit(Changeset {
            new_merchants: vec![a.clone()],
            ..Changeset::default()
        })
        .await;
    assert!(
        matches!(dup, Err(StoreError::Duplicate(Unique::Record))),
        "{dup:?}"
    );
}

async fn credentials_are_scoped(db: &TestDb) {
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;
    let cred = ApiCredential {
        id: KeyId::from_random(rnd16()),
        merchant_id: a.id.clone(),
        label: "shop".into(),
        scopes: vec![Scope::OrdersRead, Scope::OrdersWrite],
        created_at: T0,
        expires_at: Some(T0 + Duration::days(90)),
        revoked_at: None,
    };
    db.store
        .insert_credential(CredentialRecord {
            credential: cred.clone(),
            secret_hash: "ab".repeat(32),
        })
        .await
        .unwrap();
    let got = db.store.get_credential(&cred.id).await.unwrap().unwrap();
    assert_eq!(got.credential, cred);
    assert_eq!(got.secret_hash, "ab".repeat(32));
    assert_eq!(
        db.store.list_credentials(&a.id).await.unwrap(),
        vec![cred.clone()]
    );
    assert!(db.store.list_credentials(&b.id).await.unwrap().is_empty());
    // Merchant B cannot revoke A's key.
    assert!(
        !db.store
            .revoke_credential(&b.id, &cred.id, T0)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .revoke_credential(&a.id, &cred.id, T0)
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .revoke_credential(&a.id, &cred.id, T0)
            .await
            .unwrap(),
        "already revoked"
    );
    let revoked = db.store.get_credential(&cred.id).await.unwrap().unwrap();
    assert_eq!(revoked.credential.revoked_at, Some(T0));
}

async fn orders_roundtrip_exactly(db: &TestDb) {
    let m = seed_merchant(db, "Alpha").await;
    let o = order(&m.id, Some("A-1001"), T0);
    create(db, &o).await.unwrap();
    assert_eq!(
        db.store.get_order(&m.id, &o.id).await.unwrap(),
        Some(o.clone())
    );
    assert_eq!(db.store.find_order(&o.id).await.unwrap(), Some(o.clone()));
    assert_eq!(
        db.store.get_order_by_no(&m.id, "A-1001").await.unwrap(),
        Some(o.clone())
    );
    assert_eq!(
        db.store
            .find_order_by_token(o.checkout_token.as_str())
            .await
            .unwrap(),
        Some(o.clone())
    );
    // An order without an asset yet, and without order_no.
    let mut bare = order(&m.id, None, T0);
    bare.target = None;
    bare.metadata = serde_json::Map::new();
    create(db, &bare).await.unwrap();
    assert_eq!(
        db.store.find_order(&bare.id).await.unwrap(),
        Some(bare.clone())
    );
    // Largest representable amount survives.
    let mut huge = order(&m.id, None, T0);
    if let Some(t) = huge.target.as_mut() {
        t.amount_due = BaseUnits::new(u128::MAX);
    }
    huge.totals.confirmed = BaseUnits::new(u128::MAX - 1);
    create(db, &huge).await.unwrap();
    assert_eq!(db.store.find_order(&huge.id).await.unwrap(), Some(huge));
}

async fn orders_are_invisible_to_other_merchants(db: &TestDb) {
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;
    let o = order(&a.id, Some("SAME-NO"), T0);
    create(db, &o).await.unwrap();
    assert_eq!(db.store.get_order(&b.id, &o.id).await.unwrap(), None);
    assert_eq!(
        db.store.get_order_by_no(&b.id, "SAME-NO").await.unwrap(),
        None
    );
    let listed = db
        .store
        .list_orders(&OrderQuery {
            merchant_id: Some(b.id.clone()),
            limit: 100,
            ..OrderQuery::default()
        })
        .await
        .unwrap();
    assert!(listed.is_empty());
    // The same order number is free for another merchant…
    create(db, &order(&b.id, Some("SAME-NO"), T0))
        .await
        .unwrap();
    // …but not twice for the same one, and nothing of the failed attempt is written.
    let events_before = db
        .store
        .list_events(&EventQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    let again = create(db, &order(&a.id, Some("SAME-NO"), T0)).await;
    assert!(
        matches!(again, Err(StoreError::Duplicate(Unique::OrderNo))),
        "{again:?}"
    );
    let events_after = db
        .store
        .list_events(&EventQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(events_before, events_after);
    // Orders without order_no never clash.
    create(db, &order(&a.id, None, T0)).await.unwrap();
    create(db, &order(&a.id, None, T0)).await.unwrap();
}

async fn updates_are_versioned_and_atomic(db: &TestDb) {
    let m = seed_merchant(db, "Alpha").await;
    let o = order(&m.id, Some("V-1"), T0);
    create(db, &o).await.unwrap();

    let mut next = o.clone();
    next.state = OrderState::new(OrderStatus::Processing, StatusReason::None);
    next.totals.unconfirmed = BaseUnits::new(19_990_000_000_000_000_000);
    next.version = 2;
    next.updated_at = T0 + Duration::minutes(1);
    let entry = TimelineEntry {
        at: next.updated_at,
        from: Some(o.state),
        to: next.state,
        cause: Cause::Payment,
        note: Some("tx 0xabc".into()),
    };
    db.store
        .commit(Changeset {
            order_updates: vec![OrderUpdate {
                order: next.clone(),
                expected_version: 1,
            }],
            timeline: vec![(o.id.clone(), entry.clone())],
            events: vec![event(
                &m.id,
                EventType::OrderProcessing,
                o.id.as_str(),
                next.updated_at,
            )],
            ..Changeset::default()
        })
        .await
        .unwrap();
    assert_eq!(
        db.store.find_order(&o.id).await.unwrap(),
        Some(next.clone())
    );
    let timeline = db.store.timeline(&o.id).await.unwrap();
    assert_eq!(timeline, vec![created_entry(T0), entry]);

    // A stale writer loses, and none of its changeset is written.
    let mut stale = o.clone();
    stale.state = OrderState::new(OrderStatus::Invalid, StatusReason::Marked);
    stale.version = 2;
    let lost = db
        .store
        .commit(Changeset {
            order_updates: vec![OrderUpdate {
                order: stale,
                expected_version: 1,
            }],
            timeline: vec![(o.id.clone(), created_entry(T0))],
            events: vec![event(&m.id, EventType::OrderInvalid, o.id.as_str(), T0)],
            ..Changeset::default()
        })
        .await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    assert_eq!(db.store.find_order(&o.id).await.unwrap(), Some(next));
    assert_eq!(db.store.timeline(&o.id).await.unwrap().len(), 2);
    let events = db
        .store
        .list_events(&EventQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.event.kind != EventType::OrderInvalid)
    );
    // A version that does not follow the expected one is refused before touching the row.
    let mut skip = o.clone();
    skip.version = 9;
    let bad = db
        .store
        .commit(Changeset {
            order_updates: vec![OrderUpdate {
                order: skip,
                expected_version: 2,
            }],
            ..Changeset::default()
        })
        .await;
    assert!(matches!(bad, Err(StoreError::Conflict(_))));
}

async fn concurrent_updates_have_one_winner(db: &TestDb) {
    let m = seed_merchant(db, "Alpha").await;
    let o = order(&m.id, None, T0);
    create(db, &o).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        let mut next = o.clone();
        next.version = 2;
        next.description = Some(format!("writer {i}"));
        tasks.push(tokio::spawn(async move {
            store
                .commit(Changeset {
                    order_updates: vec![OrderUpdate {
                        order: next,
                        expected_version: 1,
                    }],
                    ..Changeset::default()
                })
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one concurrent writer wins");
}

async fn pagination_is_stable_and_complete(db: &TestDb) {
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;
    let mut expected = Vec::new();
    for i in 0..23i64 {
        // Several orders share a millisecond: ties are broken by id.
        let o = order(&a.id, None, T0 + Duration::milliseconds(i / 3));
        create(db, &o).await.unwrap();
        expected.push(o);
    }
    create(db, &order(&b.id, None, T0)).await.unwrap();
    expected.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id.clone())));

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = db
            .store
            .list_orders(&OrderQuery {
                merchant_id: Some(a.id.clone()),
                after: after.clone(),
                limit: 5,
                ..OrderQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5);
        let last = page.last().unwrap();
        after = Some(OrderCursor {
            created_at: last.created_at,
            id: last.id.clone(),
        });
        seen.extend(page);
    }
    let ids = |v: &[Order]| v.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&seen), ids(&expected));

    // Filters: status and creation window.
    let mut settled = expected[4].clone();
    settled.state = OrderState::new(OrderStatus::Settled, StatusReason::None);
    settled.version = 2;
    db.store
        .commit(Changeset {
            order_updates: vec![OrderUpdate {
                order: settled.clone(),
                expected_version: 1,
            }],
            ..Changeset::default()
        })
        .await
        .unwrap();
    let only_settled = db
        .store
        .list_orders(&OrderQuery {
            merchant_id: Some(a.id.clone()),
            status: Some(OrderStatus::Settled),
            limit: 50,
            ..OrderQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&only_settled), vec![settled.id]);
    let window = db
        .store
        .list_orders(&OrderQuery {
            merchant_id: Some(a.id.clone()),
            created_from: Some(T0 + Duration::milliseconds(2)),
            created_to: Some(T0 + Duration::milliseconds(4)),
            limit: 50,
            ..OrderQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 6, "ms 2 and 3, three orders each");
    // Operator view spans merchants.
    let all = db
        .store
        .list_orders(&OrderQuery {
            limit: 500,
            ..OrderQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 24);
}

fn payment(o: &Order, txid: &str, output_index: u32, amount: u128) -> Payment {
    Payment {
        id: PaymentId::from_random(rnd16()),
        order_id: o.id.clone(),
        merchant_id: o.merchant_id.clone(),
        asset: AssetId::from_str("bsc:USDT").unwrap(),
        amount: BaseUnits::new(amount),
        txid: txid.into(),
        output_index,
        from_address: Some("0x1111111111111111111111111111111111111111".into()),
        to_address: "0x9858EfFD232B4033E47d90003D41EC34EcaEda94".into(),
        block_height: None,
        block_hash: None,
        confirmations: 0,
        status: PaymentStatus::Unconfirmed,
        match_status: MatchStatus::Matched,
        late: false,
        occurred_at: T0,
        detected_at: T0,
        updated_at: T0,
        details: Default::default(),
    }
}

async fn payments_upsert_and_stay_unique(db: &TestDb) {
    let m = seed_merchant(db, "Alpha").await;
    let o = order(&m.id, None, T0);
    create(db, &o).await.unwrap();
    let mut p = payment(&o, "0xaaa", 3, 10_000_000_000_000_000_001);
    let p2 = payment(&o, "0xaaa", 4, 5);
    db.store
        .commit(Changeset {
            payments: vec![p.clone(), p2.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    assert_eq!(db.store.payments_for_order(&o.id).await.unwrap().len(), 2);
    p.block_height = Some(1_000_000_000_001);
    p.block_hash = Some("0xblock".into());
    p.confirmations = 15;
    p.status = PaymentStatus::Confirmed;
    p.updated_at = T0 + Duration::seconds(45);
    db.store
        .commit(Changeset {
            payments: vec![p.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    let stored = db.store.payments_for_order(&o.id).await.unwrap();
    assert!(stored.contains(&p) && stored.contains(&p2), "{stored:?}");
    // The same transfer can never be recorded twice under another id.
    let twin = payment(&o, "0xaaa", 3, 1);
    let dup = db
        .store
        .commit(Changeset {
            payments: vec![twin],
            ..Changeset::default()
        })
        .await;
    assert!(
        matches!(dup, Err(StoreError::Duplicate(Unique::Transfer))),
        "{dup:?}"
    );
}

async fn method_details_round_trip(db: &TestDb) {
    // What a payment method keeps beside the common columns: any JSON object, exactly.
    let details = |v: serde_json::Value| v.as_object().cloned().unwrap();
    let m = seed_merchant(db, "Alpha").await;
    let mut o = order(&m.id, None, T0);
    let target = o.target.as_mut().unwrap();
    target.details = details(serde_json::json!({
        "payment_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "expiry_secs": 1800,
        "route_hints": [{"node": "02ab", "fee_ppm": 1}],
        "note": "Zahlung für Bestellung Nº 7 — 支付",
        "amount_msat": "340282366920938463463374607431768211455",
    }));
    create(db, &o).await.unwrap();
    assert_eq!(db.store.find_order(&o.id).await.unwrap(), Some(o.clone()));
    // A new target (another invoice) replaces them with the order's update.
    let mut next = o.clone();
    next.target.as_mut().unwrap().details = details(serde_json::json!({"salt": "0x01"}));
    next.version = 2;
    db.store
        .commit(Changeset {
            order_updates: vec![OrderUpdate {
                order: next.clone(),
                expected_version: 1,
            }],
            ..Changeset::default()
        })
        .await
        .unwrap();
    assert_eq!(
        db.store.get_order(&m.id, &o.id).await.unwrap(),
        Some(next.clone())
    );
    let by_address = db
        .store
        .orders_for_address(
            &ChainId::parse("bsc").unwrap(),
            &o.target.as_ref().unwrap().address,
        )
        .await
        .unwrap();
    assert_eq!(by_address, vec![next]);

    let mut p = payment(&o, "0xddd", 0, 5);
    p.details = details(serde_json::json!({"preimage": "00ff", "parts": 2}));
    let plain = payment(&o, "0xeee", 0, 6);
    db.store
        .commit(Changeset {
            payments: vec![p.clone(), plain.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    let stored = db.store.payments_for_order(&o.id).await.unwrap();
    assert!(stored.contains(&p) && stored.contains(&plain), "{stored:?}");
    // Details change with the payment (upsert), and every read returns them.
    p.details.insert("settled_by".into(), "htlc".into());
    p.status = PaymentStatus::Confirmed;
    p.updated_at = T0 + Duration::seconds(5);
    db.store
        .commit(Changeset {
            payments: vec![p.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    let stored = db.store.payments_for_order(&o.id).await.unwrap();
    assert!(stored.contains(&p), "{stored:?}");
    let listed = db.store.merchant_payments(&m.id, 0, 10).await.unwrap();
    assert!(listed.contains(&p) && listed.contains(&plain), "{listed:?}");
    let open = db
        .store
        .open_payments(&ChainId::parse("bsc").unwrap(), 0)
        .await
        .unwrap();
    assert!(open.contains(&plain), "{open:?}");
}

async fn events_and_outbox_commit_together(db: &TestDb) {
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;
    let oa = order(&a.id, None, T0);
    let ob = order(&b.id, None, T0 + Duration::seconds(1));
    create(db, &oa).await.unwrap();
    create(db, &ob).await.unwrap();
    let all = db
        .store
        .list_events(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].seq < all[1].seq);
    assert_eq!(all[0].event.subject, oa.id.as_str());
    let outbox = db.store.pending_outbox(10).await.unwrap();
    assert_eq!(
        outbox
            .iter()
            .map(|e| e.event.id.clone())
            .collect::<Vec<_>>(),
        all.iter().map(|e| e.event.id.clone()).collect::<Vec<_>>(),
        "every event has an outbox row"
    );
    assert_eq!(outbox[0].event, all[0].event);
    let only_b = db
        .store
        .list_events(&EventQuery {
            merchant_id: Some(b.id.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].event.merchant_id, b.id);
    let after_first = db
        .store
        .list_events(&EventQuery {
            after_seq: Some(all[0].seq),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after_first.len(), 1);
    let by_type = db
        .store
        .list_events(&EventQuery {
            kind: Some(EventType::OrderSettled),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_type.is_empty());
}

async fn data_survives_reopening(db: &TestDb) {
    let m = seed_merchant(db, "Alpha").await;
    let o = order(&m.id, Some("DURABLE-1"), T0);
    create(db, &o).await.unwrap();
    let reopened = coffer_store::open(db.url.as_deref(), db.dir.path(), 2)
        .await
        .unwrap();
    reopened.migrate().await.unwrap(); // idempotent
    assert_eq!(reopened.find_order(&o.id).await.unwrap(), Some(o));
    reopened.ping().await.unwrap();
}

async fn many_concurrent_commits_all_land(db: &TestDb) {
    let m = seed_merchant(db, "Alpha").await;
    let orders: Vec<Order> = (0..300i64)
        .map(|i| {
            order(
                &m.id,
                Some(&format!("C-{i}")),
                T0 + Duration::milliseconds(i),
            )
        })
        .collect();
    let outcomes = commit_concurrently(db, orders.iter().map(creation).collect()).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for o in &orders {
        assert_eq!(
            db.store.get_order(&m.id, &o.id).await.unwrap().as_ref(),
            Some(o)
        );
        assert_eq!(
            db.store.timeline(&o.id).await.unwrap(),
            vec![created_entry(o.created_at)]
        );
    }
    let events = all_events(db).await;
    assert_eq!(
        events
            .iter()
            .map(|e| e.event.subject.clone())
            .collect::<HashSet<_>>(),
        orders
            .iter()
            .map(|o| o.id.to_string())
            .collect::<HashSet<_>>(),
        "one event per order"
    );
    assert_eq!(events.len(), orders.len());
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    // Every event has its outbox row. (Not necessarily in event order: on PostgreSQL,
    // concurrent transactions draw from the two sequences in any interleaving.)
    let outbox = db.store.pending_outbox(500).await.unwrap();
    assert_eq!(outbox.len(), events.len());
    assert_eq!(
        outbox
            .iter()
            .map(|e| e.event.id.clone())
            .collect::<HashSet<_>>(),
        events
            .iter()
            .map(|e| e.event.id.clone())
            .collect::<HashSet<_>>(),
    );
}

async fn a_failing_changeset_fails_alone_among_concurrent_ones(db: &TestDb) {
    let m = seed_merchant(db, "Alpha").await;
    let taken = order(&m.id, Some("TAKEN"), T0);
    create(db, &taken).await.unwrap();
    let paid = payment(&taken, "0xfeed", 0, 5);
    db.store
        .commit(Changeset {
            payments: vec![paid.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();

    let good: Vec<Order> = (0..40i64)
        .map(|i| {
            order(
                &m.id,
                Some(&format!("G-{i}")),
                T0 + Duration::milliseconds(i),
            )
        })
        .collect();
    // Failing changesets, each with a timeline entry and an event that must not be written.
    let duplicate_no = creation(&order(&m.id, Some("TAKEN"), T0));
    let mut stale_order = taken.clone();
    stale_order.state = OrderState::new(OrderStatus::Invalid, StatusReason::Marked);
    stale_order.version = 6;
    let stale = Changeset {
        order_updates: vec![OrderUpdate {
            order: stale_order,
            expected_version: 5,
        }],
        timeline: vec![(taken.id.clone(), created_entry(T0))],
        events: vec![event(&m.id, EventType::OrderInvalid, taken.id.as_str(), T0)],
        ..Changeset::default()
    };
    let twin_payment = Changeset {
        payments: vec![payment(&taken, "0xfeed", 0, 7)],
        events: vec![event(
            &m.id,
            EventType::OrderProcessing,
            taken.id.as_str(),
            T0,
        )],
        ..Changeset::default()
    };
    // Two new orders racing for one order number: exactly one wins.
    let race = [
        order(&m.id, Some("RACE"), T0),
        order(&m.id, Some("RACE"), T0),
    ];
    let bad_events: HashSet<_> = [&duplicate_no, &stale, &twin_payment]
        .iter()
        .flat_map(|c| c.events.iter().map(|e| e.id.clone()))
        .collect();

    let mut changesets: Vec<Changeset> = good.iter().map(creation).collect();
    // Spread the failures among the good ones: first, middle, last.
    changesets.insert(0, duplicate_no);
    changesets.insert(14, stale);
    changesets.insert(15, creation(&race[0]));
    changesets.insert(28, twin_payment);
    changesets.push(creation(&race[1]));
    let outcomes = commit_concurrently(db, changesets).await;

    assert!(
        matches!(outcomes[0], Err(StoreError::Duplicate(Unique::OrderNo))),
        "{:?}",
        outcomes[0]
    );
    assert!(
        matches!(outcomes[14], Err(StoreError::Conflict(_))),
        "{:?}",
        outcomes[14]
    );
    assert!(
        matches!(outcomes[28], Err(StoreError::Duplicate(Unique::Transfer))),
        "{:?}",
        outcomes[28]
    );
    let race_outcomes = [&outcomes[15], outcomes.last().unwrap()];
    assert_eq!(
        race_outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{race_outcomes:?}"
    );
    assert!(
        race_outcomes
            .iter()
            .any(|o| matches!(o, Err(StoreError::Duplicate(Unique::OrderNo)))),
        "{race_outcomes:?}"
    );
    let good_outcomes: Vec<_> = outcomes
        .iter()
        .enumerate()
        .filter(|(i, _)| ![0, 14, 15, 28, outcomes.len() - 1].contains(i))
        .map(|(_, o)| o)
        .collect();
    assert_eq!(good_outcomes.len(), good.len());
    assert!(good_outcomes.iter().all(|o| o.is_ok()), "{good_outcomes:?}");

    // The good ones all landed, with their timeline and events.
    for o in &good {
        assert_eq!(
            db.store.get_order(&m.id, &o.id).await.unwrap().as_ref(),
            Some(o)
        );
        assert_eq!(db.store.timeline(&o.id).await.unwrap().len(), 1);
    }
    let winner = race
        .iter()
        .zip(race_outcomes)
        .find(|(_, outcome)| outcome.is_ok())
        .map(|(o, _)| o.clone())
        .unwrap();
    assert_eq!(
        db.store.get_order_by_no(&m.id, "RACE").await.unwrap(),
        Some(winner)
    );
    // The failed ones wrote nothing.
    assert_eq!(
        db.store.find_order(&taken.id).await.unwrap(),
        Some(taken.clone())
    );
    assert_eq!(db.store.timeline(&taken.id).await.unwrap().len(), 1);
    assert_eq!(
        db.store.get_order_by_no(&m.id, "TAKEN").await.unwrap(),
        Some(taken.clone())
    );
    assert_eq!(
        db.store.payments_for_order(&taken.id).await.unwrap(),
        vec![paid]
    );
    let orders = db
        .store
        .list_orders(&OrderQuery {
            limit: 500,
            ..OrderQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(orders.len(), 1 + good.len() + 1);
    let events = all_events(db).await;
    assert_eq!(
        events.len(),
        1 + good.len() + 1,
        "taken, the good ones, the race winner"
    );
    assert!(events.iter().all(|e| !bad_events.contains(&e.event.id)));
    assert_eq!(
        db.store.pending_outbox(500).await.unwrap().len(),
        events.len()
    );
}

/// The rule a refused write broke.
fn broke<T: std::fmt::Debug>(outcome: Result<T, StoreError>) -> Unique {
    match outcome {
        Err(StoreError::Duplicate(rule)) => rule,
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

fn fresh_address() -> String {
    format!("0x{}", hex::encode(&rnd32()[..20]))
}

fn deposit_account(merchant: &MerchantId, uuid: &str, address: &str) -> Changeset {
    Changeset {
        new_deposit_accounts: vec![NewDepositAccount {
            merchant_id: merchant.clone(),
            uuid: uuid.into(),
            dialect: "payprotocol".into(),
            created_at: T0,
            addresses: vec![DepositAddressRecord {
                chain: ChainId::parse("bsc").unwrap(),
                address: address.into(),
                derivation_index: 1,
            }],
        }],
        ..Changeset::default()
    }
}

fn deposit(merchant: &MerchantId, address: &str, txid: &str) -> Changeset {
    Changeset {
        deposits: vec![Deposit {
            id: DepositId::from_random(rnd16()),
            seq: 0,
            merchant_id: merchant.clone(),
            account_uuid: "u-1".into(),
            account_seq: 1,
            dialect: "payprotocol".into(),
            asset: AssetId::from_str("bsc:USDT").unwrap(),
            amount: BaseUnits::new(5),
            txid: txid.into(),
            output_index: 0,
            from_address: None,
            to_address: address.into(),
            derivation_index: 1,
            block_height: None,
            block_hash: None,
            confirmations: 0,
            status: PaymentStatus::Unconfirmed,
            occurred_at: T0,
            detected_at: T0,
            confirmed_at: None,
            updated_at: T0,
        }],
        ..Changeset::default()
    }
}

fn idempotency_key(merchant: &MerchantId, key: &str) -> Changeset {
    Changeset {
        idempotency_reservations: vec![IdempotencyRecord {
            merchant_id: merchant.clone(),
            key: key.into(),
            fingerprint: "POST /v1/orders".into(),
            response: None,
            created_at: T0,
        }],
        ..Changeset::default()
    }
}

fn withdrawal(merchant: &MerchantId, reference: &str) -> Changeset {
    Changeset {
        new_payouts: vec![PayoutRequest {
            id: PayoutId::from_random(rnd16()),
            seq: 0,
            merchant_id: merchant.clone(),
            kind: PayoutKind::Withdrawal,
            order_id: None,
            asset: Some(AssetId::from_str("bsc:USDT").unwrap()),
            amount: Some(BaseUnits::new(5)),
            fiat_amount: None,
            fiat_currency: None,
            destination: Some(fresh_address()),
            memo: None,
            status: PayoutStatus::Requested,
            dialect: "payprotocol".into(),
            reference: Some(reference.into()),
            dialect_data: serde_json::Map::new(),
            txid: None,
            created_at: T0,
            updated_at: T0,
            version: 1,
        }],
        ..Changeset::default()
    }
}

fn dialect_credential(
    merchant: &MerchantId,
    key_hash: &str,
    token_hash: Option<&str>,
) -> DialectCredentialRecord {
    DialectCredentialRecord {
        id: format!("dcr_{}", hex::encode(rnd16())),
        merchant_id: merchant.clone(),
        dialect: "aurpay".into(),
        key_hash: key_hash.into(),
        token_hash: token_hash.map(str::to_owned),
        key_prefix: "ak_".into(),
        sealed: "sealed".into(),
        created_at: T0,
        revoked_at: None,
    }
}

fn login(merchant: &MerchantId, username: &str) -> MerchantLoginRecord {
    MerchantLoginRecord {
        merchant_id: merchant.clone(),
        username: username.into(),
        password_hash: "$argon2id$v=19$…".into(),
        created_at: T0,
        updated_at: T0,
    }
}

/// Each uniqueness rule a caller acts on comes back as its own `Unique`, on both databases.
async fn every_uniqueness_rule_is_told_apart(db: &TestDb) {
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;

    // One insert, two rules: the merchant's order number, and the receiving address.
    let first = order(&a.id, Some("N-1"), T0);
    create(db, &first).await.unwrap();
    let taken = first.target.as_ref().unwrap().address.clone();
    assert_eq!(
        broke(create(db, &order(&a.id, Some("N-1"), T0)).await),
        Unique::OrderNo
    );
    for (merchant, order_no) in [(&a.id, Some("N-2")), (&a.id, None), (&b.id, Some("N-1"))] {
        let mut clash = order(merchant, order_no, T0);
        clash.target.as_mut().unwrap().address = taken.clone();
        assert_eq!(broke(create(db, &clash).await), Unique::Address);
    }
    // An update can move an order onto a used address (another asset chosen).
    let second = order(&a.id, None, T0);
    create(db, &second).await.unwrap();
    let mut moved = second.clone();
    moved.target.as_mut().unwrap().address = taken.clone();
    moved.version = 2;
    let update = Changeset {
        order_updates: vec![OrderUpdate {
            order: moved,
            expected_version: 1,
        }],
        ..Changeset::default()
    };
    assert_eq!(broke(db.store.commit(update).await), Unique::Address);

    // Deposit accounts: one uuid per merchant, and addresses used by nothing else.
    let standing = fresh_address();
    let account = deposit_account(&a.id, "u-1", &standing);
    db.store.commit(account).await.unwrap();
    let again = deposit_account(&a.id, "u-1", &fresh_address());
    assert_eq!(broke(db.store.commit(again).await), Unique::DepositAccount);
    db.store
        .commit(deposit_account(&b.id, "u-1", &fresh_address()))
        .await
        .unwrap();
    for used in [&standing, &taken] {
        let clash = deposit_account(&a.id, "u-2", used);
        assert_eq!(broke(db.store.commit(clash).await), Unique::Address);
    }

    // A transfer is one deposit (payments: see payments_upsert_and_stay_unique).
    db.store
        .commit(deposit(&a.id, &standing, "0xd1"))
        .await
        .unwrap();
    let twin = deposit(&a.id, &standing, "0xd1");
    assert_eq!(broke(db.store.commit(twin).await), Unique::Transfer);

    // Idempotency keys and payout references, per merchant.
    db.store
        .commit(idempotency_key(&a.id, "k-1"))
        .await
        .unwrap();
    let replay = idempotency_key(&a.id, "k-1");
    assert_eq!(broke(db.store.commit(replay).await), Unique::IdempotencyKey);
    db.store
        .commit(idempotency_key(&b.id, "k-1"))
        .await
        .unwrap();
    db.store.commit(withdrawal(&a.id, "W-1")).await.unwrap();
    let repeat = withdrawal(&a.id, "W-1");
    assert_eq!(
        broke(db.store.commit(repeat).await),
        Unique::PayoutReference
    );
    db.store.commit(withdrawal(&b.id, "W-1")).await.unwrap();

    // A wallet key is its first merchant's.
    let bsc = ChainId::parse("bsc").unwrap();
    db.store
        .set_wallet(&a.id, &bsc, "xpub-a", T0)
        .await
        .unwrap();
    let shared = db.store.set_wallet(&b.id, &bsc, "xpub-a", T0).await;
    assert_eq!(broke(shared), Unique::WalletKey);

    // Console usernames, and dialect credentials by key and by token.
    db.store
        .set_merchant_login(&login(&a.id, "alice"))
        .await
        .unwrap();
    let taken_name = db.store.set_merchant_login(&login(&b.id, "alice")).await;
    assert_eq!(broke(taken_name), Unique::Username);
    let credential = dialect_credential(&a.id, "key-1", Some("token-1"));
    db.store
        .insert_dialect_credential(&credential)
        .await
        .unwrap();
    for (key, token) in [("key-1", None), ("key-2", Some("token-1"))] {
        let clash = dialect_credential(&b.id, key, token);
        let outcome = db.store.insert_dialect_credential(&clash).await;
        assert_eq!(broke(outcome), Unique::DialectCredential);
    }

    // A random id drawn twice is nobody's input.
    let event = event(&a.id, EventType::OrderCreated, "s", T0);
    let events = |event: &Event| Changeset {
        events: vec![event.clone()],
        ..Changeset::default()
    };
    db.store.commit(events(&event)).await.unwrap();
    assert_eq!(broke(db.store.commit(events(&event)).await), Unique::Record);
}

// ---- the dialects' lookups: filtered, counted pages of orders; the newest callback ----------

/// An order of `m` created `minutes` after T0 in `state`, paying `asset` (none: the buyer
/// has not chosen a coin yet).
async fn order_in(
    db: &TestDb,
    m: &MerchantId,
    minutes: i64,
    asset: Option<&str>,
    state: OrderState,
) -> Order {
    let mut o = order(m, None, T0 + Duration::minutes(minutes));
    o.state = state;
    match asset {
        Some(a) => {
            if let Some(t) = o.target.as_mut() {
                t.asset = AssetId::from_str(a).unwrap();
            }
        }
        None => o.target = None,
    }
    create(db, &o).await.unwrap();
    o
}

async fn pay(db: &TestDb, o: &Order, txid: &str) {
    let mut p = payment(o, txid, 0, 10);
    p.asset = o.target.as_ref().unwrap().asset.clone();
    db.store
        .commit(Changeset {
            payments: vec![p],
            ..Changeset::default()
        })
        .await
        .unwrap();
}

fn state(status: OrderStatus, reason: StatusReason) -> OrderState {
    OrderState::new(status, reason)
}

async fn orders_match_filters_with_offset_and_count(db: &TestDb) {
    let a = seed_merchant(db, "A").await.id;
    let b = seed_merchant(db, "B").await.id;
    let o1 = order_in(db, &a, 0, Some("bsc:USDT"), OrderState::NEW).await;
    let paid_over = state(OrderStatus::Settled, StatusReason::PaidOver);
    let o2 = order_in(db, &a, 1, Some("eth:ETH"), paid_over).await;
    let partial = state(OrderStatus::Pending, StatusReason::PaidPartial);
    let o3 = order_in(db, &a, 2, Some("bsc:USDT"), partial).await;
    let o4 = order_in(db, &a, 3, None, OrderState::NEW).await;
    let expired = state(OrderStatus::Expired, StatusReason::None);
    let o5 = order_in(db, &a, 4, Some("bsc:USDT"), expired).await;
    let theirs = order_in(db, &b, 5, Some("bsc:USDT"), OrderState::NEW).await;
    // Transaction hashes as chains write them, and one in capitals.
    pay(db, &o2, "0xabcdef").await;
    pay(db, &o3, "0xDEAD").await;
    pay(db, &theirs, "0xbbbb").await;

    let ids = |orders: Vec<Order>| orders.into_iter().map(|o| o.id).collect::<Vec<_>>();
    let check = |filter: OrderFilter, expected: Vec<&Order>| {
        let expected: Vec<OrderId> = expected.into_iter().map(|o| o.id.clone()).collect();
        async move {
            let found = ids(db.store.orders_matching(&filter, 0, 500).await.unwrap());
            assert_eq!(found, expected, "{filter:?}");
            let count = db.store.count_orders_matching(&filter).await.unwrap();
            assert_eq!(count, expected.len() as u64, "{filter:?}");
        }
    };
    let all = OrderFilter::merchant(a.clone());
    check(all.clone(), vec![&o5, &o4, &o3, &o2, &o1]).await;
    // Pages: offset and limit, newest first, the count of all.
    let page = ids(db.store.orders_matching(&all, 2, 2).await.unwrap());
    assert_eq!(page, vec![o3.id.clone(), o2.id.clone()]);
    assert!(
        db.store
            .orders_matching(&all, 5, 2)
            .await
            .unwrap()
            .is_empty()
    );
    // By chain: the coin's chain (an order without a coin is on none); a prefix is no chain.
    let on = |chain: &str| OrderFilter {
        chain: Some(ChainId::parse(chain).unwrap()),
        ..all.clone()
    };
    check(on("bsc"), vec![&o5, &o3, &o1]).await;
    check(on("eth"), vec![&o2]).await;
    check(on("bs"), vec![]).await;
    // By state: any of the states given; none given matches none.
    let in_states = |states: Vec<OrderState>| OrderFilter {
        states: Some(states),
        ..all.clone()
    };
    check(in_states(vec![paid_over, partial]), vec![&o3, &o2]).await;
    check(in_states(vec![OrderState::NEW]), vec![&o4, &o1]).await;
    check(in_states(vec![]), vec![]).await;
    // By creation time: from inclusive, to exclusive.
    let between = OrderFilter {
        created_from: Some(T0 + Duration::minutes(1)),
        created_to: Some(T0 + Duration::minutes(3)),
        ..all.clone()
    };
    check(between, vec![&o3, &o2]).await;
    // By transaction: in any case the shop writes it; another merchant's never.
    let paid_by = |txid: &str| OrderFilter {
        txid: Some(txid.into()),
        ..all.clone()
    };
    check(paid_by("0xABCDEF"), vec![&o2]).await;
    check(paid_by("0xDEAD"), vec![&o3]).await;
    check(paid_by("0xbbbb"), vec![]).await;
    // Together.
    let both = OrderFilter {
        chain: Some(ChainId::parse("bsc").unwrap()),
        states: Some(vec![partial, expired]),
        created_to: Some(T0 + Duration::minutes(4)),
        ..all.clone()
    };
    check(both, vec![&o3]).await;
    check(OrderFilter::merchant(b), vec![&theirs]).await;
}

async fn the_newest_callback_about_a_subject(db: &TestDb) {
    let a = seed_merchant(db, "A").await.id;
    let b = seed_merchant(db, "B").await.id;
    let endpoint = WebhookEndpointRecord {
        id: WebhookId::from_random(rnd16()),
        merchant_id: a.clone(),
        url: "https://shop.example/hook".into(),
        events: vec![],
        enabled: true,
        secret: "v1:sealed".into(),
        previous_secret: None,
        previous_secret_expires_at: None,
        failing_since: None,
        created_at: T0,
        updated_at: T0,
    };
    db.store.insert_webhook(&endpoint).await.unwrap();
    // Deliveries of events about `subject`, `seconds` after T0: to the callback URL in
    // `dialect`, or to the endpoint.
    let deliver = |merchant: MerchantId,
                   subject: &'static str,
                   seconds: i64,
                   dialect: &'static str,
                   to_endpoint: bool| {
        let endpoint = endpoint.id.clone();
        async move {
            let at = T0 + Duration::seconds(seconds);
            let event = Event {
                id: EventId::from_random(rnd16()),
                merchant_id: merchant.clone(),
                kind: EventType::OrderSettled,
                subject: subject.into(),
                data: serde_json::json!({}),
                created_at: at,
            };
            db.store
                .commit(Changeset {
                    events: vec![event.clone()],
                    ..Changeset::default()
                })
                .await
                .unwrap();
            let delivery = NewDelivery {
                id: DeliveryId::from_random(rnd16()),
                merchant_id: merchant,
                event_id: event.id.clone(),
                endpoint_id: to_endpoint.then_some(endpoint),
                url: "https://shop.example/cb".into(),
                dialect: dialect.into(),
                subject: event.subject.clone(),
                created_at: at,
            };
            db.store
                .dispatch_outbox(&[(event.id.clone(), vec![delivery.clone()])], at)
                .await
                .unwrap();
            delivery.id
        }
    };
    let _older = deliver(a.clone(), "ord_1", 1, "payprotocol", false).await;
    let newest = deliver(a.clone(), "ord_1", 2, "payprotocol", false).await;
    // Not callbacks of the dialect about ord_1: an endpoint's, another dialect's, another
    // subject's, another merchant's.
    deliver(a.clone(), "ord_1", 3, "native", true).await;
    deliver(a.clone(), "ord_1", 4, "aurpay", false).await;
    let refund = deliver(a.clone(), "pout_1", 5, "payprotocol", false).await;
    deliver(b.clone(), "ord_1", 6, "payprotocol", false).await;

    let last = |merchant: MerchantId, subject: &'static str| async move {
        db.store
            .last_callback(&merchant, "payprotocol", subject)
            .await
            .unwrap()
            .map(|d| d.id)
    };
    assert_eq!(last(a.clone(), "ord_1").await, Some(newest));
    assert_eq!(last(a.clone(), "pout_1").await, Some(refund));
    assert_eq!(last(a.clone(), "ord_2").await, None);
    assert_eq!(last(seed_merchant(db, "C").await.id, "ord_1").await, None);
}

/// An order created with its idempotency key answered in the same changeset: both commit or
/// neither. Concurrent creations with one key (grouped together on SQLite): one wins, the
/// others write nothing at all and fail as the key, before anything else of theirs.
async fn an_order_and_its_answered_key_commit_together(db: &TestDb) {
    let a = seed_merchant(db, "A").await;
    let answered = |o: &Order, key: &str| {
        let mut changes = creation(o);
        changes.idempotency_reservations = vec![IdempotencyRecord {
            merchant_id: o.merchant_id.clone(),
            key: key.into(),
            fingerprint: "POST /api/v1/orders body".into(),
            response: Some(coffer_store::StoredResponse {
                status: 201,
                body: format!("{{\"id\":\"{}\"}}", o.id),
            }),
            created_at: T0,
        }];
        changes
    };
    let first = order(&a.id, Some("N-1"), T0);
    db.store.commit(answered(&first, "k-1")).await.unwrap();
    let stored = db
        .store
        .get_idempotency(&a.id, "k-1")
        .await
        .unwrap()
        .unwrap();
    let response = stored.response.unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.body, format!("{{\"id\":\"{}\"}}", first.id));
    assert!(
        db.store
            .get_order(&a.id, &first.id)
            .await
            .unwrap()
            .is_some()
    );

    // The same key again, even with the same order number: refused as the key, nothing new.
    let again = order(&a.id, Some("N-1"), T0);
    let outcome = db.store.commit(answered(&again, "k-1")).await;
    assert_eq!(broke(outcome), Unique::IdempotencyKey);
    assert!(
        db.store
            .get_order(&a.id, &again.id)
            .await
            .unwrap()
            .is_none()
    );

    // Eight concurrent creations, two keys: one order per key, the losers leave no trace.
    let racers: Vec<Order> = (0..8).map(|_| order(&a.id, None, T0)).collect();
    let changesets = racers
        .iter()
        .enumerate()
        .map(|(i, o)| answered(o, if i % 2 == 0 { "k-even" } else { "k-odd" }))
        .collect();
    let outcomes = commit_concurrently(db, changesets).await;
    let mut winners = Vec::new();
    for (o, outcome) in racers.iter().zip(&outcomes) {
        match outcome {
            Ok(()) => winners.push(o.id.clone()),
            Err(StoreError::Duplicate(Unique::IdempotencyKey)) => {
                assert!(db.store.get_order(&a.id, &o.id).await.unwrap().is_none());
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(winners.len(), 2, "{outcomes:?}");
    for key in ["k-even", "k-odd"] {
        let body = db
            .store
            .get_idempotency(&a.id, key)
            .await
            .unwrap()
            .unwrap()
            .response
            .unwrap()
            .body;
        assert!(
            winners.iter().any(|w| body.contains(w.as_str())),
            "{key} answers {body}, not a winner"
        );
    }
    // Events: the first order's and the two winners', none of the losers'.
    assert_eq!(all_events(db).await.len(), 3);
}

both_backends! {
    merchants_roundtrip => merchants_roundtrip;
    credentials_are_scoped => credentials_are_scoped;
    orders_roundtrip_exactly => orders_roundtrip_exactly;
    orders_are_invisible_to_other_merchants => orders_are_invisible_to_other_merchants;
    updates_are_versioned_and_atomic => updates_are_versioned_and_atomic;
    concurrent_updates_have_one_winner => concurrent_updates_have_one_winner;
    pagination_is_stable_and_complete => pagination_is_stable_and_complete;
    payments_upsert_and_stay_unique => payments_upsert_and_stay_unique;
    method_details_round_trip => method_details_round_trip;
    events_and_outbox_commit_together => events_and_outbox_commit_together;
    data_survives_reopening => data_survives_reopening;
    many_concurrent_commits_all_land => many_concurrent_commits_all_land;
    a_failing_changeset_fails_alone_among_concurrent_ones => a_failing_changeset_fails_alone_among_concurrent_ones;
    every_uniqueness_rule_is_told_apart => every_uniqueness_rule_is_told_apart;
    orders_match_filters_with_offset_and_count => orders_match_filters_with_offset_and_count;
    the_newest_callback_about_a_subject => the_newest_callback_about_a_subject;
    an_order_and_its_answered_key_commit_together => an_order_and_its_answered_key_commit_together;
}
