//! Webhooks through the real `coffer` binary: the `/api/v1/webhooks` and `/api/v1/events`
//! routes over HTTP, and durability — `coffer serve` SIGKILLed with deliveries pending, then
//! restarted: every event is delivered at least once, duplicates carry the same event id.
//! On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use coffer_core::{Event, EventId, EventType, MerchantId};
use coffer_store::{Changeset, Store};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_coffer");

fn coffer(data_dir: &Path, db_url: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("COFFER_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("COFFER_DATA_DIR", data_dir);
    cmd.env("COFFER_CONFIG", data_dir.join("coffer.toml"));
    if let Some(url) = db_url {
        cmd.env("COFFER_DATABASE_URL", url);
    }
    cmd
}

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
log_format = "json"
[webhooks]
allow_private = true
per_destination = 2
retry_schedule = ["200ms", "300ms", "500ms", "1s", "1s", "1s"]
timeout = "1s"
lease = "2s"
"#;

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, db_url: Option<&str>) -> Server {
        let mut child = coffer(dir, db_url)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("coffer serve did not report its address");
            };
            let log: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if log["message"] == "listening" {
                let addr = log["address"].as_str().unwrap().to_owned();
                return Server {
                    child,
                    base: format!("http://{addr}"),
                };
            }
        }
    }

    fn kill9(mut self) {
        // Child::kill is SIGKILL on Unix: no graceful shutdown, nothing flushed.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "no graceful exit within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_client() -> reqwest::Client {
    coffer_testkit::http_client()
}

/// Create a merchant with the CLI; returns its id and admin API key.
fn merchant(dir: &Path, db_url: Option<&str>) -> (MerchantId, String) {
    let out = coffer(dir, db_url)
        .args(["merchant", "create", "--name", "Shop", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["merchant_id"].as_str().unwrap().parse().unwrap(),
        v["api_key"].as_str().unwrap().to_owned(),
    )
}

type Request = (HashMap<String, String>, Bytes);

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Request>>>);

