//! Clients for the public ticker endpoints of each provider.
//!
//! Every client turns the provider's documented response into [`Observation`]s — a price of
//! one unit of `base` in `quote`, exact `Decimal` parsed from the JSON text (never through a
//! float), with the provider's own timestamp when it gives one.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// The providers Coffer can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    CoinGecko,
    Binance,
    Kraken,
    Coinbase,
    Okx,
    /// European Central Bank daily euro foreign exchange reference rates (fiat).
    Ecb,
}

impl Provider {
    pub const ALL: [Provider; 6] = [
        Provider::CoinGecko,
        Provider::Binance,
        Provider::Kraken,
        Provider::Coinbase,
        Provider::Okx,
        Provider::Ecb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::CoinGecko => "coingecko",
            Provider::Binance => "binance",
            Provider::Kraken => "kraken",
            Provider::Coinbase => "coinbase",
            Provider::Okx => "okx",
            Provider::Ecb => "ecb",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::CoinGecko => "https://api.coingecko.com",
            Provider::Binance => "https://api.binance.com",
            Provider::Kraken => "https://api.kraken.com",
            Provider::Coinbase => "https://api.coinbase.com",
            Provider::Okx => "https://www.okx.com",
            Provider::Ecb => "https://www.ecb.europa.eu",
        }
    }

    /// Fiat sources give the fiat cross table; the others give crypto prices.
    pub fn is_fiat(self) -> bool {
        matches!(self, Provider::Ecb)
    }
}

/// One price as a provider stated it: 1 `base` = `price` `quote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub base: String,
    pub quote: String,
    pub price: Decimal,
    /// When the provider says the price was current (its own timestamp, never later than
    /// when we received it), or when we received it if it gives none.
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("rate limited (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("timed out")]
    Timeout,
    #[error("request failed: {0}")]
    Transport(String),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("provider error: {0}")]
    Provider(String),
    #[error("stale data: {0}")]
    Stale(String),
}

impl FetchError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::RateLimited { .. } => "rate_limited",
            FetchError::Status(_) => "http_status",
            FetchError::Timeout => "timeout",
            FetchError::Transport(_) => "transport",
            FetchError::Malformed(_) => "malformed",
            FetchError::Provider(_) => "provider",
            FetchError::Stale(_) => "stale",
        }
    }
}

/// The ECB publishes on TARGET business days only; across a weekend plus two holidays
/// (Good Friday, Easter Monday) the newest file is at most this old.
pub const ECB_MAX_PUBLICATION_AGE: time::Duration = time::Duration::days(5);

/// A client for one provider at one base URL.
#[derive(Debug, Clone)]
pub struct ProviderClient {
    pub provider: Provider,
    base_url: String,
    http: reqwest::Client,
}

/// Build the shared HTTP client: rustls with the ring provider, request timeout.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, FetchError> {
    // Installing twice fails harmlessly; whichever ring provider is installed first is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Transport(e.to_string()))
}

impl ProviderClient {
    pub fn new(provider: Provider, base_url: &str, http: reqwest::Client) -> Self {
        Self {
            provider,
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// Prices of `symbols` (upper-case asset symbols) in the provider's own quote currency
    /// (USD or USDT; EUR crosses for the ECB, which ignores `symbols`). Symbols the provider
    /// does not list are skipped; any transport or provider failure fails the whole fetch, so
    /// a snapshot is never half old, half new.
    pub async fn fetch(&self, symbols: &[String]) -> Result<Vec<Observation>, FetchError> {
        let received = OffsetDateTime::now_utc();
        let observations = match self.provider {
            Provider::CoinGecko => self.coingecko(symbols, received).await,
            Provider::Binance => self.binance(symbols, received).await,
            Provider::Kraken => self.kraken(symbols, received).await,
            Provider::Coinbase => self.coinbase(symbols, received).await,
            Provider::Okx => self.okx(symbols, received).await,
            Provider::Ecb => self.ecb(received).await,
        }?;
        // An answer without a single price (a wrong base URL answering 404 to every pair) is
        // a failure, not a fresh empty snapshot.
        if observations.is_empty() && (self.provider.is_fiat() || !symbols.is_empty()) {
            return Err(FetchError::Provider(
                "no price for any requested asset".into(),
            ));
        }
        Ok(observations)
    }

    async fn get(&self, path_and_query: &str) -> Result<(u16, String), FetchError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let response = self.http.get(&url).send().await.map_err(map_reqwest)?;
        let status = response.status().as_u16();
        if status == 429 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(FetchError::RateLimited { retry_after });
        }
        let body = response.text().await.map_err(map_reqwest)?;
        Ok((status, body))
    }

