//! `coffer.toml` plus `COFFER_*` environment overrides.
//!
//! Every key has a default, so Coffer runs with no file at all. Unknown keys and invalid
//! values stop start-up with a message naming the key. Secrets (database URL, RPC URLs that
//! may carry API keys) are redacted in logs and `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, Network, Price, Symbol,
};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// A string that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP listener.
    pub listen: SocketAddr,
    /// Optional separate listener for `/metrics` (then not served on `listen`).
    pub admin_listen: Option<SocketAddr>,
    /// Base URL of links handed to buyers; defaults to `http://{listen}`.
    pub public_url: Option<String>,
    /// Holds the embedded SQLite database (`coffer.db`).
    pub data_dir: PathBuf,
    /// `postgres://…` switches from the embedded database to PostgreSQL.
    pub database_url: Option<Secret>,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. `info` or `info,coffer_engine=debug`.
    pub log_level: String,
    pub http: HttpConfig,
    pub api: ApiConfig,
    pub checkout: CheckoutConfig,
    pub orders: OrdersConfig,
    pub rates: RatesConfig,
    pub chains: Vec<ChainConfig>,
    pub webhooks: WebhooksConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            public_url: None,
            data_dir: PathBuf::from("./coffer-data"),
            database_url: None,
            database_max_connections: 16,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            http: HttpConfig::default(),
            api: ApiConfig::default(),
            checkout: CheckoutConfig::default(),
            orders: OrdersConfig::default(),
            rates: RatesConfig::default(),
            chains: Vec::new(),
            webhooks: WebhooksConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// A request head must arrive whole within this long (of the accept for a connection's
    /// first request, of its first byte for later ones).
    pub header_read_timeout: ConfigDuration,
    /// A kept-alive connection without a request for this long is closed.
    pub idle_timeout: ConfigDuration,
    /// How long a handler may take to answer (not a stream's lifetime).
    pub request_timeout: ConfigDuration,
    /// At shutdown, how long requests in flight may still take.
    pub shutdown_timeout: ConfigDuration,
    /// Open connections at most, all listeners together (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// Open connections at most from one client address (trusted proxies: only the total).
    pub max_connections_per_client: usize,
    /// Proxies (addresses or networks) whose forwarding header names the client.
    pub trusted_proxies: Vec<String>,
    /// The header trusted proxies set: `x-forwarded-for` or `forwarded`.
    pub client_address_header: String,
    /// Requests per minute per client address on the unauthenticated routes; 0 = no limit.
    pub public_rate_limit_per_minute: u32,
    /// Password logins per minute per client address; 0 = no limit.
    pub login_rate_limit_per_minute: u32,
    /// Serve HTTPS: the certificate chain (PEM), re-read on SIGHUP.
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM), re-read on SIGHUP.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            header_read_timeout: ConfigDuration(time::Duration::seconds(10)),
            idle_timeout: ConfigDuration(time::Duration::seconds(60)),
            request_timeout: ConfigDuration(time::Duration::seconds(30)),
            shutdown_timeout: ConfigDuration(time::Duration::seconds(30)),
            max_connections: 10_000,
            max_connections_per_client: 256,
            trusted_proxies: Vec::new(),
            client_address_header: "x-forwarded-for".into(),
            public_rate_limit_per_minute: 600,
            login_rate_limit_per_minute: 10,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl HttpConfig {
    /// Who a request comes from: the trusted proxies and the header they set.
    pub fn addressing(&self) -> Result<coffer_api::edge::client::ClientAddressing, ConfigError> {
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse()
                    .map_err(|e: String| invalid(format!("http.trusted_proxies[{i}]"), e))
            })
            .collect::<Result<_, _>>()?;
        let header = self
            .client_address_header
            .parse()
            .map_err(|e: String| invalid("http.client_address_header", e))?;
        Ok(coffer_api::edge::client::ClientAddressing {
            trusted_proxies,
            header,
        })
    }

    /// The certificate and key files, when HTTPS is on.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        self.tls_cert_file
            .as_deref()
            .zip(self.tls_key_file.as_deref())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckoutConfig {
    /// Live-update streams open at once for one order.
    pub max_streams_per_order: usize,
    /// Live-update streams open at once from one client address.
    pub max_streams_per_client: usize,
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        let d = coffer_checkout::CheckoutSettings::default();
        Self {
            max_streams_per_order: d.max_streams_per_order,
            max_streams_per_client: d.max_streams_per_client,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Requests per minute per API key on the native API; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersConfig {
    /// Rate-lock window of a new order.
    pub default_expires_in: ConfigDuration,
    /// How long after expiry payments are still watched for (late payments).
    pub monitor_for: ConfigDuration,
    /// How often pending orders past their expiry are moved to `expired`.
    pub expiry_sweep_interval: ConfigDuration,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            default_expires_in: ConfigDuration(coffer_core::order::DEFAULT_EXPIRES_IN),
            monitor_for: ConfigDuration(coffer_core::order::DEFAULT_MONITOR_FOR),
            expiry_sweep_interval: ConfigDuration(time::Duration::seconds(5)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow deliveries to private, loopback and other non-public addresses (development).
    pub allow_private: bool,
    /// Host names (or IP literals) exempt from the SSRF guard.
    pub allow_hosts: Vec<String>,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight at once to one destination.
    pub per_destination: usize,
    /// Delay before each retry after a failed attempt; the last failure flags the endpoint.
    pub retry_schedule: Vec<ConfigDuration>,
    /// How often the outbox and due deliveries are polled when idle.
    pub poll_interval: ConfigDuration,
    /// Total time one attempt may take (connect timeout is 5 s).
    pub timeout: ConfigDuration,
    /// How long a claimed delivery stays reserved for the instance sending it; longer than
    /// `timeout`. An attempt cut short by a crash is retried once it lapses.
    pub lease: ConfigDuration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        let defaults = coffer_webhooks::Settings::default();
        Self {
            allow_private: defaults.allow_private,
            allow_hosts: defaults.allow_hosts,
            concurrency: defaults.concurrency,
            per_destination: defaults.per_destination,
            retry_schedule: defaults
                .retry
                .delays
                .iter()
                .map(|d| ConfigDuration(time::Duration::try_from(*d).unwrap_or_default()))
                .collect(),
            poll_interval: ConfigDuration(
                time::Duration::try_from(defaults.poll_interval).unwrap_or_default(),
            ),
            timeout: ConfigDuration(time::Duration::try_from(defaults.timeout).unwrap_or_default()),
            lease: ConfigDuration(time::Duration::try_from(defaults.lease).unwrap_or_default()),
        }
    }
}

impl WebhooksConfig {
    pub fn settings(&self) -> coffer_webhooks::Settings {
        coffer_webhooks::Settings {
            allow_private: self.allow_private,
            allow_hosts: self.allow_hosts.clone(),
            concurrency: self.concurrency,
            per_destination: self.per_destination,
            retry: coffer_webhooks::RetrySchedule {
                delays: self.retry_schedule.iter().map(|d| d.std()).collect(),
            },
            poll_interval: self.poll_interval.std(),
            timeout: self.timeout.std(),
            connect_timeout: self.timeout.std().min(std::time::Duration::from_secs(5)),
            lease: self.lease.std(),
            ..coffer_webhooks::Settings::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RatesConfig {
    /// Fixed prices, `"BASE/QUOTE" = "decimal string"`, e.g. `"BTC/USD" = "65000"`.
    /// Strings, never TOML floats: money is exact. Inverses and crosses through USD are
    /// derived (docs/rates.md).
    pub fixed: BTreeMap<String, String>,
    /// Price every USD stablecoin (`usd_stablecoin` tokens) at exactly 1 USD in the fixed
    /// table. Off by default: a stablecoin can trade below its peg, and pricing it at 1 then
    /// costs the merchant the difference, so the operator must say so.
    pub usd_stablecoin_peg: bool,
    /// `["fixed"]` (offline; `["fixed", "ecb"]` takes fiat legs from the ECB), or market
    /// providers: coingecko, binance, kraken, coinbase, okx, and the fiat source ecb.
    pub sources: Vec<String>,
    /// Fresh crypto sources needed for a price; default min(2, number of crypto sources).
    pub quorum: Option<usize>,
    /// Fresh fiat sources needed for a non-USD fiat cross.
    pub fiat_quorum: usize,
    /// A source further than this from the median is dropped (percent, decimal string).
    pub max_deviation_percent: DecimalString,
    /// Staleness limit of crypto prices.
    pub max_age: ConfigDuration,
    /// Staleness limit of fiat cross rates.
    pub fiat_max_age: ConfigDuration,
    pub refresh_interval: ConfigDuration,
    pub fiat_refresh_interval: ConfigDuration,
    /// Longest wait between attempts after repeated errors.
    pub max_backoff: ConfigDuration,
    /// Timeout of one request to a provider.
    pub timeout: ConfigDuration,
    /// Per-provider base URL overrides (a mirror, a proxy, a paid plan).
    pub base_urls: BTreeMap<String, Secret>,
}

impl Default for RatesConfig {
    fn default() -> Self {
        let d = coffer_rates::RatesSettings::default();
        let dur = |s: std::time::Duration| {
            ConfigDuration(time::Duration::try_from(s).unwrap_or(time::Duration::ZERO))
        };
        Self {
            fixed: BTreeMap::new(),
            usd_stablecoin_peg: false,
            sources: vec!["fixed".into()],
            quorum: None,
            fiat_quorum: d.fiat_quorum,
            max_deviation_percent: DecimalString(d.max_deviation_percent),
            max_age: ConfigDuration(d.max_age),
            fiat_max_age: ConfigDuration(d.fiat_max_age),
            refresh_interval: dur(d.refresh_interval),
            fiat_refresh_interval: dur(d.fiat_refresh_interval),
            max_backoff: dur(d.max_backoff),
            timeout: dur(d.timeout),
            base_urls: BTreeMap::new(),
        }
    }
}

/// A decimal written as a string (`"2.5"`) or an integer (`2`); never a TOML float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalString(pub Decimal);

impl<'de> Deserialize<'de> for DecimalString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(DecimalString(Decimal::from(n))),
            Raw::Str(s) => Decimal::from_str(s.trim())
                .map(DecimalString)
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a decimal number"))),
        }
    }
}

// `rpc` and `poll_interval` are validated here and read by the chain watchers.
#[allow(dead_code)]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    pub id: String,
    /// `evm`, … May be left out for a chain of the built-in catalogue.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// EVM chain id, checked against `eth_chainId` at start-up.
    #[serde(default)]
    pub chain_id: Option<u64>,
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
    /// blocks behind the tip (default: EVM 50, Bitcoin 3)…
    #[serde(default)]
    pub max_lag_blocks: Option<u64>,
    /// …or further behind than this: the oldest block not yet applied was mined this long
    /// ago, or a step has been running this long (default: EVM 60s, Bitcoin 1h).
    #[serde(default)]
    pub max_lag: Option<ConfigDuration>,
    /// Bitcoin: RPC basic-auth credentials (`rpcuser`/`rpcpassword` of the node), or
    /// `rpc_cookie_file` (the node's `.cookie`, read at start-up) instead.
    #[serde(default)]
    pub rpc_user: Option<Secret>,
    #[serde(default)]
    pub rpc_password: Option<Secret>,
    #[serde(default)]
    pub rpc_cookie_file: Option<std::path::PathBuf>,
    /// Bitcoin: per-request RPC timeout (default 30s).
    #[serde(default)]
    pub rpc_timeout: Option<ConfigDuration>,
    /// Bitcoin: follow the mempool (unconfirmed payments, zero-conf; default true).
    #[serde(default)]
    pub mempool: Option<bool>,
    /// The block explorer's transaction page, `{txid}` standing for the transaction id
    /// (`https://bscscan.com/tx/{txid}`): linked from the checkout's success screen.
    #[serde(default)]
    pub explorer_tx: Option<String>,
}

impl ChainConfig {
    /// The keys every chain kind's watcher reads, over the kind's defaults (validated in
    /// [`Config::validate`]).
    fn apply_watch_settings(&self, w: &mut coffer_rail::WatchSettings) {
        if let Some(p) = self.poll_interval {
            w.poll_interval = p.std().max(std::time::Duration::from_millis(10));
        }
        w.start_height = self.start_block;
        if let Some(n) = self.max_lag_blocks {
            w.max_lag_blocks = n;
        }
        if let Some(d) = self.max_lag {
            w.max_lag = d.std();
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeConfig {
    pub symbol: String,
    pub decimals: u8,
    /// Fractional digits shown to people (default: see `docs/rates.md`).
    #[serde(default)]
    pub display_decimals: Option<u8>,
}

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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Environment variables that are not configuration keys.
fn is_config_env(key: &str) -> bool {
    // COFFER_MASTER_KEY is the webhook secrets' master key, read by coffer-webhooks.
    key != "config" && key != "master_key" && !key.starts_with("test_")
}

impl Config {
    /// Defaults, then the file (if given), then `COFFER_*` variables (`__` nests:
    /// `COFFER_HTTP__BODY_LIMIT=131072`).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("COFFER_")
                .split("__")
                .filter(|k| is_config_env(&k.as_str().to_ascii_lowercase())),
        );
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(one_line(&e)))?;
        config.validate()?;
        Ok(config)
    }

    #[cfg(test)]
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Load(one_line(&e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(invalid("public_url", "must be an http(s) URL"));
            }
        }
        if let Some(url) = &self.database_url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(invalid(
                    "database_url",
                    "must start with postgres:// (leave it unset for the embedded SQLite database)",
                ));
            }
        }
        if self.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        if self.http.body_limit < 1024 {
            return Err(invalid("http.body_limit", "must be at least 1024 bytes"));
        }
        let positive = |key: &str, d: ConfigDuration| {
            if d.0.is_positive() {
                Ok(())
            } else {
                Err(invalid(key, "must be longer than zero"))
            }
        };
        self.validate_edge(positive)?;
        positive("orders.default_expires_in", self.orders.default_expires_in)?;
        positive("orders.monitor_for", self.orders.monitor_for)?;
        positive(
            "orders.expiry_sweep_interval",
            self.orders.expiry_sweep_interval,
        )?;
        if self.webhooks.concurrency == 0 {
            return Err(invalid("webhooks.concurrency", "must be at least 1"));
        }
        if self.webhooks.per_destination == 0 {
            return Err(invalid("webhooks.per_destination", "must be at least 1"));
        }
        positive("webhooks.poll_interval", self.webhooks.poll_interval)?;
        positive("webhooks.timeout", self.webhooks.timeout)?;
        if self.webhooks.lease.0 <= self.webhooks.timeout.0 {
            return Err(invalid(
                "webhooks.lease",
                "must be longer than webhooks.timeout",
            ));
        }
        for (i, d) in self.webhooks.retry_schedule.iter().enumerate() {
            positive(&format!("webhooks.retry_schedule[{i}]"), *d)?;
        }
        for (i, c) in self.chains.iter().enumerate() {
            if c.max_lag_blocks == Some(0) {
                return Err(invalid(
                    format!("chains[{i}].max_lag_blocks"),
                    "must be at least 1",
                ));
            }
            if let Some(d) = c.max_lag {
                positive(&format!("chains[{i}].max_lag"), d)?;
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| invalid("log_level", e.to_string()))?;
        self.fixed_rates()?;
        self.registry()?;
        self.explorers()?;
        self.rates_settings()?;
        Ok(())
    }

    /// Whether prices come from the fixed table (`"fixed"` in `rates.sources`).
    pub fn uses_fixed_rates(&self) -> bool {
        self.rates.sources.iter().any(|s| s == "fixed")
    }

    /// The listener and checkout-stream keys (issue 23).
    fn validate_edge(
        &self,
        positive: impl Fn(&str, ConfigDuration) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        let h = &self.http;
        positive("http.header_read_timeout", h.header_read_timeout)?;
        positive("http.idle_timeout", h.idle_timeout)?;
        positive("http.request_timeout", h.request_timeout)?;
        positive("http.shutdown_timeout", h.shutdown_timeout)?;
        for (key, n) in [
            ("http.max_connections", h.max_connections),
            (
                "http.max_connections_per_client",
                h.max_connections_per_client,
            ),
            (
                "checkout.max_streams_per_order",
                self.checkout.max_streams_per_order,
            ),
            (
                "checkout.max_streams_per_client",
                self.checkout.max_streams_per_client,
            ),
        ] {
            if n == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        h.addressing()?;
        match (&h.tls_cert_file, &h.tls_key_file) {
            (Some(_), None) => {
                return Err(invalid(
                    "http.tls_key_file",
                    "is needed with http.tls_cert_file",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "http.tls_cert_file",
                    "is needed with http.tls_key_file",
                ));
            }
            _ => {}
        }
        for (key, file) in [
            ("http.tls_cert_file", &h.tls_cert_file),
            ("http.tls_key_file", &h.tls_key_file),
        ] {
            if let Some(file) = file
                && !file.is_file()
            {
                return Err(invalid(key, format!("{} is not a file", file.display())));
            }
        }
        Ok(())
    }

    /// Settings of the rate providers to refresh: the market sources, or only the fiat
    /// sources (ECB) whose `USD/X` legs the fixed table crosses with; `None` when the fixed
    /// table needs no provider.
    pub fn rates_settings(&self) -> Result<Option<coffer_rates::RatesSettings>, ConfigError> {
        use coffer_rates::Provider;
        let r = &self.rates;
        let mut providers = Vec::new();
        let mut fixed = false;
        for (i, name) in r.sources.iter().enumerate() {
            let key = format!("rates.sources[{i}]");
            if name == "fixed" {
                fixed = true;
                continue;
            }
            let p = Provider::from_name(name).ok_or_else(|| {
                invalid(
                    &key,
                    format!(
                        "unknown rate source {name:?}: use fixed, coingecko, binance, kraken, coinbase, okx or ecb"
                    ),
                )
            })?;
            if providers.contains(&p) {
                return Err(invalid(&key, format!("{name:?} is listed twice")));
            }
            providers.push(p);
        }
        if fixed && providers.iter().any(|p| !p.is_fiat()) {
            return Err(invalid(
                "rates.sources",
                "\"fixed\" cannot be combined with market price sources: a fixed price would outvote the market (only the fiat source ecb may join it)",
            ));
        }
        if r.usd_stablecoin_peg && !fixed {
            return Err(invalid(
                "rates.usd_stablecoin_peg",
                "applies to the fixed table only: with market sources USD stablecoins have market prices (an order's fixed_stablecoin_rate prices one at 1:1)",
            ));
        }
        for (name, url) in &r.base_urls {
            let key = format!("rates.base_urls.{name}");
            if Provider::from_name(name).is_none() {
                return Err(invalid(&key, "not a rate source name"));
            }
            let ok =
                url::Url::parse(url.expose()).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(invalid(&key, "must be an http(s) URL"));
            }
        }
        if providers.is_empty() {
            if !fixed {
                return Err(invalid(
                    "rates.sources",
                    "at least one source is needed (\"fixed\" for offline use)",
                ));
            }
            return Ok(None);
        }
        let crypto = providers.iter().filter(|p| !p.is_fiat()).count();
        let fiat = providers.len() - crypto;
        if crypto == 0 && !fixed {
            return Err(invalid(
                "rates.sources",
                "at least one crypto price source is needed (coingecko, binance, kraken, coinbase, okx)",
            ));
        }
        let quorum = r.quorum.unwrap_or(crypto.clamp(1, 2));
        if !fixed && (quorum == 0 || quorum > crypto) {
            return Err(invalid(
                "rates.quorum",
                format!("must be between 1 and the number of crypto sources ({crypto})"),
            ));
        }
        if r.fiat_quorum == 0 || (fiat > 0 && r.fiat_quorum > fiat) {
            return Err(invalid(
                "rates.fiat_quorum",
                format!(
                    "must be between 1 and the number of fiat sources ({})",
                    fiat.max(1)
                ),
            ));
        }
        if r.max_deviation_percent.0 <= Decimal::ZERO {
            return Err(invalid(
                "rates.max_deviation_percent",
                "must be greater than zero",
            ));
        }
        for (key, d) in [
            ("rates.max_age", r.max_age),
            ("rates.fiat_max_age", r.fiat_max_age),
            ("rates.refresh_interval", r.refresh_interval),
            ("rates.fiat_refresh_interval", r.fiat_refresh_interval),
            ("rates.max_backoff", r.max_backoff),
            ("rates.timeout", r.timeout),
        ] {
            if !d.0.is_positive() {
                return Err(invalid(key, "must be longer than zero"));
            }
        }
        let registry = self.registry()?;
        let mut symbols: Vec<String> = registry
            .assets()
            .map(|a| a.symbol().as_str().to_owned())
            .collect();
        symbols.sort();
        symbols.dedup();
        Ok(Some(coffer_rates::RatesSettings {
            sources: providers,
            base_urls: r
                .base_urls
                .iter()
                .filter_map(|(k, v)| Provider::from_name(k).map(|p| (p, v.expose().to_owned())))
                .collect(),
            quorum,
            fiat_quorum: r.fiat_quorum,
            max_deviation_percent: r.max_deviation_percent.0,
            max_age: r.max_age.0,
            fiat_max_age: r.fiat_max_age.0,
            refresh_interval: r.refresh_interval.std(),
            fiat_refresh_interval: r.fiat_refresh_interval.std(),
            max_backoff: r.max_backoff.std(),
            timeout: r.timeout.std(),
            symbols,
        }))
    }

    pub fn public_url(&self) -> String {
        let scheme = if self.http.tls_files().is_some() {
            "https"
        } else {
            "http"
        };
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{}", self.listen))
    }

    /// The fixed table as configured (parsed and checked even when market sources are used),
    /// with the 1:1 peg of the configured USD stablecoins when `rates.usd_stablecoin_peg`.
    pub fn fixed_rates(&self) -> Result<coffer_rates::FixedTable, ConfigError> {
        let mut rates = coffer_rates::FixedTable::new();
        for (pair, price) in &self.rates.fixed {
            let key = format!("rates.fixed.\"{pair}\"");
            let (base, quote) = pair
                .split_once('/')
                .filter(|(b, q)| !b.is_empty() && !q.is_empty())
                .ok_or_else(|| invalid(&key, "pair must look like \"BTC/USD\""))?;
            let value = Decimal::from_str(price.trim())
                .ok()
                .and_then(|d| Price::new(d).ok())
                .ok_or_else(|| invalid(&key, "price must be a positive decimal string"))?;
            rates
                .insert(base, quote, value)
                .map_err(|e| invalid(&key, e.to_string()))?;
        }
        if self.rates.usd_stablecoin_peg {
            let registry = self.registry()?;
            let pegged: Vec<String> = registry
                .assets()
                .filter(|a| a.usd_stablecoin)
                .map(|a| a.symbol().as_str().to_owned())
                .collect();
            rates = rates.with_peg(pegged);
        }
        Ok(rates)
    }

    /// The configured chains with what they leave out taken from the built-in catalogue of
    /// well-known EVM chains (matched by `chain_id` if given, else by `id`). Anything the
    /// configuration sets wins; tokens are merged by symbol.
    pub fn resolved_chains(&self) -> Vec<ChainConfig> {
        self.chains
            .iter()
            .map(|c| {
                let known = if c.kind.is_empty() || c.kind == "evm" {
                    coffer_chain_evm::catalogue::lookup(&c.id, c.chain_id)
                } else {
                    None
                };
                let Some(k) = known else {
                    return c.clone();
                };
                let mut r = c.clone();
                if r.kind.is_empty() {
                    r.kind = "evm".into();
                }
                r.name = r.name.or_else(|| Some(k.name.to_owned()));
                r.chain_id = r.chain_id.or(Some(k.chain_id));
                r.confirmations = r.confirmations.or(Some(k.confirmations));
                r.explorer_tx = r.explorer_tx.or_else(|| Some(k.explorer_tx.to_owned()));
                r.poll_interval =
                    r.poll_interval
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
            })
            .collect()
    }

    /// Per chain, the explorer's transaction URL template for the checkout page: as
    /// configured, else the built-in catalogue's (EVM) or mempool.space (Bitcoin mainnet and
    /// testnet). Regtest and unknown chains get no link.
    pub fn explorers(&self) -> Result<BTreeMap<ChainId, String>, ConfigError> {
        let mut out = BTreeMap::new();
        for (i, c) in self.resolved_chains().iter().enumerate() {
            let key = format!("chains[{i}].explorer_tx");
            let id = ChainId::parse(&c.id)
                .map_err(|e| invalid(format!("chains[{i}].id"), e.to_string()))?;
            let template = match (&c.explorer_tx, c.kind.as_str(), c.network.as_deref()) {
                (Some(t), _, _) => Some(t.clone()),
                (None, "bitcoin", None | Some("mainnet")) => {
                    Some("https://mempool.space/tx/{txid}".to_owned())
                }
                (None, "bitcoin", Some("testnet")) => {
                    Some("https://mempool.space/testnet/tx/{txid}".to_owned())
                }
                _ => None,
            };
            let Some(template) = template.filter(|t| !t.is_empty()) else {
                continue;
            };
            let ok = template.contains("{txid}")
                && url::Url::parse(&template.replace("{txid}", "0"))
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(invalid(
                    key,
                    "must be an http(s) URL containing {txid}, e.g. \"https://bscscan.com/tx/{txid}\"",
                ));
            }
            out.insert(id, template);
        }
        Ok(out)
    }

    /// What each EVM chain's watcher needs. Chains without `rpc` are configured for pricing
    /// only and not watched.
    pub fn evm_watchers(&self) -> Result<Vec<coffer_chain_evm::EvmWatchConfig>, ConfigError> {
        let mut out = Vec::new();
        for (i, c) in self.resolved_chains().iter().enumerate() {
            if c.kind != "evm" || c.rpc.is_empty() {
                continue;
            }
            let key = |field: &str| format!("chains[{i}].{field}");
            let id = ChainId::parse(&c.id).map_err(|e| invalid(key("id"), e.to_string()))?;
            let mut tokens = Vec::new();
            for (j, t) in c.tokens.iter().enumerate() {
                let contract = t.contract.trim().parse().map_err(|_| {
                    invalid(
                        key(&format!("tokens[{j}].contract")),
                        "not a 0x-prefixed 20-byte hex address",
                    )
                })?;
                let symbol = Symbol::parse(&t.symbol)
                    .map_err(|e| invalid(key(&format!("tokens[{j}].symbol")), e.to_string()))?;
                tokens.push((contract, AssetId::new(id.clone(), symbol)));
            }
            let native = match &c.native {
                Some(n) => Some(AssetId::new(
                    id.clone(),
                    Symbol::parse(&n.symbol).map_err(|e| invalid(key("native"), e.to_string()))?,
                )),
                None => None,
            };
            let mut w = coffer_chain_evm::EvmWatchConfig::new(
                id,
                c.rpc.iter().map(|s| s.expose().to_owned()).collect(),
            );
            w.evm_chain_id = c.chain_id;
            c.apply_watch_settings(&mut w.watch);
            w.watch.stall_after =
                (w.watch.poll_interval * 20).max(std::time::Duration::from_secs(60));
            w.tokens = coffer_chain_evm::Tokens::new(tokens);
            w.native = native;
            out.push(w);
        }
        Ok(out)
    }

    /// What each Bitcoin chain's watcher needs. Chains without `rpc` are not watched.
    pub fn bitcoin_watchers(
        &self,
    ) -> Result<Vec<coffer_chain_bitcoin::BitcoinWatchConfig>, ConfigError> {
        let mut out = Vec::new();
        for (i, c) in self.resolved_chains().iter().enumerate() {
            if c.kind != "bitcoin" || c.rpc.is_empty() {
                continue;
            }
            let key = |field: &str| format!("chains[{i}].{field}");
            let id = ChainId::parse(&c.id).map_err(|e| invalid(key("id"), e.to_string()))?;
            let network = match c.network.as_deref().unwrap_or("mainnet") {
                "mainnet" => coffer_chain_bitcoin::bitcoin::Network::Bitcoin,
                "testnet" => coffer_chain_bitcoin::bitcoin::Network::Testnet,
                "regtest" => coffer_chain_bitcoin::bitcoin::Network::Regtest,
                other => {
                    return Err(invalid(
                        key("network"),
                        format!("{other:?}: expected mainnet, testnet or regtest"),
                    ));
                }
            };
            let native = c.native.as_ref().ok_or_else(|| {
                invalid(
                    key("native"),
                    "a chain needs its native coin: native = { symbol, decimals }",
                )
            })?;
            let asset = AssetId::new(
                id.clone(),
                Symbol::parse(&native.symbol).map_err(|e| invalid(key("native"), e.to_string()))?,
            );
            if c.rpc.len() > 1 {
                return Err(invalid(key("rpc"), "a Bitcoin chain takes one node URL"));
            }
            let url = c.rpc[0].expose().to_owned();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    key("rpc"),
                    "expected an http:// URL of the node's RPC",
                ));
            }
            let (user, password) = match (&c.rpc_user, &c.rpc_password, &c.rpc_cookie_file) {
                (Some(u), Some(p), None) => (u.expose().to_owned(), p.expose().to_owned()),
                (None, None, Some(path)) => {
                    let cookie = std::fs::read_to_string(path).map_err(|e| {
                        invalid(key("rpc_cookie_file"), format!("{}: {e}", path.display()))
                    })?;
                    let (u, p) = cookie
                        .trim()
                        .split_once(':')
                        .ok_or_else(|| invalid(key("rpc_cookie_file"), "expected user:password"))?;
                    (u.to_owned(), p.to_owned())
                }
                (None, None, None) => (String::new(), String::new()),
                _ => {
                    return Err(invalid(
                        key("rpc_user"),
                        "give rpc_user and rpc_password together, or rpc_cookie_file alone",
                    ));
                }
            };
            let rpc = coffer_chain_bitcoin::RpcConfig {
                url,
                user,
                password,
                timeout: c
                    .rpc_timeout
                    .map_or(std::time::Duration::from_secs(30), |d| d.std()),
            };
            let mut w = coffer_chain_bitcoin::BitcoinWatchConfig::new(id, asset, network, rpc);
            c.apply_watch_settings(&mut w.watch);
            w.mempool = c.mempool.unwrap_or(true);
            out.push(w);
        }
        Ok(out)
    }

    /// Chains and assets as the engine sees them.
    pub fn registry(&self) -> Result<coffer_engine::AssetRegistry, ConfigError> {
        let mut chains = Vec::new();
        let mut assets = Vec::new();
        for (i, c) in self.resolved_chains().iter().enumerate() {
            let key = |field: &str| format!("chains[{i}].{field}");
            let id = ChainId::parse(&c.id).map_err(|e| invalid(key("id"), e.to_string()))?;
            let kind =
                ChainKind::from_str(&c.kind).map_err(|e| invalid(key("kind"), e.to_string()))?;
            let network = match &c.network {
                Some(n) => {
                    Network::from_str(n).map_err(|e| invalid(key("network"), e.to_string()))?
                }
                None => Network::Mainnet,
            };
            let native = c.native.as_ref().ok_or_else(|| {
                invalid(
                    key("native"),
                    "a chain needs its native coin: native = { symbol, decimals }",
                )
            })?;
            let asset = |symbol: &str,
                         field: String,
                         asset_kind: AssetKind,
                         decimals: u8,
                         stable: bool,
                         display: Option<u8>| {
                let symbol = Symbol::parse(symbol).map_err(|e| invalid(&field, e.to_string()))?;
                let decimals =
                    Decimals::new(decimals).map_err(|e| invalid(&field, e.to_string()))?;
                let display_decimals = match display {
                    Some(n) if n > decimals.get() => {
                        return Err(invalid(
                            format!("{field}.display_decimals"),
                            "cannot exceed the asset's decimals",
                        ));
                    }
                    Some(n) => n,
                    None => coffer_core::asset::default_display_decimals(decimals, stable),
                };
                Ok::<_, ConfigError>(Asset {
                    id: AssetId::new(id.clone(), symbol),
                    kind: asset_kind,
                    decimals,
                    display_decimals,
                    usd_stablecoin: stable,
                })
            };
            assets.push(asset(
                &native.symbol,
                key("native"),
                AssetKind::Native,
                native.decimals,
                false,
                native.display_decimals,
            )?);
            for (j, t) in c.tokens.iter().enumerate() {
                let stable = t.usd_stablecoin.unwrap_or(matches!(
                    t.symbol.as_str(),
                    "USDT" | "USDC" | "DAI" | "BUSD" | "FDUSD" | "TUSD" | "USDP" | "PYUSD"
                ));
                assets.push(asset(
                    &t.symbol,
                    key(&format!("tokens[{j}]")),
                    AssetKind::Token {
                        contract: t.contract.clone(),
                    },
                    t.decimals,
                    stable,
                    t.display_decimals,
                )?);
            }
            chains.push(Chain {
                name: c.name.clone().unwrap_or_else(|| c.id.clone()),
                confirmations: c.confirmations.unwrap_or(1),
                evm_chain_id: c.chain_id,
                id,
                kind,
                network,
            });
        }
        coffer_engine::AssetRegistry::new(chains, assets)
            .map_err(|e| invalid("chains", e.to_string()))
    }
}

