//! Pushed checkout updates through the real `coffer` binary and a real anvil: thousands of
//! idle live-update streams (`/pay/{token}/events`, spread over many orders and client
//! addresses, caps raised in config) cost almost no CPU — no stream reads or renders while
//! nothing happens — and a payment reaches every stream of its order. SQLite and PostgreSQL;
//! loopback only, every wait bounded, the server stopped by pid.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
#![allow(clippy::float_arithmetic)] // CPU shares and seconds, not money

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use coffer_chain_evm::testtools::Anvil;
use coffer_chain_evm::testtools::devchain::DevChain;
use coffer_testkit::{TestDb, both_backends};
use common::{XPUB, coffer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ORDERS: usize = 100;
const STREAMS_PER_ORDER: usize = 50;
/// Client addresses 127.0.0.2 … (every address in 127.0.0.0/8 reaches loopback).
const CLIENTS: usize = 50;
/// What all the idle streams together may cost, in cores.
const IDLE_BUDGET: f64 = 0.05;

fn serve(cmd: std::process::Command) -> (Child, SocketAddr) {
    let mut cmd = cmd;
    let mut child = cmd
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"listening\"") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a \"listening\" line");
    let log: Value = serde_json::from_str(&line).unwrap();
    (child, log["address"].as_str().unwrap().parse().unwrap())
}

/// The server, killed if the test fails before stopping it.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU seconds the process has used (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz: f64 = String::from_utf8(
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    ticks / hz
}

/// Cores used by `pid` over `window`.
async fn cores(pid: u32, window: Duration) -> f64 {
    let before = cpu_seconds(pid);
    tokio::time::sleep(window).await;
    (cpu_seconds(pid) - before) / window.as_secs_f64()
}

