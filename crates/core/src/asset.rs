//! Chains and assets.
//!
//! A chain has an operator-chosen id (`eth`, `bsc`, `tron`, `bitcoin`, …), a kind that decides
//! which watcher and address scheme serve it, and a network. An asset is a coin or token on one
//! chain; its canonical id is `chain:SYMBOL` (e.g. `bsc:USDT`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::Decimals;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    #[error("chain id must be 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter")]
    InvalidChainId,
    #[error("asset symbol must be 1-16 characters of A-Z, 0-9, '.', '-' or '_'")]
    InvalidSymbol,
    #[error("asset id must look like `chain:SYMBOL`, e.g. `bsc:USDT`")]
    InvalidAssetId,
    #[error("unknown chain kind {0:?}: expected evm, bitcoin, tron or lightning")]
    UnknownKind(String),
    #[error("unknown network {0:?}: expected mainnet, testnet or regtest")]
    UnknownNetwork(String),
}

/// Operator-chosen identifier of a configured chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainId(String);

impl ChainId {
    pub fn parse(raw: &str) -> Result<Self, AssetError> {
        let ok = (1..=32).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(AssetError::InvalidChainId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which family of chain: decides the address scheme, payment URI and watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    Evm,
    Bitcoin,
    Tron,
    Lightning,
}

impl ChainKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainKind::Evm => "evm",
            ChainKind::Bitcoin => "bitcoin",
            ChainKind::Tron => "tron",
            ChainKind::Lightning => "lightning",
        }
    }
}

impl FromStr for ChainKind {
    type Err = AssetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "evm" => Ok(ChainKind::Evm),
            "bitcoin" => Ok(ChainKind::Bitcoin),
            "tron" => Ok(ChainKind::Tron),
            "lightning" => Ok(ChainKind::Lightning),
            other => Err(AssetError::UnknownKind(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    Mainnet,
    Testnet,
    Regtest,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Regtest => "regtest",
        }
    }
}

impl FromStr for Network {
    type Err = AssetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mainnet" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            "regtest" => Ok(Network::Regtest),
            other => Err(AssetError::UnknownNetwork(other.to_owned())),
        }
    }
}

/// Ticker symbol of an asset, upper case (`USDT`, `BTC`, `USDC.E`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol(String);

impl Symbol {
    pub fn parse(raw: &str) -> Result<Self, AssetError> {
        let ok = (1..=16).contains(&raw.len())
            && raw.bytes().all(|b| {
                b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
            });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(AssetError::InvalidSymbol)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Canonical asset id `chain:SYMBOL`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetId {
    chain: ChainId,
    symbol: Symbol,
}

impl AssetId {
    pub fn new(chain: ChainId, symbol: Symbol) -> Self {
        Self { chain, symbol }
    }

    pub fn chain(&self) -> &ChainId {
        &self.chain
    }

    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.chain, self.symbol)
    }
}

impl FromStr for AssetId {
    type Err = AssetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (chain, symbol) = s.split_once(':').ok_or(AssetError::InvalidAssetId)?;
        Ok(Self {
            chain: ChainId::parse(chain)?,
            symbol: Symbol::parse(symbol)?,
        })
    }
}

macro_rules! string_serde {
    ($ty:ty, $parse:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                $parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(ChainId, ChainId::parse);
string_serde!(Symbol, Symbol::parse);
string_serde!(AssetId, AssetId::from_str);

/// Native coin of the chain, or a token contract on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum AssetKind {
    Native,
    /// `contract` is kept as the operator wrote it; chain adapters normalise it for matching.
    Token {
        contract: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub id: ChainId,
    pub kind: ChainKind,
    pub network: Network,
    /// Human name shown to buyers ("BNB Smart Chain").
    pub name: String,
    /// Confirmations a payment needs before it counts as confirmed.
    pub confirmations: u32,
    /// Numeric EIP-155 chain id of an EVM chain (1 for Ethereum, 56 for BSC): used in payment
    /// URIs and checked against the node at start-up.
    pub evm_chain_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub id: AssetId,
    pub kind: AssetKind,
    pub decimals: Decimals,
    /// Fractional digits shown to people; amounts due are never rounded to it.
    pub display_decimals: u8,
    /// Pegged 1:1 to USD when an order asks for a fixed stablecoin rate.
    pub usd_stablecoin: bool,
}

/// Fractional digits shown to people for an asset, unless the operator sets them: USD
/// stablecoins 4 (a hundredth of a cent), coins with at most 8 decimals all of them (BTC, LTC,
/// DOGE: 8; TRX: 6), coins with more decimals 6 (ETH, BNB: a millionth of a coin). Display
/// only: amounts due are exact base units, never rounded to this.
pub fn default_display_decimals(decimals: Decimals, usd_stablecoin: bool) -> u8 {
    let d = decimals.get();
    if usd_stablecoin {
        d.min(4)
    } else if d <= 8 {
        d
    } else {
        6
    }
}

impl Asset {
    pub fn chain(&self) -> &ChainId {
        self.id.chain()
    }

    pub fn symbol(&self) -> &Symbol {
        self.id.symbol()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_id_roundtrip() {
        let id: AssetId = "bsc:USDT".parse().unwrap();
        assert_eq!(id.chain().as_str(), "bsc");
        assert_eq!(id.symbol().as_str(), "USDT");
        assert_eq!(id.to_string(), "bsc:USDT");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"bsc:USDT\"");
        let back: AssetId = serde_json::from_str("\"eth:USDC.E\"").unwrap();
        assert_eq!(back.to_string(), "eth:USDC.E");
    }

    #[test]
    fn asset_id_rejects_malformed() {
        for bad in [
            "",
            "bsc",
            "bsc:",
            ":USDT",
            "BSC:USDT",
            "bsc:usdt",
            "bsc:USDT:X",
            "1bsc:USDT",
            "b sc:USDT",
            "bsc:TOOLONGSYMBOLNAME1",
        ] {
            assert!(bad.parse::<AssetId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_precision_per_asset() {
        let d = |n| Decimals::new(n).unwrap();
        assert_eq!(default_display_decimals(d(8), false), 8, "BTC");
        assert_eq!(default_display_decimals(d(18), false), 6, "ETH, BNB");
        assert_eq!(default_display_decimals(d(6), false), 6, "TRX");
        assert_eq!(default_display_decimals(d(9), false), 6, "SOL");
        assert_eq!(
            default_display_decimals(d(6), true),
            4,
            "USDT on Tron/Ethereum"
        );
        assert_eq!(default_display_decimals(d(18), true), 4, "USDT on BSC");
        assert_eq!(default_display_decimals(d(2), true), 2);
        assert_eq!(default_display_decimals(d(0), false), 0);
        for n in 0..=30 {
            for stable in [false, true] {
                assert!(default_display_decimals(d(n), stable) <= n);
            }
        }
    }

    #[test]
    fn kinds_and_networks_parse() {
        assert_eq!("evm".parse::<ChainKind>().unwrap(), ChainKind::Evm);
        assert_eq!("tron".parse::<ChainKind>().unwrap().as_str(), "tron");
        assert!("solana".parse::<ChainKind>().is_err());
        assert_eq!("regtest".parse::<Network>().unwrap(), Network::Regtest);
        assert!("main".parse::<Network>().is_err());
    }
}
