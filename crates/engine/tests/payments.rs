//! Chain-agnostic payment application (`Engine::apply_chain_batch`) on real databases: what
//! any watcher (EVM, Bitcoin) relies on. The EVM scenarios against a real node are in
//! crates/chain-evm/tests/anvil.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{asset, batch, chain, engine, order, transfer};

use coffer_core::{MatchStatus, Order, OrderStatus, PaymentStatus, StatusReason};
use coffer_engine::{Engine, NewOrder, ObservedTransfer};
use coffer_store::EventQuery;
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;

async fn event_count(db: &TestDb) -> usize {
    db.store
        .list_events(&EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

async fn idempotent_and_confirms_with_the_tip(db: &TestDb) {
    let (e, _) = engine(db);
    let o = order(&e, "USDT").await;
    let b = batch(
        vec![transfer(&o, "USDT", 10_000_000, "0xa", 100)],
        100,
        None,
    );
    let applied = e.apply_chain_batch(&b).await.unwrap();
    assert_eq!(applied.detected, 1);
    let events = event_count(db).await;
    // the same batch again (a rescan after a crash) changes nothing
    let again = e.apply_chain_batch(&b).await.unwrap();
    assert_eq!(again, Default::default());
    assert_eq!(event_count(db).await, events);
    let o1 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o1.state.status, OrderStatus::Processing);
    // cursor stored with the payments
    let cursor = db.store.chain_cursor(&chain()).await.unwrap().unwrap();
    assert_eq!(cursor.height, 100);
    // two more blocks: 3 confirmations
    e.apply_chain_batch(&batch(vec![], 101, None))
        .await
        .unwrap();
    assert_eq!(
        e.get_order(&o.merchant_id, &o.id)
            .await
            .unwrap()
            .state
            .status,
        OrderStatus::Processing
    );
    let done = e
        .apply_chain_batch(&batch(vec![], 102, None))
        .await
        .unwrap();
    assert_eq!(done.confirmed, 1);
    let o2 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o2.state.status, OrderStatus::Settled);
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p[0].confirmations, 3);
    assert_eq!(p[0].status, PaymentStatus::Confirmed);
    assert_eq!(
        db.store
            .chain_cursor(&chain())
            .await
            .unwrap()
            .unwrap()
            .height,
        102
    );
}

async fn wrong_asset_recorded_never_counted(db: &TestDb) {
    let (e, _) = engine(db);
    let o = order(&e, "USDT").await;
    e.apply_chain_batch(&batch(
        vec![transfer(&o, "USDC", 10_000_000, "0xb", 5)],
        10,
        None,
    ))
    .await
    .unwrap();
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].match_status, MatchStatus::WrongAsset);
    let o1 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o1.state.status, OrderStatus::Pending);
    assert!(o1.totals.seen().is_zero());
}

async fn orphaned_payment_reversed_then_remined_once(db: &TestDb) {
    let (e, _) = engine(db);
    let o = order(&e, "USDT").await;
    e.apply_chain_batch(&batch(
        vec![transfer(&o, "USDT", 10_000_000, "0xc", 50)],
        50,
        None,
    ))
    .await
    .unwrap();
    // blocks from 50 are orphaned; the new branch does not have the transfer
    let r = e
        .apply_chain_batch(&batch(vec![], 52, Some(50)))
        .await
        .unwrap();
    assert_eq!(r.reversed, 1);
    let o1 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(
        (o1.state.status, o1.state.reason),
        (OrderStatus::Pending, StatusReason::Reversed)
    );
    // re-mined at 53: the same row comes back
    e.apply_chain_batch(&batch(
        vec![transfer(&o, "USDT", 10_000_000, "0xc", 53)],
        55,
        None,
    ))
    .await
    .unwrap();
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].status, PaymentStatus::Confirmed);
    assert_eq!(p[0].block_height, Some(53));
    let o2 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o2.state.status, OrderStatus::Settled);
    assert_eq!(o2.totals.confirmed.get(), 10_000_000);
}

