//! Live order signals (what the checkout's live-update streams wait on), on real databases:
//! a commit wakes the followers of the orders it touched at once and nobody else's; another
//! instance on the same database hears it through `resync_live`, one query for all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use coffer_engine::Clock;
use coffer_engine::NewOrder;
use coffer_testkit::{TestDb, both_backends};
use common::{asset, batch, engine, order, transfer};
use rust_decimal::Decimal;

const SOON: Duration = Duration::from_secs(2);
const NOT_WITHIN: Duration = Duration::from_millis(100);

async fn followers_hear_commits_here_and_elsewhere(db: &TestDb) {
    let (here, clock) = engine(db);
    // Another instance on the same database (its own process, its own signals).
    let (elsewhere, _) = engine(db);
    let paid = order(&here, "USDT").await;
    let quiet = here
        .create_order(
            &paid.merchant_id,
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
    let mut paid_here = here.follow(&paid.id);
    let mut quiet_here = here.follow(&quiet.id);
    let mut paid_elsewhere = elsewhere.follow(&paid.id);
    let mut quiet_elsewhere = elsewhere.follow(&quiet.id);
    assert_eq!(here.followed_orders(), 2);
    // Later than the orders' creation by more than the resync's look-back (the engines share
    // one database but not a clock: `here` stamps the payment with its own, later, time).
    clock.advance(time::Duration::seconds(60));
    let before = clock.now();

    here.apply_chain_batch(&batch(
        vec![transfer(&paid, "USDT", 10_000_000, "0xa", 100)],
        100,
        None,
    ))
    .await
    .unwrap();
    tokio::time::timeout(SOON, paid_here.changed())
        .await
        .expect("the payment's commit wakes its order's follower at once");
    assert!(
        tokio::time::timeout(NOT_WITHIN, quiet_here.changed())
            .await
            .is_err(),
        "another order's follower sleeps on"
    );
    assert!(
        tokio::time::timeout(NOT_WITHIN, paid_elsewhere.changed())
            .await
            .is_err(),
        "signals are in-process: the other instance learns from the database"
    );

    let mut cursor = coffer_engine::live::ResyncCursor::new(before);
    elsewhere.resync_live(&mut cursor).await.unwrap();
    tokio::time::timeout(SOON, paid_elsewhere.changed())
        .await
        .expect("the resync wakes the other instance's follower");
    elsewhere.resync_live(&mut cursor).await.unwrap();
    assert!(
        tokio::time::timeout(NOT_WITHIN, paid_elsewhere.changed())
            .await
            .is_err(),
        "a change is passed on once, though each round looks back a few seconds"
    );
    assert!(
        tokio::time::timeout(NOT_WITHIN, quiet_elsewhere.changed())
            .await
            .is_err(),
        "an order nobody changed wakes nobody"
    );

    // A confirmation (a later block, no new transfer) is a change to follow too.
    here.apply_chain_batch(&batch(vec![], 101, None))
        .await
        .unwrap();
    tokio::time::timeout(SOON, paid_here.changed())
        .await
        .expect("a new confirmation wakes the follower");

    // Followers that leave are forgotten.
    drop((paid_here, quiet_here));
    assert_eq!(here.followed_orders(), 0);
    drop((paid_elsewhere, quiet_elsewhere));
    // Nobody follows anything: a resync asks the database nothing and moves on.
    assert_eq!(elsewhere.followed_orders(), 0);
    elsewhere.resync_live(&mut cursor).await.unwrap();
}

both_backends! {
    followers_hear_commits_here_and_elsewhere => followers_hear_commits_here_and_elsewhere;
}
