//! Webhook delivery benchmark against a local receiver (axum on 127.0.0.1).
//!
//!   cargo run --release -p coffer-webhooks --example bench [-- <events> <endpoints>]
//!
//! 1. Throughput: `<events>` events (default 10 000) are committed first, then the dispatcher
//!    and sender start; deliveries/s = events × endpoints / time until the receiver has all.
//! 2. Latency: with the machinery running, events are committed one by one (~200/s for 5 s);
//!    commit → first attempt arriving at the receiver, p50/p99/max.
//!
//! SQLite (the embedded default) in a temp dir, unless `COFFER_BENCH_PG_URL` names a
//! PostgreSQL database to use instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)] // a benchmark

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use coffer_core::{Event, EventId, EventType, Merchant, MerchantId, SettlementPolicy};
use coffer_engine::{SystemClock, random16, truncate_to_ms};
use coffer_store::{Changeset, Store};
use coffer_webhooks::{MasterKey, Settings, Webhooks};
use tokio::sync::watch;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

fn event(m: &MerchantId) -> Event {
    Event {
        id: EventId::from_random(random16()),
        merchant_id: m.clone(),
        kind: EventType::OrderSettled,
        subject: "ord_bench".into(),
        data: serde_json::json!({"object": {"id": "ord_bench", "status": "settled", "amount": "19.99", "currency": "USD"}, "previous_status": "processing", "previous_reason": "none"}),
        created_at: truncate_to_ms(time::OffsetDateTime::now_utc()),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let endpoints: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);

    let dir = tempfile::tempdir().unwrap();
    let pg = std::env::var("COFFER_BENCH_PG_URL").ok();
    let store: Arc<dyn Store> = coffer_store::open(pg.as_deref(), dir.path(), 16)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let merchant = Merchant {
        id: MerchantId::from_random(random16()),
        name: "Bench".into(),
        policy: SettlementPolicy::default(),
        created_at: truncate_to_ms(time::OffsetDateTime::now_utc()),
    };
    store
        .commit(Changeset {
            new_merchants: vec![merchant.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();

    // Receiver: remembers when each (event, path) first arrived.
    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = arrivals.clone();
    let app = Router::new().route(
        "/{path}",
        post(
            move |axum::extract::Path(path): axum::extract::Path<String>, headers: HeaderMap| {
                let seen = seen.clone();
                async move {
                    let id = headers
                        .get("coffer-event-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    seen.lock()
                        .unwrap()
                        .entry(format!("{id}/{path}"))
                        .or_insert_with(Instant::now);
                    StatusCode::OK
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let hooks = Webhooks::new(
        store.clone(),
        Arc::new(SystemClock),
        MasterKey::from_bytes([1; 32]),
        Settings {
            allow_private: true,
            concurrency: 64,
            per_destination: 16,
            ..Settings::default()
        },
    );
    for i in 0..endpoints {
        hooks
            .service()
            .create(&merchant.id, &format!("http://{addr}/e{i}"), &[], true)
            .await
            .unwrap();
    }

    // 1. Throughput from a backlog.
    for chunk in (0..events).collect::<Vec<_>>().chunks(200) {
        let batch: Vec<Event> = chunk.iter().map(|_| event(&merchant.id)).collect();
        store
            .commit(Changeset {
                events: batch,
                ..Changeset::default()
            })
            .await
            .unwrap();
    }
    let expected = events * endpoints;
    let (stop, rx) = watch::channel(false);
    let runner = hooks.clone();
    let started = Instant::now();
    let task = tokio::spawn(async move { runner.run(rx).await.unwrap() });
    while arrivals.lock().unwrap().len() < expected {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let per_sec = expected as f64 / elapsed.as_secs_f64();
    println!(
        "throughput: {expected} deliveries ({events} events x {endpoints} endpoints) in {:.2} s = {per_sec:.0} deliveries/s ({})",
        elapsed.as_secs_f64(),
        store.kind()
    );
    // Let the last outcomes be recorded before measuring latency.
    tokio::time::sleep(Duration::from_millis(500)).await;
    arrivals.lock().unwrap().clear();

    // 2. Commit → first attempt, at a steady ~200 events/s.
    let mut committed = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while Instant::now() < until {
        tick.tick().await;
        let e = event(&merchant.id);
        let id = e.id.to_string();
        store
            .commit(Changeset {
                events: vec![e],
                ..Changeset::default()
            })
            .await
            .unwrap();
        hooks.poke();
        committed.push((id, Instant::now()));
    }
    let want = committed.len() * endpoints;
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = arrivals.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = Vec::new();
    for (id, at) in &committed {
        for i in 0..endpoints {
            if let Some(arrived) = got.get(&format!("{id}/e{i}")) {
                latencies.push(arrived.saturating_duration_since(*at));
            }
        }
    }
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "latency commit -> first attempt over {} deliveries ({} events at ~200/s): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        committed.len(),
        pct(50).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}
