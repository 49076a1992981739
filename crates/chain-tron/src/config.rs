//! The TRON rail: a `[[chains]]` entry of kind `tron`, typed, filled in from its network's
//! preset (mainnet, Shasta, Nile) and checked; the chain, assets and watcher configuration it
//! stands for.

use std::sync::Arc;

use coffer_core::{Asset, AssetId, AssetKind, Chain, ChainKind, Network, Symbol};
use coffer_engine::PaymentMethod;
use coffer_rail::config::{
    AssetSpec, ConfigDuration, ConfigError, Secret, WatchKeys, chain_id, chain_key, explorer_tx,
    parse_entry, usd_stablecoin_by_default,
};
use coffer_rail::{Rail, RailChain};
use serde::Deserialize;

use crate::TronMethod;
use crate::address::TronAddress;
use crate::source::{Trc20Tokens, TronWatchConfig};

/// TRX: 1 TRX = 1,000,000 sun.
pub const TRX_DECIMALS: u8 = 6;

/// One `[[chains]]` entry of a TRON chain. Keys of other kinds (`chain_id`, `rpc_user`, …)
/// are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TronChainConfig {
    pub id: String,
    /// `tron`.
    #[serde(default)]
    pub kind: Option<String>,
    /// `mainnet`, `shasta` or `nile` (presets: name, explorer, USDT on mainnet, the node's
    /// genesis checked at start-up), or `regtest` for a private chain (default mainnet).
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// java-tron full-node HTTP API base URLs (`https://api.trongrid.io`), tried in turn.
    /// Without any, the chain is configured for pricing and addresses only and not watched.
    #[serde(default)]
    pub rpc: Vec<Secret>,
    /// TronGrid API key, sent as the `TRON-PRO-API-KEY` header to every URL.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Solidified blocks a payment needs: 1 = its block is solidified (irreversible).
    #[serde(default)]
    pub confirmations: Option<u32>,
    #[serde(default)]
    pub poll_interval: Option<ConfigDuration>,
    #[serde(default)]
    pub rpc_timeout: Option<ConfigDuration>,
    /// TRC-20 tokens; the preset's (USDT on mainnet) are added unless one has their symbol.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub start_block: Option<u64>,
    #[serde(default)]
    pub max_lag_blocks: Option<u64>,
    #[serde(default)]
    pub max_lag: Option<ConfigDuration>,
    /// The explorer's transaction page, `{txid}` standing for the transaction id.
    #[serde(default)]
    pub explorer_tx: Option<String>,
}

/// A TRC-20 token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub symbol: String,
    /// The token contract, `T…` (or hex `41…`).
    pub contract: String,
    pub decimals: u8,
    #[serde(default)]
    pub usd_stablecoin: Option<bool>,
    #[serde(default)]
    pub display_decimals: Option<u8>,
}

/// What a network preset fills in.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub network: &'static str,
    pub name: &'static str,
    pub core: Network,
    /// The last 4 bytes of the genesis block id (the JSON-RPC `eth_chainId`), checked
    /// against the node at start-up.
    pub genesis_suffix: Option<&'static str>,
    pub explorer_tx: Option<&'static str>,
    /// (symbol, contract, decimals).
    pub tokens: &'static [(&'static str, &'static str, u8)],
}

/// USDT (Tether USD) on TRON mainnet.
pub const USDT_MAINNET: &str = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";

pub const PRESETS: &[Preset] = &[
    Preset {
        network: "mainnet",
        name: "TRON",
        core: Network::Mainnet,
        genesis_suffix: Some("2b6653dc"),
        explorer_tx: Some("https://tronscan.org/#/transaction/{txid}"),
        tokens: &[("USDT", USDT_MAINNET, 6)],
    },
    Preset {
        network: "shasta",
        name: "TRON Shasta testnet",
        core: Network::Testnet,
        genesis_suffix: Some("94a9059e"),
        explorer_tx: Some("https://shasta.tronscan.org/#/transaction/{txid}"),
        tokens: &[],
    },
    Preset {
        network: "nile",
        name: "TRON Nile testnet",
        core: Network::Testnet,
        genesis_suffix: Some("cd8690dc"),
        explorer_tx: Some("https://nile.tronscan.org/#/transaction/{txid}"),
        tokens: &[],
    },
    Preset {
        network: "regtest",
        name: "TRON (private chain)",
        core: Network::Regtest,
        genesis_suffix: None,
        explorer_tx: None,
        tokens: &[],
    },
];

