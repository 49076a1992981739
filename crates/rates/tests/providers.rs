//! Each provider's client against a local HTTP server replaying that provider's documented
//! response format (tests/fixtures, see its README), and the aggregation over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;
use std::time::Duration;

use coffer_core::{RateError, RateSource};
use coffer_rates::provider::{ProviderClient, http_client};
use coffer_rates::{AggregatedRates, FetchError, Observation, Provider};
use common::{Fault, Replay, fixture};
use rust_decimal::Decimal;
use time::OffsetDateTime;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn symbols(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn client(replay: &Replay, provider: Provider, timeout_ms: u64) -> ProviderClient {
    ProviderClient::new(
        provider,
        &replay.base_url(),
        http_client(Duration::from_millis(timeout_ms)).unwrap(),
    )
}

fn price(obs: &[Observation], base: &str, quote: &str) -> Option<Decimal> {
    obs.iter()
        .find(|o| o.base == base && o.quote == quote)
        .map(|o| o.price)
}

fn assert_recent(obs: &[Observation]) {
    let now = OffsetDateTime::now_utc();
    for o in obs {
        assert!(
            (now - o.at).whole_seconds().abs() < 10,
            "{o:?} should be dated now"
        );
    }
}

const ALL: [&str; 6] = ["BTC", "ETH", "USDT", "USDC", "SOL", "XYZ"];

#[tokio::test]
async fn coingecko_simple_price() {
    let replay = Replay::start().await;
    let obs = client(&replay, Provider::CoinGecko, 2000)
        .fetch(&symbols(&ALL))
        .await
        .unwrap();
    assert_eq!(obs.len(), 4, "{obs:?}");
    assert_eq!(price(&obs, "BTC", "USD"), Some(d("67187.3358")));
    assert_eq!(price(&obs, "ETH", "USD"), Some(d("3421.5512")));
    assert_eq!(price(&obs, "USDT", "USD"), Some(d("1.0002")));
    assert_eq!(price(&obs, "USDC", "USD"), Some(d("0.99992")));
    assert_recent(&obs);
}

#[tokio::test]
async fn binance_ticker_price() {
    let replay = Replay::start().await;
    let obs = client(&replay, Provider::Binance, 2000)
        .fetch(&symbols(&ALL))
        .await
        .unwrap();
    assert_eq!(obs.len(), 3, "{obs:?}");
    assert_eq!(price(&obs, "BTC", "USDT"), Some(d("67175.1")));
    assert_eq!(price(&obs, "ETH", "USDT"), Some(d("3420.88")));
    assert_eq!(price(&obs, "USDC", "USDT"), Some(d("0.9999")));
    assert_recent(&obs);
}

#[tokio::test]
async fn kraken_ticker() {
    let replay = Replay::start().await;
    let obs = client(&replay, Provider::Kraken, 2000)
        .fetch(&symbols(&ALL))
        .await
        .unwrap();
    assert_eq!(obs.len(), 4, "{obs:?}");
    assert_eq!(price(&obs, "BTC", "USD"), Some(d("67190.1")));
    assert_eq!(price(&obs, "ETH", "USD"), Some(d("3421.9")));
    assert_eq!(price(&obs, "USDT", "USD"), Some(d("1.0001")));
    assert_eq!(price(&obs, "USDC", "USD"), Some(d("0.9999")));
    // Kraken reports errors in its body with HTTP 200.
    replay.fault(
        "kraken",
        Fault::Body(fixture("kraken_error_unknown_pair.json").unwrap()),
    );
    let err = client(&replay, Provider::Kraken, 2000)
        .fetch(&symbols(&ALL))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Provider(m) if m.contains("Unknown asset pair")),
        "{err:?}"
    );
}

#[tokio::test]
async fn coinbase_spot_prices() {
    let replay = Replay::start().await;
    let obs = client(&replay, Provider::Coinbase, 2000)
        .fetch(&symbols(&ALL))
        .await
        .unwrap();
    // SOL and XYZ answer 404 (not listed here): skipped, not an error.
    assert_eq!(obs.len(), 4, "{obs:?}");
    assert_eq!(price(&obs, "BTC", "USD"), Some(d("67185.675")));
    assert_eq!(price(&obs, "USDT", "USD"), Some(d("1.00015")));
    assert_eq!(price(&obs, "USDC", "USD"), Some(d("1")));
    // Not one price (every pair 404, e.g. a wrong base URL): a failure, not an empty success.
    let err = client(&replay, Provider::Coinbase, 2000)
        .fetch(&symbols(&["SOL", "XYZ"]))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Provider(_)), "{err:?}");
}

