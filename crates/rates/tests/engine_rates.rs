//! Orders priced from several real-format providers (local replay server), on SQLite and
//! PostgreSQL: the locked rate is correct and explained; an outage is `rate_unavailable` and
//! writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;
use std::sync::Arc;

use coffer_core::{
    AssetId, AssetKind, BaseUnits, Chain, ChainId, ChainKind, Decimals, Network, Price, money,
};
use coffer_engine::{
    AssetRegistry, Derivers, Engine, EngineError, EngineParts, EngineSettings, ManualClock,
    NewOrder, truncate_to_ms,
};
use coffer_rates::Provider;
use coffer_store::{EventQuery, OrderQuery};
use coffer_testkit::fixtures::{self, TestDeriver};
use coffer_testkit::{TestDb, both_backends};
use common::{Fault, Replay};
use rust_decimal::Decimal;
use time::OffsetDateTime;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn registry() -> AssetRegistry {
    let eth = Chain {
        id: ChainId::parse("eth").unwrap(),
        kind: ChainKind::Evm,
        network: Network::Mainnet,
        name: "Ethereum".into(),
        confirmations: 12,
        evm_chain_id: Some(1),
    };
    let usdt = fixtures::token("0xdAC17F958D2ee523a2206206994597C13D831ec7");
    AssetRegistry::new(
        vec![eth],
        vec![
            fixtures::asset("eth", "ETH", AssetKind::Native, 18, false),
            fixtures::asset("eth", "USDT", usdt, 6, true),
        ],
    )
    .unwrap()
}

fn engine(
    db: &TestDb,
    rates: Arc<coffer_rates::AggregatedRates>,
    clock: Arc<ManualClock>,
) -> Engine {
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates,
        assets: Arc::new(registry()),
        derivers: Derivers::default().with(
            ChainKind::Evm,
            Arc::new(TestDeriver::new(|d, i| format!("{d}/{i}")).xpub_only()),
        ),
        clock,
        settings: Arc::new(EngineSettings::default()),
    })
}