    async fn get_ok(&self, path_and_query: &str) -> Result<String, FetchError> {
        let (status, body) = self.get(path_and_query).await?;
        if !(200..300).contains(&status) {
            return Err(FetchError::Status(status));
        }
        Ok(body)
    }

    // https://docs.coingecko.com/v3.0.1/reference/simple-price
    async fn coingecko(
        &self,
        symbols: &[String],
        received: OffsetDateTime,
    ) -> Result<Vec<Observation>, FetchError> {
        let ids: Vec<(&String, &'static str)> = symbols
            .iter()
            .filter_map(|s| coingecko_id(s).map(|id| (s, id)))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<&str> = ids.iter().map(|(_, id)| *id).collect();
        let body = self
            .get_ok(&format!(
                "/api/v3/simple/price?ids={}&vs_currencies=usd&include_last_updated_at=true&precision=full",
                list.join(",")
            ))
            .await?;
        parse_coingecko(&body, &ids, received)
    }

    // https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#symbol-price-ticker
    async fn binance(
        &self,
        symbols: &[String],
        received: OffsetDateTime,
    ) -> Result<Vec<Observation>, FetchError> {
        // Without `symbols` Binance answers every ticker: one unknown symbol in a list would
        // fail the whole request with HTTP 400.
        let body = self.get_ok("/api/v3/ticker/price").await?;
        parse_binance(&body, symbols, received)
    }

    // https://docs.kraken.com/api/docs/rest-api/get-ticker-information
    async fn kraken(
        &self,
        symbols: &[String],
        received: OffsetDateTime,
    ) -> Result<Vec<Observation>, FetchError> {
        let pairs: Vec<(&String, String)> = symbols
            .iter()
            .filter_map(|s| kraken_code(s).map(|code| (s, format!("{code}USD"))))
            .collect();
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<&str> = pairs.iter().map(|(_, p)| p.as_str()).collect();
        let body = self
            .get_ok(&format!("/0/public/Ticker?pair={}", list.join(",")))
            .await?;
        parse_kraken(&body, &pairs, received)
    }

    // https://docs.cdp.coinbase.com/coinbase-app/track-apis/prices#get-spot-price
    async fn coinbase(
        &self,
        symbols: &[String],
        received: OffsetDateTime,
    ) -> Result<Vec<Observation>, FetchError> {
        let mut out = Vec::new();
        for symbol in symbols.iter().filter(|s| plain_symbol(s)) {
            let (status, body) = self.get(&format!("/v2/prices/{symbol}-USD/spot")).await?;
            match status {
                200..=299 => out.push(parse_coinbase(&body, symbol, received)?),
                // Coinbase answers 400/404 for a currency it does not list: skip the pair.
                400 | 404 => continue,
                other => return Err(FetchError::Status(other)),
            }
        }
        Ok(out)
    }

    // https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-ticker
    async fn okx(
        &self,
        symbols: &[String],
        received: OffsetDateTime,
    ) -> Result<Vec<Observation>, FetchError> {
        let mut out = Vec::new();
        for symbol in symbols.iter().filter(|s| plain_symbol(s) && *s != "USDT") {
            let body = self
                .get_ok(&format!("/api/v5/market/ticker?instId={symbol}-USDT"))
                .await?;
            if let Some(obs) = parse_okx(&body, symbol, received)? {
                out.push(obs);
            }
        }
        Ok(out)
    }

    // https://www.ecb.europa.eu/stats/policy_and_exchange_rates/euro_reference_exchange_rates/html/index.en.html
    async fn ecb(&self, received: OffsetDateTime) -> Result<Vec<Observation>, FetchError> {
        let body = self.get_ok("/stats/eurofxref/eurofxref-daily.xml").await?;
        parse_ecb(&body, received)
    }
}

fn map_reqwest(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        // Without the URL: base URLs may carry credentials of a paid plan.
        FetchError::Transport(e.without_url().to_string())
    }
}

