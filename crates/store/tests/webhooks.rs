//! Conformance of the webhook storage on SQLite and PostgreSQL: endpoints, outbox dispatch,
//! claims (never two claims of one row, even concurrently), attempts, redelivery.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashSet;

use coffer_core::{
    DeliveryId, Event, EventId, EventType, Merchant, MerchantId, SettlementPolicy, WebhookId,
};
use coffer_store::{
    AttemptRecord, Changeset, DeliveryQuery, DeliveryStatus, NewDelivery, WebhookEndpointRecord,
};
use coffer_testkit::{TestDb, both_backends};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-03-01 12:00:00.123 UTC);

fn rnd16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b
}

async fn merchant(db: &TestDb) -> MerchantId {
    let m = Merchant {
        id: MerchantId::from_random(rnd16()),
        name: "Shop".into(),
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
    m.id
}

fn endpoint(m: &MerchantId, events: Vec<EventType>) -> WebhookEndpointRecord {
    WebhookEndpointRecord {
        id: WebhookId::from_random(rnd16()),
        merchant_id: m.clone(),
        url: "https://shop.example/hook".into(),
        events,
        enabled: true,
        secret: "v1:sealed".into(),
        previous_secret: None,
        previous_secret_expires_at: None,
        failing_since: None,
        created_at: T0,
        updated_at: T0,
    }
}

async fn event(db: &TestDb, m: &MerchantId, at: OffsetDateTime) -> Event {
    let e = Event {
        id: EventId::from_random(rnd16()),
        merchant_id: m.clone(),
        kind: EventType::OrderSettled,
        subject: "ord_x".into(),
        data: serde_json::json!({"object": {"amount": "1.00"}}),
        created_at: at,
    };
    db.store
        .commit(Changeset {
            events: vec![e.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    e
}

fn delivery(e: &Event, endpoint: Option<&WebhookId>, at: OffsetDateTime) -> NewDelivery {
    NewDelivery {
        id: DeliveryId::from_random(rnd16()),
        merchant_id: e.merchant_id.clone(),
        event_id: e.id.clone(),
        endpoint_id: endpoint.cloned(),
        url: "https://shop.example/hook".into(),
        dialect: "native".into(),
        subject: e.subject.clone(),
        created_at: at,
    }
}

async fn endpoints_roundtrip_and_are_scoped(db: &TestDb) {
    let a = merchant(db).await;
    let b = merchant(db).await;
    let mut e = endpoint(&a, vec![EventType::OrderSettled, EventType::OrderExpired]);
    db.store.insert_webhook(&e).await.unwrap();
    assert_eq!(
        db.store.get_webhook(Some(&a), &e.id).await.unwrap(),
        Some(e.clone())
    );
    assert_eq!(
        db.store.get_webhook(None, &e.id).await.unwrap(),
        Some(e.clone())
    );
    assert_eq!(db.store.get_webhook(Some(&b), &e.id).await.unwrap(), None);
    assert_eq!(db.store.list_webhooks(&b).await.unwrap(), vec![]);
    assert!(e.wants(EventType::OrderSettled) && !e.wants(EventType::OrderCreated));

    e.url = "https://shop.example/v2".into();
    e.previous_secret = Some("v1:old".into());
    e.previous_secret_expires_at = Some(T0 + Duration::hours(24));
    e.updated_at = T0 + Duration::seconds(1);
    assert!(db.store.update_webhook(&e).await.unwrap());
    let mut other = e.clone();
    other.merchant_id = b.clone();
    assert!(
        !db.store.update_webhook(&other).await.unwrap(),
        "another merchant's"
    );
    assert_eq!(db.store.list_webhooks(&a).await.unwrap(), vec![e.clone()]);

    db.store.set_webhook_failing(&e.id, Some(T0)).await.unwrap();
    db.store
        .set_webhook_failing(&e.id, Some(T0 + Duration::hours(1)))
        .await
        .unwrap();
    let got = db.store.get_webhook(None, &e.id).await.unwrap().unwrap();
    assert_eq!(got.failing_since, Some(T0), "keeps the first failure");
    db.store.set_webhook_failing(&e.id, None).await.unwrap();
    let got = db.store.get_webhook(None, &e.id).await.unwrap().unwrap();
    assert_eq!(got.failing_since, None);

    assert!(!db.store.delete_webhook(&b, &e.id, T0).await.unwrap());
    assert!(db.store.delete_webhook(&a, &e.id, T0).await.unwrap());
    assert!(!db.store.delete_webhook(&a, &e.id, T0).await.unwrap());
    assert_eq!(db.store.get_webhook(Some(&a), &e.id).await.unwrap(), None);
    assert!(db.store.list_webhooks(&a).await.unwrap().is_empty());
}

async fn dispatch_is_atomic_and_idempotent(db: &TestDb) {
    let m = merchant(db).await;
    let hook = endpoint(&m, vec![]);
    db.store.insert_webhook(&hook).await.unwrap();
    let e1 = event(db, &m, T0).await;
    let e2 = event(db, &m, T0).await;
    let pending = db.store.pending_outbox(10).await.unwrap();
    assert_eq!(pending.len(), 2);
    let batch = vec![
        (
            e1.id.clone(),
            vec![delivery(&e1, Some(&hook.id), T0), delivery(&e1, None, T0)],
        ),
        (e2.id.clone(), vec![]),
    ];
    db.store.dispatch_outbox(&batch, T0).await.unwrap();
    assert!(db.store.pending_outbox(10).await.unwrap().is_empty());
    // A second dispatcher that read the same rows creates nothing twice.
    let again = vec![(
        e1.id.clone(),
        vec![delivery(&e1, Some(&hook.id), T0), delivery(&e1, None, T0)],
    )];
    db.store.dispatch_outbox(&again, T0).await.unwrap();
    let all = db
        .store
        .list_deliveries(&DeliveryQuery {
            merchant_id: Some(m.clone()),
            limit: 100,
            ..DeliveryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let ids: HashSet<_> = all.iter().map(|d| d.id.clone()).collect();
    assert!(ids.contains(&batch[0].1[0].id) && ids.contains(&batch[0].1[1].id));
    for d in &all {
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(d.attempts, 0);
        assert_eq!(d.next_attempt_at, Some(T0));
    }
}

async fn claims_lease_record_and_redeliver(db: &TestDb) {
    let m = merchant(db).await;
    let hook = endpoint(&m, vec![]);
    db.store.insert_webhook(&hook).await.unwrap();
    let e = event(db, &m, T0).await;
    let d = delivery(&e, Some(&hook.id), T0);
    db.store
        .dispatch_outbox(&[(e.id.clone(), vec![d.clone()])], T0)
        .await
        .unwrap();
    // Not due before its time.
    let early = db
        .store
        .claim_deliveries(T0 - Duration::seconds(1), T0 + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert!(early.is_empty());
    let lease = T0 + Duration::minutes(1);
    let claimed = db.store.claim_deliveries(T0, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event, e, "the claim carries the event");
    assert_eq!(claimed[0].delivery.next_attempt_at, Some(lease));
    // Claimed: not claimable again before the lease ends, claimable after.
    assert!(
        db.store
            .claim_deliveries(T0 + Duration::seconds(30), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let reclaimed = db
        .store
        .claim_deliveries(lease, lease + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), 1, "a crashed sender's claim lapses");

    let failed = AttemptRecord {
        id: d.id.clone(),
        claimed_attempts: 0,
        status: DeliveryStatus::Pending,
        next_attempt_at: Some(T0 + Duration::minutes(5)),
        status_code: Some(500),
        response_excerpt: Some("oops".into()),
        duration_ms: 12,
        error: Some("HTTP 500 is not a success".into()),
        request_headers: Some(r#"{"coffer-event-id":"x"}"#.into()),
        request_body: Some("{}".into()),
        at: T0,
    };
    assert_eq!(
        db.store
            .record_attempts(std::slice::from_ref(&failed))
            .await
            .unwrap(),
        1
    );
    // A stale outcome of the same attempt is dropped.
    assert_eq!(db.store.record_attempts(&[failed]).await.unwrap(), 0);
    let got = db.store.get_delivery(&m, &d.id).await.unwrap().unwrap();
    assert_eq!(got.attempts, 1);
    assert_eq!(got.last_status_code, Some(500));
    assert_eq!(got.response_excerpt.as_deref(), Some("oops"));
    assert_eq!(got.duration_ms, Some(12));
    assert_eq!(got.next_attempt_at, Some(T0 + Duration::minutes(5)));

    let ok = AttemptRecord {
        id: d.id.clone(),
        claimed_attempts: 1,
        status: DeliveryStatus::Succeeded,
        next_attempt_at: None,
        status_code: Some(204),
        response_excerpt: Some(String::new()),
        duration_ms: 3,
        error: None,
        request_headers: None,
        request_body: None,
        at: T0,
    };
    assert_eq!(db.store.record_attempts(&[ok]).await.unwrap(), 1);
    let got = db.store.get_delivery(&m, &d.id).await.unwrap().unwrap();
    assert_eq!(got.status, DeliveryStatus::Succeeded);
    assert!(
        db.store
            .claim_deliveries(T0 + Duration::days(9), T0 + Duration::days(10), 10)
            .await
            .unwrap()
            .is_empty(),
        "finished deliveries are never claimed"
    );

    let other = merchant(db).await;
    assert_eq!(db.store.get_delivery(&other, &d.id).await.unwrap(), None);
    assert!(!db.store.redeliver(&other, &d.id, T0).await.unwrap());
    assert!(
        db.store
            .redeliver(&m, &d.id, T0 + Duration::hours(1))
            .await
            .unwrap()
    );
    let again = db
        .store
        .claim_deliveries(T0 + Duration::hours(1), T0 + Duration::hours(2), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.attempts, 2);

    // Release hands a claimed row back at the given time.
    db.store
        .release_deliveries(std::slice::from_ref(&d.id), T0 + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .claim_deliveries(T0 + Duration::hours(1), T0 + Duration::hours(2), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn concurrent_claims_never_overlap(db: &TestDb) {
    let m = merchant(db).await;
    let hook = endpoint(&m, vec![]);
    db.store.insert_webhook(&hook).await.unwrap();
    let mut batch = Vec::new();
    for _ in 0..60 {
        let e = event(db, &m, T0).await;
        batch.push((e.id.clone(), vec![delivery(&e, Some(&hook.id), T0)]));
    }
    db.store.dispatch_outbox(&batch, T0).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_deliveries(T0, T0 + Duration::minutes(1), 4)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|c| c.delivery.id));
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "a delivery was claimed twice");
        }
    }
    assert_eq!(seen.len(), 60);
}

async fn deleting_an_endpoint_gives_up_its_deliveries(db: &TestDb) {
    let m = merchant(db).await;
    let hook = endpoint(&m, vec![]);
    db.store.insert_webhook(&hook).await.unwrap();
    let e = event(db, &m, T0).await;
    let d = delivery(&e, Some(&hook.id), T0);
    db.store
        .dispatch_outbox(&[(e.id.clone(), vec![d.clone()])], T0)
        .await
        .unwrap();
    assert!(db.store.delete_webhook(&m, &hook.id, T0).await.unwrap());
    let got = db.store.get_delivery(&m, &d.id).await.unwrap().unwrap();
    assert_eq!(got.status, DeliveryStatus::Failed);
    assert_eq!(got.error.as_deref(), Some("endpoint deleted"));
    // The log stays readable, newest first, paged by cursor.
    let page = db
        .store
        .list_deliveries(&DeliveryQuery {
            merchant_id: Some(m.clone()),
            endpoint_id: Some(hook.id.clone()),
            after: Some(d.id.clone()),
            limit: 10,
        })
        .await
        .unwrap();
    assert!(page.is_empty());
}

both_backends! {
    endpoints_roundtrip_and_are_scoped => endpoints_roundtrip_and_are_scoped;
    dispatch_is_atomic_and_idempotent => dispatch_is_atomic_and_idempotent;
    claims_lease_record_and_redeliver => claims_lease_record_and_redeliver;
    concurrent_claims_never_overlap => concurrent_claims_never_overlap;
    deleting_an_endpoint_gives_up_its_deliveries => deleting_an_endpoint_gives_up_its_deliveries;
}