/// figment errors can span lines; the CLI promises a one-line cause.
fn one_line(e: &figment::Error) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Printed by `coffer config example`; `config check` of it must pass (tested).
pub const EXAMPLE: &str = r#"# coffer.toml — every key is optional; shown with its default unless marked "example".
# Each key can be overridden by an environment variable: COFFER_<KEY>, with "__" between
# nested keys (COFFER_LISTEN, COFFER_DATA_DIR, COFFER_DATABASE_URL, COFFER_HTTP__BODY_LIMIT).

# HTTP listener.
listen = "127.0.0.1:8080"
# Serve /metrics on a separate listener instead (example).
# admin_listen = "127.0.0.1:9090"
# Base URL of links handed to buyers (checkout pages). Default: http://{listen}
# public_url = "https://pay.example.com"

# The embedded SQLite database lives here (coffer.db).
data_dir = "./coffer-data"
# PostgreSQL instead of SQLite, for several Coffer instances (example):
# database_url = "postgres://coffer:secret@127.0.0.1:5432/coffer"
database_max_connections = 16

# Logs: "text" or "json"; level is a tracing filter.
log_format = "text"
log_level = "info"

[http]
# Largest accepted request body, bytes.
body_limit = 65536
# A request head must arrive whole within this long (of the accept for a connection's first
# request, of its first byte for later ones); a kept-alive connection idle this long is
# closed; a handler answering later gets 503 (a stream's body is not limited by it); at
# shutdown, requests in flight get this long to finish.
header_read_timeout = "10s"
idle_timeout = "60s"
request_timeout = "30s"
shutdown_timeout = "30s"
# Open connections at most: in all (lowered to fit the open-file limit, which is raised to
# its hard limit at start), and from one client address. Above a cap new connections are
# closed at once; open ones keep working.
max_connections = 10000
max_connections_per_client = 256
# Requests per minute per client address on the unauthenticated routes (checkout pages,
# status, streams, /readyz, Aurpay's key lookup), and for password logins (Aurpay's Get
# API-Key). Bursts up to a minute's worth; 0 = no limit. 429 with Retry-After beyond.
public_rate_limit_per_minute = 600
login_rate_limit_per_minute = 10
# Behind a reverse proxy: the proxies (addresses or networks) whose forwarding header names
# the client, and which header they set ("x-forwarded-for" or "forwarded"). Nobody's header
# is believed unless listed here (example).
# trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
client_address_header = "x-forwarded-for"
# HTTPS without a proxy: PEM certificate chain and private key, re-read on SIGHUP (example).
# tls_cert_file = "/etc/coffer/tls/fullchain.pem"
# tls_key_file = "/etc/coffer/tls/privkey.pem"