/// Upper-case letters and digits only: safe in a URL path and a provider's symbol list.
fn plain_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 12
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A JSON number or numeric string, as an exact decimal (never through `f64`).
pub fn decimal_from_raw(raw: &RawValue) -> Result<Decimal, FetchError> {
    let text = raw.get().trim();
    let text: std::borrow::Cow<'_, str> = if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .map_err(|e| FetchError::Malformed(e.to_string()))?
            .into()
    } else {
        text.into()
    };
    decimal_from_str(&text)
}

pub fn decimal_from_str(text: &str) -> Result<Decimal, FetchError> {
    let text = text.trim();
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str(text)
    };
    match parsed {
        Ok(d) if d > Decimal::ZERO => Ok(d.normalize()),
        _ => Err(FetchError::Malformed(format!(
            "{:?} is not a positive price",
            text.chars().take(40).collect::<String>()
        ))),
    }
}

fn malformed(e: serde_json::Error) -> FetchError {
    FetchError::Malformed(e.to_string())
}

fn provider_time(received: OffsetDateTime, stated: Option<OffsetDateTime>) -> OffsetDateTime {
    stated.map_or(received, |t| t.min(received))
}

/// CoinGecko API ids of the coins Coffer knows (the API wants ids, not tickers).
pub fn coingecko_id(symbol: &str) -> Option<&'static str> {
    Some(match symbol {
        "BTC" => "bitcoin",
        "ETH" => "ethereum",
        "USDT" => "tether",
        "USDC" => "usd-coin",
        "DAI" => "dai",
        "BNB" => "binancecoin",
        "TRX" => "tron",
        "LTC" => "litecoin",
        "DOGE" => "dogecoin",
        "BCH" => "bitcoin-cash",
        "SOL" => "solana",
        "XRP" => "ripple",
        "POL" => "polygon-ecosystem-token",
        "AVAX" => "avalanche-2",
        "TON" => "the-open-network",
        "FDUSD" => "first-digital-usd",
        "PYUSD" => "paypal-usd",
        "TUSD" => "true-usd",
        _ => return None,
    })
}

/// Kraken's asset codes for the coins it lists against USD (an unknown pair fails Kraken's
/// whole request, so only these are asked for).
pub fn kraken_code(symbol: &str) -> Option<&'static str> {
    Some(match symbol {
        "BTC" => "XBT",
        "DOGE" => "XDG",
        "ETH" => "ETH",
        "USDT" => "USDT",
        "USDC" => "USDC",
        "DAI" => "DAI",
        "LTC" => "LTC",
        "BCH" => "BCH",
        "SOL" => "SOL",
        "XRP" => "XRP",
        "TRX" => "TRX",
        "POL" => "POL",
        "AVAX" => "AVAX",
        "TON" => "TON",
        "PYUSD" => "PYUSD",
        _ => return None,
    })
}

