//! The EVM rail: a `[[chains]]` entry of kind `evm` (or a catalogue chain without `kind`),
//! typed, filled in from the built-in catalogue and checked; the chain, assets and watcher
//! configuration it stands for.

use std::sync::Arc;

use coffer_core::{Asset, AssetId, AssetKind, Chain, ChainKind, Symbol};
use coffer_engine::PaymentMethod;
use coffer_rail::config::{
    AssetSpec, ConfigDuration, ConfigError, NativeConfig, Secret, WatchKeys, chain_id, chain_key,
    explorer_tx, network, parse_entry, usd_stablecoin_by_default,
};
use coffer_rail::{Rail, RailChain};
use serde::Deserialize;

use crate::{EvmMethod, EvmWatchConfig, Tokens, catalogue};

/// One `[[chains]]` entry of an EVM chain. Keys of other kinds (`rpc_user`, `mempool`, …)
/// are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvmChainConfig {
    pub id: String,
    /// `evm`; may be left out for a chain of the built-in catalogue.
    #[serde(default)]
    pub kind: Option<String>,
    /// `mainnet`, `testnet` or `regtest` (default mainnet).
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// EIP-155 chain id, checked against `eth_chainId` at start-up.
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// JSON-RPC endpoints, tried in turn. Without any, the chain is configured for pricing
    /// and addresses only and not watched.
    #[serde(default)]
    pub rpc: Vec<Secret>,
    #[serde(default)]
    pub confirmations: Option<u32>,
    #[serde(default)]
    pub poll_interval: Option<ConfigDuration>,
    #[serde(default)]
    pub native: Option<NativeConfig>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
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
    /// (`https://bscscan.com/tx/{txid}`): linked from the checkout's success screen.
    #[serde(default)]
    pub explorer_tx: Option<String>,
}

impl EvmChainConfig {
    fn watch_keys(&self) -> WatchKeys {
        WatchKeys {
            poll_interval: self.poll_interval,
            start_block: self.start_block,
            max_lag_blocks: self.max_lag_blocks,
            max_lag: self.max_lag,
        }
    }
}

/// An ERC-20 token of an EVM chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub symbol: String,
    pub contract: String,
    pub decimals: u8,
    /// Pegged 1:1 to USD (USDT, USDC, DAI, …). Defaults to true for those symbols.
    #[serde(default)]
    pub usd_stablecoin: Option<bool>,
    /// Fractional digits shown to people (default: see `docs/rates.md`).
    #[serde(default)]
    pub display_decimals: Option<u8>,
}

impl EvmChainConfig {
    /// What the entry leaves out, taken from the built-in catalogue of well-known EVM chains
    /// (matched by `chain_id` if given, else by `id`). Anything the entry sets wins; tokens
    /// are merged by symbol.
    pub fn resolved(self) -> Self {
        let Some(k) = catalogue::lookup(&self.id, self.chain_id) else {
            return self;
        };
        let mut r = self;
        r.name = r.name.or_else(|| Some(k.name.to_owned()));
        r.chain_id = r.chain_id.or(Some(k.chain_id));
        r.confirmations = r.confirmations.or(Some(k.confirmations));
        r.explorer_tx = r.explorer_tx.or_else(|| Some(k.explorer_tx.to_owned()));
        r.poll_interval = r
            .poll_interval
            .or(Some(ConfigDuration(time::Duration::milliseconds(
                i64::try_from(k.poll_interval_ms).unwrap_or(3000),
            ))));
        r.native = r.native.or_else(|| {
            Some(NativeConfig {
                symbol: k.native_symbol.to_owned(),
                decimals: k.native_decimals,
                display_decimals: None,
            })
        });
        for tok in k.tokens {
            if !r.tokens.iter().any(|t| t.symbol == tok.symbol) {
                r.tokens.push(TokenConfig {
                    symbol: tok.symbol.to_owned(),
                    contract: tok.contract.to_owned(),
                    decimals: tok.decimals,
                    usd_stablecoin: None,
                    display_decimals: None,
                });
            }
        }
        r
    }
}

/// The EVM rail.
#[derive(Debug, Default, Clone, Copy)]
pub struct EvmRail;

impl Rail for EvmRail {
    fn kind(&self) -> ChainKind {
        ChainKind::Evm
    }

    fn claims_untyped(&self, id: &str, chain_id: Option<u64>) -> bool {
        catalogue::lookup(id, chain_id).is_some()
    }

    fn parse(&self, index: usize, entry: &toml::Value) -> Result<Box<dyn RailChain>, ConfigError> {
        Ok(Box::new(EvmRailChain::parse(index, entry)?))
    }

    fn method(&self) -> Arc<dyn PaymentMethod> {
        Arc::new(EvmMethod)
    }
}

/// A configured EVM chain, checked.
#[derive(Debug, Clone)]
pub struct EvmRailChain {
    index: usize,
    config: EvmChainConfig,
    chain: Chain,
    assets: Vec<Asset>,
    explorer_tx: Option<String>,
}