/// A settled order whose payment a reorganisation reverses and the chain mines again settles
/// again. That is announced (a shop that acted on `order.reversed` must learn it), with a new
/// event id but the first settlement's `dedupe_key`, and marked `restored`; the payment's
/// second detection and confirmation repeat their first events' keys too.
async fn resettlement_after_a_reorg_repeats_the_dedupe_key(db: &TestDb) {
    use coffer_core::EventType as T;
    let e = coffer_testkit::fixtures::bsc_shop_engine_now(db);
    let (o, events) = coffer_testkit::fixtures::settle_reorg_resettle(db, &e, "native").await;
    let kinds: Vec<&str> = events.iter().map(|ev| ev.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "order.created",
            "payment.detected",
            "payment.confirmed",
            "order.settled",
            "payment.reversed",
            "order.reversed",
            "payment.detected",
            "payment.confirmed",
            "order.settled",
        ]
    );
    let of = |kind: T| {
        events
            .iter()
            .filter(|ev| ev.kind == kind)
            .collect::<Vec<_>>()
    };
    let settled = of(T::OrderSettled);
    assert_ne!(settled[0].id, settled[1].id);
    assert_eq!(
        settled[0].dedupe_key(),
        format!("{}:order.settled:10000000", o.id)
    );
    assert_eq!(settled[1].dedupe_key(), settled[0].dedupe_key());
    assert!(!settled[0].restored(), "the first settlement");
    assert!(settled[1].restored(), "the same settlement, restored");
    assert!(!of(T::OrderReversed)[0].restored());
    let payment = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(payment.len(), 1, "one payment row throughout");
    for kind in [T::PaymentDetected, T::PaymentConfirmed] {
        let twice = of(kind);
        assert_ne!(twice[0].id, twice[1].id);
        assert_eq!(twice[0].dedupe_key(), format!("{}:{kind}", payment[0].id));
        assert_eq!(twice[1].dedupe_key(), twice[0].dedupe_key());
    }
    // Only the three repeats share a key; every other event announces a fact of its own.
    let mut keys: Vec<String> = events.iter().map(coffer_core::Event::dedupe_key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), events.len() - 3, "{keys:?}");
    // The events API and native deliveries show the key at the top level, not in `data`.
    let shown = coffer_core::Event::public_data(settled[1]);
    assert!(shown.get("dedupe_key").is_none());
    assert_eq!(shown["restored"], true);
}

async fn old_address_stays_watched_after_asset_change(db: &TestDb) {
    let (e, _) = engine(db);
    let o = order(&e, "USDT").await;
    let old = o.target.as_ref().unwrap().address.clone();
    let switched = e
        .choose_asset(&o.merchant_id, &o.id, &asset("USDC"))
        .await
        .unwrap();
    let new = switched.target.as_ref().unwrap().address.clone();
    assert_ne!(old, new);
    let watched = db.store.watched_addresses(&chain(), e.now()).await.unwrap();
    let addrs: Vec<_> = watched.iter().map(|w| w.address.clone()).collect();
    assert!(addrs.contains(&old) && addrs.contains(&new), "{addrs:?}");
    // a payment to the old address is still found (and flagged: the order now wants USDC)
    let mut t = transfer(&o, "USDT", 10_000_000, "0xd", 7);
    t.to = old;
    e.apply_chain_batch(&batch(vec![t], 7, None)).await.unwrap();
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].match_status, MatchStatus::WrongAsset);
}

async fn event_kinds(db: &TestDb) -> Vec<String> {
    db.store
        .list_events(&EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind.as_str().to_owned())
        .collect()
}

fn mempool(mut t: ObservedTransfer) -> ObservedTransfer {
    t.block = None;
    t
}

async fn with_confirmations(db: &TestDb, e: &Engine, n: u32) -> Order {
    let (m, _) = e.create_merchant("zero-conf shop").await.unwrap();
    let mut policy = db.store.get_merchant(&m.id).await.unwrap().unwrap().policy;
    policy.chain_confirmations.insert("bsc".into(), n);
    assert!(db.store.set_merchant_policy(&m.id, &policy).await.unwrap());
    let wallet = format!("z{}", coffer_testkit::random_suffix());
    e.set_wallet(&m.id, "bsc", &wallet).await.unwrap();
    e.create_order(
        &m.id,
        NewOrder {
            amount: Decimal::from(10),
            currency: "USD".into(),
            asset: Some(asset("USDT")),
            fixed_stablecoin_rate: true,
            dialect: "native".into(),
            ..NewOrder::default()
        },
    )
    .await
    .unwrap()
    .order
}