pub fn parse_coingecko(
    body: &str,
    ids: &[(&String, &'static str)],
    received: OffsetDateTime,
) -> Result<Vec<Observation>, FetchError> {
    let map: BTreeMap<String, BTreeMap<String, Box<RawValue>>> =
        serde_json::from_str(body).map_err(malformed)?;
    let mut out = Vec::new();
    for (symbol, id) in ids {
        let Some(entry) = map.get(*id) else { continue };
        let Some(raw) = entry.get("usd") else {
            continue;
        };
        let price = decimal_from_raw(raw)?;
        let stated = entry
            .get("last_updated_at")
            .map(|raw| {
                raw.get()
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                    .ok_or_else(|| FetchError::Malformed("bad last_updated_at".into()))
            })
            .transpose()?;
        out.push(Observation {
            base: (*symbol).clone(),
            quote: "USD".into(),
            price,
            at: provider_time(received, stated),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct BinanceTicker {
    symbol: String,
    price: String,
}

pub fn parse_binance(
    body: &str,
    symbols: &[String],
    received: OffsetDateTime,
) -> Result<Vec<Observation>, FetchError> {
    let tickers: Vec<BinanceTicker> = serde_json::from_str(body).map_err(malformed)?;
    let by_symbol: BTreeMap<&str, &str> = tickers
        .iter()
        .map(|t| (t.symbol.as_str(), t.price.as_str()))
        .collect();
    let mut out = Vec::new();
    for symbol in symbols.iter().filter(|s| plain_symbol(s)) {
        if symbol == "USDT" {
            continue;
        }
        if let Some(price) = by_symbol.get(format!("{symbol}USDT").as_str()) {
            out.push(Observation {
                base: symbol.clone(),
                quote: "USDT".into(),
                price: decimal_from_str(price)?,
                at: received,
            });
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct KrakenResponse {
    error: Vec<String>,
    #[serde(default)]
    result: BTreeMap<String, KrakenTicker>,
}

#[derive(Deserialize)]
struct KrakenTicker {
    /// Last trade closed: `[price, lot volume]`.
    c: Vec<String>,
}

pub fn parse_kraken(
    body: &str,
    pairs: &[(&String, String)],
    received: OffsetDateTime,
) -> Result<Vec<Observation>, FetchError> {
    let response: KrakenResponse = serde_json::from_str(body).map_err(malformed)?;
    if !response.error.is_empty() {
        return Err(FetchError::Provider(response.error.join("; ")));
    }
    let mut out = Vec::new();
    for (symbol, pair) in pairs {
        // Kraken answers under its canonical pair name: XBTUSD → XXBTZUSD, USDTUSD → USDTZUSD.
        let code = pair.trim_end_matches("USD");
        let names = [pair.clone(), format!("X{code}ZUSD"), format!("{code}ZUSD")];
        let Some(ticker) = names.iter().find_map(|n| response.result.get(n)) else {
            continue;
        };
        let price = ticker
            .c
            .first()
            .ok_or_else(|| FetchError::Malformed(format!("{pair}: no last trade price")))?;
        out.push(Observation {
            base: (*symbol).clone(),
            quote: "USD".into(),
            price: decimal_from_str(price)?,
            at: received,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct CoinbaseResponse {
    data: CoinbaseSpot,
}

#[derive(Deserialize)]
struct CoinbaseSpot {
    amount: String,
    base: String,
    currency: String,
}

pub fn parse_coinbase(
    body: &str,
    symbol: &str,
    received: OffsetDateTime,
) -> Result<Observation, FetchError> {
    let response: CoinbaseResponse = serde_json::from_str(body).map_err(malformed)?;
    if response.data.base != symbol || response.data.currency != "USD" {
        return Err(FetchError::Malformed(format!(
            "asked for {symbol}-USD, got {}-{}",
            response.data.base, response.data.currency
        )));
    }
    Ok(Observation {
        base: symbol.to_owned(),
        quote: "USD".into(),
        price: decimal_from_str(&response.data.amount)?,
        at: received,
    })
}

#[derive(Deserialize)]
struct OkxResponse {
    code: String,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    data: Vec<OkxTicker>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OkxTicker {
    inst_id: String,
    last: String,
    /// Milliseconds since the epoch, as a string.
    ts: String,
}

/// `None` when OKX does not list the instrument (code 51001).
pub fn parse_okx(
    body: &str,
    symbol: &str,
    received: OffsetDateTime,
) -> Result<Option<Observation>, FetchError> {
    let response: OkxResponse = serde_json::from_str(body).map_err(malformed)?;
    if response.code == "51001" {
        return Ok(None);
    }
    if response.code != "0" {
        return Err(FetchError::Provider(format!(
            "code {}: {}",
            response.code, response.msg
        )));
    }
    let want = format!("{symbol}-USDT");
    let Some(ticker) = response.data.iter().find(|t| t.inst_id == want) else {
        return Ok(None);
    };
    let ms: i128 = ticker
        .ts
        .parse()
        .map_err(|_| FetchError::Malformed(format!("bad ts {:?}", ticker.ts)))?;
    let stated = OffsetDateTime::from_unix_timestamp_nanos(ms.saturating_mul(1_000_000))
        .map_err(|_| FetchError::Malformed(format!("bad ts {:?}", ticker.ts)))?;
    Ok(Some(Observation {
        base: symbol.to_owned(),
        quote: "USDT".into(),
        price: decimal_from_str(&ticker.last)?,
        at: provider_time(received, Some(stated)),
    }))
}

/// The value of attribute `name` in one XML start tag (single or double quotes).
fn xml_attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0
            || rest[..i]
                .chars()
                .next_back()
                .is_some_and(char::is_whitespace);
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(after_eq) = after.strip_prefix('=') {
            let after_eq = after_eq.trim_start();
            let quote = after_eq.chars().next()?;
            if quote == '\'' || quote == '"' {
                let value = &after_eq[1..];
                return value.find(quote).map(|end| &value[..end]);
            }
        }
        rest = &rest[i + name.len()..];
    }
    None
}

/// The ECB's `eurofxref-daily.xml`: `<Cube time='YYYY-MM-DD'>` holding
/// `<Cube currency='USD' rate='1.0823'/>` (1 EUR = rate units). Observations are EUR/X, dated
/// when received; a file older than [`ECB_MAX_PUBLICATION_AGE`] is rejected as stale.
pub fn parse_ecb(body: &str, received: OffsetDateTime) -> Result<Vec<Observation>, FetchError> {
    let mut date = None;
    let mut out = Vec::new();
    for chunk in body.split("<Cube").skip(1) {
        let Some(end) = chunk.find('>') else {
            return Err(FetchError::Malformed("unterminated Cube tag".into()));
        };
        let tag = &chunk[..end];
        if let Some(t) = xml_attr(tag, "time") {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            date = Some(
                time::Date::parse(t, format)
                    .map_err(|_| FetchError::Malformed(format!("bad time {t:?}")))?,
            );
        }
        if let (Some(currency), Some(rate)) = (xml_attr(tag, "currency"), xml_attr(tag, "rate")) {
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(FetchError::Malformed(format!("bad currency {currency:?}")));
            }
            out.push(Observation {
                base: "EUR".into(),
                quote: currency.to_owned(),
                price: decimal_from_str(rate)?,
                at: received,
            });
        }
    }
    let Some(date) = date else {
        return Err(FetchError::Malformed(
            "no reference date (Cube time)".into(),
        ));
    };
    if out.is_empty() {
        return Err(FetchError::Malformed("no rates".into()));
    }
    if received.date() - date > ECB_MAX_PUBLICATION_AGE {
        return Err(FetchError::Stale(format!("reference rates of {date}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_never_go_through_floats() {
        let raw: Box<RawValue> =
            serde_json::from_str("0.1000000000000000055511151231257827").unwrap();
        assert_eq!(
            decimal_from_raw(&raw).unwrap().to_string(),
            "0.1000000000000000055511151231"
        );
        let raw: Box<RawValue> = serde_json::from_str("\"67187.33000000\"").unwrap();
        assert_eq!(decimal_from_raw(&raw).unwrap().to_string(), "67187.33");
        let raw: Box<RawValue> = serde_json::from_str("1.5e-5").unwrap();
        assert_eq!(decimal_from_raw(&raw).unwrap().to_string(), "0.000015");
        for bad in ["0", "-1", "\"abc\"", "null", "\"\""] {
            let raw: Box<RawValue> = serde_json::from_str(bad).unwrap();
            assert!(decimal_from_raw(&raw).is_err(), "{bad}");
        }
    }

    #[test]
    fn xml_attributes() {
        assert_eq!(
            xml_attr(" currency='USD' rate='1.0823'/", "rate"),
            Some("1.0823")
        );
        assert_eq!(xml_attr(" time=\"2026-11-20\"", "time"), Some("2026-11-20"));
        assert_eq!(xml_attr(" currency='USD'", "rate"), None);
        assert_eq!(xml_attr(" xrate='1' rate='2'", "rate"), Some("2"));
    }

    #[test]
    fn provider_names_roundtrip() {
        for p in Provider::ALL {
            assert_eq!(Provider::from_name(p.name()), Some(p));
        }
        assert_eq!(Provider::from_name("fixed"), None);
    }
}
