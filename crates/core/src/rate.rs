//! Exchange rates as the core sees them: a synchronous lookup in a snapshot.
//!
//! Fetching rates is I/O and lives in the `rates` crate, which refreshes snapshots in the
//! background; pricing an order only reads one. Keeping the trait synchronous keeps pricing
//! pure and fast, and makes a rate outage an explicit error at the moment of pricing.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::money::Price;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// No (fresh enough) rate: the order cannot be priced. Never answered with a stale value.
    #[error("no rate available for {base}/{quote}")]
    Unavailable { base: String, quote: String },
}

/// A price with its provenance, as locked onto an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub price: Price,
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Where prices come from. `base` is an asset symbol (`BTC`, `USDT`), `quote` a currency code
/// (`USD`, `EUR`, or another symbol).
pub trait RateSource: Send + Sync {
    fn quote(&self, base: &str, quote: &str, now: OffsetDateTime) -> Result<Quote, RateError>;

    /// Freshness of the providers behind this source, for readiness reports. `None` for
    /// sources that cannot go stale (the fixed table).
    fn health(&self, _now: OffsetDateTime) -> Option<RatesHealth> {
        None
    }
}

/// How fresh a market-backed rate source is (`/readyz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatesHealth {
    /// Enough fresh providers to meet the quorums: new orders can be priced.
    pub ready: bool,
    pub sources: Vec<SourceHealth>,
}

/// One provider's state as last seen by the refresher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceHealth {
    pub name: String,
    /// `crypto` or `fiat`.
    pub kind: String,
    /// Its last answer is within the staleness limit.
    pub fresh: bool,
    /// Seconds since its last successful answer; `None` before the first one.
    pub age_seconds: Option<i64>,
    pub consecutive_errors: u32,
    pub last_error: Option<String>,
}

/// Rates from configuration: the offline default, and what tests use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedRates {
    /// `(BASE, QUOTE) → price`, both upper case.
    prices: BTreeMap<(String, String), Price>,
}

impl FixedRates {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, base: &str, quote: &str, price: Price) -> Self {
        self.insert(base, quote, price);
        self
    }

    pub fn insert(&mut self, base: &str, quote: &str, price: Price) {
        self.prices.insert(
            (base.to_ascii_uppercase(), quote.to_ascii_uppercase()),
            price,
        );
    }

    pub fn len(&self) -> usize {
        self.prices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

impl RateSource for FixedRates {
    fn quote(&self, base: &str, quote: &str, now: OffsetDateTime) -> Result<Quote, RateError> {
        let base_u = base.to_ascii_uppercase();
        let quote_u = quote.to_ascii_uppercase();
        if base_u == quote_u {
            return Ok(Quote {
                price: Price::new(Decimal::ONE).map_err(|_| unavailable(base, quote))?,
                source: "identity".into(),
                at: now,
            });
        }
        self.prices
            .get(&(base_u, quote_u))
            .map(|price| Quote {
                price: *price,
                source: "fixed".into(),
                at: now,
            })
            .ok_or_else(|| unavailable(base, quote))
    }
}

fn unavailable(base: &str, quote: &str) -> RateError {
    RateError::Unavailable {
        base: base.chars().take(16).collect(),
        quote: quote.chars().take(16).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use time::macros::datetime;

    #[test]
    fn fixed_rates_lookup() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let rates =
            FixedRates::new().with("btc", "usd", Price::new(Decimal::from(50_000)).unwrap());
        let q = rates.quote("BTC", "USD", now).unwrap();
        assert_eq!(q.price.get(), Decimal::from(50_000));
        assert_eq!(q.source, "fixed");
        assert!(matches!(
            rates.quote("ETH", "USD", now),
            Err(RateError::Unavailable { .. })
        ));
        // no silent inversion: USD/BTC is not derived from BTC/USD
        assert!(rates.quote("USD", "BTC", now).is_err());
        let same = rates.quote("USDT", "usdt", now).unwrap();
        assert_eq!(same.price.get(), Decimal::from_str("1").unwrap());
    }
}