#[tokio::test]
async fn okx_tickers() {
    let replay = Replay::start().await;
    let obs = client(&replay, Provider::Okx, 2000)
        .fetch(&symbols(&ALL))
        .await
        .unwrap();
    // SOL-USDT and XYZ-USDT answer code 51001: skipped. USDT itself is the quote.
    assert_eq!(obs.len(), 3, "{obs:?}");
    assert_eq!(price(&obs, "BTC", "USDT"), Some(d("67180.1")));
    assert_eq!(price(&obs, "USDC", "USDT"), Some(d("0.9999")));
    assert_recent(&obs);
    // Any other error code fails the fetch.
    replay.fault(
        "okx",
        Fault::Body(r#"{"code":"50011","msg":"Too Many Requests","data":[]}"#.into()),
    );
    let err = client(&replay, Provider::Okx, 2000)
        .fetch(&symbols(&["BTC"]))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Provider(_)), "{err:?}");
}

#[tokio::test]
async fn ecb_daily_reference_rates() {
    let replay = Replay::start().await;
    let obs = client(&replay, Provider::Ecb, 2000)
        .fetch(&[])
        .await
        .unwrap();
    assert_eq!(obs.len(), 30);
    assert_eq!(price(&obs, "EUR", "USD"), Some(d("1.0823")));
    assert_eq!(price(&obs, "EUR", "JPY"), Some(d("163.75")));
    assert_eq!(price(&obs, "EUR", "CNY"), Some(d("7.8021")));
    assert_eq!(price(&obs, "EUR", "GBP"), Some(d("0.85793")));
    // A reference file from 2024 is refused as stale, not used.
    replay.set_stale(true);
    let err = client(&replay, Provider::Ecb, 2000)
        .fetch(&[])
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Stale(_)), "{err:?}");
}

#[tokio::test]
async fn http_errors_429_timeouts_and_malformed_bodies() {
    let replay = Replay::start().await;
    let btc = symbols(&["BTC"]);
    for provider in [
        Provider::CoinGecko,
        Provider::Binance,
        Provider::Kraken,
        Provider::Coinbase,
        Provider::Okx,
        Provider::Ecb,
    ] {
        let name = provider.name();
        let c = client(&replay, provider, 1000);

        replay.fault(name, Fault::Status(500));
        assert_eq!(c.fetch(&btc).await, Err(FetchError::Status(500)), "{name}");
        replay.fault(name, Fault::Status(503));
        assert_eq!(c.fetch(&btc).await, Err(FetchError::Status(503)), "{name}");

        replay.fault(
            name,
            Fault::RateLimited {
                retry_after_secs: 7,
            },
        );
        assert_eq!(
            c.fetch(&btc).await,
            Err(FetchError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }),
            "{name}"
        );

        replay.fault(name, Fault::Delay(Duration::from_millis(2500)));
        assert_eq!(c.fetch(&btc).await, Err(FetchError::Timeout), "{name}");

        let garbage = if provider == Provider::Ecb {
            "<html><body>maintenance</body></html>"
        } else {
            "{\"data\": [truncated"
        };
        replay.fault(name, Fault::Body(garbage.into()));
        let err = c.fetch(&btc).await.unwrap_err();
        assert!(matches!(err, FetchError::Malformed(_)), "{name}: {err:?}");
    }
    replay.clear_faults();

    // A price that is not a positive number is malformed, never zero.
    for (fixture_name, provider, body) in [
        (
            "binance_ticker_price.json",
            Provider::Binance,
            r#"[{"symbol":"BTCUSDT","price":"abc"}]"#,
        ),
        (
            "coingecko_simple_price.json",
            Provider::CoinGecko,
            r#"{"bitcoin":{"usd":-1,"last_updated_at":1711356300}}"#,
        ),
        (
            "coinbase_spot_BTC-USD.json",
            Provider::Coinbase,
            r#"{"data":{"amount":"0","base":"BTC","currency":"USD"}}"#,
        ),
    ] {
        replay.body(fixture_name, body.into());
        let err = client(&replay, provider, 2000)
            .fetch(&btc)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Malformed(_)),
            "{fixture_name}: {err:?}"
        );
    }
}

