//! `GET /api/v1/wallets` warns about the gap limit on Bitcoin wallets (more than 20
//! consecutive issued addresses unpaid) and shows each chain's confirmations, which
//! `PUT /api/v1/wallets/{chain}/confirmations` sets per merchant. On SQLite and PostgreSQL,
//! over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::str::FromStr;
use std::sync::Arc;

use coffer_api::v1::ApiSettings;
use coffer_api::{AppState, HttpSettings};
use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, Network, Price,
};
use coffer_engine::{
    AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder, SystemClock,
};
use coffer_testkit::fixtures::{self, TestDeriver};
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;
use serde_json::Value;

fn engine(db: &TestDb) -> Engine {
    let chain = |id: &str, kind| Chain {
        id: ChainId::parse(id).unwrap(),
        kind,
        network: Network::Regtest,
        name: id.into(),
        confirmations: 1,
        evm_chain_id: None,
    };
    let asset = |id: &str, decimals| Asset {
        id: AssetId::from_str(id).unwrap(),
        kind: AssetKind::Native,
        decimals: Decimals::new(decimals).unwrap(),
        display_decimals: 8,
        usd_stablecoin: false,
    };
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(
            FixedRates::new()
                .with("BTC", "USD", Price::new(Decimal::from(50_000)).unwrap())
                .with("ETH", "USD", Price::new(Decimal::from(2_000)).unwrap()),
        ),
        assets: Arc::new(
            AssetRegistry::new(
                vec![
                    chain("bitcoin", ChainKind::Bitcoin),
                    chain("eth", ChainKind::Evm),
                ],
                vec![asset("bitcoin:BTC", 8), asset("eth:ETH", 18)],
            )
            .unwrap(),
        ),
        methods: Methods::default()
            .with(
                ChainKind::Bitcoin,
                TestDeriver::dashed().over(Arc::new(coffer_chain_bitcoin::BitcoinMethod::new())),
            )
            .with(ChainKind::Evm, TestDeriver::dashed().evm()),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings::default()),
    })
}

async fn wallets(base: &str, key: &str) -> Vec<Value> {
    let body: Value = coffer_testkit::http_client()
        .get(format!("{base}/api/v1/wallets"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].as_array().unwrap().clone()
}

fn by_chain<'a>(list: &'a [Value], chain: &str) -> &'a Value {
    list.iter().find(|w| w["chain"] == chain).unwrap()
}