impl TronChainConfig {
    fn watch_keys(&self) -> WatchKeys {
        WatchKeys {
            poll_interval: self.poll_interval,
            start_block: self.start_block,
            max_lag_blocks: self.max_lag_blocks,
            max_lag: self.max_lag,
        }
    }
}

/// The TRON rail.
#[derive(Debug, Default, Clone, Copy)]
pub struct TronRail;

impl Rail for TronRail {
    fn kind(&self) -> ChainKind {
        ChainKind::Tron
    }

    fn parse(&self, index: usize, entry: &toml::Value) -> Result<Box<dyn RailChain>, ConfigError> {
        Ok(Box::new(TronRailChain::parse(index, entry)?))
    }

    fn method(&self) -> Arc<dyn PaymentMethod> {
        Arc::new(TronMethod)
    }
}

/// A configured TRON chain, checked.
#[derive(Debug, Clone)]
pub struct TronRailChain {
    index: usize,
    config: TronChainConfig,
    preset: Preset,
    chain: Chain,
    assets: Vec<Asset>,
    /// Token contracts and their assets, in the order of `assets[1..]`.
    tokens: Vec<(TronAddress, AssetId)>,
    explorer_tx: Option<String>,
}

impl TronRailChain {
    /// Parse the `index`th `[[chains]]` entry as a TRON chain, filled in from its preset.
    pub fn parse(index: usize, entry: &toml::Value) -> Result<Self, ConfigError> {
        let mut config = parse_entry::<TronChainConfig>("tron", index, entry)?;
        let key = |field: &str| chain_key(index, field);
        let network = config.network.as_deref().unwrap_or("mainnet");
        let preset = *PRESETS
            .iter()
            .find(|p| p.network == network)
            .ok_or_else(|| {
                ConfigError::invalid(
                    key("network"),
                    format!("{network:?} is not a TRON network: mainnet, shasta, nile or regtest"),
                )
            })?;
        for (symbol, contract, decimals) in preset.tokens {
            if !config.tokens.iter().any(|t| t.symbol == *symbol) {
                config.tokens.push(TokenConfig {
                    symbol: (*symbol).to_owned(),
                    contract: (*contract).to_owned(),
                    decimals: *decimals,
                    usd_stablecoin: None,
                    display_decimals: None,
                });
            }
        }
        let id = chain_id(index, &config.id)?;
        let trx = AssetSpec {
            symbol: "TRX",
            kind: AssetKind::Native,
            decimals: TRX_DECIMALS,
            usd_stablecoin: false,
            display_decimals: None,
        }
        .build(&id, &key("kind"))?;
        let mut assets = vec![trx];
        let mut tokens = Vec::new();
        for (j, t) in config.tokens.iter().enumerate() {
            let contract: TronAddress = t.contract.parse().map_err(|e| {
                ConfigError::invalid(key(&format!("tokens[{j}].contract")), format!("{e}"))
            })?;
            if tokens.iter().any(|(c, _)| *c == contract) {
                return Err(ConfigError::invalid(
                    key(&format!("tokens[{j}].contract")),
                    "another token of this chain has the same contract",
                ));
            }
            let spec = AssetSpec {
                symbol: &t.symbol,
                kind: AssetKind::Token {
                    contract: contract.to_base58(),
                },
                decimals: t.decimals,
                usd_stablecoin: t
                    .usd_stablecoin
                    .unwrap_or(usd_stablecoin_by_default(&t.symbol)),
                display_decimals: t.display_decimals,
            };
            let asset = spec.build(&id, &key(&format!("tokens[{j}]")))?;
            if assets.iter().any(|a| a.id == asset.id) {
                return Err(ConfigError::invalid(
                    key(&format!("tokens[{j}].symbol")),
                    format!("{} is already an asset of this chain", asset.id),
                ));
            }
            tokens.push((contract, asset.id.clone()));
            assets.push(asset);
        }
        let explorer_tx = explorer_tx(
            index,
            config
                .explorer_tx
                .clone()
                .or_else(|| preset.explorer_tx.map(str::to_owned)),
        )?;
        if config.confirmations == Some(0) {
            return Err(ConfigError::invalid(
                key("confirmations"),
                "must be at least 1: a TRON payment counts once its block is solidified",
            ));
        }
        let chain = Chain {
            name: config
                .name
                .clone()
                .unwrap_or_else(|| preset.name.to_owned()),
            confirmations: config.confirmations.unwrap_or(1),
            evm_chain_id: None,
            id,
            kind: ChainKind::Tron,
            network: preset.core,
        };
        let parsed = Self {
            index,
            config,
            preset,
            chain,
            assets,
            tokens,
            explorer_tx,
        };
        parsed.watch_config()?;
        Ok(parsed)
    }

