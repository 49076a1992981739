//! The offline price table (`[rates.fixed]`) and what follows from it.
//!
//! The operator writes the prices it wants (`"ETH/USD" = "3000"`); the table also answers
//!
//! - the **inverse** of a configured pair: `USD/ETH = 1 ÷ ETH/USD`;
//! - a **cross through USD**: `ETH/CNY = ETH/USD × USD/CNY`, each leg being a configured pair
//!   or its inverse, the 1:1 **peg** of a USD stablecoin when the operator declared it
//!   (`rates.usd_stablecoin_peg`), or — for a fiat currency — the **fiat source** (ECB) when it
//!   is enabled beside the table.
//!
//! A configured pair always wins over a derivation, a configured leg over the peg and the
//! fiat source. One pivot only (USD): `ETH/CNY` is not derived from `ETH/EUR` and `EUR/CNY`.
//!
//! Exact arithmetic: a derived price is one fraction of the legs' exact decimal values
//! (`num ÷ den`, each side a product of at most two legs) rounded **once** to
//! [`PRICE_SIGNIFICANT_DIGITS`] significant digits, half to even — the rounding the market
//! rates use. A configured pair is used as written. The fiat source's `USD/X` leg is itself
//! rounded like every market cross.
//!
//! Every price says where it came from (the order's locked `rate.source`):
//! `fixed:ETH/USD`, `1÷fixed:CNY/USD`, `fixed:ETH/USD×ecb:USD/CNY`, `fixed:ETH/USD÷peg:USDT/USD`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use coffer_core::{Price, Quote, RateError, RateSource, RatesHealth};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::AggregatedRates;
use crate::aggregate::round_price;

/// The currency crosses go through.
const PIVOT: &str = "USD";

/// The fixed table with its derivations. See the module documentation.
#[derive(Default)]
pub struct FixedTable {
    /// `(BASE, QUOTE) → price` as configured, upper case.
    prices: BTreeMap<(String, String), Price>,
    /// USD stablecoins priced at exactly 1 USD (only when the operator declares the peg).
    pegged: BTreeSet<String>,
    /// The fiat source (ECB) giving `USD/X` legs, when enabled beside the table.
    fiat: Option<Arc<AggregatedRates>>,
}

/// A pair the table cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixedTableError {
    #[error("{0} is configured twice")]
    Duplicate(String),
    #[error("its inverse {0} is configured too: write one direction, the other is derived")]
    BothDirections(String),
    #[error("base and quote are the same currency")]
    SameCurrency,
}

/// One side of a cross through USD: `value` is `X/USD`, or `USD/X` when `per_usd`.
struct Leg {
    value: Decimal,
    explain: String,
    per_usd: bool,
    at: Option<OffsetDateTime>,
}

