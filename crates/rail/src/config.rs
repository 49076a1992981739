//! What every rail's config parser shares: secrets that never reach a log, durations written
//! like `3s`, errors naming the key (`chains[2].rpc_user`), and the pieces common to every
//! chain entry (id, network, native coin, tokens as assets, explorer link).

use std::fmt;
use std::str::FromStr;

use coffer_core::{Asset, AssetId, AssetKind, ChainId, Decimals, Network, Symbol};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A string that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A duration written as `250ms`, `3s`, `30m`, `24h` or `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub time::Duration);

impl FromStr for ConfigDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 250ms, 3s, 30m, 24h or 7d"))?;
        let d = match unit {
            "ms" => time::Duration::milliseconds(n),
            "s" => time::Duration::seconds(n),
            "m" => time::Duration::minutes(n),
            "h" => time::Duration::hours(n),
            "d" => time::Duration::days(n),
            _ => {
                return Err(format!(
                    "{s:?} is not a duration like 250ms, 3s, 30m, 24h or 7d"
                ));
            }
        };
        Ok(ConfigDuration(d))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl ConfigDuration {
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::try_from(self.0).unwrap_or_default()
    }
}

/// A configuration that cannot be used; the CLI prints it as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The name of `field` of the `index`th `[[chains]]` entry, as errors show it:
/// `chains[2].rpc_user`.
pub fn chain_key(index: usize, field: &str) -> String {
    format!("chains[{index}].{field}")
}

/// Deserialize one `[[chains]]` entry into a rail's typed config (which denies unknown
/// fields). An error names the key it is about (`chains[0].rpc_cookie_file`) and, for an
/// entry key the kind does not have, says which kind of chain refused it.
pub fn parse_entry<T: DeserializeOwned>(
    kind: &str,
    index: usize,
    entry: &toml::Value,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(entry.clone()).map_err(|e| {
        let path = e.path().to_string();
        let message = one_line(&e.inner().to_string());
        let mut key = if path == "." {
            format!("chains[{index}]")
        } else {
            chain_key(index, &path)
        };
        // serde names a missing field in the message, not in the path.
        if let Some(field) = backticked(&message, "missing field `") {
            key = format!("{key}.{field}");
        }
        let top_level = !path.contains(['.', '[']);
        let message = if top_level && message.starts_with("unknown field") {
            format!("not a key of {kind} chains: {message}")
        } else {
            message
        };
        ConfigError::invalid(key, message)
    })
}

/// The text between `prefix` and the next backtick.
fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A chain entry's `id`, checked.
pub fn chain_id(index: usize, id: &str) -> Result<ChainId, ConfigError> {
    ChainId::parse(id).map_err(|e| ConfigError::invalid(chain_key(index, "id"), e.to_string()))
}

/// A chain entry's `network` (default mainnet).
pub fn network(index: usize, network: Option<&str>) -> Result<Network, ConfigError> {
    network.map_or(Ok(Network::Mainnet), |n| {
        Network::from_str(n)
            .map_err(|e| ConfigError::invalid(chain_key(index, "network"), e.to_string()))
    })
}

/// A chain's native coin: `native = { symbol = "BNB", decimals = 18 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeConfig {
    pub symbol: String,
    pub decimals: u8,
    /// Fractional digits shown to people (default: see `docs/rates.md`).
    #[serde(default)]
    pub display_decimals: Option<u8>,
}

impl NativeConfig {
    /// The native coin the entry names, required of every chain.
    pub fn required(
        index: usize,
        native: Option<&NativeConfig>,
    ) -> Result<&NativeConfig, ConfigError> {
        native.ok_or_else(|| {
            ConfigError::invalid(
                chain_key(index, "native"),
                "a chain needs its native coin: native = { symbol, decimals }",
            )
        })
    }

    /// The coin as an asset of `chain`; errors name `chains[i].native…`.
    pub fn asset(&self, index: usize, chain: &ChainId) -> Result<Asset, ConfigError> {
        AssetSpec {
            symbol: &self.symbol,
            kind: AssetKind::Native,
            decimals: self.decimals,
            usd_stablecoin: false,
            display_decimals: self.display_decimals,
        }
        .build(chain, &chain_key(index, "native"))
    }

    /// The coin's asset id on `chain`.
    pub fn asset_id(&self, index: usize, chain: &ChainId) -> Result<AssetId, ConfigError> {
        let symbol = Symbol::parse(&self.symbol)
            .map_err(|e| ConfigError::invalid(chain_key(index, "native"), e.to_string()))?;
        Ok(AssetId::new(chain.clone(), symbol))
    }
}

/// An asset as a chain entry describes it, before checking.
#[derive(Debug, Clone)]
pub struct AssetSpec<'a> {
    pub symbol: &'a str,
    pub kind: AssetKind,
    pub decimals: u8,
    pub usd_stablecoin: bool,
    pub display_decimals: Option<u8>,
}

