//! The Bitcoin rail: a `[[chains]]` entry of kind `bitcoin`, typed and checked; the chain,
//! asset and watcher configuration it stands for.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use coffer_core::{Asset, Chain, ChainKind, Network};
use coffer_engine::PaymentMethod;
use coffer_rail::config::{
    ConfigDuration, ConfigError, NativeConfig, Secret, WatchKeys, chain_id, chain_key, explorer_tx,
    network, parse_entry,
};
use coffer_rail::{Rail, RailChain};
use serde::Deserialize;

use crate::{BitcoinMethod, BitcoinWatchConfig, RpcConfig};

/// One `[[chains]]` entry of a Bitcoin chain. Keys of other kinds (`chain_id`, `tokens`, …)
/// are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcoinChainConfig {
    pub id: String,
    /// `bitcoin`.
    #[serde(default)]
    pub kind: Option<String>,
    /// `mainnet`, `testnet` or `regtest` (default mainnet).
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The node's JSON-RPC URL, as a list of one: `rpc = ["http://127.0.0.1:8332/"]`.
    /// Without it, the chain is configured for pricing and addresses only and not watched.
    #[serde(default)]
    pub rpc: Vec<Secret>,
    #[serde(default)]
    pub confirmations: Option<u32>,
    #[serde(default)]
    pub poll_interval: Option<ConfigDuration>,
    #[serde(default)]
    pub native: Option<NativeConfig>,
    /// Block a chain watched for the first time starts at (default: the tip at first start).
    #[serde(default)]
    pub start_block: Option<u64>,
    /// `/readyz` reports the chain not ready (lagging) when its watcher is more than this many
    /// blocks behind the tip…
    #[serde(default)]
    pub max_lag_blocks: Option<u64>,
    /// …or further behind than this: the oldest block not yet applied was mined this long
    /// ago, or a step has been running this long.
    #[serde(default)]
    pub max_lag: Option<ConfigDuration>,
    /// The block explorer's transaction page, `{txid}` standing for the transaction id
    /// (default: mempool.space on mainnet and testnet, none on regtest).
    #[serde(default)]
    pub explorer_tx: Option<String>,
    /// RPC basic-auth credentials (`rpcuser`/`rpcpassword` of the node), or
    /// `rpc_cookie_file` (the node's `.cookie`, read at start-up) instead.
    #[serde(default)]
    pub rpc_user: Option<Secret>,
    #[serde(default)]
    pub rpc_password: Option<Secret>,
    #[serde(default)]
    pub rpc_cookie_file: Option<PathBuf>,
    /// Per-request RPC timeout (default 30s).
    #[serde(default)]
    pub rpc_timeout: Option<ConfigDuration>,
    /// Follow the mempool (unconfirmed payments, zero-conf; default true).
    #[serde(default)]
    pub mempool: Option<bool>,
}

/// The Bitcoin rail.
#[derive(Debug, Default, Clone, Copy)]
pub struct BitcoinRail;

impl Rail for BitcoinRail {
    fn kind(&self) -> ChainKind {
        ChainKind::Bitcoin
    }

    fn parse(&self, index: usize, entry: &toml::Value) -> Result<Box<dyn RailChain>, ConfigError> {
        Ok(Box::new(BitcoinRailChain::parse(index, entry)?))
    }

    fn method(&self) -> Arc<dyn PaymentMethod> {
        Arc::new(BitcoinMethod::new())
    }
}

/// A configured Bitcoin chain, checked.
#[derive(Debug, Clone)]
pub struct BitcoinRailChain {
    index: usize,
    config: BitcoinChainConfig,
    chain: Chain,
    asset: Asset,
    explorer_tx: Option<String>,
}

impl BitcoinRailChain {
    /// Parse the `index`th `[[chains]]` entry as a Bitcoin chain.
    pub fn parse(index: usize, entry: &toml::Value) -> Result<Self, ConfigError> {
        let config: BitcoinChainConfig = parse_entry("bitcoin", index, entry)?;
        let id = chain_id(index, &config.id)?;
        let network = network(index, config.network.as_deref())?;
        let asset = NativeConfig::required(index, config.native.as_ref())?.asset(index, &id)?;
        let default_explorer = match network {
            Network::Mainnet => Some("https://mempool.space/tx/{txid}"),
            Network::Testnet => Some("https://mempool.space/testnet/tx/{txid}"),
            Network::Regtest => None,
        };
        let explorer_tx = explorer_tx(
            index,
            config
                .explorer_tx
                .clone()
                .or_else(|| default_explorer.map(str::to_owned)),
        )?;
        let chain = Chain {
            name: config.name.clone().unwrap_or_else(|| config.id.clone()),
            confirmations: config.confirmations.unwrap_or(1),
            evm_chain_id: None,
            id,
            kind: ChainKind::Bitcoin,
            network,
        };
        Ok(Self {
            index,
            config,
            chain,
            asset,
            explorer_tx,
        })
    }