impl FixedTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a configured price. A pair given twice (in any letter case) or in both directions
    /// is refused: the second would silently contradict the first or its derived inverse.
    pub fn insert(&mut self, base: &str, quote: &str, price: Price) -> Result<(), FixedTableError> {
        let (b, q) = (base.to_ascii_uppercase(), quote.to_ascii_uppercase());
        if b == q {
            return Err(FixedTableError::SameCurrency);
        }
        if self.prices.contains_key(&(q.clone(), b.clone())) {
            return Err(FixedTableError::BothDirections(format!("{q}/{b}")));
        }
        if self.prices.contains_key(&(b.clone(), q.clone())) {
            return Err(FixedTableError::Duplicate(format!("{b}/{q}")));
        }
        self.prices.insert((b, q), price);
        Ok(())
    }

    /// Declare the 1:1 USD peg of these USD stablecoins (symbols).
    pub fn with_peg<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, symbols: I) -> Self {
        self.pegged
            .extend(symbols.into_iter().map(|s| s.as_ref().to_ascii_uppercase()));
        self
    }

    /// Take `USD/X` legs of fiat currencies from these providers (their fiat sources).
    pub fn with_fiat(mut self, fiat: Arc<AggregatedRates>) -> Self {
        self.fiat = Some(fiat);
        self
    }

    /// Configured pairs.
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }

    fn configured(&self, base: &str, quote: &str) -> Option<Decimal> {
        self.prices
            .get(&(base.to_owned(), quote.to_owned()))
            .map(|p| p.get())
    }

    /// `X` against USD: a configured pair in either direction, the peg, or the fiat source.
    fn leg(&self, x: &str, now: OffsetDateTime) -> Option<Leg> {
        let fixed = |per_usd: bool, value: Decimal, pair: String| Leg {
            value,
            explain: format!("fixed:{pair}"),
            per_usd,
            at: None,
        };
        if let Some(v) = self.configured(x, PIVOT) {
            return Some(fixed(false, v, format!("{x}/{PIVOT}")));
        }
        if let Some(v) = self.configured(PIVOT, x) {
            return Some(fixed(true, v, format!("{PIVOT}/{x}")));
        }
        if self.pegged.contains(x) {
            return Some(Leg {
                value: Decimal::ONE,
                explain: format!("peg:{x}/{PIVOT}"),
                per_usd: false,
                at: None,
            });
        }
        if coffer_core::fiat::fiat_currency(x).is_some()
            && let Some(fiat) = &self.fiat
            && let Some(leg) = fiat.usd_per(x, now)
        {
            return Some(Leg {
                value: leg.value,
                explain: format!("{}:{PIVOT}/{x}", leg.sources_label()),
                per_usd: true,
                at: Some(leg.at),
            });
        }
        None
    }

    /// `base/quote` and its explanation, or `None` when nothing configured leads to it.
    fn derive(&self, base: &str, quote: &str, now: OffsetDateTime) -> Option<Quote> {
        if let Some(v) = self.configured(base, quote) {
            return Some(Quote {
                price: Price::new(v).ok()?,
                source: format!("fixed:{base}/{quote}"),
                at: now,
            });
        }
        if let Some(v) = self.configured(quote, base) {
            return Some(Quote {
                price: Price::new(round_price(Decimal::ONE.checked_div(v)?)).ok()?,
                source: format!("1÷fixed:{quote}/{base}"),
                at: now,
            });
        }
        // BASE/QUOTE = BASE/USD × USD/QUOTE, as one fraction num ÷ den.
        let b = if base == PIVOT {
            None
        } else {
            Some(self.leg(base, now)?)
        };
        let q = if quote == PIVOT {
            None
        } else {
            Some(self.leg(quote, now)?)
        };
        let (mut num, mut den) = (Decimal::ONE, Decimal::ONE);
        let mut explain = String::new();
        let mut at = now;
        if let Some(l) = &b {
            if l.per_usd {
                den = den.checked_mul(l.value)?;
                explain = format!("1÷{}", l.explain);
            } else {
                num = num.checked_mul(l.value)?;
                explain.clone_from(&l.explain);
            }
            at = at.min(l.at.unwrap_or(now));
        }
        if let Some(l) = &q {
            if l.per_usd {
                num = num.checked_mul(l.value)?;
            } else {
                den = den.checked_mul(l.value)?;
            }
            explain = match (explain.is_empty(), l.per_usd) {
                (true, true) => l.explain.clone(),
                (true, false) => format!("1÷{}", l.explain),
                (false, true) => format!("{explain}×{}", l.explain),
                (false, false) => format!("{explain}÷{}", l.explain),
            };
            at = at.min(l.at.unwrap_or(now));
        }
        let value = round_price(num.checked_div(den)?);
        Some(Quote {
            price: Price::new(value).ok()?,
            source: explain,
            at,
        })
    }
}

impl RateSource for FixedTable {
    fn quote(&self, base: &str, quote: &str, now: OffsetDateTime) -> Result<Quote, RateError> {
        let (b, q) = (base.to_ascii_uppercase(), quote.to_ascii_uppercase());
        let unavailable = || RateError::Unavailable {
            base: base.chars().take(16).collect(),
            quote: quote.chars().take(16).collect(),
        };
        if b == q {
            return Ok(Quote {
                price: Price::new(Decimal::ONE).map_err(|_| unavailable())?,
                source: "identity".into(),
                at: now,
            });
        }
        self.derive(&b, &q, now).ok_or_else(unavailable)
    }

