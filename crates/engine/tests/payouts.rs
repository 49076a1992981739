//! Seam S2 on real databases: payout requests (refunds, withdrawals), order dialect data,
//! single-use nonces.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{asset, batch, engine, order, transfer};

use coffer_core::{BaseUnits, Order, OrderStatus};
use coffer_core::{PayoutKind, PayoutStatus};
use coffer_engine::Clock;
use coffer_engine::{Engine, NewOrder, RefundInput, RepairInput, WithdrawalInput};
use coffer_store::{EventQuery, PayoutQuery};
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;

async fn count_of(db: &TestDb, kind: coffer_core::EventType) -> usize {
    db.store
        .list_events(&EventQuery {
            kind: Some(kind),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

/// A settled USDT order of 10 USD (10_000_000 base units), paid from `0xpayer`.
async fn settled(e: &Engine) -> Order {
    let o = order(e, "USDT").await;
    let mut t = transfer(&o, "USDT", 10_000_000, "0xpaid", 100);
    t.from = Some("0xpayer".into());
    e.apply_chain_batch(&batch(vec![t], 102, None))
        .await
        .unwrap();
    let o = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o.state.status, OrderStatus::Settled);
    o
}

async fn refunds_are_requests_within_what_was_received(db: &TestDb) {
    let (e, _) = engine(db);
    let o = settled(&e).await;
    let m = o.merchant_id.clone();
    let before = count_of(db, coffer_core::EventType::RefundRequested).await;

    // defaults: everything received, back to the payer
    let r1 = e
        .request_refund(
            &m,
            &o.id,
            RefundInput {
                amount: Some(BaseUnits::new(4_000_000)),
                dialect: "payprotocol".into(),
                ..RefundInput::default()
            },
        )
        .await
        .unwrap();
    assert!(r1.id.as_str().starts_with("pout_"));
    assert!(r1.seq > 0);
    assert_eq!(r1.kind, PayoutKind::Refund);
    assert_eq!(r1.status, PayoutStatus::Requested);
    assert_eq!(r1.destination.as_deref(), Some("0xpayer"));
    assert_eq!(r1.asset, Some(asset("USDT")));
    assert_eq!(
        count_of(db, coffer_core::EventType::RefundRequested).await,
        before + 1
    );

    // more than what is left: refused, nothing written
    let err = e
        .request_refund(
            &m,
            &o.id,
            RefundInput {
                amount: Some(BaseUnits::new(6_000_001)),
                ..RefundInput::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_amount");
    assert_eq!(
        count_of(db, coffer_core::EventType::RefundRequested).await,
        before + 1
    );

    // the rest, with a reference: idempotent per reference
    let input = RefundInput {
        destination: Some("0xelsewhere".into()),
        reference: Some("R-1".into()),
        dialect: "payprotocol".into(),
        ..RefundInput::default()
    };
    let r2 = e.request_refund(&m, &o.id, input.clone()).await.unwrap();
    assert_eq!(r2.amount, Some(BaseUnits::new(6_000_000)));
    assert_eq!(r2.destination.as_deref(), Some("0xelsewhere"));
    let again = e.request_refund(&m, &o.id, input).await.unwrap();
    assert_eq!(again.id, r2.id);
    assert_eq!(
        count_of(db, coffer_core::EventType::RefundRequested).await,
        before + 2
    );

    // nothing left
    let err = e
        .request_refund(&m, &o.id, RefundInput::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_amount");

    // a rejected refund frees its amount again
    let rejected = e
        .set_payout_status(&m, &r1.id, PayoutStatus::Rejected, None)
        .await
        .unwrap();
    assert_eq!(rejected.status, PayoutStatus::Rejected);
    assert_eq!(
        e.set_payout_status(&m, &r1.id, PayoutStatus::Approved, None)
            .await
            .unwrap_err()
            .code(),
        "invalid_state"
    );
    let r3 = e
        .request_refund(&m, &o.id, RefundInput::default())
        .await
        .unwrap();
    assert_eq!(r3.amount, Some(BaseUnits::new(4_000_000)));

    // listing, newest first, with counts and paging; by seq; other merchants see nothing
    let (all, total) = e
        .list_payouts(
            &m,
            PayoutQuery {
                order_id: Some(o.id.clone()),
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        all.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![r3.id.clone(), r2.id.clone()]
    );
    let (page2, _) = e
        .list_payouts(
            &m,
            PayoutQuery {
                offset: 2,
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.len(), 1);
    assert_eq!(page2[0].id, r1.id);
    assert_eq!(e.get_payout_by_seq(&m, r2.seq).await.unwrap().id, r2.id);
    let (other, _) = e.create_merchant("other").await.unwrap();
    assert_eq!(
        e.get_payout(&other.id, &r1.id).await.unwrap_err().code(),
        "not_found"
    );
    let (none, total) = e
        .list_payouts(&other.id, PayoutQuery::default())
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(total, 0);
    assert_eq!(
        e.request_refund(&other.id, &o.id, RefundInput::default())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

async fn unpaid_orders_cannot_be_refunded(db: &TestDb) {
    let (e, _) = engine(db);
    let o = order(&e, "USDT").await;
    let err = e
        .request_refund(&o.merchant_id, &o.id, RefundInput::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_state");
    let (items, _) = e
        .list_payouts(&o.merchant_id, PayoutQuery::default())
        .await
        .unwrap();
    assert!(items.is_empty());
}

async fn withdrawals_are_requests(db: &TestDb) {
    let (e, _) = engine(db);
    let (m, _) = e.create_merchant("shop").await.unwrap();
    let input = WithdrawalInput {
        asset: asset("USDT"),
        amount: BaseUnits::new(1_500_000),
        destination: "0xcold".into(),
        memo: None,
        dialect: "payprotocol".into(),
        reference: Some("W-1".into()),
        dialect_data: serde_json::Map::from_iter([(
            "notifyUrl".to_owned(),
            serde_json::Value::from("https://shop.example/n"),
        )]),
    };
    let w = e.request_withdrawal(&m.id, input.clone()).await.unwrap();
    assert!(w.id.as_str().starts_with("pout_"));
    assert_eq!(w.kind, PayoutKind::Withdrawal);
    assert_eq!(w.order_id, None);
    assert_eq!(w.dialect_data["notifyUrl"], "https://shop.example/n");
    let again = e.request_withdrawal(&m.id, input.clone()).await.unwrap();
    assert_eq!(again.id, w.id);
    assert_eq!(
        count_of(db, coffer_core::EventType::WithdrawalRequested).await,
        1
    );
    let bad = WithdrawalInput {
        destination: "not an address!".into(),
        reference: None,
        ..input.clone()
    };
    assert_eq!(
        e.request_withdrawal(&m.id, bad).await.unwrap_err().code(),
        "invalid_address"
    );
    let zero = WithdrawalInput {
        amount: BaseUnits::ZERO,
        reference: None,
        ..input
    };
    assert_eq!(
        e.request_withdrawal(&m.id, zero).await.unwrap_err().code(),
        "invalid_amount"
    );
    let approved = e
        .set_payout_status(&m.id, &w.id, PayoutStatus::Approved, None)
        .await
        .unwrap();
    assert_eq!(approved.version, 2);
    assert_eq!(
        count_of(db, coffer_core::EventType::WithdrawalUpdated).await,
        1
    );
}

async fn dialect_data_round_trips(db: &TestDb) {
    let (e, _) = engine(db);
    let (m, _) = e.create_merchant("shop").await.unwrap();
    e.set_wallet(&m.id, "bsc", "wdd").await.unwrap();
    let data = serde_json::json!({"notifyUrl": "https://shop.example/n", "attach": {"a": 1}});
    let created = e
        .create_order(
            &m.id,
            NewOrder {
                amount: Decimal::from(10),
                currency: "USD".into(),
                fixed_stablecoin_rate: true,
                dialect: "payprotocol".into(),
                dialect_data: data.as_object().unwrap().clone(),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    let read = e.get_order(&m.id, &created.id).await.unwrap();
    assert_eq!(serde_json::Value::Object(read.dialect_data.clone()), data);
    // an update (choosing the asset) keeps it
    let chosen = e
        .choose_asset(&m.id, &created.id, &asset("USDT"))
        .await
        .unwrap();
    assert_eq!(chosen.version, 2);
    let read = e.get_order(&m.id, &created.id).await.unwrap();
    assert_eq!(serde_json::Value::Object(read.dialect_data.clone()), data);
    // a native order has none
    let native = e
        .create_order(
            &m.id,
            NewOrder {
                amount: Decimal::from(10),
                currency: "USD".into(),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    assert!(
        e.get_order(&m.id, &native.id)
            .await
            .unwrap()
            .dialect_data
            .is_empty()
    );
}

async fn nonces_are_single_use(db: &TestDb) {
    let (e, clock) = engine(db);
    let now = clock.now();
    let until = now + time::Duration::minutes(10);
    e.use_nonce("zaepe:key1", "abc", until).await.unwrap();
    assert_eq!(
        e.use_nonce("zaepe:key1", "abc", until)
            .await
            .unwrap_err()
            .code(),
        "nonce_reused"
    );
    // another scope is another namespace
    e.use_nonce("zaepe:key2", "abc", until).await.unwrap();
    assert!(
        db.store
            .seen_nonce("zaepe:key1", "abc", until, now)
            .await
            .unwrap()
    );
    // once expired, the row is pruned (the timestamp window refuses such requests anyway)
    let later = until + time::Duration::seconds(1);
    assert!(
        !db.store
            .seen_nonce(
                "zaepe:key1",
                "abc",
                later + time::Duration::minutes(10),
                later
            )
            .await
            .unwrap()
    );
}

/// Pay Protocol's window: 0.5×–1.2× matches by itself; outside it, repair.
async fn repair_outside_the_window(db: &TestDb) {
    let (e, _) = engine(db);
    let o = order(&e, "USDT").await; // 10 USDT = 10_000_000
    let m = o.merchant_id.clone();
    let mut t = transfer(&o, "USDT", 3_000_000, "0xlow", 100);
    t.index = 0;
    e.apply_chain_batch(&batch(vec![t], 102, None))
        .await
        .unwrap();
    let before = e.get_order(&m, &o.id).await.unwrap();
    assert_eq!(before.state.status, OrderStatus::Pending);
    assert!(before.totals.seen().is_zero(), "0.3× is outside the window");
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p[0].match_status, coffer_core::MatchStatus::OutsideWindow);

    assert_eq!(
        e.repair_order(
            &m,
            &o.id,
            RepairInput {
                txid: Some("0xnone".into()),
                ..Default::default()
            }
        )
        .await
        .unwrap_err()
        .code(),
        "not_found"
    );
    let (other, _) = e.create_merchant("other").await.unwrap();
    assert_eq!(
        e.repair_order(&other.id, &o.id, RepairInput::default())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    // attach the tx hash: counted, the order is partially paid
    let r = e
        .repair_order(
            &m,
            &o.id,
            RepairInput {
                txid: Some("0xLOW".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.state.reason, coffer_core::StatusReason::PaidPartial);
    assert_eq!(r.totals.confirmed, BaseUnits::new(3_000_000));
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p[0].match_status, coffer_core::MatchStatus::Accepted);
    assert_eq!(
        e.repair_order(&m, &o.id, RepairInput::default())
            .await
            .unwrap_err()
            .code(),
        "nothing_to_repair"
    );
    // accept the amount: settled with what was received
    let r = e
        .repair_order(
            &m,
            &o.id,
            RepairInput {
                accept_amount: true,
                note: Some("short".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.state.status, OrderStatus::Settled);
    assert_eq!(r.state.reason, coffer_core::StatusReason::Marked);
    let timeline = db.store.timeline(&o.id).await.unwrap();
    assert_eq!(
        timeline.last().unwrap().cause,
        coffer_core::Cause::MarkSettled
    );

    // 1.5× is outside the window too; accepting it settles the order as overpaid
    let (e2, _) = engine(db);
    let o2 = {
        let (m2, _) = e2.create_merchant("shop2").await.unwrap();
        e2.set_wallet(&m2.id, "bsc", "w2").await.unwrap();
        e2.create_order(
            &m2.id,
            NewOrder {
                amount: Decimal::from(10),
                currency: "USD".into(),
                asset: Some(asset("USDT")),
                fixed_stablecoin_rate: true,
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order
    };
    let t = transfer(&o2, "USDT", 15_000_000, "0xhigh", 200);
    e2.apply_chain_batch(&batch(vec![t], 202, None))
        .await
        .unwrap();
    assert_eq!(
        e2.get_order(&o2.merchant_id, &o2.id)
            .await
            .unwrap()
            .state
            .status,
        OrderStatus::Pending
    );
    let r = e2
        .repair_order(&o2.merchant_id, &o2.id, RepairInput::default())
        .await
        .unwrap();
    assert_eq!(r.state.status, OrderStatus::Settled);
    assert_eq!(r.state.reason, coffer_core::StatusReason::PaidOver);
    // 1.2× exactly matches by itself
    let o3 = e2
        .create_order(
            &o2.merchant_id,
            NewOrder {
                amount: Decimal::from(10),
                currency: "USD".into(),
                asset: Some(asset("USDT")),
                fixed_stablecoin_rate: true,
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    let t = transfer(&o3, "USDT", 12_000_000, "0xedge", 300);
    e2.apply_chain_batch(&batch(vec![t], 302, None))
        .await
        .unwrap();
    assert_eq!(
        e2.get_order(&o3.merchant_id, &o3.id)
            .await
            .unwrap()
            .state
            .status,
        OrderStatus::Settled
    );
}

both_backends! {
    repair => repair_outside_the_window;
    refunds => refunds_are_requests_within_what_was_received;
    unpaid_refund => unpaid_orders_cannot_be_refunded;
    withdrawals => withdrawals_are_requests;
    dialect_data => dialect_data_round_trips;
    nonces => nonces_are_single_use;
}