[checkout]
# Live-update streams (/pay/{token}/events) open at once per order and per client address;
# beyond them 429 (the page then polls /pay/{token}/status).
max_streams_per_order = 16
max_streams_per_client = 64

[api]
# Requests per minute per API key on /api/v1 (bursts up to a minute's worth); 0 = no limit.
rate_limit_per_minute = 600

[orders]
# Rate-lock window: the quoted crypto amount is valid this long.
default_expires_in = "30m"
# Payments arriving up to this long after expiry are still detected (reason paid_late).
monitor_for = "24h"
expiry_sweep_interval = "5s"

[rates]
# "fixed" (offline, the table below; ["fixed", "ecb"] takes fiat legs such as USD/CNY from the
# ECB) or market providers, e.g.
# ["coingecko", "binance", "kraken", "coinbase", "okx", "ecb"] (ecb: fiat crosses EUR, GBP, JPY, …).
sources = ["fixed"]
# Fixed table only: price every USD stablecoin token (usd_stablecoin) at exactly 1 USD.
# Off by default: a depegged stablecoin would then cost the merchant the difference.
usd_stablecoin_peg = false
# Fresh crypto sources a price needs (default: 2, or 1 with a single source).
# quorum = 2
fiat_quorum = 1
# A source further than this from the median is dropped (percent).
max_deviation_percent = "2"
# Staleness limits: older prices are never used.
max_age = "60s"
fiat_max_age = "24h"
refresh_interval = "15s"
fiat_refresh_interval = "1h"
max_backoff = "5m"
timeout = "5s"
# Per-provider base URL overrides (example).
# base_urls = { binance = "https://api1.binance.com" }

