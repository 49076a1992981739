//! edge-bench: what idle connections and idle checkout streams cost the real `coffer serve`
//! binary (issue 23), on loopback.
//!
//! Starts `coffer serve` (SQLite, fresh directory, caps raised so that the load fits), then,
//! in one run:
//! - server CPU (utime + stime from /proc) with nothing open;
//! - order creation (`POST /api/v1/orders`, no asset chosen) at concurrency C, alone;
//! - with N idle kept-alive connections open (each sent one request): CPU, then the rate;
//! - with N idle live-update streams open (`/pay/{token}/events`, spread over 10 orders):
//!   CPU, then the rate;
//! - the rate alone again (the drift of the machine during the run).
//!
//! ```text
//! cargo build --release -p coffer -p coffer-bench
//! target/release/edge-bench --coffer target/release/coffer --idle 1000 --concurrency 16
//! ```

#![allow(clippy::float_arithmetic)] // rates and cores for people to read, not money

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use coffer_bench::product::{
    EVM_XPUB, Product, cpu_seconds, exchange, load_average, post_json, tempdir,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

#[derive(Parser)]
struct Args {
    /// The `coffer` binary (a release build).
    #[arg(long, default_value = "target/release/coffer")]
    coffer: PathBuf,
    /// Idle connections, then idle streams, held open beside the load.
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// Concurrent order-creating clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds per rate measurement.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Seconds per CPU measurement.
    #[arg(long, default_value_t = 10)]
    cpu_seconds: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempdir("edge")?;
    // A chain (BSC from the catalogue, no node) the merchant gets a wallet on: orders
    // nobody could pay are refused.
    let product = Product::new(&args.coffer, &dir, "[[chains]]\nid = \"bsc\"\n", None)?;
    let (_, key) = product.merchant(&[("bsc", EVM_XPUB)])?;
    let (mut child, addr) = product.serve(&[])?;
    let pid = child.id();
    let result = run(&args, pid, addr, &key).await;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(args: &Args, pid: u32, addr: std::net::SocketAddr, key: &str) -> Result<()> {
    println!(
        "edge-bench: coffer pid {pid} on {addr}; idle {} ; concurrency {} ; {} s per rate, {} s per CPU sample; load average {}",
        args.idle,
        args.concurrency,
        args.seconds,
        args.cpu_seconds,
        load_average()
    );
    let cpu_window = Duration::from_secs(args.cpu_seconds);
    let rate_window = Duration::from_secs(args.seconds);
    // Warm up: the database and the server's caches.
    create_orders(addr, key, args.concurrency, Duration::from_secs(3)).await?;

    let idle_cpu = cpu(pid, cpu_window).await?;
    println!("cpu, nothing open:                    {idle_cpu:.3} cores");
    let alone = create_orders(addr, key, args.concurrency, rate_window).await?;
    println!("orders/s alone:                       {alone:.0}");

    let conns = idle_connections(addr, args.idle).await?;
    let conn_cpu = cpu(pid, cpu_window).await?;
    println!(
        "cpu, {} idle connections:            {conn_cpu:.3} cores",
        conns.len()
    );
    let beside_conns = create_orders(addr, key, args.concurrency, rate_window).await?;
    println!(
        "orders/s beside {} idle connections: {beside_conns:.0} (ratio {:.2})",
        conns.len(),
        beside_conns / alone
    );
    drop(conns);

    let tokens = orders(addr, key, 10).await?;
    let streams = idle_streams(addr, &tokens, args.idle).await?;
    let stream_cpu = cpu(pid, cpu_window).await?;
    println!(
        "cpu, {} idle streams:                {stream_cpu:.3} cores",
        streams.len()
    );
    let beside_streams = create_orders(addr, key, args.concurrency, rate_window).await?;
    println!(
        "orders/s beside {} idle streams:     {beside_streams:.0} (ratio {:.2})",
        streams.len(),
        beside_streams / alone
    );
    drop(streams);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let again = create_orders(addr, key, args.concurrency, rate_window).await?;
    println!(
        "orders/s alone again:                 {again:.0} (ratio to the first {:.2})",
        again / alone
    );
    Ok(())
}

/// Cores the server used over `window` (nothing else driven meanwhile).
async fn cpu(pid: u32, window: Duration) -> Result<f64> {
    let before = cpu_seconds(pid)?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    Ok((cpu_seconds(pid)? - before) / started.elapsed().as_secs_f64())
}

fn order_request(key: &str) -> Vec<u8> {
    post_json(
        "/api/v1/orders",
        key,
        r#"{"amount":"25.00","currency":"USD"}"#,
    )
}

/// Orders per second created by `concurrency` kept-alive clients over `window`.
async fn create_orders(
    addr: std::net::SocketAddr,
    key: &str,
    concurrency: usize,
    window: Duration,
) -> Result<f64> {
    let created = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let request = Arc::new(order_request(key));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (created, stop, request) = (created.clone(), stop.clone(), request.clone());
        tasks.spawn(async move {
            let mut conn = BufReader::new(TcpStream::connect(addr).await?);
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = exchange(&mut conn, &request).await?;
                if status != 201 {
                    bail!(
                        "order creation answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                created.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let n = created.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(n as f64 / elapsed)
}

/// The checkout tokens of `n` new orders.
async fn orders(addr: std::net::SocketAddr, key: &str, n: usize) -> Result<Vec<String>> {
    let mut conn = BufReader::new(TcpStream::connect(addr).await?);
    let mut tokens = Vec::new();
    for _ in 0..n {
        let (status, body) = exchange(&mut conn, &order_request(key)).await?;
        if status != 201 {
            bail!("order creation answered {status}");
        }
        let order: serde_json::Value = serde_json::from_slice(&body)?;
        let url = order["checkout_url"].as_str().context("checkout_url")?;
        tokens.push(url.rsplit('/').next().context("token")?.to_owned());
    }
    Ok(tokens)
}

/// A connection from 127.0.0.x, spreading the benchmark's sockets over source addresses
/// (each has its own range of ports).
async fn connect(addr: std::net::SocketAddr, i: usize) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("127.0.{}.{}:0", 1 + i / 250, 1 + i % 250).parse()?)?;
    Ok(socket.connect(addr).await?)
}

/// `n` kept-alive connections that each made one request and then went quiet.
async fn idle_connections(
    addr: std::net::SocketAddr,
    n: usize,
) -> Result<Vec<BufReader<TcpStream>>> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut conn = BufReader::new(connect(addr, i).await?);
        let (status, _) =
            exchange(&mut conn, b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n").await?;
        if status != 200 {
            bail!("healthz answered {status}");
        }
        conns.push(conn);
    }
    Ok(conns)
}

/// `n` live-update streams over `tokens`, each past its first event and then left alone.
async fn idle_streams(
    addr: std::net::SocketAddr,
    tokens: &[String],
    n: usize,
) -> Result<Vec<TcpStream>> {
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let mut conn = connect(addr, i).await?;
        let token = &tokens[i % tokens.len()];
        conn.write_all(
            format!("GET /pay/{token}/events HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = vec![0u8; 8192];
        let mut got = String::new();
        while !got.contains("event: status") {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                bail!("stream closed: {got}");
            }
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        if !got.starts_with("HTTP/1.1 200") {
            bail!("stream refused: {got}");
        }
        streams.push(conn);
    }
    Ok(streams)
}
