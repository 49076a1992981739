//! The serve loop over real loopback sockets: timeouts tell a slow request head from an idle
//! keep-alive connection, caps close new connections at once and leave open ones alone, the
//! request timeout spares streams, and shutdown drains (within its own timeout).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use coffer_api::edge::client::ClientAddressing;
use coffer_api::edge::server::{ConnectionLimiter, ServerSettings, serve_with};
use coffer_api::{AppState, HttpSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

fn app() -> Router {
    app_routes().with_state(())
}

fn app_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(800)).await;
                "slow"
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let chunks = futures_util::stream::unfold(0u8, |n| async move {
                    if n == 4 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    Some((Ok::<_, std::io::Error>(format!("chunk{n}\n")), n + 1))
                });
                Body::from_stream(chunks)
            }),
        )
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(app: Router, settings: ServerSettings) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let done = tokio::spawn(serve_with(listener, app, settings, async {
        let _ = rx.await;
    }));
    Server {
        addr,
        stop: Some(tx),
        done,
    }
}

fn settings(header: u64, idle: u64, total: usize, per_client: usize) -> ServerSettings {
    ServerSettings {
        header_read_timeout: Duration::from_millis(header),
        idle_timeout: Duration::from_millis(idle),
        shutdown_timeout: Duration::from_secs(5),
        connections: ConnectionLimiter::new(total, per_client, ClientAddressing::default()),
        tls: None,
    }
}

async fn connect_from(local: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Send one request and read its response (the body is small: one read after the head).
async fn request(conn: &mut TcpStream, path: &str) -> String {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("a response")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Whether the server has closed `conn`, waiting up to `within`.
async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, conn.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("unexpected bytes from the server"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_slow_head_and_an_idle_connection_are_timed_out_separately() {
    let server = start(app(), settings(400, 3_000, 100, 100)).await;
    // Nothing sent: closed by the header timeout.
    let mut silent = connect_from("127.0.0.1", server.addr).await;
    // Half a request head, then nothing.
    let mut half = connect_from("127.0.0.1", server.addr).await;
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A request answered, then idle: the idle timeout, longer than the header timeout.
    let mut kept = connect_from("127.0.0.1", server.addr).await;
    assert!(request(&mut kept, "/").await.starts_with("HTTP/1.1 200"));
    let went_idle = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    assert!(closed_within(&mut half, Duration::from_secs(10)).await);
    if went_idle.elapsed() < Duration::from_millis(2_000) {
        assert!(
            !closed_within(&mut kept, Duration::ZERO).await,
            "an idle keep-alive connection outlives the header timeout"
        );
    }
    assert!(closed_within(&mut kept, Duration::from_secs(10)).await);
    assert!(
        went_idle.elapsed() >= Duration::from_millis(2_000),
        "not before the idle timeout"
    );
    // A request trickled in after a kept-alive pause is held to the header timeout from its
    // first byte.
    let mut trickle = connect_from("127.0.0.1", server.addr).await;
    assert!(request(&mut trickle, "/").await.starts_with("HTTP/1.1 200"));
    trickle.write_all(b"GET / HT").await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut trickle, Duration::from_secs(10)).await);
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "the header timeout, not the idle one"
    );
}

#[tokio::test]
async fn over_a_cap_new_connections_close_at_once_and_open_ones_keep_working() {
    let server = start(app(), settings(10_000, 10_000, 5, 3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from("127.0.0.2", server.addr).await;
        assert!(request(&mut c, "/").await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    // The fourth from the same address: closed at once.
    let mut refused = connect_from("127.0.0.2", server.addr).await;
    assert!(closed_within(&mut refused, Duration::from_secs(5)).await);
    // Another address has its own allowance, up to the total.
    for _ in 0..2 {
        let mut c = connect_from("127.0.0.3", server.addr).await;
        assert!(request(&mut c, "/").await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let mut over_total = connect_from("127.0.0.4", server.addr).await;
    assert!(closed_within(&mut over_total, Duration::from_secs(5)).await);
    // Those already open keep working.
    for c in &mut held {
        assert!(request(c, "/").await.starts_with("HTTP/1.1 200"));
    }
    // A closed one makes room.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = connect_from("127.0.0.4", server.addr).await;
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        if matches!(c.read(&mut buf).await, Ok(n) if n > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection's place was not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish_then_closes_the_rest() {
    let mut server = start(app(), settings(10_000, 10_000, 100, 100)).await;
    let mut slow = connect_from("127.0.0.1", server.addr).await;
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut idle = connect_from("127.0.0.1", server.addr).await;
    assert!(request(&mut idle, "/").await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.take().unwrap().send(()).unwrap();
    // The idle connection is closed at once; the slow request is answered.
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    let mut response = String::new();
    slow.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("slow"),
        "{response}"
    );
    tokio::time::timeout(Duration::from_secs(5), server.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no longer accepting"
    );

    // A request outlasting the shutdown timeout is cut.
    let mut s = settings(10_000, 10_000, 100, 100);
    s.shutdown_timeout = Duration::from_millis(200);
    let mut server = start(app(), s).await;
    let mut slow = connect_from("127.0.0.1", server.addr).await;
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut response = String::new();
    let _ = slow.read_to_string(&mut response).await;
    assert!(response.is_empty(), "{response}");
}

#[tokio::test]
async fn a_streaming_body_is_in_flight_until_it_ends() {
    // The idle timeout is shorter than the stream: a response still being sent is not idle.
    let server = start(app(), settings(300, 300, 100, 100)).await;
    let mut c = connect_from("127.0.0.1", server.addr).await;
    c.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while !seen.contains("chunk3") {
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed mid-stream: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // Then idle: closed.
    assert!(closed_within(&mut c, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn the_request_timeout_answers_503_spares_streams_and_lets_the_handler_finish() {
    let db = coffer_testkit::fresh_sqlite().await.unwrap();
    let state = AppState {
        engine: coffer_testkit::fixtures::bsc_shop_engine_now(&db),
        metrics: coffer_api::metrics_handle(),
    };
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let api: Router<AppState> = app_routes().route(
        "/slow-write",
        get(move || async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            done.store(true, Ordering::SeqCst);
            "written"
        }),
    );
    let settings = HttpSettings {
        request_timeout: Some(Duration::from_millis(200)),
        ..HttpSettings::default()
    };
    let app = coffer_api::router(state, &settings, api);
    let base = coffer_testkit::fixtures::serve(app).await;
    let http = coffer_testkit::http_client();
    let r = http.get(format!("{base}/slow-write")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert!(!finished.load(Ordering::SeqCst));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !finished.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the handler was cut off");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A stream runs past the timeout: only its head is timed.
    let r = http.get(format!("{base}/stream")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "chunk0\nchunk1\nchunk2\nchunk3\n");
}