[rates.fixed]
# Offline fixed prices "BASE/QUOTE" = "decimal string" (examples), used when sources has "fixed".
# Inverses (USD/ETH) and crosses through USD (ETH/CNY = ETH/USD × USD/CNY, the USD/CNY leg
# from a pair here or the ECB) are derived; write each pair in one direction only.
"BTC/USD" = "65000"
"ETH/USD" = "3000"
"BNB/USD" = "600"

# A chain (example). Assets are "chain:SYMBOL", e.g. bsc:USDT.
# [[chains]]
# id = "bsc"
# kind = "evm"                 # evm | bitcoin | tron | lightning
# network = "mainnet"          # mainnet | testnet | regtest
# name = "BNB Smart Chain"
# chain_id = 56
# rpc = ["https://rpc-a.example", "https://rpc-b.example"]
# confirmations = 15
# poll_interval = "3s"
# max_lag_blocks = 50          # /readyz: not ready (lagging) beyond this many blocks behind…
# max_lag = "60s"              # …or this far behind (age of the oldest block not yet applied)
# native = { symbol = "BNB", decimals = 18 }   # optional display_decimals (default 6 here)
# [[chains.tokens]]
# symbol = "USDT"
# contract = "0x55d398326f99059fF775485246999027B3197955"
# decimals = 18
# display_decimals = 4         # default: 4 for USD stablecoins
# start_block = 43000000       # first block the very first time (default: the tip)
# explorer_tx = "https://bscscan.com/tx/{txid}"  # checkout's transaction link (built-in for
#                              # catalogue chains and Bitcoin mainnet/testnet; none on regtest)
#
# Well-known EVM chains (eth, bsc, polygon, arbitrum, base, optimism, avax) come from a
# built-in catalogue: `id` and `rpc` are enough, anything set here overrides it.
# [[chains]]
# id = "eth"
# rpc = ["https://eth-rpc.example"]
#
# Bitcoin over a bitcoind-compatible node's JSON-RPC (example; see docs/chains-bitcoin.md).
# Start the node with -txindex. Merchants pick 0, 1, 2 or 6 confirmations
# (`coffer merchant set --confirmations bitcoin=0`); this is the default.
# [[chains]]
# id = "bitcoin"
# kind = "bitcoin"
# network = "mainnet"          # mainnet | testnet | regtest
# native = { symbol = "BTC", decimals = 8 }
# rpc = ["http://127.0.0.1:8332/"]
# rpc_user = "coffer"          # or rpc_cookie_file = "/var/lib/bitcoind/.cookie"
# rpc_password = "secret"
# confirmations = 2
# poll_interval = "5s"
# rpc_timeout = "30s"
# mempool = true               # follow unconfirmed payments (zero-conf, replacements)
# max_lag_blocks = 3           # /readyz: not ready (lagging) beyond this many blocks behind…
# max_lag = "1h"               # …or this far behind
# start_block = 870000         # first block the very first time (default: the tip)