    pub fn config(&self) -> &TronChainConfig {
        &self.config
    }

    /// What this chain's watcher needs, or `None` when the entry names no `rpc`.
    pub fn watch_config(&self) -> Result<Option<TronWatchConfig>, ConfigError> {
        let c = &self.config;
        if c.rpc.is_empty() {
            return Ok(None);
        }
        let mut urls = Vec::with_capacity(c.rpc.len());
        for (j, u) in c.rpc.iter().enumerate() {
            let ok = url::Url::parse(u.expose())
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                // The URL may hold a key: it is not repeated in the error.
                return Err(ConfigError::invalid(
                    chain_key(self.index, &format!("rpc[{j}]")),
                    "must be an http(s) URL of a java-tron HTTP API (e.g. https://api.trongrid.io)",
                ));
            }
            urls.push(u.expose().trim_end_matches('/').to_owned());
        }
        let trx = AssetId::new(
            self.chain.id.clone(),
            Symbol::parse("TRX").map_err(|e| ConfigError::invalid("TRX", e.to_string()))?,
        );
        let mut w = TronWatchConfig::new(self.chain.id.clone(), urls);
        w.api_key = c.api_key.clone();
        w.genesis_suffix = self.preset.genesis_suffix.map(str::to_owned);
        w.trx = trx;
        w.tokens = Trc20Tokens::new(self.tokens.iter().cloned());
        if let Some(t) = c.rpc_timeout {
            w.timeout = t.std().max(std::time::Duration::from_millis(100));
        }
        c.watch_keys().apply(self.index, &mut w.watch)?;
        w.watch.stall_after = (w.watch.poll_interval * 20).max(std::time::Duration::from_secs(120));
        Ok(Some(w))
    }
}

impl RailChain for TronRailChain {
    fn chain(&self) -> Chain {
        self.chain.clone()
    }