async fn start_receiver(received: Received, delay: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let received = received.clone();
            async move {
                tokio::time::sleep(delay).await;
                received.0.lock().unwrap().push((
                    headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                        .collect(),
                    body,
                ));
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn event(merchant: &MerchantId, i: usize) -> Event {
    Event {
        id: EventId::from_random(coffer_engine::random16()),
        merchant_id: merchant.clone(),
        kind: EventType::OrderSettled,
        subject: format!("ord_test_{i}"),
        data: json!({"object": {"n": i}, "previous_status": "processing"}),
        created_at: coffer_engine::truncate_to_ms(time::OffsetDateTime::now_utc()),
    }
}

async fn open_store(dir: &Path, db_url: Option<&str>) -> Arc<dyn Store> {
    coffer_store::open(db_url, dir, 4).await.unwrap()
}

async fn sigkill_with_deliveries_pending_loses_nothing(db_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("coffer.toml"), CONFIG).unwrap();
    let url = db_url.as_deref();
    let (merchant_id, api_key) = {
        let dir = dir.path().to_owned();
        let url = db_url.clone();
        tokio::task::spawn_blocking(move || merchant(&dir, url.as_deref()))
            .await
            .unwrap()
    };
    let received = Received::default();
    let addr = start_receiver(received.clone(), Duration::from_millis(100)).await;

    let server = Server::start(dir.path(), url);
    let http = http_client();
    let created: Value = http
        .post(format!("{}/api/v1/webhooks", server.base))
        .bearer_auth(&api_key)
        .json(&json!({"url": format!("http://{addr}/hook")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();

    // 40 state changes committed while the server runs…
    let store = open_store(dir.path(), url).await;
    let mut ids = HashSet::new();
    for i in 0..40 {
        let e = event(&merchant_id, i);
        ids.insert(e.id.to_string());
        store
            .commit(Changeset {
                events: vec![e],
                ..Changeset::default()
            })
            .await
            .unwrap();
    }
    // …some delivered (2 in flight × 100 ms each), then the process dies mid-flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.0.lock().unwrap().len() < 5 {
        assert!(Instant::now() < deadline, "no deliveries before the kill");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    let at_kill = received.0.lock().unwrap().len();
    assert!(
        at_kill < 40,
        "the kill must leave deliveries pending ({at_kill} done)"
    );

    // 10 more while it is down: they wait in the outbox.
    for i in 40..50 {
        let e = event(&merchant_id, i);
        ids.insert(e.id.to_string());
        store
            .commit(Changeset {
                events: vec![e],
                ..Changeset::default()
            })
            .await
            .unwrap();
    }
    drop(store);

    let server = Server::start(dir.path(), url);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = received
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h["coffer-event-id"].clone())
            .collect();
        if ids.is_subset(&seen) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart, {} of {} events were delivered",
            ids.intersection(&seen).count(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Duplicates (an attempt cut short by the kill) carry the same event id and body.
    let all = received.0.lock().unwrap().clone();
    let mut bodies: HashMap<String, HashSet<Bytes>> = HashMap::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (headers, body) in &all {
        let id = &headers["coffer-event-id"];
        let parsed: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            parsed["id"],
            id.as_str(),
            "header and body name the same event"
        );
        assert!(ids.contains(id), "only our events");
        assert!(
            coffer_webhooks::crypto::verify(&secret, &headers["coffer-signature"], body, now, 300),
            "signed with the secret created before the restart (master key file reused)"
        );
        bodies.entry(id.clone()).or_default().insert(body.clone());
    }
    for (id, b) in &bodies {
        assert_eq!(b.len(), 1, "event {id} was sent with different bodies");
    }
    eprintln!(
        "{} events, {} requests received ({} duplicates)",
        ids.len(),
        all.len(),
        all.len() - ids.len()
    );
    assert_eq!(server.terminate(), Some(0), "graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_on_sqlite() {
    sigkill_with_deliveries_pending_loses_nothing(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_on_postgres() {
    if !coffer_testkit::postgres_wanted() {
        return;
    }
    let db = coffer_testkit::fresh_postgres().await.unwrap();
    sigkill_with_deliveries_pending_loses_nothing(db.url.clone()).await;
}

async fn webhook_and_event_routes(db_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("coffer.toml"), CONFIG).unwrap();
    let url = db_url.as_deref();
    let ((a, key_a), (_b, key_b)) = {
        let dir = dir.path().to_owned();
        let url = db_url.clone();
        tokio::task::spawn_blocking(move || {
            (
                merchant(&dir, url.as_deref()),
                merchant(&dir, url.as_deref()),
            )
        })
        .await
        .unwrap()
    };
    let received = Received::default();
    let addr = start_receiver(received.clone(), Duration::ZERO).await;
    let server = Server::start(dir.path(), url);
    let http = http_client();
    let base = &server.base;
    let call = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let v: Value = res.json().await.unwrap_or(Value::Null);
            (status, v)
        }
    };
    use reqwest::Method;

    // Authentication and validation.
    let res = http
        .get(format!("{base}/api/v1/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (s, v) = call(
        Method::POST,
        "/api/v1/webhooks",
        &key_a,
        Some(json!({"url": "ftp://x"})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (400, Some("invalid_url"), Some("url"))
    );
    let (s, v) = call(
        Method::POST,
        "/api/v1/webhooks",
        &key_a,
        Some(json!({"url": "https://shop.example/h", "events": ["order.paid"]})),
    )
    .await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("events")));
    let (s, v) = call(
        Method::POST,
        "/api/v1/webhooks",
        &key_a,
        Some(json!({"url": 5})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );

    // Create: the secret is shown once.
    let (s, created) = call(
        Method::POST,
        "/api/v1/webhooks",
        &key_a,
        Some(json!({"url": format!("http://{addr}/hook"), "events": ["order.settled"]})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (s, shown) = call(Method::GET, &format!("/api/v1/webhooks/{id}"), &key_a, None).await;
    assert_eq!(s, 200);
    assert!(shown.get("secret").is_none(), "never shown again");
    let (_, listed) = call(Method::GET, "/api/v1/webhooks", &key_a, None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    // The secret is not stored in clear.
    if url.is_none() {
        let db = std::fs::read(dir.path().join("coffer.db")).unwrap();
        let wal = std::fs::read(dir.path().join("coffer.db-wal")).unwrap_or_default();
        let needle = secret.as_bytes();
        for bytes in [&db, &wal] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "secret stored in clear"
            );
        }
    }

    // Another merchant: 404, exactly like a missing endpoint.
    for (method, path) in [
        (Method::GET, format!("/api/v1/webhooks/{id}")),
        (Method::DELETE, format!("/api/v1/webhooks/{id}")),
        (Method::POST, format!("/api/v1/webhooks/{id}/rotate")),
        (Method::GET, format!("/api/v1/webhooks/{id}/deliveries")),
    ] {
        let (s, v) = call(method.clone(), &path, &key_b, None).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}"
        );
    }
    let (s, _) = call(Method::GET, "/api/v1/webhooks/whk_nope", &key_a, None).await;
    assert_eq!(s, 404);

    // An event for merchant A reaches the endpoint; B's events API does not show it.
    let store = open_store(dir.path(), url).await;
    let e = event(&a, 1);
    let mut expired = event(&a, 2);
    expired.kind = EventType::OrderExpired;
    store
        .commit(Changeset {
            events: vec![e.clone(), expired.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.0.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut log = Value::Null;
    for _ in 0..100 {
        let (_, v) = call(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries"),
            &key_a,
            None,
        )
        .await;
        if v["data"][0]["status"] == "succeeded" {
            log = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = &log["data"][0];
    assert_eq!(
        log["data"].as_array().unwrap().len(),
        1,
        "the filter skipped order.expired"
    );
    assert_eq!(d["event_id"], e.id.as_str());
    assert_eq!(d["response_status"], 200);
    assert_eq!(d["attempts"], 1);
    assert!(
        d["request"]["headers"]["coffer-signature"]
            .as_str()
            .unwrap()
            .starts_with("t=")
    );
    assert!(d["duration_ms"].is_number());

    // Redeliver: a second request with the same event id.
    let did = d["id"].as_str().unwrap();
    let (s, _) = call(
        Method::POST,
        &format!("/api/v1/webhooks/{id}/deliveries/{did}/redeliver"),
        &key_a,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.0.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no redelivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let got = received.0.lock().unwrap();
        assert_eq!(got[0].0["coffer-event-id"], got[1].0["coffer-event-id"]);
    }

    // Rotation: new secret; both signatures for 24 h.
    let (s, rotated) = call(
        Method::POST,
        &format!("/api/v1/webhooks/{id}/rotate"),
        &key_a,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(rotated["previous_secret_expires_at"].is_string());

    // Patch.
    let (s, patched) = call(
        Method::PATCH,
        &format!("/api/v1/webhooks/{id}"),
        &key_a,
        Some(json!({"enabled": false, "events": []})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["events"], json!([]));

    // Events API: filter by type, cursor, and isolation.
    let (s, evs) = call(Method::GET, "/api/v1/events?limit=1", &key_a, None).await;
    assert_eq!(s, 200);
    assert_eq!(evs["data"][0]["id"], e.id.as_str());
    let cursor = evs["next_cursor"].as_str().unwrap();
    let (_, next) = call(
        Method::GET,
        &format!("/api/v1/events?limit=1&cursor={cursor}"),
        &key_a,
        None,
    )
    .await;
    assert_eq!(next["data"][0]["id"], expired.id.as_str());
    let (_, only) = call(
        Method::GET,
        "/api/v1/events?type=order.expired",
        &key_a,
        None,
    )
    .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let (_, none) = call(
        Method::GET,
        "/api/v1/events?created_from=2999-01-01T00:00:00Z",
        &key_a,
        None,
    )
    .await;
    assert!(none["data"].as_array().unwrap().is_empty());
    let (_, theirs) = call(Method::GET, "/api/v1/events", &key_b, None).await;
    assert!(
        theirs["data"].as_array().unwrap().is_empty(),
        "B sees none of A's events"
    );
    let (s, v) = call(Method::GET, "/api/v1/events?type=order.paid", &key_a, None).await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("type")));
    let (s, v) = call(
        Method::GET,
        "/api/v1/events?created_from=yesterday",
        &key_a,
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (400, Some("created_from"))
    );

    // Delete.
    let (s, _) = call(
        Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        &key_a,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(Method::GET, &format!("/api/v1/webhooks/{id}"), &key_a, None).await;
    assert_eq!(s, 404);
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_on_sqlite() {
    webhook_and_event_routes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_on_postgres() {
    if !coffer_testkit::postgres_wanted() {
        return;
    }
    let db = coffer_testkit::fresh_postgres().await.unwrap();
    webhook_and_event_routes(db.url.clone()).await;
}