impl AssetSpec<'_> {
    /// The checked asset of `chain`; errors name `key` (`chains[0].tokens[1]`) or a key below.
    pub fn build(self, chain: &ChainId, key: &str) -> Result<Asset, ConfigError> {
        let symbol =
            Symbol::parse(self.symbol).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
        let decimals =
            Decimals::new(self.decimals).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
        let display_decimals = match self.display_decimals {
            Some(n) if n > decimals.get() => {
                return Err(ConfigError::invalid(
                    format!("{key}.display_decimals"),
                    "cannot exceed the asset's decimals",
                ));
            }
            Some(n) => n,
            None => coffer_core::asset::default_display_decimals(decimals, self.usd_stablecoin),
        };
        Ok(Asset {
            id: AssetId::new(chain.clone(), symbol),
            kind: self.kind,
            decimals,
            display_decimals,
            usd_stablecoin: self.usd_stablecoin,
        })
    }
}

/// Whether a token symbol is a USD stablecoin unless configured otherwise (USDT, USDC, DAI…).
pub fn usd_stablecoin_by_default(symbol: &str) -> bool {
    matches!(
        symbol,
        "USDT" | "USDC" | "DAI" | "BUSD" | "FDUSD" | "TUSD" | "USDP" | "PYUSD"
    )
}

/// A chain's explorer transaction template (`https://bscscan.com/tx/{txid}`), checked; an
/// empty one means none.
pub fn explorer_tx(index: usize, template: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(template) = template.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let ok = template.contains("{txid}")
        && url::Url::parse(&template.replace("{txid}", "0"))
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !ok {
        return Err(ConfigError::invalid(
            chain_key(index, "explorer_tx"),
            "must be an http(s) URL containing {txid}, e.g. \"https://bscscan.com/tx/{txid}\"",
        ));
    }
    Ok(Some(template))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Entry {
        id: String,
        #[serde(default)]
        tokens: Vec<Token>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Token {
        decimals: u8,
    }

    fn entry(text: &str) -> toml::Value {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn entry_errors_name_the_key() {
        for (text, key, says) in [
            (
                "id = \"a\"\nrpc_user = \"u\"",
                "chains[3].rpc_user",
                "not a key of test chains",
            ),
            ("rpc = []", "chains[3].rpc", "not a key of test chains"),
            ("tokens = []", "chains[3].id", "missing field"),
            ("id = 5", "chains[3].id", "invalid type"),
            (
                "id = \"a\"\n[[tokens]]\ndecimals = 300",
                "chains[3].tokens[0].decimals",
                "300",
            ),
            (
                "id = \"a\"\n[[tokens]]\ndecimals = 6\nx = 1",
                "chains[3].tokens[0].x",
                "unknown field",
            ),
        ] {
            let err = parse_entry::<Entry>("test", 3, &entry(text)).unwrap_err();
            let ConfigError::Invalid { key: got, message } = &err else {
                panic!("{err}");
            };
            assert_eq!(got, key, "{text:?} → {err}");
            assert!(message.contains(says), "{text:?} → {err}");
            assert_eq!(err.to_string().lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "\"[redacted]\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(
            "250ms".parse::<ConfigDuration>().unwrap().0,
            time::Duration::milliseconds(250)
        );
        assert_eq!(
            "7d".parse::<ConfigDuration>().unwrap().0,
            time::Duration::days(7)
        );
        assert!("5".parse::<ConfigDuration>().is_err());
        assert!("5y".parse::<ConfigDuration>().is_err());
    }

    #[test]
    fn explorer_templates_are_checked() {
        assert_eq!(explorer_tx(0, None).unwrap(), None);
        assert_eq!(explorer_tx(0, Some(String::new())).unwrap(), None);
        assert_eq!(
            explorer_tx(0, Some("https://x.example/tx/{txid}".into())).unwrap(),
            Some("https://x.example/tx/{txid}".into())
        );
        for bad in ["https://x.example/tx/", "ftp://x.example/{txid}", "{txid}"] {
            let err = explorer_tx(1, Some(bad.into())).unwrap_err().to_string();
            assert!(err.starts_with("chains[1].explorer_tx: "), "{bad}: {err}");
        }
    }
}

/// The `[[chains]]` keys every chain kind's watcher reads (`poll_interval`, `start_block`,
/// `max_lag_blocks`, `max_lag`), applied over the kind's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchKeys {
    pub poll_interval: Option<ConfigDuration>,
    pub start_block: Option<u64>,
    pub max_lag_blocks: Option<u64>,
    pub max_lag: Option<ConfigDuration>,
}

impl WatchKeys {
    /// Check the keys of the `index`th entry and apply them to `w`.
    pub fn apply(self, index: usize, w: &mut crate::WatchSettings) -> Result<(), ConfigError> {
        if let Some(p) = self.poll_interval {
            w.poll_interval = p.std().max(std::time::Duration::from_millis(10));
        }
        w.start_height = self.start_block;
        match self.max_lag_blocks {
            Some(0) => {
                return Err(ConfigError::invalid(
                    chain_key(index, "max_lag_blocks"),
                    "must be at least 1",
                ));
            }
            Some(n) => w.max_lag_blocks = n,
            None => {}
        }
        if let Some(d) = self.max_lag {
            if !d.0.is_positive() {
                return Err(ConfigError::invalid(
                    chain_key(index, "max_lag"),
                    "must be a positive duration",
                ));
            }
            w.max_lag = d.std();
        }
        Ok(())
    }
}