[webhooks]
# Deliveries to private, loopback, link-local, CGNAT, metadata… addresses are refused unless
# this is true (development only) or the host is listed in allow_hosts.
allow_private = false
allow_hosts = []
# Deliveries in flight at once, and to one destination (a slow endpoint never holds more).
concurrency = 64
per_destination = 8
# Delay before each retry (±10 % jitter). After the last one fails, the endpoint is flagged.
# The default spans about three days.
retry_schedule = ["5s", "30s", "2m", "10m", "30m", "1h", "2h", "4h", "8h", "12h", "12h", "12h", "12h", "8h"]
poll_interval = "20ms"
# Total time of one attempt (the connect timeout is 5 s), and how long a claimed delivery
# stays reserved for the instance sending it (longer than timeout). After a crash, attempts
# cut short are retried once their claim lapses.
timeout = "15s"
lease = "60s"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_valid() {
        let c = Config::from_toml_str(EXAMPLE).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.fixed_rates().unwrap().len(), 3);
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./coffer-data"));
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        assert_eq!(c.orders.default_expires_in.0, time::Duration::minutes(30));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml_str("listn = \"1.2.3.4:1\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listn"), "{err}");
        let err = Config::from_toml_str("[orders]\nexpires = \"5m\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expires"), "{err}");
    }

    #[test]
    fn invalid_values_are_named() {
        for (toml, key) in [
            ("listen = \"nope\"", "listen"),
            (
                "[orders]\ndefault_expires_in = \"30 minutes\"",
                "default_expires_in",
            ),
            (
                "[rates.fixed]\n\"BTC/USD\" = \"-1\"",
                "rates.fixed.\"BTC/USD\"",
            ),
            (
                "[rates.fixed]\n\"BTCUSD\" = \"1\"",
                "rates.fixed.\"BTCUSD\"",
            ),
            ("database_url = \"mysql://x\"", "database_url"),
            ("public_url = \"ftp://x\"", "public_url"),
            ("log_level = \"[[[\"", "log_level"),
            (
                "[[chains]]\nid = \"BSC\"\nkind = \"evm\"\nnative = { symbol = \"BNB\", decimals = 18 }",
                "chains[0].id",
            ),
            (
                "[[chains]]\nid = \"mychain\"\nkind = \"evm\"",
                "chains[0].native",
            ),
            (
                "[[chains]]\nid = \"bsc\"\nkind = \"solana\"\nnative = { symbol = \"BNB\", decimals = 18 }",
                "chains[0].kind",
            ),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml:?} → {err}");
        }
    }

    #[test]
    fn edge_keys_have_defaults_and_named_errors() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.http.header_read_timeout.std().as_secs(), 10);
        assert_eq!(c.http.max_connections_per_client, 256);
        assert!(
            c.http.addressing().unwrap().trusted_proxies.is_empty(),
            "nobody is trusted by default"
        );
        assert_eq!(c.checkout.max_streams_per_order, 16);
        let c = Config::from_toml_str(
            "[http]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\nclient_address_header = \"Forwarded\"\n",
        )
        .unwrap();
        let a = c.http.addressing().unwrap();
        assert_eq!(a.trusted_proxies.len(), 2);
        assert_eq!(
            a.header,
            coffer_api::edge::client::ForwardedHeader::Forwarded
        );
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("x.pem");
        std::fs::write(&pem, "").unwrap();
        let pem = pem.display().to_string();
        let c = Config::from_toml_str(&format!(
            "[http]\ntls_cert_file = {pem:?}\ntls_key_file = {pem:?}\n"
        ))
        .unwrap();
        assert_eq!(
            c.public_url(),
            "https://127.0.0.1:8080",
            "TLS makes the default https"
        );
        for (toml, key) in [
            (
                "[http]\ntrusted_proxies = [\"10.0.0.1\", \"10.0.0.0/40\"]",
                "http.trusted_proxies[1]",
            ),
            (
                "[http]\nclient_address_header = \"x-real-ip\"",
                "http.client_address_header",
            ),
            (
                "[http]\nmax_connections_per_client = 0",
                "http.max_connections_per_client",
            ),
            (
                "[http]\nheader_read_timeout = \"0s\"",
                "http.header_read_timeout",
            ),
            (
                "[checkout]\nmax_streams_per_order = 0",
                "checkout.max_streams_per_order",
            ),
            (
                &format!("[http]\ntls_cert_file = {pem:?}"),
                "http.tls_key_file",
            ),
            (
                "[http]\ntls_cert_file = \"/nonexistent.pem\"\ntls_key_file = \"/nonexistent.pem\"",
                "http.tls_cert_file",
            ),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml:?} → {err}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Config::from_toml_str("database_url = \"postgres://u:hunter2@h/db\"\n[[chains]]\nid = \"eth\"\nkind = \"evm\"\nrpc = [\"https://rpc.example/key-abc123\"]\nnative = { symbol = \"ETH\", decimals = 18 }").unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("key-abc123"),
            "{shown}"
        );
        assert_eq!(
            c.database_url.unwrap().expose(),
            "postgres://u:hunter2@h/db"
        );
    }

    #[test]
    fn catalogue_fills_what_config_leaves_out() {
        let c = Config::from_toml_str(
            "[[chains]]\nid = \"bsc\"\nrpc = [\"http://127.0.0.1:1\"]\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"0x0000000000000000000000000000000000000001\"\ndecimals = 6\n",
        )
        .unwrap();
        let r = c.registry().unwrap();
        let bsc = r.chain(&ChainId::parse("bsc").unwrap()).unwrap();
        assert_eq!(bsc.evm_chain_id, Some(56));
        assert_eq!(bsc.confirmations, 15);
        assert_eq!(bsc.kind, ChainKind::Evm);
        // the configured token overrides the catalogue's; the catalogue's USDC is added
        let usdt = r.asset(&"bsc:USDT".parse().unwrap()).unwrap();
        assert_eq!(usdt.decimals.get(), 6);
        let usdc = r.asset(&"bsc:USDC".parse().unwrap()).unwrap();
        assert_eq!(usdc.decimals.get(), 18);
        assert!(r.asset(&"bsc:BNB".parse().unwrap()).is_some());
        let w = c.evm_watchers().unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].evm_chain_id, Some(56));
        assert_eq!(w[0].watch.poll_interval, std::time::Duration::from_secs(3));
        // a bad contract names its key
        let bad = Config::from_toml_str(
            "[[chains]]\nid = \"eth\"\nrpc = [\"http://127.0.0.1:1\"]\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"0x12\"\ndecimals = 6\n",
        )
        .unwrap();
        let err = bad.evm_watchers().unwrap_err().to_string();
        assert!(err.contains("chains[0].tokens[0].contract"), "{err}");
    }

    #[test]
    fn lag_limits_per_chain_with_defaults_by_kind() {
        let evm = "[[chains]]\nid = \"eth\"\nrpc = [\"http://127.0.0.1:1\"]\n";
        let btc = "[[chains]]\nid = \"bitcoin\"\nkind = \"bitcoin\"\nnetwork = \"regtest\"\nnative = { symbol = \"BTC\", decimals = 8 }\nrpc = [\"http://127.0.0.1:18443/\"]\n";
        let c = Config::from_toml_str(&format!("{evm}{btc}")).unwrap();
        let (e, b) = (
            &c.evm_watchers().unwrap()[0],
            &c.bitcoin_watchers().unwrap()[0],
        );
        assert_eq!(
            (e.watch.max_lag_blocks, e.watch.max_lag.as_secs()),
            (50, 60)
        );
        assert_eq!(
            (b.watch.max_lag_blocks, b.watch.max_lag.as_secs()),
            (3, 3600)
        );
        let c = Config::from_toml_str(&format!(
            "{evm}max_lag_blocks = 7\nmax_lag = \"15s\"\n{btc}max_lag_blocks = 1\n"
        ))
        .unwrap();
        let (e, b) = (
            &c.evm_watchers().unwrap()[0],
            &c.bitcoin_watchers().unwrap()[0],
        );
        assert_eq!((e.watch.max_lag_blocks, e.watch.max_lag.as_secs()), (7, 15));
        assert_eq!(
            (b.watch.max_lag_blocks, b.watch.max_lag.as_secs()),
            (1, 3600)
        );
        for (bad, key) in [
            ("max_lag_blocks = 0\n", "chains[0].max_lag_blocks"),
            ("max_lag = \"0s\"\n", "chains[0].max_lag"),
            ("max_lag = \"soon\"\n", "max_lag"),
        ] {
            let err = Config::from_toml_str(&format!("{evm}{bad}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{bad:?} → {err}");
        }
    }

    #[test]
    fn bitcoin_watchers_from_config() {
        let base = "[[chains]]\nid = \"bitcoin\"\nkind = \"bitcoin\"\nnetwork = \"regtest\"\nnative = { symbol = \"BTC\", decimals = 8 }\n";
        // Without rpc: configured for pricing and addresses, not watched.
        assert!(
            Config::from_toml_str(base)
                .unwrap()
                .bitcoin_watchers()
                .unwrap()
                .is_empty()
        );
        let c = Config::from_toml_str(&format!(
            "{base}rpc = [\"http://127.0.0.1:18443/\"]\nrpc_user = \"u\"\nrpc_password = \"p\"\npoll_interval = \"2s\"\nmempool = false\nstart_block = 7\n"
        ))
        .unwrap();
        let w = c.bitcoin_watchers().unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].network,
            coffer_chain_bitcoin::bitcoin::Network::Regtest
        );
        assert_eq!(w[0].asset.to_string(), "bitcoin:BTC");
        assert_eq!(
            (w[0].rpc.user.as_str(), w[0].rpc.password.as_str()),
            ("u", "p")
        );
        assert_eq!(w[0].watch.poll_interval, std::time::Duration::from_secs(2));
        assert_eq!((w[0].mempool, w[0].watch.start_height), (false, Some(7)));
        assert!(c.evm_watchers().unwrap().is_empty());
        // The password is not printed with the configuration.
        assert!(!format!("{c:?}").contains("rpc_password: Some(\"p\")"));
        // A cookie file instead of a user and password.
        let dir = tempfile::tempdir().unwrap();
        let cookie = dir.path().join(".cookie");
        std::fs::write(&cookie, "__cookie__:s3cret\n").unwrap();
        let c = Config::from_toml_str(&format!(
            "{base}rpc = [\"http://127.0.0.1:18443/\"]\nrpc_cookie_file = {:?}\n",
            cookie.display().to_string()
        ))
        .unwrap();
        let w = c.bitcoin_watchers().unwrap();
        assert_eq!(
            (w[0].rpc.user.as_str(), w[0].rpc.password.as_str()),
            ("__cookie__", "s3cret")
        );
        // Mistakes name their key.
        for (extra, key) in [
            ("rpc = [\"http://a/\", \"http://b/\"]\n", "chains[0].rpc"),
            ("rpc = [\"127.0.0.1:8332\"]\n", "chains[0].rpc"),
            (
                "rpc = [\"http://a/\"]\nrpc_user = \"u\"\n",
                "chains[0].rpc_user",
            ),
            (
                "rpc = [\"http://a/\"]\nrpc_cookie_file = \"/nonexistent/.cookie\"\n",
                "chains[0].rpc_cookie_file",
            ),
        ] {
            let err = Config::from_toml_str(&format!("{base}{extra}"))
                .unwrap()
                .bitcoin_watchers()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
        let err = Config::from_toml_str(
            "[[chains]]\nid = \"bitcoin\"\nkind = \"bitcoin\"\nnetwork = \"signet\"\nrpc = [\"http://a/\"]\nnative = { symbol = \"BTC\", decimals = 8 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("chains[0].network"), "{err}");
    }

    #[test]
    fn explorer_links_per_chain() {
        let c = Config::from_toml_str(
            "[[chains]]\nid = \"bsc\"\n[[chains]]\nid = \"eth\"\nexplorer_tx = \"https://eth.example/t/{txid}\"\n[[chains]]\nid = \"btc\"\nkind = \"bitcoin\"\nnative = { symbol = \"BTC\", decimals = 8 }\n[[chains]]\nid = \"reg\"\nkind = \"bitcoin\"\nnetwork = \"regtest\"\nnative = { symbol = \"BTC\", decimals = 8 }\n",
        )
        .unwrap();
        let e = c.explorers().unwrap();
        let get = |id: &str| e.get(&ChainId::parse(id).unwrap()).map(String::as_str);
        assert_eq!(
            get("bsc"),
            Some("https://bscscan.com/tx/{txid}"),
            "catalogue"
        );
        assert_eq!(
            get("eth"),
            Some("https://eth.example/t/{txid}"),
            "configured"
        );
        assert_eq!(
            get("btc"),
            Some("https://mempool.space/tx/{txid}"),
            "bitcoin"
        );
        assert_eq!(get("reg"), None, "no explorer for regtest");
        for bad in ["https://x.example/tx/", "ftp://x.example/{txid}", "{txid}"] {
            let err = Config::from_toml_str(&format!(
                "[[chains]]\nid = \"bsc\"\nexplorer_tx = \"{bad}\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("chains[0].explorer_tx"), "{bad}: {err}");
        }
    }

    #[test]
    fn chain_config_builds_registry() {
        let c = Config::from_toml_str(
            "[[chains]]\nid = \"bsc\"\nkind = \"evm\"\nconfirmations = 15\nnative = { symbol = \"BNB\", decimals = 18 }\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"0x55d398326f99059fF775485246999027B3197955\"\ndecimals = 18\n",
        )
        .unwrap();
        let r = c.registry().unwrap();
        let usdt = r.asset(&"bsc:USDT".parse().unwrap()).unwrap();
        assert!(usdt.usd_stablecoin);
        assert_eq!(usdt.display_decimals, 4);
        let bnb = r.asset(&"bsc:BNB".parse().unwrap()).unwrap();
        assert_eq!(bnb.display_decimals, 6);
        let err = Config::from_toml_str(
            "[[chains]]\nid = \"btc\"\nkind = \"bitcoin\"\nnative = { symbol = \"BTC\", decimals = 8, display_decimals = 9 }",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("chains[0].native.display_decimals"), "{err}");
        assert_eq!(
            r.chain(&ChainId::parse("bsc").unwrap())
                .unwrap()
                .confirmations,
            15
        );
    }

    #[test]
    fn rate_sources_config() {
        let c = Config::from_toml_str("").unwrap();
        assert!(c.rates_settings().unwrap().is_none(), "offline by default");
        let c = Config::from_toml_str(
            "[rates]\nsources = [\"kraken\", \"coinbase\", \"binance\", \"ecb\"]\nmax_deviation_percent = 3\nmax_age = \"30s\"\nbase_urls = { kraken = \"http://127.0.0.1:9/k\" }\n[[chains]]\nid = \"eth\"\nkind = \"evm\"\nnative = { symbol = \"ETH\", decimals = 18 }",
        )
        .unwrap();
        let s = c.rates_settings().unwrap().unwrap();
        assert_eq!(s.sources.len(), 4);
        assert_eq!(s.quorum, 2);
        assert_eq!(s.max_deviation_percent, Decimal::from(3));
        assert_eq!(s.max_age, time::Duration::seconds(30));
        // `eth` is in the built-in EVM catalogue, which adds its USDT and USDC.
        assert_eq!(
            s.symbols,
            vec!["ETH".to_owned(), "USDC".to_owned(), "USDT".to_owned()]
        );
        assert_eq!(
            s.base_urls
                .get(&coffer_rates::Provider::Kraken)
                .map(String::as_str),
            Some("http://127.0.0.1:9/k")
        );
        let c = Config::from_toml_str("[rates]\nsources = [\"kraken\"]").unwrap();
        assert_eq!(c.rates_settings().unwrap().unwrap().quorum, 1);
        for (toml, key) in [
            ("[rates]\nsources = [\"bitstamp\"]", "rates.sources[0]"),
            (
                "[rates]\nsources = [\"kraken\", \"kraken\"]",
                "rates.sources[1]",
            ),
            (
                "[rates]\nsources = [\"fixed\", \"kraken\"]",
                "rates.sources",
            ),
            ("[rates]\nsources = [\"ecb\"]", "rates.sources"),
            ("[rates]\nsources = []", "rates.sources"),
            (
                "[rates]\nsources = [\"kraken\"]\nquorum = 2",
                "rates.quorum",
            ),
            (
                "[rates]\nsources = [\"kraken\"]\nmax_deviation_percent = \"0\"",
                "rates.max_deviation_percent",
            ),
            (
                "[rates]\nmax_deviation_percent = \"two\"",
                "max_deviation_percent",
            ),
            (
                "[rates]\nsources = [\"kraken\"]\nmax_age = \"0s\"",
                "rates.max_age",
            ),
            (
                "[rates]\nbase_urls = { bitstamp = \"http://x\" }",
                "rates.base_urls.bitstamp",
            ),
            (
                "[rates]\nbase_urls = { kraken = \"ftp://x\" }",
                "rates.base_urls.kraken",
            ),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml:?} → {err}");
        }
    }

    /// `[rates.fixed]` spells out only what it must: inverses, crosses through USD (with
    /// a fixed fiat pair or the ECB) and the declared stablecoin peg are derived.
    #[test]
    fn fixed_table_derives_what_it_can() {
        use coffer_core::RateSource;
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let chain = "[[chains]]\nid = \"bsc\"\nkind = \"evm\"\nnative = { symbol = \"BNB\", decimals = 18 }\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"0x55d398326f99059fF775485246999027B3197955\"\ndecimals = 18\nusd_stablecoin = true\n";
        let c = Config::from_toml_str(&format!(
            "[rates]\nusd_stablecoin_peg = true\n[rates.fixed]\n\"ETH/USD\" = \"3000\"\n\"CNY/USD\" = \"0.125\"\n{chain}"
        ))
        .unwrap();
        assert!(c.uses_fixed_rates());
        assert!(c.rates_settings().unwrap().is_none(), "no provider needed");
        let t = c.fixed_rates().unwrap();
        let q = |b: &str, q: &str| {
            let quote = t.quote(b, q, now).unwrap();
            (quote.price.get().to_string(), quote.source)
        };
        assert_eq!(
            q("ETH", "CNY"),
            ("24000".into(), "fixed:ETH/USD÷fixed:CNY/USD".into())
        );
        assert_eq!(q("USD", "CNY"), ("8".into(), "1÷fixed:CNY/USD".into()));
        assert_eq!(q("USDT", "USD"), ("1".into(), "peg:USDT/USD".into()));
        assert_eq!(
            q("USDT", "CNY"),
            ("8".into(), "peg:USDT/USD÷fixed:CNY/USD".into())
        );
        // without the declaration, no peg
        let c = Config::from_toml_str(&format!("[rates.fixed]\n\"ETH/USD\" = \"3000\"\n{chain}"))
            .unwrap();
        assert!(c.fixed_rates().unwrap().quote("USDT", "USD", now).is_err());
        // the ECB may join the fixed table: it is refreshed for the fiat legs only
        let c = Config::from_toml_str("[rates]\nsources = [\"fixed\", \"ecb\"]").unwrap();
        let s = c.rates_settings().unwrap().unwrap();
        assert_eq!(s.sources, vec![coffer_rates::Provider::Ecb]);
        assert!(c.uses_fixed_rates());
        for (toml, key) in [
            (
                "[rates.fixed]\n\"BTC/USD\" = \"60000\"\n\"USD/BTC\" = \"0.00002\"",
                "rates.fixed.\"USD/BTC\"",
            ),
            (
                "[rates.fixed]\n\"BTC/USD\" = \"60000\"\n\"btc/usd\" = \"60001\"",
                "rates.fixed.\"btc/usd\"",
            ),
            (
                "[rates.fixed]\n\"USD/usd\" = \"1\"",
                "rates.fixed.\"USD/usd\"",
            ),
            (
                "[rates]\nsources = [\"kraken\"]\nusd_stablecoin_peg = true",
                "rates.usd_stablecoin_peg",
            ),
            (
                "[rates]\nsources = [\"fixed\", \"coinbase\", \"ecb\"]",
                "rates.sources",
            ),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml:?} → {err}");
        }
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
}