/// A live-update stream of `token` from `local`: connected, its head and first event read.
async fn open_stream(local: String, server: SocketAddr, token: String) -> (TcpStream, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let mut conn = tokio::time::timeout(Duration::from_secs(10), socket.connect(server))
        .await
        .unwrap()
        .unwrap();
    conn.write_all(format!("GET /pay/{token}/events HTTP/1.1\r\nHost: shop\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let text = read_until(&mut conn, String::new(), "\n\n", Duration::from_secs(20)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    (conn, text)
}

/// Read from `conn` onto `text` until it contains `needle` after what it had, or panic.
async fn read_until(
    conn: &mut TcpStream,
    mut text: String,
    needle: &str,
    within: Duration,
) -> String {
    let from = text.len();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    while !text[from..].contains(needle) {
        let n = tokio::time::timeout_at(deadline, conn.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within {within:?}; got {text:?}"))
            .unwrap();
        assert!(n > 0, "stream closed; got {text:?}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text
}

async fn idle_streams_cost_nothing_and_a_payment_reaches_them_all(db: &TestDb) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("coffer.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n\n[http]\npublic_rate_limit_per_minute = 0\nmax_connections_per_client = 1000\n\n[checkout]\nmax_streams_per_order = {STREAMS_PER_ORDER}\nmax_streams_per_client = 1000\n\n[[chains]]\nid = \"anvil\"\nkind = \"evm\"\nnetwork = \"regtest\"\nchain_id = 31337\nrpc = [\"{}\"]\nconfirmations = 1\npoll_interval = \"1s\"\nnative = {{ symbol = \"ETH\", decimals = 18 }}\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"{}\"\ndecimals = 6\n",
            anvil.url(),
            usdt.to_checksum(None)
        ),
    )
    .unwrap();
    let out = coffer(&cfg, db)
        .args(["merchant", "create", "--name", "Stream shop", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let merchant = created["merchant_id"].as_str().unwrap();
    let out = coffer(&cfg, db)
        .args([
            "wallet",
            "set",
            "--merchant",
            merchant,
            "--chain",
            "anvil",
            "--xpub",
            XPUB,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (server, addr) = serve(coffer(&cfg, db));
    let mut server = KillOnDrop(Some(server));
    let pid = server.0.as_ref().unwrap().id();
    let http = reqwest::Client::new();
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        let r = http
            .post(format!("http://{addr}/api/v1/orders"))
            .bearer_auth(&key)
            .json(&json!({
                "amount": format!("{}.00", 5 + i),
                "currency": "USD",
                "asset": "anvil:USDT",
                "fixed_stablecoin_rate": true,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        orders.push(r.json::<Value>().await.unwrap());
    }
    let token = |o: &Value| {
        o["checkout_url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let idle_before = cores(pid, Duration::from_secs(10)).await;

    // Open every stream, 50 at a time; each answers with the order's state at once.
    let started = Instant::now();
    let mut streams: Vec<(usize, TcpStream, String)> = Vec::new();
    let plan: Vec<(usize, String)> = (0..ORDERS * STREAMS_PER_ORDER)
        .map(|n| (n % ORDERS, format!("127.0.0.{}", 2 + n % CLIENTS)))
        .collect();
    for chunk in plan.chunks(50) {
        let mut opening = tokio::task::JoinSet::new();
        for (o, local) in chunk {
            let (o, local, token) = (*o, local.clone(), token(&orders[*o]));
            opening.spawn(async move {
                let (conn, text) = open_stream(local, addr, token).await;
                (o, conn, text)
            });
        }
        streams.extend(opening.join_all().await);
        if streams.len().is_multiple_of(1000) {
            eprintln!(
                "{} streams open after {:.1} s",
                streams.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    for (_, _, text) in &streams {
        assert!(text.contains("event: status"), "{text}");
    }
    eprintln!(
        "{} streams open in {:.1} s",
        streams.len(),
        started.elapsed().as_secs_f64()
    );

    // Idle: nothing changes, nothing is read or rendered.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_with_streams = cores(pid, Duration::from_secs(10)).await;
    eprintln!(
        "server CPU: {idle_before:.4} cores without streams, {idle_with_streams:.4} with {} idle streams",
        streams.len()
    );
    assert!(
        idle_with_streams - idle_before < IDLE_BUDGET,
        "{} idle streams cost {:.4} cores (budget {IDLE_BUDGET})",
        streams.len(),
        idle_with_streams - idle_before
    );

    // Pay order 0 in full; every one of its streams hears it, the others hear nothing.
    let target = &orders[0]["payment"];
    let paid_at = Instant::now();
    chain
        .pay_token(
            usdt,
            target["address"].as_str().unwrap(),
            target["amount_due_base_units"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    chain.mine(1).await.unwrap();
    let mut latencies = Vec::new();
    let mut others = Vec::new();
    for (o, mut conn, text) in streams {
        if o == 0 {
            let text = read_until(&mut conn, text, "event: status", Duration::from_secs(30)).await;
            assert!(
                text.contains("\"settled\"") || text.contains("\"processing\""),
                "{text}"
            );
            latencies.push(paid_at.elapsed());
        } else {
            others.push((conn, text));
        }
    }
    assert_eq!(latencies.len(), STREAMS_PER_ORDER);
    eprintln!(
        "payment mined → event on all {} streams of its order: {:.2} s (1 s poll interval)",
        latencies.len(),
        latencies.iter().max().unwrap().as_secs_f64()
    );
    // Other orders' streams got no event (keep-alive comments and chunk framing may come).
    for (conn, _) in others.iter_mut().step_by(97) {
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), conn.read(&mut buf)).await
        {
            let got = String::from_utf8_lossy(&buf[..n]);
            assert!(
                !got.contains("event:"),
                "another order's stream got {got:?}"
            );
        }
    }
    drop(others);

    let mut child = server.0.take().unwrap();
    let code =
        tokio::task::spawn_blocking(move || common::sigterm(&mut child, Duration::from_secs(40)))
            .await
            .unwrap();
    assert_eq!(code, Some(0), "streams end at shutdown");
}

both_backends! {
    idle_streams_cost_nothing_and_a_payment_reaches_them_all => idle_streams_cost_nothing_and_a_payment_reaches_them_all;
}
