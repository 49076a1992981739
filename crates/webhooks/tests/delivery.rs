//! Webhook delivery end to end against real local HTTP receivers (axum on 127.0.0.1), on
//! SQLite and PostgreSQL: signatures, retries on 500 / timeout / refused connection, the
//! per-order callback URL, rotation, isolation of a slow endpoint, the SSRF guard, and the
//! documented verification snippets (Python and Node) run against a real delivery.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use coffer_core::MerchantId;
use coffer_core::order::OrderLinks;
use coffer_engine::{Engine, NewOrder};
use coffer_store::DeliveryStatus;
use coffer_testkit::{TestDb, both_backends};
use coffer_webhooks::{MasterKey, RetrySchedule, Settings, WebhookService, Webhooks, crypto};
use rust_decimal::Decimal;
use tokio::sync::watch;

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HashMap<String, String>,
    body: Bytes,
    at: Instant,
}

/// What the receiver does on the n-th request (0-based) to a path.
#[derive(Clone, Copy)]
enum Behaviour {
    Ok,
    /// 500 for the first `n` requests, then 200.
    FailFirst(usize),
    /// Sleep past the client timeout on the first request, then 200.
    HangFirst,
    /// Every request takes this long, then 200.
    Slow(Duration),
}

#[derive(Clone, Default)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    behaviours: Arc<Mutex<HashMap<String, Behaviour>>>,
}

impl ReceiverState {
    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let seen = state.hits(&path).len();
    let behaviour = state
        .behaviours
        .lock()
        .unwrap()
        .get(&path)
        .copied()
        .unwrap_or(Behaviour::Ok);
    state.hits.lock().unwrap().push(Hit {
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body,
        at: Instant::now(),
    });
    match behaviour {
        Behaviour::Ok => StatusCode::OK,
        Behaviour::FailFirst(n) if seen < n => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::FailFirst(_) => StatusCode::NO_CONTENT,
        Behaviour::HangFirst if seen == 0 => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK
        }
        Behaviour::HangFirst => StatusCode::OK,
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
    }
}

async fn start_receiver_on(listener: tokio::net::TcpListener, state: ReceiverState) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/{path}", post(receive))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn start_receiver(state: ReceiverState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_receiver_on(listener, state).await
}

fn test_settings() -> Settings {
    Settings {
        allow_private: true,
        retry: RetrySchedule {
            delays: vec![Duration::from_millis(200); 3],
        },
        poll_interval: Duration::from_millis(20),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        lease: Duration::from_secs(5),
        ..Settings::default()
    }
}

struct Harness {
    engine: Engine,
    hooks: Webhooks,
    service: WebhookService,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start(db: &TestDb, settings: Settings) -> Self {
        // A chain the merchant has a wallet on: orders nobody could pay are refused.
        let engine = coffer_testkit::fixtures::bsc_shop_engine_now(db);
        let hooks = Webhooks::new(
            db.store.clone(),
            engine.clock().clone(),
            MasterKey::from_bytes([42; 32]),
            settings,
        );
        let service = hooks.service();
        let (stop, rx) = watch::channel(false);
        let runner = hooks.clone();
        let task = tokio::spawn(async move {
            runner.run(rx).await.unwrap();
        });
        Self {
            engine,
            hooks,
            service,
            stop,
            task,
        }
    }

