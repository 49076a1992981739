//! The public edge of the real `coffer serve` binary under hostile traffic, on loopback only
//! (every address in 127.0.0.0/8 reaches it, so "another client" is another 127.x address):
//! a flood of half-sent and idle connections under a 1,024 open-file limit, the per-client
//! request limit and forwarding headers, oversized and smuggled requests, stream caps, and
//! TLS reloaded on SIGHUP. Servers are stopped by pid; every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use common::BIN;

struct Server {
    child: Child,
    addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// `coffer serve` on SQLite in a fresh directory, JSON logs, on a free port; with
    /// `open_files`, under that open-file limit (soft and hard, set by `prlimit`).
    fn start(env: &[(&str, &str)], open_files: Option<u32>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, env, open_files)
    }

    fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)], open_files: Option<u32>) -> Server {
        let mut cmd = match open_files {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        for (key, _) in std::env::vars() {
            if key.starts_with("COFFER_") {
                cmd.env_remove(key);
            }
        }
        // A chain from `admin_key`'s configuration, so orders can be paid (and created).
        let config = dir.path().join("coffer.toml");
        if config.exists() {
            cmd.env("COFFER_CONFIG", &config);
        }
        cmd.arg("serve")
            .env("COFFER_DATA_DIR", dir.path())
            .env("COFFER_LISTEN", "127.0.0.1:0")
            .env("COFFER_LOG_FORMAT", "json")
            .env("COFFER_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Reaped in `stop` or `Drop`.
        #[allow(clippy::zombie_processes)]
        let mut child = cmd.spawn().expect("spawn coffer serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("\"listening\"") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no \"listening\" line; logs: {:?}", logs.lock().unwrap()));
        let log: Value = serde_json::from_str(&line).unwrap();
        let addr = log["address"].as_str().unwrap().parse().unwrap();
        Server {
            child,
            addr,
            logs,
            _dir: dir,
        }
    }

    fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// SIGTERM by pid, then wait (bounded) for a clean exit.
    fn stop(mut self) -> Option<i32> {
        common::sigterm(&mut self.child, Duration::from_secs(40))
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect_from(local: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{local}:0").parse().unwrap())?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(server))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Write `raw` and read one response head (and what came with it), up to `within`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
    raw: &str,
    within: Duration,
) -> String {
    conn.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    let end = Instant::now() + within;
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: coffer\r\n\r\n")
}

/// Read everything until the server closes (bounded).
async fn read_all(conn: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, conn.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A reqwest client whose connections come from `local`.
fn client_from(local: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_flooding_half_sent_and_idle_connections_leaves_room_for_everyone_else() {
    // The test holds the flood's 4,000 sockets itself.
    rlimit::increase_nofile_limit(8_192).unwrap();
    let server = tokio::task::spawn_blocking(|| {
        Server::start(&[("COFFER_HTTP__HEADER_READ_TIMEOUT", "3s")], Some(1_024))
    })
    .await
    .unwrap();
    let logs = server.log_lines();
    assert!(
        logs.iter().any(|l| l.contains("open-file limit is low") && l.contains("\"open_file_limit\":1024")),
        "the low limit is named: {logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("lowered to fit the open-file limit")
                && l.contains("\"max_connections\":768")),
        "{logs:?}"
    );
    // A shop's kept-alive connection from the attacker's address, opened before the flood.
    let mut early = connect_from("127.0.0.2", server.addr).await.unwrap();
    assert!(
        exchange(&mut early, &get("/healthz"), Duration::from_secs(5))
            .await
            .starts_with("HTTP/1.1 200")
    );

    let mut flood = Vec::with_capacity(4_000);
    let mut failed = 0;
    for i in 0..4_000 {
        match connect_from("127.0.0.2", server.addr).await {
            Ok(mut conn) => {
                if i < 2_000 {
                    // Half a request, then nothing (a refused socket may be closed already).
                    let _ = conn
                        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                        .await;
                }
                flood.push(conn);
            }
            Err(_) => failed += 1,
        }
    }
    assert!(
        flood.len() >= 3_000,
        "the flood reached the server: {} connected, {failed} failed",
        flood.len()
    );
    let flood_done = Instant::now();

    // Everyone else is still served, at once: health, the API, a checkout.
    for (from, path, status) in [
        ("127.0.0.3", "/healthz", "200"),
        ("127.0.0.4", "/api/v1/orders", "401"),
        (
            "127.0.0.5",
            "/pay/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/status",
            "404",
        ),
    ] {
        let started = Instant::now();
        let mut conn = connect_from(from, server.addr).await.unwrap();
        let head = exchange(&mut conn, &get(path), Duration::from_secs(1)).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{path} from {from} within 1 s: {head:?} after {:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path}: {:?}",
            started.elapsed()
        );
    }
    // The connection opened before the flood keeps working.
    assert!(
        exchange(&mut early, &get("/healthz"), Duration::from_secs(5))
            .await
            .starts_with("HTTP/1.1 200")
    );

    // The held ones are let go: refused at once by the per-client cap, or closed by the
    // header timeout (3 s here).
    let mut readers = tokio::task::JoinSet::new();
    for mut conn in flood {
        readers.spawn(async move {
            let mut buf = [0u8; 256];
            loop {
                match tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(_)) => continue,
                    Err(_) => return false,
                }
            }
        });
    }
    let mut still_open = 0;
    while let Some(closed) = readers.join_next().await {
        still_open += usize::from(!closed.unwrap());
    }
    assert_eq!(still_open, 0, "connections the server never let go");
    assert!(flood_done.elapsed() < Duration::from_secs(20));

    let http = client_from("127.0.0.3");
    let metrics = http
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = metric(
        &metrics,
        "coffer_http_connections_refused_total{reason=\"per_client\"}",
    );
    let timed_out = metric(
        &metrics,
        "coffer_http_connections_timed_out_total{phase=\"header\"}",
    );
    assert!(refused >= 3_000.0, "refused at once: {refused}\n{metrics}");
    assert!(
        timed_out >= 200.0,
        "closed by the header timeout: {timed_out}"
    );
    let logs = server.log_lines();
    assert!(
        !logs.iter().any(|l| l.contains("accept failed")),
        "the process never ran out of files: {:?}",
        logs.iter()
            .filter(|l| l.contains("accept"))
            .collect::<Vec<_>>()
    );
    drop(early);
    let code = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