async fn mempool_payment_dropped_is_reversed(db: &TestDb) {
    let (e, _) = engine(db);
    let o = order(&e, "USDT").await;
    let t = mempool(transfer(&o, "USDT", 10_000_000, "0xm", 0));
    let r = e
        .apply_chain_batch(&batch(vec![t], 20, None))
        .await
        .unwrap();
    assert_eq!(r.detected, 1);
    let o1 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o1.state.status, OrderStatus::Processing);
    // Another txid vanishing changes nothing.
    let mut other = batch(vec![], 21, None);
    other.dropped_txids = vec!["0xother".into()];
    assert_eq!(e.apply_chain_batch(&other).await.unwrap().reversed, 0);
    // The payment's transaction left the mempool unmined: reversed, order back to pending.
    let mut b = batch(vec![], 21, None);
    b.dropped_txids = vec!["0xm".into()];
    let r = e.apply_chain_batch(&b).await.unwrap();
    assert_eq!((r.reversed, r.orders_changed), (1, 1));
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p[0].status, PaymentStatus::Reversed);
    let o2 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(
        (o2.state.status, o2.state.reason),
        (OrderStatus::Pending, StatusReason::Reversed)
    );
    // Idempotent: the same drop again changes nothing.
    assert_eq!(e.apply_chain_batch(&b).await.unwrap(), Default::default());
    // A mined payment is never reversed by a mempool drop.
    let o3 = with_confirmations(db, &e, 3).await;
    e.apply_chain_batch(&batch(
        vec![transfer(&o3, "USDT", 10_000_000, "0xn", 30)],
        30,
        None,
    ))
    .await
    .unwrap();
    let mut b = batch(vec![], 31, None);
    b.dropped_txids = vec!["0xn".into()];
    assert_eq!(e.apply_chain_batch(&b).await.unwrap().reversed, 0);
}

async fn zero_conf_only_without_rbf(db: &TestDb) {
    let (e, _) = engine(db);
    // Policy 0, a replaceable transaction: processing until its first confirmation.
    let o = with_confirmations(db, &e, 0).await;
    assert_eq!(o.policy.confirmations_for("bsc"), Some(0));
    let t = mempool(transfer(&o, "USDT", 10_000_000, "0xr", 0));
    e.apply_chain_batch(&batch(vec![t], 40, None))
        .await
        .unwrap();
    let o1 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o1.state.status, OrderStatus::Processing);
    e.apply_chain_batch(&batch(
        vec![transfer(&o, "USDT", 10_000_000, "0xr", 41)],
        41,
        None,
    ))
    .await
    .unwrap();
    let o2 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o2.state.status, OrderStatus::Settled);

    // Policy 0, a non-replaceable transaction: settled straight from the mempool.
    let o = with_confirmations(db, &e, 0).await;
    let before = event_kinds(db).await.len();
    let mut b = batch(
        vec![mempool(transfer(&o, "USDT", 10_000_000, "0xf", 0))],
        42,
        None,
    );
    b.non_replaceable_txids = vec!["0xf".into()];
    let r = e.apply_chain_batch(&b).await.unwrap();
    assert_eq!((r.detected, r.confirmed), (1, 1));
    let o3 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o3.state.status, OrderStatus::Settled);
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(
        (p[0].status, p[0].confirmations),
        (PaymentStatus::Confirmed, 0)
    );
    // Mined later: confirmations recorded, no second confirmation event.
    e.apply_chain_batch(&batch(
        vec![transfer(&o, "USDT", 10_000_000, "0xf", 43)],
        44,
        None,
    ))
    .await
    .unwrap();
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(
        (p[0].status, p[0].confirmations),
        (PaymentStatus::Confirmed, 2)
    );
    let kinds = event_kinds(db).await;
    assert_eq!(
        kinds[before..]
            .iter()
            .filter(|k| k.as_str() == "payment.confirmed")
            .count(),
        1,
        "{kinds:?}"
    );

    // Policy 0, non-replaceable, then it vanishes from the mempool: reversed.
    let o = with_confirmations(db, &e, 0).await;
    let mut b = batch(
        vec![mempool(transfer(&o, "USDT", 10_000_000, "0xg", 0))],
        45,
        None,
    );
    b.non_replaceable_txids = vec!["0xg".into()];
    e.apply_chain_batch(&b).await.unwrap();
    let mut b = batch(vec![], 45, None);
    b.dropped_txids = vec!["0xg".into()];
    assert_eq!(e.apply_chain_batch(&b).await.unwrap().reversed, 1);
    let o4 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o4.state.status, OrderStatus::Pending);

    // Policy 2 ignores the zero-conf list.
    let o = with_confirmations(db, &e, 2).await;
    let mut b = batch(
        vec![mempool(transfer(&o, "USDT", 10_000_000, "0xh", 0))],
        46,
        None,
    );
    b.non_replaceable_txids = vec!["0xh".into()];
    e.apply_chain_batch(&b).await.unwrap();
    let o5 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o5.state.status, OrderStatus::Processing);
}

