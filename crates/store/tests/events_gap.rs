//! The events feed never skips an event on PostgreSQL: numbers are handed out at insert, so
//! while a transaction holding number n is still open, a reader must not be given n+1 (a
//! cursor past it would miss n when it commits). A gap left by a rollback is passed once it
//! is old. Real PostgreSQL server, with a second connection holding the open transaction.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use coffer_core::{Event, EventId, EventType, Merchant, MerchantId, SettlementPolicy};
use coffer_store::{Changeset, EventQuery, Store};
use coffer_testkit::TestDb;
use sqlx::Connection;
use time::OffsetDateTime;

fn rnd16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn event(merchant: &MerchantId, subject: &str) -> Event {
    Event {
        id: EventId::from_random(rnd16()),
        merchant_id: merchant.clone(),
        kind: EventType::OrderCreated,
        subject: subject.into(),
        data: serde_json::json!({}),
        created_at: OffsetDateTime::now_utc(),
    }
}

async fn subjects(store: &dyn Store, after: Option<i64>) -> Vec<String> {
    store
        .list_events(&EventQuery {
            after_seq: after,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.subject)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_the_feed_back_and_a_rollback_gap_is_passed() {
    if !coffer_testkit::postgres_wanted() {
        return;
    }
    let db: TestDb = coffer_testkit::fresh_postgres().await.unwrap();
    let store = db.store.clone();
    let m = Merchant {
        id: MerchantId::from_random(rnd16()),
        name: "Shop".into(),
        policy: SettlementPolicy::default(),
        created_at: OffsetDateTime::now_utc(),
    };
    store
        .commit(Changeset {
            new_merchants: vec![m.clone()],
            events: vec![event(&m.id, "first")],
            ..Changeset::default()
        })
        .await
        .unwrap();

    // A second connection takes the next number and does not commit yet.
    let mut open = sqlx::PgConnection::connect(db.url.as_deref().unwrap())
        .await
        .unwrap();
    let mut tx = open.begin().await.unwrap();
    let late = event(&m.id, "late");
    sqlx::query(
        "INSERT INTO events (id, merchant_id, type, subject, data, created_at) \
         VALUES ($1, $2, 'order.created', 'late', '{}', $3)",
    )
    .bind(late.id.as_str())
    .bind(m.id.as_str())
    .bind(ms(late.created_at))
    .execute(&mut *tx)
    .await
    .unwrap();
    // Meanwhile a later number commits.
    store
        .commit(Changeset {
            events: vec![event(&m.id, "after")],
            ..Changeset::default()
        })
        .await
        .unwrap();
    // The reader gets only what comes before the open transaction's number.
    assert_eq!(subjects(&*store, None).await, ["first"]);
    tx.commit().await.unwrap();
    assert_eq!(subjects(&*store, None).await, ["first", "late", "after"]);

    // A rolled-back number leaves a gap: held back while recent, passed after the wait.
    let mut tx = open.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (id, merchant_id, type, subject, data, created_at) \
         VALUES ($1, $2, 'order.created', 'never', '{}', $3)",
    )
    .bind(EventId::from_random(rnd16()).as_str())
    .bind(m.id.as_str())
    .bind(ms(OffsetDateTime::now_utc()))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    store
        .commit(Changeset {
            events: vec![event(&m.id, "past the gap")],
            ..Changeset::default()
        })
        .await
        .unwrap();
    let all = store
        .list_events(&EventQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let last_seq = all.last().unwrap().seq;
    assert_eq!(
        subjects(&*store, Some(last_seq)).await,
        Vec::<String>::new()
    );
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    assert_eq!(subjects(&*store, Some(last_seq)).await, ["past the gap"]);
}
