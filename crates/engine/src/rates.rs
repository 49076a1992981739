//! Current exchange rates as the API shows them (`GET /api/v1/rates?assets=&fiat=`).

use std::collections::BTreeSet;

use coffer_core::fiat::fiat_currency;
use serde_json::{Value, json};

use crate::{Engine, EngineError, view};

/// Most assets, and most currencies, one request may ask for.
pub const MAX_RATE_LIST: usize = 20;

impl Engine {
    /// The current rate of every (asset, currency) pair asked for, with its source and time.
    ///
    /// `assets`: comma-separated symbols (`BTC,USDT`) or asset ids (`bsc:USDT`); empty means
    /// every enabled asset. `fiat`: comma-separated ISO 4217 codes; empty means `USD`.
    /// Unknown names are an `unknown_asset` / `unknown_currency` error naming the field; a
    /// pair without a rate is listed with `price: null` and an `error` (`rate_unavailable`),
    /// so one outage does not hide the other pairs. Shape:
    ///
    /// ```json
    /// {"at": "2026-11-22T14:00:00Z",
    ///  "rates": [{"asset": "BTC", "currency": "EUR", "price": "62078.2923404",
    ///             "source": "median(binance,coinbase,kraken) * median(ecb):USD/EUR",
    ///             "at": "2026-11-22T13:59:51.214Z", "error": null}]}
    /// ```
    pub fn current_rates(&self, assets: &str, fiat: &str) -> Result<Value, EngineError> {
        let symbols = self.rate_assets(assets)?;
        let currencies = rate_currencies(fiat)?;
        let now = self.now();
        let mut rates = Vec::new();
        for symbol in &symbols {
            for currency in &currencies {
                let row = match self.rates.quote(symbol, currency, now) {
                    Ok(q) => json!({
                        "asset": symbol,
                        "currency": currency,
                        "price": q.price.get().normalize().to_string(),
                        "source": q.source,
                        "at": view::rfc3339(q.at),
                        "error": null,
                    }),
                    Err(e) => json!({
                        "asset": symbol,
                        "currency": currency,
                        "price": null,
                        "source": null,
                        "at": null,
                        "error": {"code": "rate_unavailable", "message": e.to_string()},
                    }),
                };
                rates.push(row);
            }
        }
        Ok(json!({"at": view::rfc3339(now), "rates": rates}))
    }

    fn rate_assets(&self, raw: &str) -> Result<Vec<String>, EngineError> {
        let mut out = BTreeSet::new();
        let items: Vec<&str> = split_list(raw);
        if items.len() > MAX_RATE_LIST {
            return Err(too_many("assets"));
        }
        if items.is_empty() {
            out.extend(self.assets.assets().map(|a| a.symbol().as_str().to_owned()));
        }
        for item in items {
            let symbol = match item.split_once(':') {
                Some(_) => item.parse::<coffer_core::AssetId>().ok().and_then(|id| {
                    self.assets
                        .asset(&id)
                        .map(|a| a.symbol().as_str().to_owned())
                }),
                None => self
                    .assets
                    .by_symbol(item)
                    .map(|a| a.symbol().as_str().to_owned()),
            };
            let symbol = symbol.ok_or_else(|| {
                EngineError::invalid(
                    "unknown_asset",
                    "assets",
                    format!(
                        "asset {:?} is not enabled on this server",
                        item.chars().take(32).collect::<String>()
                    ),
                )
            })?;
            out.insert(symbol);
        }
        Ok(out.into_iter().collect())
    }
}

fn split_list(raw: &str) -> Vec<&str> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn too_many(field: &'static str) -> EngineError {
    EngineError::invalid(
        "too_many_items",
        field,
        format!("at most {MAX_RATE_LIST} entries may be asked for at once"),
    )
}

fn rate_currencies(raw: &str) -> Result<Vec<String>, EngineError> {
    let items = split_list(raw);
    if items.len() > MAX_RATE_LIST {
        return Err(too_many("fiat"));
    }
    if items.is_empty() {
        return Ok(vec!["USD".into()]);
    }
    let mut out = BTreeSet::new();
    for item in items {
        let code = item.to_ascii_uppercase();
        if fiat_currency(&code).is_none() {
            return Err(EngineError::invalid(
                "unknown_currency",
                "fiat",
                format!(
                    "{:?} is not a supported fiat currency",
                    item.chars().take(16).collect::<String>()
                ),
            ));
        }
        out.insert(code);
    }
    Ok(out.into_iter().collect())
}