async fn reorged_back_to_mempool_is_reversed_then_settled_once(db: &TestDb) {
    let (e, _) = engine(db);
    let o = with_confirmations(db, &e, 1).await;
    e.apply_chain_batch(&batch(
        vec![transfer(&o, "USDT", 10_000_000, "0xk", 60)],
        60,
        None,
    ))
    .await
    .unwrap();
    assert_eq!(
        e.get_order(&o.merchant_id, &o.id)
            .await
            .unwrap()
            .state
            .status,
        OrderStatus::Settled
    );
    // Block 60 orphaned; the transaction is back in the mempool (seen in the same batch).
    let r = e
        .apply_chain_batch(&batch(
            vec![mempool(transfer(&o, "USDT", 10_000_000, "0xk", 0))],
            59,
            Some(60),
        ))
        .await
        .unwrap();
    assert_eq!(r.reversed, 1);
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(
        (p[0].status, p[0].block_height),
        (PaymentStatus::Unconfirmed, None)
    );
    assert_eq!(
        e.get_order(&o.merchant_id, &o.id)
            .await
            .unwrap()
            .state
            .status,
        OrderStatus::Processing
    );
    // Re-mined on the new branch.
    e.apply_chain_batch(&batch(
        vec![transfer(&o, "USDT", 10_000_000, "0xk", 61)],
        61,
        None,
    ))
    .await
    .unwrap();
    let o2 = e.get_order(&o.merchant_id, &o.id).await.unwrap();
    assert_eq!(o2.state.status, OrderStatus::Settled);
    assert_eq!(o2.totals.confirmed.get(), 10_000_000);
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    let kinds = event_kinds(db).await;
    let count = |k: &str| kinds.iter().filter(|x| x.as_str() == k).count();
    assert_eq!(count("payment.detected"), 1, "{kinds:?}");
    assert_eq!(count("payment.confirmed"), 2, "{kinds:?}");
    assert_eq!(count("payment.reversed"), 1, "{kinds:?}");
}

/// The EVM watcher's incremental reload: only orders updated since a time (new, switched),
/// each with its monitoring window; closed windows are left out.
async fn watched_since_sees_new_and_switched_orders(db: &TestDb) {
    let (e, clock) = engine(db);
    let a = order(&e, "USDT").await;
    let a_old = a.target.as_ref().unwrap().address.clone();
    clock.advance(time::Duration::seconds(10));
    let t1 = e.now();
    let (m2, _) = e.create_merchant("other shop").await.unwrap();
    e.set_wallet(&m2.id, "bsc", "w2").await.unwrap();
    let b = e
        .create_order(
            &m2.id,
            NewOrder {
                amount: Decimal::from(10),
                currency: "USD".into(),
                asset: Some(asset("USDT")),
                fixed_stablecoin_rate: true,
                dialect: "native".into(),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    let b_addr = b.target.as_ref().unwrap().address.clone();
    let since = |t| {
        let store = db.store.clone();
        let now = e.now();
        async move {
            let mut v: Vec<(String, time::OffsetDateTime)> = store
                .watched_addresses_since(&chain(), now, t)
                .await
                .unwrap()
                .into_iter()
                .map(|w| (w.address, w.monitor_until))
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(since(t1).await, vec![(b_addr.clone(), b.monitor_until)]);
    // the full set has both, with their windows
    let full = db.store.watched_addresses(&chain(), e.now()).await.unwrap();
    assert_eq!(full.len(), 2);
    assert!(full.iter().all(|w| w.monitor_until > e.now()));
    // a buyer switches a's asset later: a's old and new addresses are both in the delta
    clock.advance(time::Duration::seconds(10));
    let t2 = e.now();
    let switched = e
        .choose_asset(&a.merchant_id, &a.id, &asset("USDC"))
        .await
        .unwrap();
    let a_new = switched.target.as_ref().unwrap().address.clone();
    let mut want = vec![
        (a_old, switched.monitor_until),
        (a_new, switched.monitor_until),
    ];
    want.sort();
    assert_eq!(since(t2).await, want);
    // nothing changed since: empty delta
    clock.advance(time::Duration::seconds(10));
    assert!(since(e.now()).await.is_empty());
    // after the monitoring windows, nothing is watched
    clock.advance(time::Duration::days(30));
    assert!(since(t1).await.is_empty());
    assert!(
        db.store
            .watched_addresses(&chain(), e.now())
            .await
            .unwrap()
            .is_empty()
    );
}

both_backends! {
    watched_since => watched_since_sees_new_and_switched_orders;
    idempotent_and_confirms => idempotent_and_confirms_with_the_tip;
    wrong_asset => wrong_asset_recorded_never_counted;
    reorg => orphaned_payment_reversed_then_remined_once;
    resettlement_dedupe_key => resettlement_after_a_reorg_repeats_the_dedupe_key;
    old_address_watched => old_address_stays_watched_after_asset_change;
    mempool_dropped => mempool_payment_dropped_is_reversed;
    zero_conf => zero_conf_only_without_rbf;
    reorg_to_mempool => reorged_back_to_mempool_is_reversed_then_settled_once;
}