    async fn merchant(&self) -> MerchantId {
        // Each merchant its own wallet (two cannot share one).
        static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
        let wallet = format!(
            "{:02x}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let id = self.engine.create_merchant("Shop").await.unwrap().0.id;
        self.engine.set_wallet(&id, "bsc", &wallet).await.unwrap();
        id
    }

    /// Create an order (one `order.created` event), optionally with a callback URL.
    async fn order(&self, merchant: &MerchantId, callback: Option<String>) -> String {
        let created = self
            .engine
            .create_order(
                merchant,
                NewOrder {
                    amount: Decimal::new(1999, 2),
                    currency: "USD".into(),
                    links: OrderLinks {
                        callback_url: callback,
                        ..OrderLinks::default()
                    },
                    dialect: "native".into(),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap();
        self.hooks.poke();
        created.order.id.to_string()
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the webhook runner stops promptly")
            .unwrap();
    }
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn deliveries_are_signed_and_verifiable(db: &TestDb) {
    let state = ReceiverState::default();
    let addr = start_receiver(state.clone()).await;
    let h = Harness::start(db, test_settings()).await;
    let m = h.merchant().await;
    let (endpoint, secret) = h
        .service
        .create(&m, &format!("http://{addr}/signed"), &[], true)
        .await
        .unwrap();
    let order_id = h.order(&m, None).await;
    wait_for("the delivery", Duration::from_secs(10), || {
        !state.hits("signed").is_empty()
    })
    .await;
    let hit = state.hits("signed")[0].clone();
    let header = &hit.headers["coffer-signature"];
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        crypto::verify(&secret, header, &hit.body, now, 300),
        "{header}"
    );
    assert!(!crypto::verify(
        &crypto::new_secret(),
        header,
        &hit.body,
        now,
        300
    ));
    assert_eq!(hit.headers["coffer-event-type"], "order.created");
    let body: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["id"], hit.headers["coffer-event-id"].as_str());
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["data"]["object"]["id"], order_id.as_str());
    assert!(body["data"]["previous_status"].is_null());

    // The documented snippets verify this real delivery, and reject a tampered one.
    run_snippets(&secret, header, &hit.body);

    // The delivery log shows it.
    wait_for("the log", Duration::from_secs(5), || true).await;
    let mut log = Vec::new();
    for _ in 0..100 {
        log = h
            .service
            .deliveries(&m, &endpoint.id, None, 10)
            .await
            .unwrap();
        if log
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Succeeded)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log.len(), 1);
    let d = &log[0];
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_status_code, Some(200));
    assert!(
        d.request_headers
            .as_deref()
            .unwrap()
            .contains("coffer-signature")
    );
    assert_eq!(d.request_body.as_deref().unwrap().as_bytes(), &hit.body[..]);

    // Another merchant sees nothing of it.
    let other = h.merchant().await;
    assert!(
        h.service
            .deliveries(&other, &endpoint.id, None, 10)
            .await
            .is_err()
    );
    h.stop().await;
}

fn run_snippets(secret: &str, header: &str, body: &[u8]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/snippets");
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, body).unwrap();
    let tampered_path = dir.path().join("tampered.json");
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    std::fs::write(&tampered_path, &tampered).unwrap();
    for (program, script) in [("python3", "verify.py"), ("node", "verify.js")] {
        let run = |path: &std::path::Path| {
            std::process::Command::new(program)
                .arg(root.join(script))
                .arg(path)
                .env("COFFER_WEBHOOK_SECRET", secret)
                .env("COFFER_SIGNATURE", header)
                .output()
                .unwrap_or_else(|e| panic!("{program} must be installed: {e}"))
        };
        let ok = run(&body_path);
        assert!(
            ok.status.success(),
            "{script} rejected a real delivery: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&ok.stdout).trim(),
            "valid",
            "{script}"
        );
        let bad = run(&tampered_path);
        assert!(!bad.status.success(), "{script} accepted a tampered body");
    }
}

