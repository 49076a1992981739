//! Test support: the npm-installed foundry tools (`anvil`, `cast`) that the tests and the
//! benchmarks run for real. `scripts/test.sh` installs them (`tests/evm`, `npm ci`) and
//! exports `COFFER_TEST_ANVIL` / `COFFER_TEST_CAST`; without those variables the repository's
//! `tests/evm/node_modules` is searched.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0} not found: run scripts/test.sh (it installs it with npm) or set COFFER_{1}")]
    Missing(String, String),
    #[error("cannot start {0}: {1}")]
    Start(String, String),
}

/// Path of a foundry tool (`anvil`, `cast`).
pub fn tool(name: &str) -> PathBuf {
    try_tool(name).unwrap_or_else(|_| PathBuf::from(name))
}

pub fn try_tool(name: &str) -> Result<PathBuf, ToolError> {
    let var = format!("COFFER_TEST_{}", name.to_ascii_uppercase());
    if let Some(p) = std::env::var_os(&var) {
        return Ok(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(format!(
        "tests/evm/node_modules/@foundry-rs/{name}-linux-amd64/bin/{name}"
    ));
    if p.exists() {
        Ok(p)
    } else {
        Err(ToolError::Missing(name.into(), name.to_ascii_uppercase()))
    }
}

/// A free loopback port (bound and released: a small race other tests avoid by retrying).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A running anvil on loopback, killed (by pid) when dropped — and also when the test process
/// dies without unwinding (SIGKILL, a runner's timeout): anvil runs under a small `sh`
/// watchdog that holds the read end of a pipe whose write end only this process holds; when
/// it closes, for whatever reason, the watchdog kills anvil by its pid.
pub struct Anvil {
    /// The watchdog shell; it exits when anvil does.
    child: Child,
    anvil_pid: u32,
    pub port: u16,
    pub args: Vec<String>,
}

/// `sh -c WATCHDOG anvil ARGS…`: start anvil, print its pid, kill it when stdin reaches EOF,
/// exit with anvil's status once anvil exits.
const WATCHDOG: &str = r#"exec 3<&0
"$0" "$@" </dev/null &
a=$!
echo "anvil-pid $a"
(read -r _ <&3; kill -9 "$a" 2>/dev/null) &
w=$!
wait "$a"
s=$?
kill "$w" 2>/dev/null
exit "$s""#;

impl Anvil {
    fn spawn(
        extra: &[&str],
        args: &[&str],
    ) -> Result<
        (
            Self,
            std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
        ),
        ToolError,
    > {
        use std::io::BufRead;
        let bin = try_tool("anvil")?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(&bin)
            .args(["--host", "127.0.0.1"])
            .args(extra)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ToolError::Start(bin.display().to_string(), e.to_string()))?;
        let Some(stdout) = child.stdout.take() else {
            return Err(ToolError::Start("anvil".into(), "no stdout".into()));
        };
        let mut lines = std::io::BufReader::new(stdout).lines();
        let anvil_pid = lines.next().and_then(Result::ok).and_then(|l| {
            l.strip_prefix("anvil-pid ")
                .and_then(|p| p.trim().parse().ok())
        });
        let mut anvil = Anvil {
            child,
            anvil_pid: anvil_pid.unwrap_or(0),
            port: 0,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        };
        if anvil_pid.is_none() {
            anvil.kill();
            return Err(ToolError::Start("anvil".into(), "no pid reported".into()));
        }
        Ok((anvil, lines))
    }

    /// Start anvil on a port the OS picks (`--port 0`; no race between parallel tests) with
    /// `args` (e.g. `--state FILE`); returns once it listens.
    pub fn start(args: &[&str]) -> Result<Self, ToolError> {
        let (mut anvil, mut lines) = Self::spawn(&["--port", "0"], args)?;
        let mut port = None;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.trim().strip_prefix("Listening on ") {
                port = rest
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim().parse::<u16>().ok());
                break;
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        match port {
            Some(p) => {
                anvil.port = p;
                Ok(anvil)
            }
            None => {
                anvil.kill();
                Err(ToolError::Start(
                    "anvil".into(),
                    "did not report its port".into(),
                ))
            }
        }
    }

    /// Start anvil on a given port (e.g. again where a stopped one was).
    pub fn start_on(port: u16, args: &[&str]) -> Result<Self, ToolError> {
        let port_s = port.to_string();
        let (mut anvil, lines) = Self::spawn(&["--port", &port_s, "--silent"], args)?;
        std::thread::spawn(move || for _ in lines {});
        anvil.port = port;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(anvil);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anvil.kill();
        Err(ToolError::Start(
            "anvil".into(),
            "did not listen within 20 s".into(),
        ))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// anvil's own pid.
    pub fn pid(&self) -> u32 {
        self.anvil_pid
    }

    /// Stop it now (SIGKILL by pid, from the watchdog) and wait.
    pub fn kill(&mut self) {
        // Closing the pipe makes the watchdog kill anvil; it exits once anvil is gone.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }

    /// Stop it gracefully (SIGTERM by pid, so `--dump-state` is written) and wait.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.anvil_pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                drop(self.child.stdin.take());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A dev chain driven over JSON-RPC with anvil's unlocked default account: deploy the test
/// token (tests/evm/contracts/TestToken.json), pay, mine. For tests and benchmarks of crates
/// that must not depend on alloy themselves.
pub mod devchain {
    use alloy::network::Ethereum;
    pub use alloy::primitives::{Address, B256, U256};
    use alloy::providers::{Provider, RootProvider};
    use alloy::sol;
    use alloy::sol_types::{SolCall, SolValue};
    use serde_json::{Value, json};

    sol! {
        function mint(address to, uint256 value);
        function transfer(address to, uint256 value) returns (bool);
    }

    /// anvil's default account 0 (m/44'/60'/0'/0/0 of "test test … junk").
    pub const PAYER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    pub struct DevError(String);

    fn err(e: impl std::fmt::Display) -> DevError {
        DevError(e.to_string())
    }

    pub struct DevChain {
        pub provider: RootProvider<Ethereum>,
    }

    impl DevChain {
        pub fn new(url: &str) -> Result<Self, DevError> {
            crate::install_crypto_provider();
            Ok(Self {
                provider: RootProvider::new_http(url.parse().map_err(err)?),
            })
        }

        pub async fn rpc(&self, method: &'static str, params: Value) -> Result<Value, DevError> {
            self.provider
                .raw_request::<_, Value>(method.into(), params)
                .await
                .map_err(|e| DevError(format!("{method}: {e}")))
        }

        /// Send from the payer; with automine on, wait until mined.
        pub async fn send(
            &self,
            to: Option<Address>,
            data: Vec<u8>,
            value: U256,
        ) -> Result<B256, DevError> {
            let mut tx = json!({"from": PAYER, "data": format!("0x{}", alloy::hex::encode(data)),
                                "value": format!("{value:#x}"), "gas": "0x200000"});
            if let Some(to) = to {
                tx["to"] = json!(to.to_checksum(None));
            }
            let hash = self.rpc("eth_sendTransaction", json!([tx])).await?;
            let hash: B256 = hash.as_str().unwrap_or_default().parse().map_err(err)?;
            if self.rpc("anvil_getAutomine", json!([])).await? == json!(true) {
                for _ in 0..500 {
                    if self
                        .provider
                        .get_transaction_receipt(hash)
                        .await
                        .map_err(err)?
                        .is_some()
                    {
                        return Ok(hash);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                return Err(DevError(format!("{hash} not mined")));
            }
            Ok(hash)
        }

        /// Deploy the test token and mint the payer 10^30 base units.
        pub async fn deploy_token(
            &self,
            name: &str,
            symbol: &str,
            decimals: u8,
        ) -> Result<Address, DevError> {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/evm/contracts/TestToken.json"
            );
            let raw: Value =
                serde_json::from_str(&std::fs::read_to_string(path).map_err(err)?).map_err(err)?;
            let code = raw["bytecode"].as_str().unwrap_or_default();
            let mut data = alloy::hex::decode(code.trim_start_matches("0x")).map_err(err)?;
            data.extend(
                (name.to_owned(), symbol.to_owned(), U256::from(decimals)).abi_encode_params(),
            );
            let hash = self.send(None, data, U256::ZERO).await?;
            let receipt = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(err)?
                .ok_or_else(|| DevError("no deployment receipt".into()))?;
            let token = receipt
                .contract_address
                .ok_or_else(|| DevError("no contract address".into()))?;
            let payer: Address = PAYER.parse().map_err(err)?;
            let mint = mintCall {
                to: payer,
                value: U256::from(10u128.pow(30)),
            }
            .abi_encode();
            self.send(Some(token), mint, U256::ZERO).await?;
            Ok(token)
        }

        pub async fn pay_token(
            &self,
            token: Address,
            to: &str,
            amount: u128,
        ) -> Result<B256, DevError> {
            let data = transferCall {
                to: to.parse().map_err(err)?,
                value: U256::from(amount),
            }
            .abi_encode();
            self.send(Some(token), data, U256::ZERO).await
        }

        pub async fn mine(&self, blocks: u64) -> Result<(), DevError> {
            self.rpc("anvil_mine", json!([format!("{blocks:#x}")]))
                .await
                .map(|_| ())
        }

        pub async fn tip(&self) -> Result<u64, DevError> {
            self.provider.get_block_number().await.map_err(err)
        }
    }
}