async fn counts(db: &TestDb) -> (usize, usize) {
    let orders = db
        .store
        .list_orders(&OrderQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let events = db
        .store
        .list_events(&EventQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    (orders.len(), events.len())
}

fn eur(amount: &str, asset: &str) -> NewOrder {
    NewOrder {
        amount: d(amount),
        currency: "EUR".into(),
        asset: Some(AssetId::from_str(asset).unwrap()),
        ..NewOrder::default()
    }
}

const SOURCES: [Provider; 4] = [
    Provider::CoinGecko,
    Provider::Kraken,
    Provider::Coinbase,
    Provider::Ecb,
];

async fn fiat_order_gets_a_locked_explained_rate(db: &TestDb) {
    let replay = Replay::start().await;
    let rates = replay.rates(&SOURCES, 2).await;
    let clock = Arc::new(ManualClock::new(truncate_to_ms(OffsetDateTime::now_utc())));
    let e = engine(db, rates.clone(), clock.clone());
    let (m, _) = e.create_merchant("Corner Café").await.unwrap();
    e.set_wallet(&m.id, "eth", "xpubA").await.unwrap();

    let order = e
        .create_order(&m.id, eur("100", "eth:ETH"))
        .await
        .unwrap()
        .order;
    let t = order.target.clone().unwrap();
    // ETH/USD = median(3421.5512, 3421.9, 3421.215) = 3421.5512;
    // USD/EUR = 1 / 1.0823 = 0.923958237088; ETH/EUR = 3161.37041486 (12 significant digits).
    assert_eq!(t.rate.price.get(), d("3161.37041486"));
    assert_eq!(
        t.rate.source,
        "median(coinbase,coingecko,kraken) * median(ecb):USD/EUR"
    );
    let age = coffer_engine::Clock::now(clock.as_ref()) - t.rate.at;
    assert!(
        age >= time::Duration::ZERO && age.whole_seconds() < 10,
        "{age}"
    );
    // 100 EUR ÷ 3161.37041486 = 0.031631851658366474…, rounded up to 18 decimals.
    assert_eq!(t.amount_due, BaseUnits::new(31_631_851_658_366_475));
    assert_eq!(
        t.amount_due,
        money::crypto_due(
            d("100"),
            Price::new(d("3161.37041486")).unwrap(),
            Decimals::new(18).unwrap()
        )
        .unwrap()
    );
    // Stored as locked: reading the order back gives the same rate, value, sources and time.
    let stored = e.get_order(&m.id, &order.id).await.unwrap();
    assert_eq!(stored.target.unwrap().rate, t.rate);

    // USDT in EUR at the market rate (not the peg): USDT/USD = median(1.0002, 1.0001,
    // 1.00015) = 1.00015; × 0.923958237088 = 0.924096830824 → 10 EUR = 10.821377 USDT (up).
    let usdt = e
        .create_order(&m.id, eur("10", "eth:USDT"))
        .await
        .unwrap()
        .order
        .target
        .unwrap();
    assert_eq!(usdt.rate.price.get(), d("0.924096830824"));
    assert_eq!(usdt.amount_due, BaseUnits::new(10_821_377));

    // The API's view of the same rates.
    let view = e.current_rates("ETH,eth:USDT", "eur,NGN").unwrap();
    let rows = view["rates"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let eth_eur = rows
        .iter()
        .find(|r| r["asset"] == "ETH" && r["currency"] == "EUR")
        .unwrap();
    assert_eq!(eth_eur["price"], "3161.37041486");
    assert!(eth_eur["source"].as_str().unwrap().starts_with("median("));
    let eth_ngn = rows
        .iter()
        .find(|r| r["asset"] == "ETH" && r["currency"] == "NGN")
        .unwrap();
    assert!(eth_ngn["price"].is_null());
    assert_eq!(eth_ngn["error"]["code"], "rate_unavailable");
    assert!(matches!(
        e.current_rates("DOGE", ""),
        Err(EngineError::Invalid {
            code: "unknown_asset",
            field: Some("assets"),
            ..
        })
    ));
    assert!(matches!(
        e.current_rates("", "XXX"),
        Err(EngineError::Invalid {
            code: "unknown_currency",
            field: Some("fiat"),
            ..
        })
    ));
    assert_eq!(
        e.current_rates("", "").unwrap()["rates"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "all enabled assets in USD"
    );

    // The market moves (CoinGecko's ETH 3421.5512 → 3421.6, the new median): the order keeps
    // its locked rate; a new order gets the new one.
    replay.body(
        "coingecko_simple_price.json",
        common::fixture("coingecko_simple_price.json")
            .unwrap()
            .replace("3421.5512", "3421.6"),
    );
    rates.refresh_all().await;
    let again = e.get_order(&m.id, &order.id).await.unwrap();
    assert_eq!(again.target.unwrap().rate, t.rate);
    let newer = e
        .create_order(&m.id, eur("100", "eth:ETH"))
        .await
        .unwrap()
        .order
        .target
        .unwrap();
    assert_ne!(newer.rate.price, t.rate.price);
    assert_eq!(newer.rate.price.get(), d("3161.41550402"));
}

async fn outage_is_rate_unavailable_and_writes_nothing(db: &TestDb) {
    let replay = Replay::start().await;
    for p in ["coingecko", "kraken", "coinbase", "ecb"] {
        replay.fault(p, Fault::Status(503));
    }
    let rates = replay.rates(&SOURCES, 2).await;
    let clock = Arc::new(ManualClock::new(truncate_to_ms(OffsetDateTime::now_utc())));
    let e = engine(db, rates.clone(), clock.clone());
    let (m, _) = e.create_merchant("Corner Café").await.unwrap();
    e.set_wallet(&m.id, "eth", "xpubA").await.unwrap();
    let before = counts(db).await;

    let err = e
        .create_order(&m.id, eur("100", "eth:ETH"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_unavailable", "{err:?}");
    assert_eq!(counts(db).await, before, "nothing written");

    // Providers come back: the order is priced, and the failed attempt took no address.
    replay.clear_faults();
    rates.refresh_all().await;
    let ok = e
        .create_order(&m.id, eur("100", "eth:ETH"))
        .await
        .unwrap()
        .order;
    assert_eq!(ok.target.as_ref().unwrap().address, "xpubA/0");
    let before = counts(db).await;

    // Kraken and Coinbase fail from now on; 61 s later (the engine's clock) every crypto
    // price fetched before is past the 60 s limit: no quorum, no stale price, nothing written.
    replay.fault("kraken", Fault::Status(500));
    replay.fault(
        "coinbase",
        Fault::RateLimited {
            retry_after_secs: 30,
        },
    );
    rates.refresh_all().await;
    clock.advance(time::Duration::seconds(61));
    let err = e
        .create_order(&m.id, eur("5", "eth:ETH"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::RateUnavailable { .. }),
        "{err:?}"
    );
    assert_eq!(counts(db).await, before);

    // Re-locking through choose_asset during the outage fails too and leaves the order as is.
    let pending = e
        .create_order(
            &m.id,
            NewOrder {
                amount: d("5"),
                currency: "USDT".into(),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    let err = e
        .choose_asset(&m.id, &pending.id, &AssetId::from_str("eth:ETH").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_unavailable");
    let unchanged = e.get_order(&m.id, &pending.id).await.unwrap();
    assert_eq!(unchanged.version, pending.version);
    assert!(unchanged.target.is_none());
    // The pegged stablecoin needs no market rate and still works.
    let pegged = e
        .create_order(
            &m.id,
            NewOrder {
                amount: d("5"),
                currency: "USD".into(),
                asset: Some(AssetId::from_str("eth:USDT").unwrap()),
                fixed_stablecoin_rate: true,
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    assert_eq!(pegged.target.unwrap().rate.source, "peg");
}

both_backends! {
    fiat_order_gets_a_locked_explained_rate => fiat_order_gets_a_locked_explained_rate;
    outage_is_rate_unavailable_and_writes_nothing => outage_is_rate_unavailable_and_writes_nothing;
}