const ABSENT: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Requests until the first 429: how many got through, and the 429.
async fn until_limited(
    http: &reqwest::Client,
    url: &str,
    forwarded_for: impl Fn(usize) -> Option<String>,
    at_most: usize,
) -> (usize, Option<reqwest::Response>) {
    for i in 0..at_most {
        let mut req = http.get(url);
        if let Some(xff) = forwarded_for(i) {
            req = req.header("x-forwarded-for", xff);
        }
        let r = req.send().await.unwrap();
        if r.status() == 429 {
            return (i, Some(r));
        }
        assert_eq!(r.status(), 404, "an unknown checkout");
    }
    (at_most, None)
}

#[tokio::test]
async fn the_per_client_limit_refuses_one_address_serves_another_and_believes_only_trusted_proxies()
{
    let server = tokio::task::spawn_blocking(|| {
        Server::start(
            &[
                ("COFFER_HTTP__PUBLIC_RATE_LIMIT_PER_MINUTE", "20"),
                ("COFFER_HTTP__LOGIN_RATE_LIMIT_PER_MINUTE", "2"),
                ("COFFER_HTTP__TRUSTED_PROXIES", "[\"127.0.0.5\"]"),
            ],
            None,
        )
    })
    .await
    .unwrap();
    let url = format!("http://{}/pay/{ABSENT}/status", server.addr);

    // 127.0.0.2 is not a trusted proxy: its X-Forwarded-For, new every time, is ignored.
    let attacker = client_from("127.0.0.2");
    let (served, limited) = until_limited(
        &attacker,
        &url,
        |i| Some(format!("198.51.100.{}", i % 250)),
        40,
    )
    .await;
    let limited = limited.expect("the forged header did not buy more requests");
    assert!(
        (20..=23).contains(&served),
        "a minute's burst of 20, then 429 (got {served})"
    );
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "Retry-After {wait}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // …while another address is served.
    let other = client_from("127.0.0.3");
    assert_eq!(other.get(&url).send().await.unwrap().status(), 404);

    // Behind the trusted proxy 127.0.0.5, each forwarded client has its own allowance.
    let proxy = client_from("127.0.0.5");
    let (served, limited) = until_limited(&proxy, &url, |_| Some("203.0.113.7".into()), 40).await;
    assert!(limited.is_some() && (20..=23).contains(&served), "{served}");
    let r = proxy
        .get(&url)
        .header("x-forwarded-for", "203.0.113.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "another client behind the same proxy");
    // What the client wrote before the proxy's hop is not believed: the hop the proxy
    // vouches for (127.0.0.2, already limited) is the client.
    let r = proxy
        .get(&url)
        .header("x-forwarded-for", "203.0.113.9, 127.0.0.2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    // The password login has its own, tighter allowance, answered in Aurpay's envelope.
    let shop = client_from("127.0.0.4");
    let login = format!("http://{}/api/plugin/key/aurpay", server.addr);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = shop
            .post(&login)
            .json(&serde_json::json!({"username": "nobody", "password": "wrong-password"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], 429, "Aurpay's envelope: {body}");
        }
    }
    assert!(
        statuses[..2].iter().all(|s| *s != 429) && statuses[2..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    // So has the console's sign-in (each attempt costs an Argon2 hash), per address.
    let console = client_from("127.0.0.6");
    let sign_in = format!("http://{}/console/login", server.addr);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = console
            .post(&sign_in)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=nobody&password=wrong-password")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses[..2].iter().all(|s| *s != 429) && statuses[2..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    let code = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn oversized_and_smuggled_requests_are_still_refused() {
    let server = tokio::task::spawn_blocking(|| Server::start(&[], None))
        .await
        .unwrap();
    let t = Duration::from_secs(10);
    // A 1 MiB header, a 1 MiB path: 431.
    let big = "a".repeat(1 << 20);
    let mut c = connect_from("127.0.0.1", server.addr).await.unwrap();
    let head = exchange(
        &mut c,
        &format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
        t,
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head:.80}");
    let mut c = connect_from("127.0.0.1", server.addr).await.unwrap();
    let head = exchange(
        &mut c,
        &format!("GET /{big} HTTP/1.1\r\nHost: x\r\n\r\n"),
        t,
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head:.80}");
    // A body declared larger than the limit: 413 before it is sent.
    let mut c = connect_from("127.0.0.1", server.addr).await.unwrap();
    let head = exchange(
        &mut c,
        "POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        t,
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head:.200}");
    // Content-Length and Transfer-Encoding together: the chunked body ends at "0", the
    // connection closes after one answer, and the request hidden behind it is never run.
    for headers in [
        "Content-Length: 4\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 4",
    ] {
        let mut c = connect_from("127.0.0.1", server.addr).await.unwrap();
        c.write_all(
            format!("POST /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let all = read_all(&mut c, t).await;
        assert_eq!(
            all.matches("HTTP/1.1 ").count(),
            1,
            "one answer only: {all}"
        );
        assert!(!all.contains("\"ready\""), "{all}");
    }
    // Transfer-Encoding that is not chunked: 400.
    let mut c = connect_from("127.0.0.1", server.addr).await.unwrap();
    let head = exchange(
        &mut c,
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
        t,
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    // Deeply nested JSON: a clean client error, not a crash.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = client_from("127.0.0.1")
        .post(format!("http://{}/api/plugin/key/aurpay", server.addr))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":{nested}}}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Still serving.
    let mut c = connect_from("127.0.0.1", server.addr).await.unwrap();
    assert!(
        exchange(&mut c, &get("/healthz"), t)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let code = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

/// `coffer merchant create` in the server's data directory, with a wallet on a configured
/// chain (BSC from the catalogue, no node: orders nobody could pay are refused): its admin
/// API key.
fn admin_key(dir: &Path) -> String {
    let config = dir.join("coffer.toml");
    std::fs::write(&config, "[[chains]]\nid = \"bsc\"\n").unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("COFFER_") {
                cmd.env_remove(key);
            }
        }
        let out = cmd
            .args(args)
            .env("COFFER_DATA_DIR", dir)
            .env("COFFER_CONFIG", &config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let out = cli(&["merchant", "create", "--name", "Edge shop", "--json"]);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let merchant = v["merchant_id"].as_str().unwrap();
    cli(&[
        "wallet",
        "set",
        "--merchant",
        merchant,
        "--chain",
        "bsc",
        "--xpub",
        common::XPUB,
    ]);
    v["api_key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn live_update_streams_are_capped_per_order_and_per_client() {
    let dir = tempfile::tempdir().unwrap();
    let key = admin_key(dir.path());
    let server = tokio::task::spawn_blocking(move || {
        Server::start_in(
            dir,
            &[
                ("COFFER_CHECKOUT__MAX_STREAMS_PER_ORDER", "2"),
                ("COFFER_CHECKOUT__MAX_STREAMS_PER_CLIENT", "3"),
            ],
            None,
        )
    })
    .await
    .unwrap();
    let http = client_from("127.0.0.1");
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let r = http
            .post(format!("http://{}/api/v1/orders", server.addr))
            .bearer_auth(&key)
            .json(&serde_json::json!({"amount": "10.00", "currency": "USD"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let order: Value = r.json().await.unwrap();
        let url = order["checkout_url"].as_str().unwrap();
        tokens.push(url.rsplit('/').next().unwrap().to_owned());
    }
    let t = Duration::from_secs(10);
    let open = |from: &'static str, token: String| {
        let addr = server.addr;
        async move {
            let mut c = connect_from(from, addr).await.unwrap();
            let head = exchange(&mut c, &get(&format!("/pay/{token}/events")), t).await;
            (c, head)
        }
    };
    let (a1, head) = open("127.0.0.2", tokens[0].clone()).await;
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("text/event-stream"),
        "{head}"
    );
    let (_a2, head) = open("127.0.0.3", tokens[0].clone()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // A third stream of the same order, from anywhere: 429.
    let (_, head) = open("127.0.0.4", tokens[0].clone()).await;
    assert!(
        head.starts_with("HTTP/1.1 429") && head.contains("too_many_streams"),
        "{head}"
    );
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    // 127.0.0.2 opens two more of other orders (three in all), then no more.
    let (_b1, head) = open("127.0.0.2", tokens[1].clone()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_c1, head) = open("127.0.0.2", tokens[2].clone()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, head) = open("127.0.0.2", tokens[2].clone()).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    // A stream that ends frees its place.
    drop(a1);
    let deadline = Instant::now() + t;
    loop {
        let (_c, head) = open("127.0.0.2", tokens[0].clone()).await;
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream kept its place: {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "streams end at shutdown");
}

/// A self-signed certificate for 127.0.0.1 and its key (PEM), made by the openssl CLI.
fn self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn trusting(cert: &Path) -> tokio_rustls::TlsConnector {
    let _ = rustls::crypto::ring::default_provider().install_default();
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(cert).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every connection sees the server's certificate (a resumed session would not).
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    connector.connect(name, tcp).await
}

#[tokio::test]
async fn https_from_pem_files_reloaded_on_sighup_without_dropping_connections() {
    let certs = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = self_signed(certs.path(), "first");
    let (cert_b, key_b) = self_signed(certs.path(), "second");
    let cert = certs.path().join("live.crt");
    let key = certs.path().join("live.key");
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let server = tokio::task::spawn_blocking(move || {
        Server::start(
            &[
                ("COFFER_HTTP__TLS_CERT_FILE", &c),
                ("COFFER_HTTP__TLS_KEY_FILE", &k),
            ],
            None,
        )
    })
    .await
    .unwrap();
    let t = Duration::from_secs(10);
    let (first, second) = (trusting(&cert_a), trusting(&cert_b));
    let mut kept = tls_connect(&first, server.addr).await.unwrap();
    assert!(
        exchange(&mut kept, &get("/healthz"), t)
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        tls_connect(&second, server.addr).await.is_err(),
        "not the second certificate yet"
    );
    // Plain HTTP on the TLS port gets nothing served.
    let mut plain = connect_from("127.0.0.1", server.addr).await.unwrap();
    assert!(
        !exchange(&mut plain, &get("/healthz"), t)
            .await
            .contains("200 OK")
    );

    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + t;
    while !server
        .log_lines()
        .iter()
        .any(|l| l.contains("TLS certificate reloaded"))
    {
        assert!(
            Instant::now() < deadline,
            "no reload logged: {:?}",
            server.log_lines()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New connections get the new certificate; the open one goes on with the old.
    let mut fresh = tls_connect(&second, server.addr).await.unwrap();
    assert!(
        exchange(&mut fresh, &get("/healthz"), t)
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(tls_connect(&first, server.addr).await.is_err());
    assert!(
        exchange(&mut kept, &get("/healthz"), t)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // A broken file on the next SIGHUP: refused, the current pair stays.
    std::fs::write(&key, "not a key").unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + t;
    while !server
        .log_lines()
        .iter()
        .any(|l| l.contains("TLS certificate not reloaded"))
    {
        assert!(Instant::now() < deadline, "no refusal logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut again = tls_connect(&second, server.addr).await.unwrap();
    assert!(
        exchange(&mut again, &get("/healthz"), t)
            .await
            .starts_with("HTTP/1.1 200")
    );
    drop((kept, fresh, again));
    let code = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}
