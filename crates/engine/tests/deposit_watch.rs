//! Deposits (transfers to deposit accounts' standing addresses) through
//! `Engine::apply_chain_batch` on real databases: watched for good, recorded once per
//! transfer, confirmed by the merchant's policy, reversed on a reorg or a dropped mempool
//! transaction, one event per change, merchants isolated.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{asset, batch, chain, engine};

use coffer_core::{BaseUnits, EventType, MerchantId, PaymentStatus};
use coffer_engine::{BlockRef, Clock, Engine, ObservedTransfer};
use coffer_store::{DepositQuery, EventQuery};
use coffer_testkit::{TestDb, both_backends};
use time::macros::datetime;

async fn account(e: &Engine, name: &str, uuid: &str) -> (MerchantId, String) {
    let (m, _) = e.create_merchant(name).await.unwrap();
    e.set_wallet(&m.id, "bsc", &format!("w{name}"))
        .await
        .unwrap();
    let (a, _) = e
        .create_deposit_account(&m.id, "payprotocol", uuid)
        .await
        .unwrap();
    (m.id, a.addresses[0].address.clone())
}

fn deposit(
    to: &str,
    symbol: &str,
    amount: u128,
    tx: &str,
    height: Option<u64>,
) -> ObservedTransfer {
    ObservedTransfer {
        asset: asset(symbol),
        to: to.into(),
        amount: BaseUnits::new(amount),
        txid: tx.into(),
        index: 0,
        from: Some("0xfrom".into()),
        block: height.map(|h| BlockRef {
            height: h,
            hash: format!("0xblock{h}"),
            time: datetime!(2026-05-01 10:01 UTC),
        }),
    }
}