    pub fn config(&self) -> &BitcoinChainConfig {
        &self.config
    }

    /// What this chain's watcher needs, or `None` when the entry names no `rpc`. The node URL
    /// and credentials are checked here, and the cookie file read, when the chain is to be
    /// watched.
    pub fn watch_config(&self) -> Result<Option<BitcoinWatchConfig>, ConfigError> {
        let c = &self.config;
        if c.rpc.is_empty() {
            return Ok(None);
        }
        let key = |field: &str| chain_key(self.index, field);
        let network = match self.chain.network {
            Network::Mainnet => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Regtest => bitcoin::Network::Regtest,
        };
        if c.rpc.len() > 1 {
            return Err(ConfigError::invalid(
                key("rpc"),
                "a Bitcoin chain takes one node URL: rpc = [\"http://127.0.0.1:8332/\"]",
            ));
        }
        let url = c.rpc[0].expose().to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                key("rpc"),
                "expected an http:// URL of the node's RPC",
            ));
        }
        let (user, password) = match (&c.rpc_user, &c.rpc_password, &c.rpc_cookie_file) {
            (Some(u), Some(p), None) => (u.expose().to_owned(), p.expose().to_owned()),
            (None, None, Some(path)) => {
                let cookie = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::invalid(key("rpc_cookie_file"), format!("{}: {e}", path.display()))
                })?;
                let (u, p) = cookie.trim().split_once(':').ok_or_else(|| {
                    ConfigError::invalid(key("rpc_cookie_file"), "expected user:password")
                })?;
                (u.to_owned(), p.to_owned())
            }
            (None, None, None) => (String::new(), String::new()),
            _ => {
                return Err(ConfigError::invalid(
                    key("rpc_user"),
                    "give rpc_user and rpc_password together, or rpc_cookie_file alone",
                ));
            }
        };
        let rpc = RpcConfig {
            url,
            user,
            password,
            timeout: c.rpc_timeout.map_or(Duration::from_secs(30), |d| d.std()),
        };
        let mut w =
            BitcoinWatchConfig::new(self.chain.id.clone(), self.asset.id.clone(), network, rpc);
        WatchKeys {
            poll_interval: c.poll_interval,
            start_block: c.start_block,
            max_lag_blocks: c.max_lag_blocks,
            max_lag: c.max_lag,
        }
        .apply(self.index, &mut w.watch)?;
        w.mempool = c.mempool.unwrap_or(true);
        Ok(Some(w))
    }
}

impl RailChain for BitcoinRailChain {
    fn chain(&self) -> Chain {
        self.chain.clone()
    }

    fn assets(&self) -> Vec<Asset> {
        vec![self.asset.clone()]
    }

    fn explorer_tx(&self) -> Option<String> {
        self.explorer_tx.clone()
    }

    fn check_watch(&self) -> Result<(), ConfigError> {
        self.watch_config().map(|_| ())
    }

    fn watcher(
        &self,
        engine: &coffer_engine::Engine,
    ) -> Result<Option<Box<dyn coffer_rail::RunningWatcher>>, coffer_rail::StartError> {
        coffer_rail::start_watcher(engine, self.watch_config()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "id = \"btc\"\nkind = \"bitcoin\"\nnative = { symbol = \"BTC\", decimals = 8 }\n";

    fn parse(extra: &str) -> Result<BitcoinRailChain, ConfigError> {
        BitcoinRailChain::parse(1, &toml::from_str(&format!("{BASE}{extra}")).unwrap())
    }

    #[test]
    fn a_bitcoin_chain_and_its_coin() {
        let c = parse("network = \"testnet\"\nconfirmations = 2\n").unwrap();
        let chain = c.chain();
        assert_eq!(
            (chain.kind, chain.network),
            (ChainKind::Bitcoin, Network::Testnet)
        );
        assert_eq!((chain.confirmations, chain.evm_chain_id), (2, None));
        let assets = c.assets();
        assert_eq!(assets.len(), 1);
        assert_eq!(assets[0].id.to_string(), "btc:BTC");
        assert_eq!(
            c.explorer_tx().as_deref(),
            Some("https://mempool.space/testnet/tx/{txid}")
        );
        assert!(c.watch_config().unwrap().is_none(), "no rpc: not watched");
    }

    #[test]
    fn keys_of_other_kinds_are_refused_by_name() {
        for (key, line) in [
            ("chain_id", "chain_id = 1"),
            ("tokens", "tokens = []"),
            ("max_range", "max_range = 5"),
        ] {
            let err = parse(&format!("{line}\n")).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("chains[1].{key}: not a key of bitcoin chains")),
                "{err}"
            );
        }
        let err = parse("network = \"signet\"\n").unwrap_err().to_string();
        assert!(err.starts_with("chains[1].network: "), "{err}");
        let err = parse("rpc = \"http://127.0.0.1:8332/\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("chains[1].rpc: "), "{err}");
    }
}
