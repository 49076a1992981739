//! Exchange rates from real providers for Coffer.
//!
//! [`AggregatedRates`] keeps one snapshot per provider, refreshed in the background by
//! [`AggregatedRates::run`] (one task per provider, with backoff on errors and HTTP 429).
//! Pricing reads the snapshots synchronously through core's [`RateSource`]: the rate of a
//! pair is the median of the providers whose answer is within the staleness limit, after
//! dropping outliers; fewer than the quorum is [`RateError::Unavailable`], never a stale
//! price. Fiat currencies other than USD are crossed through the fiat table (ECB):
//! `BTC/EUR = median(BTC/USD) × USD/EUR`. See `docs/rates.md`.

pub mod aggregate;
pub mod fixed;
pub mod provider;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use coffer_core::{Price, Quote, RateError, RateSource, RatesHealth, SourceHealth};
use rust_decimal::Decimal;
use time::OffsetDateTime;

pub use aggregate::{Aggregate, AggregateError, Candidate, PRICE_SIGNIFICANT_DIGITS};
pub use fixed::{FixedTable, FixedTableError};
pub use provider::{FetchError, Observation, Provider, ProviderClient};

use aggregate::round_price;

/// How rates are fetched and aggregated (`[rates]` in `coffer.toml`).
#[derive(Debug, Clone)]
pub struct RatesSettings {
    /// Enabled providers (crypto and fiat).
    pub sources: Vec<Provider>,
    /// Base URL per provider; the provider's public API when absent.
    pub base_urls: BTreeMap<Provider, String>,
    /// Fresh crypto sources needed for a price.
    pub quorum: usize,
    /// Fresh fiat sources needed for a cross rate.
    pub fiat_quorum: usize,
    /// A source further than this from the median (percent) is dropped.
    pub max_deviation_percent: Decimal,
    /// Staleness limit of a crypto price.
    pub max_age: time::Duration,
    /// Staleness limit of a fiat cross rate.
    pub fiat_max_age: time::Duration,
    pub refresh_interval: Duration,
    pub fiat_refresh_interval: Duration,
    /// Longest wait between attempts after repeated errors.
    pub max_backoff: Duration,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Asset symbols to fetch (USDT and USDC are always fetched: other quotes cross them).
    pub symbols: Vec<String>,
}

impl Default for RatesSettings {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            base_urls: BTreeMap::new(),
            quorum: 2,
            fiat_quorum: 1,
            max_deviation_percent: Decimal::from(2),
            max_age: time::Duration::seconds(60),
            fiat_max_age: time::Duration::hours(24),
            refresh_interval: Duration::from_secs(15),
            fiat_refresh_interval: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            symbols: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct SourceState {
    observations: BTreeMap<(String, String), Observation>,
    last_ok: Option<OffsetDateTime>,
    consecutive_errors: u32,
    last_error: Option<String>,
}

/// Rates from several providers: median of the fresh ones, quorum, outliers dropped.
pub struct AggregatedRates {
    settings: RatesSettings,
    clients: Vec<ProviderClient>,
    symbols: Vec<String>,
    state: RwLock<BTreeMap<Provider, SourceState>>,
}

/// A value derived from several sources, with its explanation and the oldest input's time.
#[derive(Debug, Clone)]
struct Derived {
    value: Decimal,
    explain: String,
    /// The sources the value came from (sorted by name).
    used: Vec<String>,
    at: OffsetDateTime,
}

/// `USD/X` of a fiat currency from the fiat sources, for the fixed table's crosses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiatLeg {
    pub value: Decimal,
    /// The fiat sources used (sorted by name).
    pub sources: Vec<String>,
    /// The oldest input's time.
    pub at: OffsetDateTime,
}

impl FiatLeg {
    /// `ecb` for one source, `median(a,b)` for several.
    pub fn sources_label(&self) -> String {
        match self.sources.as_slice() {
            [one] => one.clone(),
            many => format!("median({})", many.join(",")),
        }
    }
}