async fn kinds(db: &TestDb, m: &MerchantId) -> Vec<EventType> {
    db.store
        .list_events(&EventQuery {
            merchant_id: Some(m.clone()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .filter(|k| k.as_str().starts_with("deposit."))
        .collect()
}

async fn deposits(db: &TestDb, m: &MerchantId) -> Vec<coffer_core::Deposit> {
    db.store
        .list_deposits(&DepositQuery {
            merchant_id: Some(m.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn watched_forever_recorded_once_and_confirmed(db: &TestDb) {
    let (e, clock) = engine(db);
    let (m, addr) = account(&e, "a", "U1").await;
    let (other, _) = account(&e, "b", "U1").await;

    // The address is in the full watched list and in the incremental one from its creation,
    // with no order, any asset, and a window that outlives any clock.
    let later = clock.now() + time::Duration::days(3650);
    let full = db.store.watched_addresses(&chain(), later).await.unwrap();
    let row = full
        .iter()
        .find(|w| w.address == addr)
        .expect("deposit address watched");
    assert_eq!(row.order_id, None);
    assert_eq!(row.asset, None);
    let since = db
        .store
        .watched_addresses_since(
            &chain(),
            clock.now(),
            clock.now() - time::Duration::seconds(5),
        )
        .await
        .unwrap();
    assert!(since.iter().any(|w| w.address == addr));
    let none_since = db
        .store
        .watched_addresses_since(
            &chain(),
            clock.now(),
            clock.now() + time::Duration::seconds(5),
        )
        .await
        .unwrap();
    assert!(!none_since.iter().any(|w| w.address == addr));

    // Seen in a block with 1 of 3 confirmations: detected, pending.
    let t = deposit(&addr, "USDT", 5_000_000, "0xd1", Some(10));
    let applied = e
        .apply_chain_batch(&batch(vec![t.clone()], 10, None))
        .await
        .unwrap();
    assert_eq!(applied.detected, 1);
    let d = deposits(db, &m).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].status, PaymentStatus::Unconfirmed);
    assert_eq!(d[0].amount, BaseUnits::new(5_000_000));
    assert_eq!(d[0].account_uuid, "U1");
    assert_eq!(d[0].from_address.as_deref(), Some("0xfrom"));
    assert!(d[0].seq > 0);
    assert_eq!(d[0].confirmed_at, None);
    // The same batch again (a rescan) changes nothing.
    let again = e
        .apply_chain_batch(&batch(vec![t.clone()], 10, None))
        .await
        .unwrap();
    assert_eq!(again, coffer_engine::Applied::default());
    assert_eq!(kinds(db, &m).await, [EventType::DepositDetected]);

    // Deeper blocks without the transfer: confirmed at the chain's 3 confirmations.
    e.apply_chain_batch(&batch(vec![], 11, None)).await.unwrap();
    assert_eq!(deposits(db, &m).await[0].status, PaymentStatus::Unconfirmed);
    let applied = e.apply_chain_batch(&batch(vec![], 12, None)).await.unwrap();
    assert_eq!(applied.confirmed, 1);
    let d = deposits(db, &m).await;
    assert_eq!(d[0].status, PaymentStatus::Confirmed);
    assert_eq!(d[0].confirmations, 3);
    assert!(d[0].confirmed_at.is_some());
    assert_eq!(
        kinds(db, &m).await,
        [EventType::DepositDetected, EventType::DepositConfirmed],
        "oldest first"
    );
    // A zero-value token transfer (anyone can make one) is no deposit.
    let nothing = deposit(&addr, "USDT", 0, "0xzero", Some(12));
    e.apply_chain_batch(&batch(vec![nothing], 12, None))
        .await
        .unwrap();
    assert_eq!(deposits(db, &m).await.len(), 1);
    // A second deposit to the same address (any asset, any amount) is another deposit.
    let t2 = deposit(&addr, "USDC", 1, "0xd2", Some(13));
    e.apply_chain_batch(&batch(vec![t2], 20, None))
        .await
        .unwrap();
    let d = deposits(db, &m).await;
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0].status,
        PaymentStatus::Confirmed,
        "confirmed at once, deep enough"
    );
    // Numbered without gaps, though the first was updated twice meanwhile (Pay Protocol's
    // rechargeId).
    assert_eq!(d[0].seq, d[1].seq + 1);
    // The other merchant saw nothing.
    assert!(deposits(db, &other).await.is_empty());
    assert!(kinds(db, &other).await.is_empty());
    // Only that merchant finds it.
    let id = d[0].id.clone();
    assert!(
        db.store
            .get_deposit(Some(&other), Some(&id), None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.store
            .get_deposit(Some(&m), None, Some(d[0].seq))
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
}

async fn reorg_and_drop_reverse_a_deposit(db: &TestDb) {
    let (e, _) = engine(db);
    let (m, addr) = account(&e, "a", "U1").await;
    let t = deposit(&addr, "USDT", 7, "0xr1", Some(10));
    e.apply_chain_batch(&batch(vec![t.clone()], 12, None))
        .await
        .unwrap();
    assert_eq!(deposits(db, &m).await[0].status, PaymentStatus::Confirmed);

    // Blocks from 10 orphaned, the transfer not seen again: reversed.
    let applied = e
        .apply_chain_batch(&batch(vec![], 12, Some(10)))
        .await
        .unwrap();
    assert_eq!(applied.reversed, 1);
    assert_eq!(deposits(db, &m).await[0].status, PaymentStatus::Reversed);
    // Re-mined in the new branch: the same deposit detected and confirmed again, not a second.
    let mut remined = t.clone();
    remined.block = Some(BlockRef {
        height: 11,
        hash: "0xother11".into(),
        time: datetime!(2026-05-01 10:02 UTC),
    });
    e.apply_chain_batch(&batch(vec![remined], 13, None))
        .await
        .unwrap();
    let d = deposits(db, &m).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].status, PaymentStatus::Confirmed);
    assert_eq!(d[0].block_hash.as_deref(), Some("0xother11"));
    assert_eq!(
        kinds(db, &m).await,
        [
            EventType::DepositDetected,
            EventType::DepositConfirmed,
            EventType::DepositReversed,
            EventType::DepositDetected,
            EventType::DepositConfirmed,
        ]
    );

    // A mempool deposit whose transaction is dropped is reversed.
    let pending = deposit(&addr, "USDT", 9, "0xm1", None);
    e.apply_chain_batch(&batch(vec![pending], 13, None))
        .await
        .unwrap();
    let mut b = batch(vec![], 13, None);
    b.dropped_txids = vec!["0xm1".into()];
    let applied = e.apply_chain_batch(&b).await.unwrap();
    assert_eq!(applied.reversed, 1);
    let d = deposits(db, &m).await;
    let dropped = d.iter().find(|d| d.txid == "0xm1").unwrap();
    assert_eq!(dropped.status, PaymentStatus::Reversed);
}

async fn merchant_policy_sets_deposit_confirmations(db: &TestDb) {
    let (e, _) = engine(db);
    let (m, addr) = account(&e, "a", "U1").await;
    e.set_chain_confirmations(&m, "bsc", Some(1)).await.unwrap();
    let t = deposit(&addr, "BNB", 3, "0xp1", Some(10));
    let applied = e
        .apply_chain_batch(&batch(vec![t], 10, None))
        .await
        .unwrap();
    assert_eq!((applied.detected, applied.confirmed), (1, 1));
    assert_eq!(deposits(db, &m).await[0].status, PaymentStatus::Confirmed);
}

both_backends! {
    deposits_watched_recorded_confirmed => watched_forever_recorded_once_and_confirmed;
    deposits_reversed => reorg_and_drop_reverse_a_deposit;
    deposits_policy => merchant_policy_sets_deposit_confirmations;
}
