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
    AssetRegistry, Engine, EngineError, EngineParts, EngineSettings, ManualClock, Methods,
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

fn engine(db: &TestDb, rates: Arc<dyn coffer_core::RateSource>, clock: Arc<ManualClock>) -> Engine {
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates,
        assets: Arc::new(registry()),
        methods: Methods::default().with(
            ChainKind::Evm,
            TestDeriver::new(|d, i| format!("{d}/{i}"))
                .xpub_only()
                .evm(),
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

fn order_in(amount: &str, currency: &str, asset: &str) -> NewOrder {
    NewOrder {
        amount: d(amount),
        currency: currency.into(),
        asset: Some(AssetId::from_str(asset).unwrap()),
        ..NewOrder::default()
    }
}

/// The fixed table with only `ETH/USD` spelled out: CNY orders cross it with the ECB's
/// USD/CNY, USDT is pegged because the operator declared it, and each order says which price
/// it used and how it was derived — on the order, in the API's view of it, and in its event.
async fn fixed_table_prices_through_order_creation(db: &TestDb) {
    let replay = Replay::start().await;
    let ecb = replay.rates(&[Provider::Ecb], 1).await;
    let mut table = coffer_rates::FixedTable::new();
    table
        .insert("ETH", "USD", Price::new(d("3000")).unwrap())
        .unwrap();
    let table = Arc::new(table.with_peg(["USDT"]).with_fiat(ecb.clone()));
    let clock = Arc::new(ManualClock::new(truncate_to_ms(OffsetDateTime::now_utc())));
    let e = engine(db, table.clone(), clock.clone());
    let (m, _) = e.create_merchant("Tea House").await.unwrap();
    e.set_wallet(&m.id, "eth", "xpubA").await.unwrap();

    // USD/CNY = EUR/CNY ÷ EUR/USD = 7.8021 ÷ 1.0823, rounded to 12 significant digits like
    // every market cross; ETH/CNY = 3000 × that, rounded once more.
    let usd_cny = coffer_rates::aggregate::round_price(d("7.8021") / d("1.0823"));
    assert_eq!(usd_cny, d("7.20881456158"));
    let eth = e
        .create_order(&m.id, order_in("100", "CNY", "eth:ETH"))
        .await
        .unwrap()
        .order;
    let rate = &eth.target.as_ref().unwrap().rate;
    assert_eq!(rate.source, "fixed:ETH/USD×ecb:USD/CNY");
    assert_eq!(rate.price.get(), d("21626.4436847"));
    assert_eq!(
        rate.price.get(),
        coffer_rates::aggregate::round_price(d("3000") * usd_cny)
    );
    assert!(rate.at <= coffer_engine::Clock::now(clock.as_ref()));
    // The API's order object and the order.created event carry the same explanation.
    let view = coffer_engine::view::order_json(&eth, &e);
    assert_eq!(
        view["payment"]["rate"]["source"],
        "fixed:ETH/USD×ecb:USD/CNY"
    );
    assert_eq!(view["payment"]["rate"]["price"], "21626.4436847");
    let events = db
        .store
        .list_events(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.event.data["object"]["payment"]["rate"]["source"]
                == "fixed:ETH/USD×ecb:USD/CNY")
    );

    // USDT in CNY: the declared peg and the ECB leg.
    let usdt = e
        .create_order(&m.id, order_in("72.09", "CNY", "eth:USDT"))
        .await
        .unwrap()
        .order;
    let t = usdt.target.unwrap();
    assert_eq!(t.rate.source, "peg:USDT/USD×ecb:USD/CNY");
    assert_eq!(t.rate.price.get(), usd_cny);
    // 72.09 ÷ 7.20881456158 = 10.000256… USDT, rounded up to 6 decimals.
    assert_eq!(t.amount_due, BaseUnits::new(10_000_258));
    // USDT in USD needs no USDT/USD line; ETH priced in USDT crosses the peg.
    let usd = e
        .create_order(&m.id, order_in("25", "USD", "eth:USDT"))
        .await
        .unwrap()
        .order;
    assert_eq!(usd.target.unwrap().rate.source, "peg:USDT/USD");
    let in_usdt = e
        .create_order(&m.id, order_in("30", "USDT", "eth:ETH"))
        .await
        .unwrap()
        .order;
    let t = in_usdt.target.unwrap();
    assert_eq!(t.rate.source, "fixed:ETH/USD÷peg:USDT/USD");
    assert_eq!(t.amount_due, BaseUnits::new(10_000_000_000_000_000));

    // The ECB leg ages out (fiat_max_age 24 h): CNY orders fail, nothing is written; USD
    // prices from the table keep working. The table reports the ECB's freshness.
    assert!(
        coffer_core::RateSource::health(table.as_ref(), coffer_engine::Clock::now(clock.as_ref()))
            .unwrap()
            .ready
    );
    clock.advance(time::Duration::hours(25));
    let before = counts(db).await;
    let err = e
        .create_order(&m.id, order_in("100", "CNY", "eth:ETH"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_unavailable", "{err:?}");
    assert_eq!(counts(db).await, before, "nothing written");
    assert!(
        !coffer_core::RateSource::health(table.as_ref(), coffer_engine::Clock::now(clock.as_ref()))
            .unwrap()
            .ready
    );
    let usd = e
        .create_order(&m.id, order_in("3000", "USD", "eth:ETH"))
        .await
        .unwrap()
        .order;
    assert_eq!(usd.target.unwrap().rate.source, "fixed:ETH/USD");
}

/// Without the declaration a USD stablecoin has no price from a table that does not name it.
async fn fixed_table_has_no_peg_unless_declared(db: &TestDb) {
    let mut table = coffer_rates::FixedTable::new();
    table
        .insert("ETH", "USD", Price::new(d("3000")).unwrap())
        .unwrap();
    let clock = Arc::new(ManualClock::new(truncate_to_ms(OffsetDateTime::now_utc())));
    let e = engine(db, Arc::new(table), clock);
    let (m, _) = e.create_merchant("Tea House").await.unwrap();
    e.set_wallet(&m.id, "eth", "xpubA").await.unwrap();
    let err = e
        .create_order(&m.id, order_in("25", "USD", "eth:USDT"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_unavailable", "{err:?}");
    // the configured pair itself prices as written
    let o = e
        .create_order(&m.id, order_in("1500", "USD", "eth:ETH"))
        .await
        .unwrap()
        .order;
    assert_eq!(
        o.target.unwrap().amount_due,
        BaseUnits::new(500_000_000_000_000_000)
    );
}

both_backends! {
    fixed_table_prices_through_order_creation => fixed_table_prices_through_order_creation;
    fixed_table_has_no_peg_unless_declared => fixed_table_has_no_peg_unless_declared;
    fiat_order_gets_a_locked_explained_rate => fiat_order_gets_a_locked_explained_rate;
    outage_is_rate_unavailable_and_writes_nothing => outage_is_rate_unavailable_and_writes_nothing;
}