impl AggregatedRates {
    pub fn new(settings: RatesSettings) -> Result<Self, FetchError> {
        let http = provider::http_client(settings.timeout)?;
        let mut sources: Vec<Provider> = settings.sources.clone();
        sources.sort();
        sources.dedup();
        let clients = sources
            .iter()
            .map(|p| {
                let base = settings
                    .base_urls
                    .get(p)
                    .map_or(p.default_base_url(), String::as_str);
                ProviderClient::new(*p, base, http.clone())
            })
            .collect();
        let mut symbols: BTreeSet<String> = settings
            .symbols
            .iter()
            .map(|s| s.to_ascii_uppercase())
            .collect();
        symbols.insert("USDT".into());
        symbols.insert("USDC".into());
        let state = sources
            .iter()
            .map(|p| (*p, SourceState::default()))
            .collect();
        Ok(Self {
            settings,
            clients,
            symbols: symbols.into_iter().collect(),
            state: RwLock::new(state),
        })
    }

    pub fn settings(&self) -> &RatesSettings {
        &self.settings
    }

    /// The enabled providers.
    pub fn providers(&self) -> Vec<Provider> {
        self.clients.iter().map(|c| c.provider).collect()
    }

    /// Fetch one provider now and record the outcome (what the background task does).
    pub async fn refresh(&self, provider: Provider) -> Result<usize, FetchError> {
        let Some(client) = self.clients.iter().find(|c| c.provider == provider) else {
            return Err(FetchError::Provider(format!(
                "{} is not enabled",
                provider.name()
            )));
        };
        let result = client.fetch(&self.symbols).await;
        self.record(provider, result.clone(), OffsetDateTime::now_utc());
        result.map(|obs| obs.len())
    }

    /// Refresh every provider once, one after another.
    pub async fn refresh_all(&self) -> Vec<(Provider, Result<usize, FetchError>)> {
        let mut out = Vec::new();
        for p in self.providers() {
            out.push((p, self.refresh(p).await));
        }
        out
    }

    /// Record a fetch outcome: a success replaces the provider's snapshot; a failure keeps
    /// the old one (it ages out by the staleness limit) and counts the error.
    pub fn record(
        &self,
        provider: Provider,
        result: Result<Vec<Observation>, FetchError>,
        now: OffsetDateTime,
    ) {
        let name = provider.name();
        let Ok(mut state) = self.state.write() else {
            return;
        };
        let entry = state.entry(provider).or_default();
        match result {
            Ok(observations) => {
                metrics::counter!("coffer_rate_source_fetches_total", "source" => name)
                    .increment(1);
                metrics::gauge!("coffer_rate_source_up", "source" => name).set(1.0);
                entry.observations = observations
                    .into_iter()
                    .map(|o| ((o.base.clone(), o.quote.clone()), o))
                    .collect();
                entry.last_ok = Some(now);
                entry.consecutive_errors = 0;
                entry.last_error = None;
                tracing::debug!(
                    source = name,
                    prices = entry.observations.len(),
                    "rates refreshed"
                );
            }
            Err(e) => {
                metrics::counter!("coffer_rate_source_errors_total", "source" => name, "kind" => e.kind())
                    .increment(1);
                metrics::gauge!("coffer_rate_source_up", "source" => name).set(0.0);
                entry.consecutive_errors = entry.consecutive_errors.saturating_add(1);
                entry.last_error = Some(e.to_string());
                tracing::warn!(
                    source = name,
                    error = %e,
                    consecutive_errors = entry.consecutive_errors,
                    "rate source failed"
                );
            }
        }
    }