const FIVE: [Provider; 6] = [
    Provider::CoinGecko,
    Provider::Binance,
    Provider::Kraken,
    Provider::Coinbase,
    Provider::Okx,
    Provider::Ecb,
];

#[tokio::test]
async fn median_of_five_sources_with_usdt_and_fiat_crosses() {
    let replay = Replay::start().await;
    let rates = replay.rates(&FIVE, 3).await;
    let now = OffsetDateTime::now_utc();

    // USDT/USD from the USD-quoting sources: 1.0002, 1.0001, 1.00015 → 1.00015.
    let usdt = rates.quote("USDT", "USD", now).unwrap();
    assert_eq!(usdt.price.get(), d("1.00015"));
    assert_eq!(usdt.source, "median(coinbase,coingecko,kraken)");

    // BTC/USD: 67187.3358 (coingecko), 67190.1 (kraken), 67185.675 (coinbase),
    // 67175.1 × 1.00015 = 67185.176265 (binance), 67180.1 × 1.00015 = 67190.177015 (okx).
    let btc = rates.quote("BTC", "USD", now).unwrap();
    assert_eq!(btc.price.get(), d("67187.3358"));
    assert_eq!(btc.source, "median(binance,coinbase,coingecko,kraken,okx)");
    assert!((now - btc.at).whole_seconds() < 10);

    // BTC/EUR = BTC/USD × USD/EUR; USD/EUR = 1 / 1.0823 = 0.923958237088 (12 significant
    // digits), product rounded to 12 significant digits.
    let eur = rates.quote("BTC", "EUR", now).unwrap();
    assert_eq!(eur.price.get(), d("62078.2923404"));
    assert_eq!(
        eur.source,
        "median(binance,coinbase,coingecko,kraken,okx) * median(ecb):USD/EUR"
    );
    // BTC/JPY = BTC/USD × (163.75 / 1.0823).
    let jpy = rates.quote("btc", "jpy", now).unwrap();
    assert_eq!(jpy.price.get(), d("10165320.3707"));

    // USDC at the market: 0.99992 (coingecko), 0.9999 (kraken), 1 (coinbase),
    // 0.9999 × 1.00015 = 1.000049985 (binance, okx) → 1.
    let usdc = rates.quote("USDC", "USD", now).unwrap();
    assert_eq!(usdc.price.get(), d("1"));
    assert_eq!(usdc.source, "median(binance,coinbase,coingecko,kraken,okx)");

    // A currency with no fiat source entry, an unknown asset: unavailable, not a guess.
    assert!(rates.quote("BTC", "NGN", now).is_err());
    assert!(rates.quote("XYZ", "USD", now).is_err());

    let health = rates.health(now).unwrap();
    assert!(health.ready);
    assert_eq!(health.sources.len(), 6);
    assert!(health.sources.iter().all(|s| s.fresh));
}

#[tokio::test]
async fn outlier_is_dropped_and_disagreement_is_unavailable() {
    let replay = Replay::start().await;
    // OKX says 70 000: 4.2 % above the others.
    replay.body(
        "okx_ticker_BTC-USDT.json",
        fixture("okx_ticker_BTC-USDT.json")
            .unwrap()
            .replace("\"last\": \"67180.1\"", "\"last\": \"70000\""),
    );
    let rates = replay.rates(&FIVE, 3).await;
    let now = OffsetDateTime::now_utc();
    let btc = rates.quote("BTC", "USD", now).unwrap();
    // Median of the four that agree: (67185.675 + 67187.3358) / 2.
    assert_eq!(btc.price.get(), d("67186.5054"));
    assert_eq!(btc.source, "median(binance,coinbase,coingecko,kraken)");

    // Two sources 10 % apart with quorum 2: neither can be trusted → unavailable.
    let replay = Replay::start().await;
    replay.body(
        "kraken_ticker.json",
        fixture("kraken_ticker.json").unwrap().replace(
            "\"67190.10000\", \"0.00150000\"",
            "\"74000.00000\", \"0.00150000\"",
        ),
    );
    let rates = replay
        .rates(&[Provider::Kraken, Provider::CoinGecko], 2)
        .await;
    assert!(matches!(
        rates.quote("BTC", "USD", OffsetDateTime::now_utc()),
        Err(RateError::Unavailable { .. })
    ));
    // ETH still agrees on both.
    assert!(rates.quote("ETH", "USD", OffsetDateTime::now_utc()).is_ok());
}

