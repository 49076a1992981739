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

use coffer_core::{ChainId, Price};
use coffer_rail::RailChain;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

pub use coffer_rail::config::{ConfigDuration, ConfigError, Secret};

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
    /// After SIGTERM (or Ctrl-C), how long requests, deliveries and watcher steps still in
    /// progress may take before they are abandoned and the process exits.
    pub shutdown_timeout: ConfigDuration,
    pub http: HttpConfig,
    pub api: ApiConfig,
    pub checkout: CheckoutConfig,
    pub orders: OrdersConfig,
    pub rates: RatesConfig,
    /// `[[chains]]`: each entry is parsed by the rail of its `kind` (see `registry.rs`).
    pub chains: Vec<ChainEntry>,
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
            shutdown_timeout: ConfigDuration(time::Duration::seconds(10)),
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

/// One `[[chains]]` entry as written: its rail parses it into its typed config. `Debug`
/// shows only its `id` and `kind`: entries carry RPC URLs with API keys and node passwords.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ChainEntry(pub toml::Value);

impl fmt::Debug for ChainEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = |k: &str| self.0.get(k).and_then(toml::Value::as_str);
        f.debug_struct("ChainEntry")
            .field("id", &field("id"))
            .field("kind", &field("kind"))
            .finish_non_exhaustive()
    }
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, message)
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
        positive("shutdown_timeout", self.shutdown_timeout)?;
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
        // The watchers' keys (lag limits, RPC credentials) are checked by the rails.
        for chain in self.chains()? {
            chain.check_watch()?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| invalid("log_level", e.to_string()))?;
        self.fixed_rates()?;
        self.registry()?;
        self.explorers()?;
        self.rates_settings()?;
        Ok(())
    }

    /// The database as the start-up log names it: the PostgreSQL URL without its password
    /// and query (which may carry one), or the SQLite file.
    pub fn database_label(&self) -> String {
        match self.database_url.as_ref().map(|s| s.expose()) {
            Some(raw) => match url::Url::parse(raw) {
                Ok(mut u) => {
                    let _ = u.set_password(None);
                    u.set_query(None);
                    u.to_string()
                }
                Err(_) => "postgres (URL not shown: it does not parse)".to_owned(),
            },
            None => format!("sqlite {}", self.data_dir.join("coffer.db").display()),
        }
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

    /// The configured chains, each parsed and checked by its rail (`registry::rails()`).
    pub fn chains(&self) -> Result<Vec<Box<dyn RailChain>>, ConfigError> {
        let rails = crate::registry::rails();
        self.chains
            .iter()
            .enumerate()
            .map(|(i, entry)| coffer_rail::parse_chain(&rails, i, &entry.0))
            .collect()
    }

    #[cfg(test)]
    /// The entries of the chains of `kind`, with their index in `[[chains]]`.
    fn entries_of(
        &self,
        kind: coffer_core::ChainKind,
    ) -> Result<Vec<(usize, &toml::Value)>, ConfigError> {
        let rails = crate::registry::rails();
        let mut out = Vec::new();
        for (i, entry) in self.chains.iter().enumerate() {
            if coffer_rail::rail_for(&rails, i, &entry.0)?.kind() == kind {
                out.push((i, &entry.0));
            }
        }
        Ok(out)
    }

    /// Per chain, the explorer's transaction URL template for the checkout page: as
    /// configured, else the rail's default (the EVM catalogue's, mempool.space on Bitcoin
    /// mainnet and testnet). Regtest and unknown chains get no link.
    pub fn explorers(&self) -> Result<BTreeMap<ChainId, String>, ConfigError> {
        Ok(self
            .chains()?
            .iter()
            .filter_map(|c| Some((c.chain().id, c.explorer_tx()?)))
            .collect())
    }

    #[cfg(test)]
    /// What each EVM chain's watcher needs. Chains without `rpc` are configured for pricing
    /// only and not watched.
    pub fn evm_watchers(&self) -> Result<Vec<coffer_chain_evm::EvmWatchConfig>, ConfigError> {
        let mut out = Vec::new();
        for (i, entry) in self.entries_of(coffer_core::ChainKind::Evm)? {
            out.extend(coffer_chain_evm::EvmRailChain::parse(i, entry)?.watch_config()?);
        }
        Ok(out)
    }

    #[cfg(test)]
    /// What each Bitcoin chain's watcher needs. Chains without `rpc` are not watched.
    pub fn bitcoin_watchers(
        &self,
    ) -> Result<Vec<coffer_chain_bitcoin::BitcoinWatchConfig>, ConfigError> {
        let mut out = Vec::new();
        for (i, entry) in self.entries_of(coffer_core::ChainKind::Bitcoin)? {
            out.extend(coffer_chain_bitcoin::BitcoinRailChain::parse(i, entry)?.watch_config()?);
        }
        Ok(out)
    }

    /// Chains and assets as the engine sees them.
    pub fn registry(&self) -> Result<coffer_engine::AssetRegistry, ConfigError> {
        let chains = self.chains()?;
        coffer_engine::AssetRegistry::new(
            chains.iter().map(|c| c.chain()).collect(),
            chains.iter().flat_map(|c| c.assets()).collect(),
        )
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

# On SIGTERM, work in progress (requests, webhook deliveries, a watcher's step) gets this long
# to finish; then it is abandoned (uncommitted, so retried after a restart) and coffer exits.
shutdown_timeout = "10s"

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
# kind = "evm"                 # evm | bitcoin (may be left out for catalogue chains)
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
    use coffer_core::ChainKind;

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
        assert_eq!(c.shutdown_timeout.0, time::Duration::seconds(10));
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
            ("shutdown_timeout = \"0s\"", "shutdown_timeout"),
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
    fn the_start_up_summary_names_the_database_without_its_password() {
        let c = Config::from_toml_str(
            "database_url = \"postgres://coffer:hunter2@db.internal:5432/coffer?password=hunter3\"",
        )
        .unwrap();
        let shown = c.database_label();
        assert_eq!(shown, "postgres://coffer@db.internal:5432/coffer");
        let c = Config::from_toml_str("database_url = \"postgres://u:hunter2@[bad\"").unwrap();
        assert!(!c.database_label().contains("hunter2"));
        let c = Config::from_toml_str("data_dir = \"/var/lib/coffer\"").unwrap();
        assert_eq!(c.database_label(), "sqlite /var/lib/coffer/coffer.db");
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
        // a bad contract names its key, and stops start-up (`coffer check`)
        let err = Config::from_toml_str(
            "[[chains]]\nid = \"eth\"\nrpc = [\"http://127.0.0.1:1\"]\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"0x12\"\ndecimals = 6\n",
        )
        .unwrap_err()
        .to_string();
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
        // Mistakes name their key and stop start-up (`coffer check`).
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
    fn each_entry_goes_to_the_rail_of_its_kind() {
        let c = Config::from_toml_str(
            "[[chains]]\nid = \"mychain\"\nkind = \"evm\"\nchain_id = 777\nnative = { symbol = \"MYC\", decimals = 18 }\n[[chains]]\nid = \"btc\"\nkind = \"bitcoin\"\nnetwork = \"testnet\"\nnative = { symbol = \"BTC\", decimals = 8 }\n[[chains]]\nid = \"polygon\"\n[[chains]]\nid = \"bnb\"\nchain_id = 56\n",
        )
        .unwrap();
        let r = c.registry().unwrap();
        let kind = |id: &str| r.chain(&ChainId::parse(id).unwrap()).unwrap().kind;
        assert_eq!(kind("mychain"), ChainKind::Evm);
        assert_eq!(kind("btc"), ChainKind::Bitcoin);
        // Without `kind`: a catalogue chain, by id or by chain id, is EVM.
        assert_eq!(kind("polygon"), ChainKind::Evm);
        assert_eq!(kind("bnb"), ChainKind::Evm);
        let bnb = r.chain(&ChainId::parse("bnb").unwrap()).unwrap();
        assert_eq!(
            (bnb.evm_chain_id, bnb.name.as_str()),
            (Some(56), "BNB Smart Chain")
        );
        assert!(r.asset(&"polygon:USDT".parse().unwrap()).is_some());
        assert_eq!(c.chains().unwrap().len(), 4);
    }

    #[test]
    fn unknown_kinds_and_misplaced_keys_are_named() {
        let btc = "[[chains]]\nid = \"btc\"\nkind = \"bitcoin\"\nnative = { symbol = \"BTC\", decimals = 8 }\n";
        for (toml, key) in [
            (
                "[[chains]]\nid = \"eth\"\nrpc_cookie_file = \"/x/.cookie\"\n".to_owned(),
                "chains[0].rpc_cookie_file",
            ),
            (
                "[[chains]]\nid = \"mine\"\nkind = \"evm\"\nmempool = false\nnative = { symbol = \"M\", decimals = 18 }\n".to_owned(),
                "chains[0].mempool",
            ),
            (format!("[[chains]]\nid = \"eth\"\n{btc}chain_id = 1\n"), "chains[1].chain_id"),
            (format!("{btc}[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"x\"\ndecimals = 6\n"), "chains[0].tokens"),
            ("[[chains]]\nid = \"sol\"\nkind = \"solana\"\n".to_owned(), "chains[0].kind"),
            ("[[chains]]\nid = \"t\"\nkind = \"tron\"\nchain_id = 1\n".to_owned(), "chains[0].chain_id"),
            ("[[chains]]\nid = \"ln\"\nkind = \"lightning\"\n".to_owned(), "chains[0].kind"),
            ("[[chains]]\nid = \"mychain\"\nnative = { symbol = \"M\", decimals = 18 }\n".to_owned(), "chains[0].kind"),
            ("[[chains]]\nkind = \"evm\"\n".to_owned(), "chains[0].id"),
        ] {
            let err = Config::from_toml_str(&toml).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{key}: ")), "{toml:?} → {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
}