    /// The fiat source's freshness when one is enabled; the table itself cannot go stale.
    fn health(&self, now: OffsetDateTime) -> Option<RatesHealth> {
        self.fiat.as_ref().and_then(|f| f.health(now))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn table(pairs: &[(&str, &str, &str)]) -> FixedTable {
        let mut t = FixedTable::new();
        for (b, q, p) in pairs {
            t.insert(b, q, Price::new(d(p)).unwrap()).unwrap();
        }
        t
    }

    fn get(t: &FixedTable, b: &str, q: &str) -> (Decimal, String) {
        let quote = t.quote(b, q, NOW).unwrap();
        (quote.price.get(), quote.source)
    }

    #[test]
    fn configured_pairs_are_used_as_written() {
        let t = table(&[("eth", "usd", "3000.123456789012345")]);
        assert_eq!(
            get(&t, "ETH", "USD"),
            (d("3000.123456789012345"), "fixed:ETH/USD".into())
        );
        assert_eq!(get(&t, "usdt", "USDT").1, "identity");
        assert!(t.quote("BTC", "USD", NOW).is_err());
    }

    #[test]
    fn inverse_is_derived_and_rounded_once() {
        let t = table(&[("CNY", "USD", "0.1375")]);
        // 1 / 0.1375 = 7.272727…, 12 significant digits, half to even
        assert_eq!(
            get(&t, "USD", "CNY"),
            (d("7.27272727273"), "1÷fixed:CNY/USD".into())
        );
    }

    #[test]
    fn cross_through_usd_with_configured_legs() {
        let t = table(&[("ETH", "USD", "3000"), ("USD", "CNY", "7.25")]);
        assert_eq!(
            get(&t, "ETH", "CNY"),
            (d("21750"), "fixed:ETH/USD×fixed:USD/CNY".into())
        );
        // the other direction of the same cross
        assert_eq!(
            get(&t, "CNY", "ETH"),
            (
                round_price(d("1") / d("21750")),
                "1÷fixed:USD/CNY÷fixed:ETH/USD".into()
            )
        );
        let t = table(&[("ETH", "USD", "3000"), ("CNY", "USD", "0.125")]);
        assert_eq!(
            get(&t, "ETH", "CNY"),
            (d("24000"), "fixed:ETH/USD÷fixed:CNY/USD".into())
        );
    }

    #[test]
    fn configured_pair_wins_over_the_cross() {
        let t = table(&[
            ("ETH", "USD", "3000"),
            ("USD", "CNY", "7"),
            ("ETH", "CNY", "20000"),
        ]);
        assert_eq!(get(&t, "ETH", "CNY"), (d("20000"), "fixed:ETH/CNY".into()));
    }

    #[test]
    fn the_peg_only_when_declared() {
        let t = table(&[("ETH", "USD", "3000"), ("USD", "CNY", "7.2")]);
        assert!(t.quote("USDT", "USD", NOW).is_err());
        assert!(t.quote("USDT", "CNY", NOW).is_err());
        let t = t.with_peg(["USDT", "usdc"]);
        assert_eq!(get(&t, "USDT", "USD"), (d("1"), "peg:USDT/USD".into()));
        assert_eq!(
            get(&t, "USDC", "CNY"),
            (d("7.2"), "peg:USDC/USD×fixed:USD/CNY".into())
        );
        assert_eq!(
            get(&t, "ETH", "USDT"),
            (d("3000"), "fixed:ETH/USD÷peg:USDT/USD".into())
        );
        assert!(t.quote("DAI", "USD", NOW).is_err(), "only declared symbols");
        // a configured stablecoin price wins over the peg
        let mut t = t;
        t.insert("USDT", "USD", Price::new(d("0.998")).unwrap())
            .unwrap();
        assert_eq!(
            get(&t, "USDT", "USD"),
            (d("0.998"), "fixed:USDT/USD".into())
        );
    }

    #[test]
    fn contradictions_are_refused() {
        let mut t = table(&[("BTC", "USD", "60000")]);
        let p = Price::new(d("1")).unwrap();
        assert_eq!(
            t.insert("usd", "btc", p),
            Err(FixedTableError::BothDirections("BTC/USD".into()))
        );
        assert_eq!(
            t.insert("btc", "usd", p),
            Err(FixedTableError::Duplicate("BTC/USD".into()))
        );
        assert_eq!(
            t.insert("usd", "USD", p),
            Err(FixedTableError::SameCurrency)
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn no_second_pivot() {
        let t = table(&[("ETH", "EUR", "2800"), ("EUR", "CNY", "7.8")]);
        assert!(t.quote("ETH", "CNY", NOW).is_err());
    }

    /// A positive decimal with up to 10 significant digits, from 10⁻⁶ to 10⁸.
    fn price() -> impl Strategy<Value = Decimal> {
        (1i64..10_000_000_000, 0u32..=16)
            .prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
            .prop_filter("within range", |v| {
                *v >= d("0.000001") && *v <= d("100000000")
            })
    }

    fn rel_diff(a: Decimal, b: Decimal) -> Decimal {
        ((a - b) / b).abs()
    }

    proptest! {
        /// A pair times its derived inverse is 1 within one rounding (5·10⁻¹²).
        #[test]
        fn inverse_consistency(p in price()) {
            let t = table(&[("ETH", "USD", &p.to_string())]);
            let (inv, _) = get(&t, "USD", "ETH");
            prop_assert!(rel_diff(p * inv, Decimal::ONE) <= d("0.000000000005"));
        }

        /// A cross equals the product of its legs within one rounding, and a cross times its
        /// inverse cross is 1 within two.
        #[test]
        fn cross_consistency(a in price(), f in price(), inverted in any::<bool>()) {
            let fiat_leg = if inverted { ("CNY", "USD") } else { ("USD", "CNY") };
            let t = table(&[("ETH", "USD", &a.to_string()), (fiat_leg.0, fiat_leg.1, &f.to_string())]);
            let (cross, _) = get(&t, "ETH", "CNY");
            let exact = if inverted { a / f } else { a * f };
            prop_assert!(rel_diff(cross, exact) <= d("0.000000000005"), "{cross} vs {exact}");
            let (back, _) = get(&t, "CNY", "ETH");
            prop_assert!(rel_diff(cross * back, Decimal::ONE) <= d("0.000000000011"));
            // the legs as the table answers them, multiplied, agree with the cross
            let (eth_usd, _) = get(&t, "ETH", "USD");
            let (usd_cny, _) = get(&t, "USD", "CNY");
            prop_assert!(rel_diff(eth_usd * usd_cny, cross) <= d("0.000000000011"));
        }
    }
}
