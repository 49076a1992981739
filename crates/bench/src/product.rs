//! The product under measurement: `coffer` commands and `coffer serve` from a given binary,
//! and what `/proc` says about the server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Account xpub (m/44'/60'/0') of the test mnemonic ("test test … junk"), for the bench
/// merchant's EVM wallet.
pub const EVM_XPUB: &str = "xpub6BemYiVNp19ZzUSZng6uUnx3dQm5eRwcjTjZh2wBRosHnSF4QNykc8MvSiJcUseh3sA1WL82iquWY2bRBv8Qqsn8ugJK63aLXKyPosCnGUv";

/// A fresh directory `target/bench-data/<prefix>-<random>`.
pub fn tempdir(prefix: &str) -> Result<PathBuf> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = PathBuf::from("target/bench-data").join(format!("{prefix}-{}", hex::encode(bytes)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// How to run the `coffer` binary: which one, its data directory, its config file and
/// (PostgreSQL) its database URL. No `COFFER_*` variable of the caller leaks in.
#[derive(Debug, Clone)]
pub struct Product {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub database_url: Option<String>,
}

impl Product {
    /// `config` is written into `dir/coffer.toml`.
    pub fn new(bin: &Path, dir: &Path, config: &str, database_url: Option<String>) -> Result<Self> {
        let path = dir.join("coffer.toml");
        std::fs::write(&path, config)?;
        Ok(Self {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            config: path,
            database_url,
        })
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("COFFER_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("COFFER_DATA_DIR", &self.dir)
            .env("COFFER_CONFIG", &self.config);
        if let Some(url) = &self.database_url {
            cmd.env("COFFER_DATABASE_URL", url);
        }
        cmd
    }

    /// `coffer merchant create` and `coffer wallet set` for each `(chain, xpub)`; the
    /// merchant's id and API key.
    pub fn merchant(&self, wallets: &[(&str, &str)]) -> Result<(String, String)> {
        let out = self
            .command()
            .args(["merchant", "create", "--name", "bench", "--json"])
            .output()
            .context("run coffer")?;
        if !out.status.success() {
            bail!("merchant create: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let merchant = v["merchant_id"].as_str().context("no merchant_id")?;
        for (chain, xpub) in wallets {
            let out = self
                .command()
                .args([
                    "wallet",
                    "set",
                    "--merchant",
                    merchant,
                    "--chain",
                    chain,
                    "--xpub",
                    xpub,
                ])
                .output()
                .context("run coffer")?;
            if !out.status.success() {
                bail!("wallet set: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let key = v["api_key"].as_str().context("no api_key")?;
        Ok((merchant.to_owned(), key.to_owned()))
    }

    /// `coffer serve` with the rate limits and connection caps out of the benchmark's way
    /// (plus `env`); its address once it listens. Log lines at `warn` and above are copied
    /// to `dir/serve.log`.
    pub fn serve(&self, env: &[(&str, &str)]) -> Result<(Child, std::net::SocketAddr)> {
        let mut cmd = self.command();
        cmd.arg("serve")
            .env("COFFER_LISTEN", "127.0.0.1:0")
            .env("COFFER_LOG_FORMAT", "json")
            .env("COFFER_LOG_LEVEL", "warn,coffer=info")
            .env("COFFER_API__RATE_LIMIT_PER_MINUTE", "0")
            .env("COFFER_HTTP__PUBLIC_RATE_LIMIT_PER_MINUTE", "0")
            .env("COFFER_HTTP__MAX_CONNECTIONS_PER_CLIENT", "100000")
            .env("COFFER_HTTP__IDLE_TIMEOUT", "1h")
            .env("COFFER_CHECKOUT__MAX_STREAMS_PER_ORDER", "100000")
            .env("COFFER_CHECKOUT__MAX_STREAMS_PER_CLIENT", "100000");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn coffer serve")?;
        let stderr = child.stderr.take().context("stderr")?;
        let log_path = self.dir.join("serve.log");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            let mut log = std::fs::File::create(log_path).ok();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("\"listening\"") {
                    let _ = tx.send(line.clone());
                }
                if let Some(log) = log.as_mut()
                    && !line.contains("\"INFO\"")
                {
                    let _ = writeln!(log, "{line}");
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .context("coffer serve did not start")?;
        let log: serde_json::Value = serde_json::from_str(&line)?;
        let addr = log["address"].as_str().context("no address")?.parse()?;
        Ok((child, addr))
    }
}

/// CPU seconds the process used (utime + stime).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks()?)
}

fn clock_ticks() -> Result<f64> {
    Ok(
        String::from_utf8(Command::new("getconf").arg("CLK_TCK").output()?.stdout)?
            .trim()
            .parse()?,
    )
}

/// The process's resident memory, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()?;
    Ok(kib * 1024)
}

/// The machine's 1-minute load average, as `/proc/loadavg` prints it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// Write one request, read one response; its status and body.
pub async fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8]) -> Result<(u16, Vec<u8>)> {
    conn.get_mut().write_all(request).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("status line")?
        .parse()?;
    let mut length = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).await?;
    Ok((status, body))
}

/// A kept-alive connection to `addr`.
pub async fn connect(addr: std::net::SocketAddr) -> Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// `POST path` with a JSON body and a bearer key, as bytes on the wire.
pub fn post_json(path: &str, key: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `GET path` with a bearer key (empty: none), as bytes on the wire.
pub fn get(path: &str, key: &str) -> Vec<u8> {
    if key.is_empty() {
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
    } else {
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n\r\n")
            .into_bytes()
    }
}

/// The value of an unlabelled-or-labelled gauge line `name{…} value` in Prometheus text.
pub fn metric(text: &str, name: &str, label: Option<&str>) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .find(|l| label.is_none_or(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