    fn assets(&self) -> Vec<Asset> {
        self.assets.clone()
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

    fn parse(text: &str) -> Result<TronRailChain, ConfigError> {
        TronRailChain::parse(2, &toml::from_str(text).unwrap())
    }

    #[test]
    fn mainnet_preset_needs_only_id_and_kind() {
        let c = parse("id = \"tron\"\nkind = \"tron\"").unwrap();
        let chain = c.chain();
        assert_eq!(
            (
                chain.kind,
                chain.network,
                chain.name.as_str(),
                chain.confirmations
            ),
            (ChainKind::Tron, Network::Mainnet, "TRON", 1)
        );
        let assets = c.assets();
        let ids: Vec<String> = assets.iter().map(|a| a.id.to_string()).collect();
        assert_eq!(ids, ["tron:TRX", "tron:USDT"]);
        assert_eq!(assets[0].decimals.get(), 6);
        assert_eq!(assets[1].decimals.get(), 6);
        assert!(assets[1].usd_stablecoin);
        assert_eq!(
            assets[1].kind,
            AssetKind::Token {
                contract: USDT_MAINNET.into()
            }
        );
        assert_eq!(
            c.explorer_tx().as_deref(),
            Some("https://tronscan.org/#/transaction/{txid}")
        );
        assert!(c.watch_config().unwrap().is_none(), "no rpc: not watched");
    }

    #[test]
    fn watch_config_and_secrets() {
        let c = parse(
            "id = \"nile\"\nkind = \"tron\"\nnetwork = \"nile\"\nrpc = [\"https://nile.trongrid.io/\", \"http://127.0.0.1:8090\"]\napi_key = \"k-123\"\npoll_interval = \"1s\"\nstart_block = 7\n[[tokens]]\nsymbol = \"USDT\"\ncontract = \"41a614f803b6fd780986a42c78ec9c7f77e6ded13c\"\ndecimals = 6\n",
        )
        .unwrap();
        assert_eq!(c.chain().network, Network::Testnet);
        let w = c.watch_config().unwrap().unwrap();
        assert_eq!(
            w.urls,
            ["https://nile.trongrid.io", "http://127.0.0.1:8090"]
        );
        assert_eq!(w.genesis_suffix.as_deref(), Some("cd8690dc"));
        assert_eq!(w.watch.start_height, Some(7));
        assert_eq!(w.watch.poll_interval, std::time::Duration::from_secs(1));
        assert_eq!(w.api_key.as_ref().map(Secret::expose), Some("k-123"));
        let shown = format!("{:?} {:?}", c.config(), w);
        assert!(!shown.contains("k-123"), "{shown}");
        // The hex contract is kept in T… form.
        assert_eq!(
            c.assets()[1].kind,
            AssetKind::Token {
                contract: USDT_MAINNET.into()
            }
        );
    }

    #[test]
    fn mistakes_name_the_key() {
        for (text, says) in [
            (
                "id = \"t\"\nkind = \"tron\"\nchain_id = 1",
                "chains[2].chain_id: not a key of tron chains",
            ),
            (
                "id = \"t\"\nkind = \"tron\"\nnetwork = \"testnet\"",
                "chains[2].network: ",
            ),
            (
                "id = \"t\"\nkind = \"tron\"\nconfirmations = 0",
                "chains[2].confirmations: ",
            ),
            (
                "id = \"t\"\nkind = \"tron\"\nrpc = [\"ftp://x\"]",
                "chains[2].rpc[0]: ",
            ),
            (
                "id = \"t\"\nkind = \"tron\"\nmax_lag_blocks = 0\nrpc = [\"http://x\"]",
                "chains[2].max_lag_blocks: ",
            ),
            (
                "id = \"t\"\nkind = \"tron\"\n[[tokens]]\nsymbol = \"X\"\ncontract = \"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u\"\ndecimals = 6",
                "chains[2].tokens[0].contract: the address's checksum",
            ),
            (
                "id = \"t\"\nkind = \"tron\"\n[[tokens]]\nsymbol = \"USDX\"\ncontract = \"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t\"\ndecimals = 6",
                "chains[2].tokens[1].contract: another token",
            ),
            (
                "id = \"t\"\nkind = \"tron\"\n[[tokens]]\nsymbol = \"X\"\ncontract = \"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t\"\ndecimals = 6\nfoo = 1",
                "chains[2].tokens[0].foo: unknown field",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(says), "{text:?} → {err}");
        }
        // A key in the URL is not echoed.
        let err = parse("id = \"t\"\nkind = \"tron\"\nrpc = [\"secret-key-in-url\"]")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret-key"), "{err}");
    }
}