    /// Run one refresh loop per provider until `stop` turns true.
    pub async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for provider in self.providers() {
            let rates = self.clone();
            let stop = stop.clone();
            tasks.spawn(async move { rates.run_source(provider, stop).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn run_source(&self, provider: Provider, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = if provider.is_fiat() {
            self.settings.fiat_refresh_interval
        } else {
            self.settings.refresh_interval
        };
        loop {
            if *stop.borrow() {
                break;
            }
            let delay = match self.refresh(provider).await {
                Ok(_) => interval,
                Err(e) => {
                    let retry_after = match e {
                        FetchError::RateLimited { retry_after } => retry_after,
                        _ => None,
                    };
                    backoff_delay(
                        interval,
                        self.consecutive_errors(provider),
                        retry_after,
                        self.settings.max_backoff,
                    )
                }
            };
            self.publish_ages(OffsetDateTime::now_utc());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
    }

    fn consecutive_errors(&self, provider: Provider) -> u32 {
        self.state
            .read()
            .ok()
            .and_then(|s| s.get(&provider).map(|e| e.consecutive_errors))
            .unwrap_or(0)
    }

    fn publish_ages(&self, now: OffsetDateTime) {
        let Ok(state) = self.state.read() else { return };
        for (provider, entry) in state.iter() {
            if let Some(last) = entry.last_ok {
                let age = (now - last).as_seconds_f64();
                metrics::gauge!("coffer_rate_source_age_seconds", "source" => provider.name())
                    .set(age);
            }
        }
    }

    fn max_age(&self, provider: Provider) -> time::Duration {
        if provider.is_fiat() {
            self.settings.fiat_max_age
        } else {
            self.settings.max_age
        }
    }

    /// Fresh observations of `base/quote`, one per provider of the given kind.
    fn fresh(
        &self,
        state: &BTreeMap<Provider, SourceState>,
        fiat: bool,
        base: &str,
        quote: &str,
        now: OffsetDateTime,
    ) -> Vec<(Provider, Observation)> {
        state
            .iter()
            .filter(|(p, _)| p.is_fiat() == fiat)
            .filter_map(|(p, s)| {
                let o = s.observations.get(&(base.to_owned(), quote.to_owned()))?;
                (now - o.at <= self.max_age(*p)).then(|| (*p, o.clone()))
            })
            .collect()
    }

    fn aggregate(
        &self,
        pair: &str,
        inputs: Vec<(Provider, Decimal, OffsetDateTime)>,
        quorum: usize,
    ) -> Result<Derived, AggregateError> {
        let candidates: Vec<Candidate> = inputs
            .iter()
            .map(|(p, v, _)| Candidate {
                source: p.name().into(),
                value: *v,
            })
            .collect();
        let result = aggregate::aggregate(&candidates, quorum, self.settings.max_deviation_percent);
        if let Ok(agg) = &result {
            for c in &candidates {
                if let Some(dev) = aggregate::deviation_percent(c.value, agg.value) {
                    let dev: f64 = dev.try_into().unwrap_or(0.0);
                    metrics::gauge!("coffer_rate_source_deviation_percent", "source" => c.source.clone(), "pair" => pair.to_owned())
                        .set(dev);
                }
            }
            for (source, deviation) in &agg.dropped {
                metrics::counter!("coffer_rate_outliers_total", "source" => source.clone(), "pair" => pair.to_owned())
                    .increment(1);
                tracing::warn!(
                    source = %source,
                    pair,
                    deviation_percent = %deviation,
                    limit_percent = %self.settings.max_deviation_percent,
                    "rate outlier dropped"
                );
            }
        }
        let agg = result?;
        let at = inputs
            .iter()
            .filter(|(p, _, _)| agg.used.iter().any(|u| u == p.name()))
            .map(|(_, _, at)| *at)
            .min()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok(Derived {
            value: agg.value,
            explain: format!("median({})", agg.used.join(",")),
            used: agg.used,
            at,
        })
    }

    /// `symbol/USD` from the crypto providers. Providers quoting in USDT (Binance, OKX) are
    /// converted with the USDT/USD median of the providers that quote USD directly.
    fn crypto_usd(
        &self,
        state: &BTreeMap<Provider, SourceState>,
        symbol: &str,
        now: OffsetDateTime,
    ) -> Result<Derived, AggregateError> {
        let quorum = self.settings.quorum;
        let direct = |base: &str| -> Vec<(Provider, Decimal, OffsetDateTime)> {
            self.fresh(state, false, base, "USD", now)
                .into_iter()
                .map(|(p, o)| (p, o.price, o.at))
                .collect()
        };
        if symbol == "USDT" {
            return self.aggregate("USDT/USD", direct("USDT"), quorum);
        }
        let mut inputs = direct(symbol);
        let via_usdt = self.fresh(state, false, symbol, "USDT", now);
        let has_direct: BTreeSet<Provider> = inputs.iter().map(|(p, _, _)| *p).collect();
        let via_usdt: Vec<_> = via_usdt
            .into_iter()
            .filter(|(p, _)| !has_direct.contains(p))
            .collect();
        if !via_usdt.is_empty()
            && let Ok(usdt) = self.aggregate("USDT/USD", direct("USDT"), quorum)
        {
            for (p, o) in via_usdt {
                if let Some(v) = o.price.checked_mul(usdt.value) {
                    inputs.push((p, round_price(v), o.at.min(usdt.at)));
                }
            }
        }
        self.aggregate(&format!("{symbol}/USD"), inputs, quorum)
    }

    /// `USD/fiat` from the fiat providers (ECB: `EUR/fiat ÷ EUR/USD`).
    fn usd_to_fiat(
        &self,
        state: &BTreeMap<Provider, SourceState>,
        fiat: &str,
        now: OffsetDateTime,
    ) -> Result<Derived, AggregateError> {
        let eur_usd: BTreeMap<Provider, Observation> = self
            .fresh(state, true, "EUR", "USD", now)
            .into_iter()
            .collect();
        let mut inputs = Vec::new();
        if fiat == "EUR" {
            for (p, o) in &eur_usd {
                if let Some(v) = Decimal::ONE.checked_div(o.price) {
                    inputs.push((*p, round_price(v), o.at));
                }
            }
        } else {
            for (p, o) in self.fresh(state, true, "EUR", fiat, now) {
                let Some(usd) = eur_usd.get(&p) else { continue };
                if let Some(v) = o.price.checked_div(usd.price) {
                    inputs.push((p, round_price(v), o.at.min(usd.at)));
                }
            }
        }
        let mut derived =
            self.aggregate(&format!("USD/{fiat}"), inputs, self.settings.fiat_quorum)?;
        derived.explain = format!("{}:USD/{fiat}", derived.explain);
        Ok(derived)
    }

    fn quote_inner(&self, base: &str, quote: &str, now: OffsetDateTime) -> Option<Derived> {
        let state = self.state.read().ok()?;
        let why = |e: AggregateError, pair: String| {
            tracing::warn!(pair = %pair, reason = %e, "no rate: quorum of fresh sources not met");
        };
        let crypto = self
            .crypto_usd(&state, base, now)
            .map_err(|e| why(e, format!("{base}/USD")))
            .ok()?;
        if quote == "USD" {
            return Some(crypto);
        }
        if coffer_core::fiat::fiat_currency(quote).is_some() {
            let fx = self
                .usd_to_fiat(&state, quote, now)
                .map_err(|e| why(e, format!("USD/{quote}")))
                .ok()?;
            return Some(Derived {
                value: round_price(crypto.value.checked_mul(fx.value)?),
                explain: format!("{} * {}", crypto.explain, fx.explain),
                used: Vec::new(),
                at: crypto.at.min(fx.at),
            });
        }
        // Another asset as the quote currency: BASE/QUOTE = BASE/USD ÷ QUOTE/USD.
        let other = self
            .crypto_usd(&state, quote, now)
            .map_err(|e| why(e, format!("{quote}/USD")))
            .ok()?;
        Some(Derived {
            value: round_price(crypto.value.checked_div(other.value)?),
            explain: format!("{} / {}", crypto.explain, other.explain),
            used: Vec::new(),
            at: crypto.at.min(other.at),
        })
    }

    /// `USD/fiat` from the fresh fiat sources (quorum `fiat_quorum`), as the fixed table's
    /// fiat leg. `None` without a fresh enough answer.
    pub fn usd_per(&self, fiat: &str, now: OffsetDateTime) -> Option<FiatLeg> {
        let state = self.state.read().ok()?;
        let fiat = fiat.to_ascii_uppercase();
        let derived = self
            .usd_to_fiat(&state, &fiat, now)
            .map_err(|e| {
                tracing::warn!(pair = %format!("USD/{fiat}"), reason = %e, "no fiat rate: quorum of fresh sources not met");
            })
            .ok()?;
        Some(FiatLeg {
            value: derived.value,
            sources: derived.used,
            at: derived.at,
        })
    }
}

impl RateSource for AggregatedRates {
    fn quote(&self, base: &str, quote: &str, now: OffsetDateTime) -> Result<Quote, RateError> {
        let base_u = base.to_ascii_uppercase();
        let quote_u = quote.to_ascii_uppercase();
        let unavailable = || RateError::Unavailable {
            base: base.chars().take(16).collect(),
            quote: quote.chars().take(16).collect(),
        };
        if base_u == quote_u {
            return Ok(Quote {
                price: Price::new(Decimal::ONE).map_err(|_| unavailable())?,
                source: "identity".into(),
                at: now,
            });
        }
        let derived = self
            .quote_inner(&base_u, &quote_u, now)
            .ok_or_else(unavailable)?;
        Ok(Quote {
            price: Price::new(derived.value).map_err(|_| unavailable())?,
            source: derived.explain,
            at: derived.at,
        })
    }

    fn health(&self, now: OffsetDateTime) -> Option<RatesHealth> {
        let state = self.state.read().ok()?;
        let mut sources = Vec::new();
        let (mut crypto_fresh, mut fiat_fresh) = (0usize, 0usize);
        let (mut crypto_enabled, mut fiat_enabled) = (false, false);
        for (provider, s) in state.iter() {
            let age = s.last_ok.map(|t| now - t);
            let fresh = age.is_some_and(|a| a <= self.max_age(*provider));
            if provider.is_fiat() {
                fiat_enabled = true;
                fiat_fresh += usize::from(fresh);
            } else {
                crypto_enabled = true;
                crypto_fresh += usize::from(fresh);
            }
            sources.push(SourceHealth {
                name: provider.name().into(),
                kind: if provider.is_fiat() { "fiat" } else { "crypto" }.into(),
                fresh,
                age_seconds: age.map(|a| a.whole_seconds()),
                consecutive_errors: s.consecutive_errors,
                last_error: s.last_error.clone(),
            });
        }
        // Only the fiat sources are enabled behind the fixed table: they alone decide.
        let ready = (!crypto_enabled || crypto_fresh >= self.settings.quorum.max(1))
            && (!fiat_enabled || fiat_fresh >= self.settings.fiat_quorum.max(1));
        Some(RatesHealth { ready, sources })
    }
}

/// Wait before the next attempt after `errors` consecutive failures: `min(interval, 60 s)`
/// doubled per further failure, capped at `max_backoff`, and never shorter than a 429's
/// `Retry-After`.
pub fn backoff_delay(
    interval: Duration,
    errors: u32,
    retry_after: Option<Duration>,
    max_backoff: Duration,
) -> Duration {
    let first = interval.min(Duration::from_secs(60));
    let factor = 1u32 << errors.saturating_sub(1).min(10);
    let delay = first.saturating_mul(factor).min(max_backoff.max(first));
    match retry_after {
        Some(r) => delay.max(r),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = Duration::from_secs;
        let max = s(300);
        assert_eq!(backoff_delay(s(15), 1, None, max), s(15));
        assert_eq!(backoff_delay(s(15), 2, None, max), s(30));
        assert_eq!(backoff_delay(s(15), 3, None, max), s(60));
        assert_eq!(backoff_delay(s(15), 10, None, max), s(300));
        assert_eq!(backoff_delay(s(15), u32::MAX, None, max), s(300));
        assert_eq!(backoff_delay(s(3600), 1, None, max), s(60));
        assert_eq!(backoff_delay(s(15), 1, Some(s(120)), max), s(120));
    }
}