#[tokio::test]
async fn quorum_outage_and_staleness() {
    let replay = Replay::start().await;
    let rates = replay
        .rates(&[Provider::Kraken, Provider::Coinbase, Provider::Ecb], 2)
        .await;
    let now = OffsetDateTime::now_utc();
    assert!(rates.quote("BTC", "EUR", now).is_ok());
    // 61 s later the crypto prices are past the 60 s limit: no price, not an old one.
    let later = now + time::Duration::seconds(61);
    assert!(matches!(
        rates.quote("BTC", "USD", later),
        Err(RateError::Unavailable { .. })
    ));
    let health = rates.health(later).unwrap();
    assert!(!health.ready);
    assert!(health.sources.iter().any(|s| s.name == "ecb" && s.fresh));

    // Coinbase goes down: its old snapshot ages out; Kraken alone is below quorum 2.
    replay.fault("coinbase", Fault::Status(502));
    let results = rates.refresh_all().await;
    assert!(
        results
            .iter()
            .any(|(p, r)| *p == Provider::Coinbase && r.is_err())
    );
    // Coinbase's last good answer is 50 s old (its failure kept it): it still counts now,
    // and no longer 11 s later, when Kraken alone is below quorum 2.
    let now = OffsetDateTime::now_utc();
    let old = now - time::Duration::seconds(50);
    rates.record(
        Provider::Coinbase,
        Ok(vec![Observation {
            base: "BTC".into(),
            quote: "USD".into(),
            price: d("67185.675"),
            at: old,
        }]),
        old,
    );
    rates.record(Provider::Coinbase, Err(FetchError::Status(502)), now);
    assert!(rates.quote("BTC", "USD", now).is_ok());
    assert!(matches!(
        rates.quote("BTC", "USD", now + time::Duration::seconds(11)),
        Err(RateError::Unavailable { .. })
    ));
    let health = rates.health(OffsetDateTime::now_utc()).unwrap();
    let cb = health
        .sources
        .iter()
        .find(|s| s.name == "coinbase")
        .unwrap();
    assert_eq!(cb.consecutive_errors, 1);
    assert!(!cb.fresh || cb.age_seconds.unwrap() >= 50);
    assert!(cb.last_error.as_deref().unwrap().contains("502"));

    // Provider timestamps count: stale tickers from CoinGecko and OKX are not used even
    // though the fetch succeeded just now.
    let replay = Replay::start().await;
    replay.set_stale(true);
    let rates = replay
        .rates(&[Provider::CoinGecko, Provider::Okx, Provider::Kraken], 1)
        .await;
    let now = OffsetDateTime::now_utc();
    let btc = rates.quote("BTC", "USD", now).unwrap();
    assert_eq!(btc.source, "median(kraken)");
    assert_eq!(btc.price.get(), d("67190.1"));
}

#[tokio::test]
async fn background_refresh_backs_off_and_stops() {
    let replay = Replay::start().await;
    replay.fault(
        "binance",
        Fault::RateLimited {
            retry_after_secs: 30,
        },
    );
    let mut settings = replay.settings(&[Provider::Kraken, Provider::Binance]);
    settings.refresh_interval = Duration::from_millis(50);
    let rates = std::sync::Arc::new(AggregatedRates::new(settings).unwrap());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(rates.clone().run(stop_rx));
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Kraken polled every 50 ms; Binance said "retry after 30 s" and was asked once.
    assert!(replay.hits("kraken") >= 4, "{}", replay.hits("kraken"));
    assert_eq!(replay.hits("binance"), 1);
    let health = rates.health(OffsetDateTime::now_utc()).unwrap();
    let binance = health.sources.iter().find(|s| s.name == "binance").unwrap();
    assert!(binance.last_error.as_deref().unwrap().contains("429"));
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the refresher stops when told")
        .unwrap();
}