impl EvmRailChain {
    /// Parse the `index`th `[[chains]]` entry as an EVM chain, filled in from the catalogue.
    pub fn parse(index: usize, entry: &toml::Value) -> Result<Self, ConfigError> {
        let config = parse_entry::<EvmChainConfig>("evm", index, entry)?.resolved();
        let id = chain_id(index, &config.id)?;
        let network = network(index, config.network.as_deref())?;
        let native = NativeConfig::required(index, config.native.as_ref())?;
        let mut assets = vec![native.asset(index, &id)?];
        for (j, t) in config.tokens.iter().enumerate() {
            let spec = AssetSpec {
                symbol: &t.symbol,
                kind: AssetKind::Token {
                    contract: t.contract.clone(),
                },
                decimals: t.decimals,
                usd_stablecoin: t
                    .usd_stablecoin
                    .unwrap_or(usd_stablecoin_by_default(&t.symbol)),
                display_decimals: t.display_decimals,
            };
            assets.push(spec.build(&id, &chain_key(index, &format!("tokens[{j}]")))?);
        }
        let explorer_tx = explorer_tx(index, config.explorer_tx.clone())?;
        let chain = Chain {
            name: config.name.clone().unwrap_or_else(|| config.id.clone()),
            confirmations: config.confirmations.unwrap_or(1),
            evm_chain_id: config.chain_id,
            id,
            kind: ChainKind::Evm,
            network,
        };
        Ok(Self {
            index,
            config,
            chain,
            assets,
            explorer_tx,
        })
    }

    /// The entry as configured, with the catalogue's defaults filled in.
    pub fn config(&self) -> &EvmChainConfig {
        &self.config
    }

    /// What this chain's watcher needs, or `None` when the entry names no `rpc` (pricing and
    /// addresses only). Token contracts are checked here, when the chain is to be watched.
    pub fn watch_config(&self) -> Result<Option<EvmWatchConfig>, ConfigError> {
        let c = &self.config;
        if c.rpc.is_empty() {
            return Ok(None);
        }
        let key = |field: &str| chain_key(self.index, field);
        let id = self.chain.id.clone();
        let mut tokens = Vec::new();
        for (j, t) in c.tokens.iter().enumerate() {
            let contract = t.contract.trim().parse().map_err(|_| {
                ConfigError::invalid(
                    key(&format!("tokens[{j}].contract")),
                    "not a 0x-prefixed 20-byte hex address",
                )
            })?;
            let symbol = Symbol::parse(&t.symbol).map_err(|e| {
                ConfigError::invalid(key(&format!("tokens[{j}].symbol")), e.to_string())
            })?;
            tokens.push((contract, AssetId::new(id.clone(), symbol)));
        }
        let native = match &c.native {
            Some(n) => Some(n.asset_id(self.index, &id)?),
            None => None,
        };
        let mut w = EvmWatchConfig::new(id, c.rpc.iter().map(|s| s.expose().to_owned()).collect());
        w.evm_chain_id = c.chain_id;
        c.watch_keys().apply(self.index, &mut w.watch)?;
        w.watch.stall_after = (w.watch.poll_interval * 20).max(std::time::Duration::from_secs(60));
        w.tokens = Tokens::new(tokens);
        w.native = native;
        Ok(Some(w))
    }
}

impl RailChain for EvmRailChain {
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

    fn parse(text: &str) -> Result<EvmRailChain, ConfigError> {
        EvmRailChain::parse(0, &toml::from_str(text).unwrap())
    }

    #[test]
    fn catalogue_chain_needs_only_its_id() {
        let c = parse("id = \"bsc\"").unwrap();
        let chain = c.chain();
        assert_eq!(chain.evm_chain_id, Some(56));
        assert_eq!(
            (chain.confirmations, chain.name.as_str()),
            (15, "BNB Smart Chain")
        );
        let ids: Vec<String> = c.assets().iter().map(|a| a.id.to_string()).collect();
        assert_eq!(ids, ["bsc:BNB", "bsc:USDT", "bsc:USDC"]);
        assert_eq!(
            c.explorer_tx().as_deref(),
            Some("https://bscscan.com/tx/{txid}")
        );
        assert!(c.watch_config().unwrap().is_none(), "no rpc: not watched");
    }

    #[test]
    fn keys_of_other_kinds_are_refused_by_name() {
        for (key, line) in [
            ("rpc_cookie_file", "rpc_cookie_file = \"/x/.cookie\""),
            ("rpc_user", "rpc_user = \"u\""),
            ("mempool", "mempool = true"),
            ("rpc_timeout", "rpc_timeout = \"3s\""),
        ] {
            let err = parse(&format!("id = \"eth\"\n{line}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("chains[0].{key}: not a key of evm chains")),
                "{err}"
            );
        }
    }

    #[test]
    fn watch_config_from_the_entry() {
        let c = parse(
            "id = \"anvil\"\nchain_id = 31337\nrpc = [\"http://127.0.0.1:8545\"]\npoll_interval = \"1ms\"\nstart_block = 5\nnative = { symbol = \"ETH\", decimals = 18 }\n[[tokens]]\nsymbol = \"USDT\"\ncontract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\ndecimals = 6\n",
        )
        .unwrap();
        let w = c.watch_config().unwrap().unwrap();
        assert_eq!(w.evm_chain_id, Some(31337));
        assert_eq!(w.rpc, ["http://127.0.0.1:8545"]);
        assert_eq!(
            w.watch.poll_interval,
            std::time::Duration::from_millis(10),
            "floor"
        );
        assert_eq!(w.watch.stall_after, std::time::Duration::from_secs(60));
        assert_eq!(w.watch.start_height, Some(5));
        assert_eq!(w.native.unwrap().to_string(), "anvil:ETH");
        assert_eq!(w.tokens.contracts().len(), 1);
    }
}
