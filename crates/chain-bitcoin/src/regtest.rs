//! Test support: start the project's bcoin-based regtest node (`tools/bitcoin-regtest`) on a
//! free loopback port and stop it by its pid. Used by this crate's tests and meant for the
//! watcher's; not used by the server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::rpc::{BitcoindRpc, RpcConfig, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum RegtestError {
    #[error("the regtest node is not installed: run {0}/install.sh")]
    NotInstalled(String),
    #[error("could not start the regtest node: {0}")]
    Start(String),
}

/// A running regtest node. Killed (by pid) on drop; it also exits by itself when this process
/// dies, because its stdin (`--lifeline stdin`) closes.
#[derive(Debug)]
pub struct RegtestNode {
    child: Mutex<Option<Child>>,
    pub port: u16,
    pub pid: u32,
    pub user: String,
    pub password: String,
}

/// `tools/bitcoin-regtest` of this repository.
pub fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/bitcoin-regtest")
}

impl RegtestNode {
    /// Start a fresh in-memory node at height 0 and wait until it answers.
    pub fn start() -> Result<Self, RegtestError> {
        let dir = tools_dir();
        if !dir.join("node_modules/bcoin").exists() {
            return Err(RegtestError::NotInstalled(dir.display().to_string()));
        }
        let user = "coffer".to_owned();
        let password = format!("pw{}", std::process::id());
        let mut child = Command::new("node")
            .arg(dir.join("regtest-node.js"))
            .args([
                "--port",
                "0",
                "--rpcuser",
                &user,
                "--rpcpassword",
                &password,
            ])
            .args(["--lifeline", "stdin"])
            .env("NODE_BACKEND", "js")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| RegtestError::Start(format!("node: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| RegtestError::Start("no stdout".into()))?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = match read {
            Ok(n) if n > 0 => serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("port").and_then(serde_json::Value::as_u64))
                .and_then(|p| u16::try_from(p).ok()),
            _ => None,
        };
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RegtestError::Start(format!("no ready line (got {line:?})")));
        };
        let pid = child.id();
        Ok(Self {
            child: Mutex::new(Some(child)),
            port,
            pid,
            user,
            password,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// A client for this node (`wallet`: `Some(name)` for `/wallet/<name>`).
    pub fn client(&self, wallet: Option<&str>) -> Result<BitcoindRpc, RpcError> {
        let url = match wallet {
            Some(name) => format!("{}wallet/{name}", self.url()),
            None => self.url(),
        };
        BitcoindRpc::new(RpcConfig {
            url,
            user: self.user.clone(),
            password: self.password.clone(),
            timeout: Duration::from_secs(60),
        })
    }

    /// Stop the node (SIGKILL by pid) and reap it.
    pub fn stop(&self) {
        let taken = self.child.lock().ok().and_then(|mut guard| guard.take());
        if let Some(mut child) = taken {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RegtestNode {
    fn drop(&mut self) {
        self.stop();
    }
}