async fn retries_until_success(db: &TestDb) {
    let state = ReceiverState::default();
    state
        .behaviours
        .lock()
        .unwrap()
        .insert("flaky".into(), Behaviour::FailFirst(2));
    state
        .behaviours
        .lock()
        .unwrap()
        .insert("hangs".into(), Behaviour::HangFirst);
    let addr = start_receiver(state.clone()).await;
    // A port with nothing listening yet: the first attempt is refused.
    let later = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let later_addr = later.local_addr().unwrap();
    drop(later);

    let settings = Settings {
        retry: RetrySchedule {
            delays: [300, 500, 1000, 2000, 2000]
                .map(Duration::from_millis)
                .to_vec(),
        },
        ..test_settings()
    };
    let h = Harness::start(db, settings).await;
    let m = h.merchant().await;
    for url in [
        format!("http://{addr}/flaky"),
        format!("http://{addr}/hangs"),
        format!("http://{later_addr}/refused"),
    ] {
        h.service.create(&m, &url, &[], true).await.unwrap();
    }
    h.order(&m, None).await;
    // Let the refused destination fail once, then bring it up.
    let endpoints = h.service.list(&m).await.unwrap();
    let refused = endpoints
        .iter()
        .find(|e| e.url.contains("/refused"))
        .unwrap();
    let mut first_error = None;
    for _ in 0..500 {
        let log = h
            .service
            .deliveries(&m, &refused.id, None, 10)
            .await
            .unwrap();
        if let Some(d) = log.first().filter(|d| d.attempts >= 1) {
            first_error = d.error.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first_error = first_error.expect("a refused attempt is recorded");
    assert!(first_error.contains("connection"), "{first_error}");
    let listener = tokio::net::TcpListener::bind(later_addr).await.unwrap();
    start_receiver_on(listener, state.clone()).await;
    wait_for(
        "delivery after the refusal",
        Duration::from_secs(10),
        || !state.hits("refused").is_empty(),
    )
    .await;
    wait_for("two failures then success", Duration::from_secs(10), || {
        state.hits("flaky").len() >= 3
    })
    .await;
    wait_for("a timeout then success", Duration::from_secs(10), || {
        state.hits("hangs").len() >= 2
    })
    .await;

    // Every attempt carried the same event id.
    for path in ["flaky", "hangs"] {
        let ids: std::collections::HashSet<_> = state
            .hits(path)
            .iter()
            .map(|h| h.headers["coffer-event-id"].clone())
            .collect();
        assert_eq!(ids.len(), 1, "{path}");
    }
    // The log tells the story.
    let flaky = endpoints.iter().find(|e| e.url.contains("/flaky")).unwrap();
    let mut log = Vec::new();
    for _ in 0..100 {
        log = h.service.deliveries(&m, &flaky.id, None, 10).await.unwrap();
        if log[0].status == DeliveryStatus::Succeeded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log[0].status, DeliveryStatus::Succeeded);
    assert_eq!(log[0].attempts, 3);
    assert_eq!(log[0].last_status_code, Some(204));
    h.stop().await;
}

async fn exhausted_retries_flag_the_endpoint_and_redeliver_works(db: &TestDb) {
    let state = ReceiverState::default();
    state
        .behaviours
        .lock()
        .unwrap()
        .insert("down".into(), Behaviour::FailFirst(4));
    let addr = start_receiver(state.clone()).await;
    let h = Harness::start(db, test_settings()).await;
    let m = h.merchant().await;
    let (endpoint, _) = h
        .service
        .create(&m, &format!("http://{addr}/down"), &[], true)
        .await
        .unwrap();
    h.order(&m, None).await;
    let mut flagged = None;
    for _ in 0..300 {
        let e = h.service.get(&m, &endpoint.id).await.unwrap();
        if e.failing_since.is_some() {
            flagged = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(flagged.is_some(), "endpoint flagged after the last failure");
    assert_eq!(state.hits("down").len(), 4, "1 attempt + 3 retries");
    let log = h
        .service
        .deliveries(&m, &endpoint.id, None, 10)
        .await
        .unwrap();
    assert_eq!(log[0].status, DeliveryStatus::Failed);
    assert_eq!(log[0].attempts, 4);
    assert_eq!(log[0].last_status_code, Some(500));

    // Manual redelivery: the receiver is back now; the flag clears on success.
    h.service
        .redeliver(&m, &endpoint.id, &log[0].id)
        .await
        .unwrap();
    wait_for("the redelivery", Duration::from_secs(10), || {
        state.hits("down").len() == 5
    })
    .await;
    let mut cleared = false;
    for _ in 0..200 {
        if h.service
            .get(&m, &endpoint.id)
            .await
            .unwrap()
            .failing_since
            .is_none()
        {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cleared, "a success clears the failing flag");
    h.stop().await;
}

async fn callback_url_and_filters_and_rotation(db: &TestDb) {
    let state = ReceiverState::default();
    let addr = start_receiver(state.clone()).await;
    let h = Harness::start(db, test_settings()).await;
    let m = h.merchant().await;
    let (filtered, _) = h
        .service
        .create(
            &m,
            &format!("http://{addr}/expired-only"),
            &["order.expired".into()],
            true,
        )
        .await
        .unwrap();
    let (rotating, old_secret) = h
        .service
        .create(&m, &format!("http://{addr}/rotating"), &[], true)
        .await
        .unwrap();
    h.service
        .create(&m, &format!("http://{addr}/disabled"), &[], false)
        .await
        .unwrap();
    let (_, new_secret) = h.service.rotate(&m, &rotating.id).await.unwrap();
    assert_ne!(old_secret, new_secret);
    h.order(&m, Some(format!("http://{addr}/callback"))).await;
    wait_for("both deliveries", Duration::from_secs(10), || {
        !state.hits("rotating").is_empty() && !state.hits("callback").is_empty()
    })
    .await;
    let hit = &state.hits("rotating")[0];
    let header = &hit.headers["coffer-signature"];
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(
        header.matches("v1=").count(),
        2,
        "both secrets during rotation"
    );
    assert!(crypto::verify(&old_secret, header, &hit.body, now, 300));
    assert!(crypto::verify(&new_secret, header, &hit.body, now, 300));
    // The callback is the same event, signed with the merchant's endpoint secrets.
    let cb = &state.hits("callback")[0];
    assert_eq!(
        cb.headers["coffer-event-id"],
        hit.headers["coffer-event-id"]
    );
    assert!(crypto::verify(
        &new_secret,
        &cb.headers["coffer-signature"],
        &cb.body,
        now,
        300
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(state.hits("expired-only").is_empty(), "filter respected");
    assert!(
        state.hits("disabled").is_empty(),
        "disabled endpoint skipped"
    );
    assert!(
        h.service
            .deliveries(&m, &filtered.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    h.stop().await;
}

async fn a_slow_endpoint_does_not_delay_a_fast_one(db: &TestDb) {
    let state = ReceiverState::default();
    state
        .behaviours
        .lock()
        .unwrap()
        .insert("slow".into(), Behaviour::Slow(Duration::from_millis(900)));
    let addr = start_receiver(state.clone()).await;
    let settings = Settings {
        concurrency: 8,
        per_destination: 2,
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(30),
        ..test_settings()
    };
    let h = Harness::start(db, settings).await;
    let m = h.merchant().await;
    h.service
        .create(&m, &format!("http://{addr}/slow"), &[], true)
        .await
        .unwrap();
    h.service
        .create(&m, &format!("http://{addr}/fast"), &[], true)
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..10 {
        h.order(&m, None).await;
    }
    wait_for("every fast delivery", Duration::from_secs(10), || {
        state.hits("fast").len() == 10
    })
    .await;
    let fast_done = state.hits("fast").iter().map(|h| h.at).max().unwrap() - started;
    let slow_so_far = state.hits("slow").len();
    // 10 slow deliveries at 2 in flight × 0.9 s need ≥ 4.5 s; the fast ones must not wait.
    assert!(
        fast_done < Duration::from_millis(2500),
        "fast endpoint took {fast_done:?} behind the slow one"
    );
    assert!(
        slow_so_far < 10,
        "the slow endpoint is still working through its queue"
    );
    wait_for("every slow delivery", Duration::from_secs(20), || {
        state.hits("slow").len() >= 10
    })
    .await;
    h.stop().await;
}

async fn the_ssrf_guard_refuses_every_class(db: &TestDb) {
    let h = Harness::start(
        db,
        Settings {
            allow_private: false,
            ..test_settings()
        },
    )
    .await;
    let m = h.merchant().await;
    let targets = [
        "http://127.0.0.1:9/", // loopback
        "http://localhost:9/", // a host name resolving to loopback
        "http://10.0.0.1/",    // private
        "http://172.16.5.4/",
        "http://192.168.0.1/",
        "http://169.254.1.1/",        // link-local
        "http://169.254.169.254/",    // cloud metadata
        "http://100.64.0.1/",         // CGNAT
        "http://0.0.0.0/",            // unspecified
        "http://255.255.255.255/",    // broadcast
        "http://224.0.0.1/",          // multicast
        "http://192.0.2.1/",          // documentation
        "http://[::1]/",              // IPv6 loopback
        "http://[::]/",               // IPv6 unspecified
        "http://[fd00:ec2::254]/",    // AWS IPv6 metadata
        "http://[fc00::1]/",          // unique-local
        "http://[fe80::1]/",          // link-local
        "http://[ff02::1]/",          // multicast
        "http://[2001:db8::1]/",      // documentation
        "http://[::ffff:127.0.0.1]/", // IPv4-mapped loopback
        "http://[::ffff:169.254.169.254]/",
        "http://[::7f00:1]/", // IPv4-compatible loopback
    ];
    let mut ids = Vec::new();
    for url in targets {
        let (e, _) = h.service.create(&m, url, &[], true).await.unwrap();
        ids.push((url, e.id));
    }
    h.order(&m, None).await;
    for (url, id) in &ids {
        let mut error = None;
        for _ in 0..300 {
            let log = h.service.deliveries(&m, id, None, 1).await.unwrap();
            if let Some(d) = log.first().filter(|d| d.attempts >= 1) {
                error = d.error.clone();
                assert_eq!(d.last_status_code, None, "{url}: nothing was sent");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let error = error.unwrap_or_else(|| panic!("{url}: no attempt recorded"));
        assert!(
            error.contains("refused by the SSRF guard"),
            "{url}: {error}"
        );
    }
    h.stop().await;
}

async fn redirects_are_not_followed(db: &TestDb) {
    let state = ReceiverState::default();
    let target = start_receiver(state.clone()).await;
    let redirect = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_addr = redirect.local_addr().unwrap();
    let location = format!("http://{target}/stolen");
    let app = Router::new().route(
        "/{p}",
        post(move || {
            let location = location.clone();
            async move { (StatusCode::FOUND, [("location", location)]) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(redirect, app).await;
    });
    let h = Harness::start(db, test_settings()).await;
    let m = h.merchant().await;
    let (e, _) = h
        .service
        .create(&m, &format!("http://{redirect_addr}/hook"), &[], true)
        .await
        .unwrap();
    h.order(&m, None).await;
    let mut code = None;
    for _ in 0..300 {
        let log = h.service.deliveries(&m, &e.id, None, 1).await.unwrap();
        if let Some(d) = log.first().filter(|d| d.attempts >= 1) {
            code = d.last_status_code;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(code, Some(302), "a redirect is a failed attempt");
    assert!(
        state.hits("stolen").is_empty(),
        "the redirect was not followed"
    );
    h.stop().await;
}

both_backends! {
    deliveries_are_signed_and_verifiable => deliveries_are_signed_and_verifiable;
    retries_until_success => retries_until_success;
    exhausted_retries_flag_the_endpoint_and_redeliver_works => exhausted_retries_flag_the_endpoint_and_redeliver_works;
    callback_url_and_filters_and_rotation => callback_url_and_filters_and_rotation;
    a_slow_endpoint_does_not_delay_a_fast_one => a_slow_endpoint_does_not_delay_a_fast_one;
    the_ssrf_guard_refuses_every_class => the_ssrf_guard_refuses_every_class;
    redirects_are_not_followed => redirects_are_not_followed;
}

#[test]
fn the_docs_show_the_executed_snippets_verbatim() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let page = std::fs::read_to_string(root.join("webhooks.md")).unwrap();
    for file in ["verify.py", "verify.js"] {
        let snippet = std::fs::read_to_string(root.join("snippets").join(file)).unwrap();
        assert!(
            page.contains(&snippet),
            "docs/webhooks.md must include docs/snippets/{file} verbatim"
        );
    }
}