async fn gap_warning_on_bitcoin_wallets(db: &TestDb) {
    let e = engine(db);
    let state = AppState {
        engine: e.clone(),
        metrics: coffer_api::metrics_handle(),
    };
    let api = coffer_api::v1::router(&state, &ApiSettings::default());
    let app = coffer_api::router(state, &HttpSettings::default(), api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coffer_api::serve(listener, app, std::future::pending()));

    let (m, key) = e.create_merchant("Gap shop").await.unwrap();
    e.set_wallet(&m.id, "bitcoin", "tpubGAP").await.unwrap();
    e.set_wallet(&m.id, "eth", "xpubETH").await.unwrap();
    let mut orders = Vec::new();
    for _ in 0..21 {
        let o = e
            .create_order(
                &m.id,
                NewOrder {
                    amount: Decimal::from(25),
                    currency: "USD".into(),
                    asset: Some(AssetId::from_str("bitcoin:BTC").unwrap()),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order;
        orders.push(o);
    }
    let last = orders.last().unwrap().clone();
    // EVM wallets have no gap field at all.
    let list = wallets(&base, &key.token).await;
    assert!(by_chain(&list, "eth").get("gap_warning").is_none());
    // 21 issued, none paid: a run of 21 > 20.
    let btc = by_chain(&list, "bitcoin");
    assert_eq!(btc["gap_warning"]["longest_unpaid_run"], 21, "{btc}");
    assert_eq!(btc["gap_warning"]["payment_beyond_gap"], false);

    // The last one is paid: a payment now lies beyond a run of 20 — exactly the limit, so
    // still no warning.
    let t = last.target.as_ref().unwrap();
    e.apply_chain_batch(&fixtures::batch(
        "bitcoin",
        vec![fixtures::mined(
            t.asset.clone(),
            t.address.clone(),
            t.amount_due,
            &"aa".repeat(32),
            10,
            time::OffsetDateTime::now_utc(),
        )],
        10,
    ))
    .await
    .unwrap();
    let list = wallets(&base, &key.token).await;
    assert_eq!(by_chain(&list, "bitcoin")["gap_warning"], Value::Null);

    // One more unpaid order after the paid one does not change that; 21 more do, and the
    // report now also says a payment is beyond a long run only once one is.
    for _ in 0..21 {
        e.create_order(
            &m.id,
            NewOrder {
                amount: Decimal::from(25),
                currency: "USD".into(),
                asset: Some(AssetId::from_str("bitcoin:BTC").unwrap()),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap();
    }
    let list = wallets(&base, &key.token).await;
    let w = &by_chain(&list, "bitcoin")["gap_warning"];
    assert_eq!(w["longest_unpaid_run"], 21, "{w}");
    assert_eq!(w["run_start_index"], 21, "{w}");
    assert_eq!(w["payment_beyond_gap"], false, "{w}");
    assert_eq!(w["threshold"], 20);
    assert!(w["message"].as_str().unwrap().contains("gap limit"));
}

/// Deposit accounts' standing addresses take wallet indexes too: unpaid ones widen the gap,
/// a deposit closes it, exactly as orders do.
async fn deposit_addresses_count_in_the_gap(db: &TestDb) {
    let e = engine(db);
    let (m, _) = e.create_merchant("Recharge shop").await.unwrap();
    e.set_wallet(&m.id, "bitcoin", "tpubDEP").await.unwrap();
    let bitcoin = ChainId::parse("bitcoin").unwrap();
    let mut last = String::new();
    for i in 0..21 {
        let (account, _) = e
            .create_deposit_account(&m.id, "payprotocol", &format!("U{i}"))
            .await
            .unwrap();
        last = account.addresses[0].address.clone();
    }
    let gap = e.wallet_gap(&m.id, &bitcoin).await.unwrap().unwrap();
    assert_eq!(gap.longest_run, 21, "{gap:?}");
    e.apply_chain_batch(&fixtures::batch(
        "bitcoin",
        vec![fixtures::mined(
            AssetId::from_str("bitcoin:BTC").unwrap(),
            last,
            coffer_core::BaseUnits::new(10_000),
            &"cc".repeat(32),
            10,
            time::OffsetDateTime::now_utc(),
        )],
        10,
    ))
    .await
    .unwrap();
    let gap = e.wallet_gap(&m.id, &bitcoin).await.unwrap().unwrap();
    assert_eq!(gap.longest_run, 20, "{gap:?}");
}

async fn put_confirmations(base: &str, key: &str, chain: &str, body: Value) -> (u16, Value) {
    let res = coffer_testkit::http_client()
        .put(format!("{base}/api/v1/wallets/{chain}/confirmations"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn confirmations_per_merchant_and_chain(db: &TestDb) {
    let e = engine(db);
    let state = AppState {
        engine: e.clone(),
        metrics: coffer_api::metrics_handle(),
    };
    let api = coffer_api::v1::router(&state, &ApiSettings::default());
    let app = coffer_api::router(state, &HttpSettings::default(), api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coffer_api::serve(listener, app, std::future::pending()));
    let (m, key) = e.create_merchant("Policy shop").await.unwrap();
    let (_, other) = e.create_merchant("Other shop").await.unwrap();
    e.set_wallet(&m.id, "bitcoin", "tpubPOLICY").await.unwrap();
    e.set_wallet(&m.id, "eth", "xpubPOLICY").await.unwrap();
    let list = wallets(&base, &key.token).await;
    assert_eq!(
        by_chain(&list, "bitcoin")["confirmations"],
        1,
        "chain default"
    );

    // Bitcoin takes 0, 1, 2 or 6; other chains 1 to 1000; unknown chains are refused.
    for (chain, body, code) in [
        (
            "bitcoin",
            serde_json::json!({"confirmations": 3}),
            "invalid_confirmations",
        ),
        (
            "eth",
            serde_json::json!({"confirmations": 0}),
            "invalid_confirmations",
        ),
        (
            "dogecoin",
            serde_json::json!({"confirmations": 1}),
            "unknown_chain",
        ),
    ] {
        let (status, body) = put_confirmations(&base, &key.token, chain, body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    let (status, body) = put_confirmations(
        &base,
        &key.token,
        "bitcoin",
        serde_json::json!({"confirmations": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["confirmations"].clone(), body["effective"].clone()),
        (0.into(), 0.into())
    );
    let list = wallets(&base, &key.token).await;
    assert_eq!(by_chain(&list, "bitcoin")["confirmations"], 0);
    assert_eq!(by_chain(&list, "eth")["confirmations"], 1);
    // New orders snapshot it.
    let o = e
        .create_order(
            &m.id,
            NewOrder {
                amount: Decimal::from(25),
                currency: "USD".into(),
                asset: Some(AssetId::from_str("bitcoin:BTC").unwrap()),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    assert_eq!(o.policy.confirmations_for("bitcoin"), Some(0));
    // Another merchant's setting is its own.
    let (_, body) = put_confirmations(
        &base,
        &other.token,
        "bitcoin",
        serde_json::json!({"confirmations": 6}),
    )
    .await;
    assert_eq!(body["effective"], 6);
    assert_eq!(
        by_chain(&wallets(&base, &key.token).await, "bitcoin")["confirmations"],
        0
    );
    // null goes back to the chain's default.
    let (_, body) = put_confirmations(
        &base,
        &key.token,
        "bitcoin",
        serde_json::json!({"confirmations": null}),
    )
    .await;
    assert_eq!(
        (body["confirmations"].clone(), body["effective"].clone()),
        (Value::Null, 1.into())
    );
}

both_backends! {
    deposit_gap => deposit_addresses_count_in_the_gap;
    gap_warning => gap_warning_on_bitcoin_wallets;
    confirmations => confirmations_per_merchant_and_chain;
}
