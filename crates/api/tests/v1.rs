//! The native API v1 through real HTTP on loopback, against a running app on a fresh SQLite
//! and a fresh PostgreSQL database each.
//!
//! Address derivation uses a small deterministic test deriver (the real EVM deriver lives in
//! its chain crate and is tested against published vectors there).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;

use coffer_api::v1::ApiSettings;
use coffer_api::{AppState, HttpSettings};
use coffer_core::{
    AssetId, AssetKind, Chain, ChainId, ChainKind, FixedRates, Network, Price, Scope,
};
use coffer_engine::{AssetRegistry, Engine, EngineParts, EngineSettings, Methods, SystemClock};
use coffer_store::{EventQuery, OrderQuery};
use coffer_testkit::fixtures::{self, TestDeriver};
use coffer_testkit::{TestDb, both_backends};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn registry() -> AssetRegistry {
    let btc = Chain {
        id: ChainId::parse("bitcoin").unwrap(),
        kind: ChainKind::Bitcoin,
        network: Network::Mainnet,
        name: "Bitcoin".into(),
        confirmations: 2,
        evm_chain_id: None,
    };
    AssetRegistry::new(
        vec![fixtures::bsc(15), btc],
        vec![
            fixtures::asset("bsc", "BNB", AssetKind::Native, 18, false),
            fixtures::asset("bsc", "USDT", fixtures::token("0x55d3"), 18, true),
            fixtures::asset("bitcoin", "BTC", AssetKind::Native, 8, false),
        ],
    )
    .unwrap()
}

fn engine(db: &TestDb) -> Engine {
    let rates = FixedRates::new()
        .with("BNB", "USD", Price::new(Decimal::from(600)).unwrap())
        .with("BTC", "USD", Price::new(Decimal::from(60000)).unwrap())
        .with(
            "USDT",
            "USD",
            Price::new(Decimal::from_str("0.9998").unwrap()).unwrap(),
        );
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(rates),
        assets: Arc::new(registry()),
        methods: Methods::default().with(
            ChainKind::Evm,
            TestDeriver::new(|d, i| format!("0x{d}{i}"))
                .xpub_only()
                .evm(),
        ),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings {
            public_url: "https://pay.example".into(),
            ..EngineSettings::default()
        }),
    })
}

/// The settings a dialect declares (Pay Protocol's, as in its crate).
const RECHARGE_SETTINGS: &[coffer_engine::SettingSpec] = &[coffer_engine::SettingSpec {
    name: "recharge_notify_url",
    meaning: "where recharge callbacks go",
    kind: coffer_engine::SettingKind::Url,
}];

struct App {
    base: String,
    engine: Engine,
    webhooks: coffer_webhooks::Webhooks,
    http: reqwest::Client,
    /// Admin keys of merchants A and B.
    a: String,
    b: String,
}

impl App {
    async fn start(db: &TestDb) -> App {
        Self::start_with(db, ApiSettings::default()).await
    }

    async fn start_with(db: &TestDb, settings: ApiSettings) -> App {
        // A dialect's settings, as the server passes them from its dialect registry.
        let settings = ApiSettings {
            dialect_settings: vec![("payprotocol", RECHARGE_SETTINGS)],
            ..settings
        };
        let engine = engine(db);
        let state = AppState {
            engine: engine.clone(),
            metrics: coffer_api::metrics_handle(),
        };
        let api = coffer_api::v1::router(&state, &settings);
        // The webhook and events routes, mounted beside v1 as `coffer serve` does.
        let webhooks = coffer_webhooks::Webhooks::new(
            db.store.clone(),
            engine.clock().clone(),
            coffer_webhooks::MasterKey::from_bytes([7; 32]),
            coffer_webhooks::Settings::default(),
        );
        let api = api.merge(coffer_api::webhooks_routes::router(
            coffer_api::webhooks_routes::WebhooksApi {
                engine: engine.clone(),
                service: webhooks.service(),
            },
        ));
        let app = coffer_api::router(state, &HttpSettings::default(), api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(coffer_api::serve(listener, app, std::future::pending()));
        let (_, a) = engine.create_merchant("Merchant A").await.unwrap();
        let (_, b) = engine.create_merchant("Merchant B").await.unwrap();
        App {
            base,
            engine,
            webhooks,
            http: coffer_testkit::http_client(),
            a: a.token,
            b: b.token,
        }
    }

    async fn key(&self, admin: &str, scopes: Vec<Scope>) -> String {
        let cred = self.engine.authenticate(admin).await.unwrap();
        self.engine
            .create_key(&cred.merchant_id, "test", scopes, None)
            .await
            .unwrap()
            .token
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// `n` orders of 1.00, 2.00, … USD; their ids, oldest first.
    async fn usd_orders(&self, key: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            let (status, o) = self
                .post(
                    "/api/v1/orders",
                    key,
                    json!({"amount": format!("{}.00", i + 1), "currency": "USD"}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{o}");
            ids.push(o["id"].as_str().unwrap().to_owned());
        }
        ids
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, Some(key), None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(key), Some(body)).await
    }

    async fn raw_post(
        &self,
        path: &str,
        key: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        req.send().await.unwrap()
    }

    /// A's wallet is `xpubTEST`, any other merchant's `xpubOTHER` (a key is one merchant's).
    async fn wallet(&self, key: &str) {
        let xpub = if key == self.a {
            "xpubTEST"
        } else {
            "xpubOTHER"
        };
        let (status, body) = self
            .send(
                Method::PUT,
                "/api/v1/wallets/bsc",
                Some(key),
                Some(json!({ "xpub": xpub })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
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

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn order_lifecycle(db: &TestDb) {
    let app = App::start(db).await;
    let a = &app.a;

    // Catalog before a wallet: assets listed, none payable yet.
    let (status, assets) = app.get("/api/v1/assets", a).await;
    assert_eq!(status, StatusCode::OK, "{assets}");
    let list = assets["data"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.iter().all(|x| x["wallet_configured"] == false));
    let (status, fiat) = app.get("/api/v1/fiat-currencies", a).await;
    assert_eq!(status, StatusCode::OK);
    let usd = fiat["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "USD")
        .unwrap();
    assert_eq!(usd["minor_units"], 2);
    // Rates with their sources; a pair without a rate says so instead of guessing.
    let (status, rates) = app
        .get("/api/v1/rates?assets=BTC,BNB&fiat=USD,EUR", a)
        .await;
    assert_eq!(status, StatusCode::OK, "{rates}");
    let rows = rates["data"].as_array().unwrap();
    let btc_usd = rows
        .iter()
        .find(|r| r["asset"] == "BTC" && r["currency"] == "USD")
        .unwrap();
    assert_eq!(btc_usd["price"], "60000");
    assert_eq!(btc_usd["source"], "fixed");
    let bnb_eur = rows
        .iter()
        .find(|r| r["asset"] == "BNB" && r["currency"] == "EUR")
        .unwrap();
    assert!(bnb_eur["price"].is_null(), "{bnb_eur}");
    let (status, bad) = app.get("/api/v1/rates?asset=BTC", a).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(usd["name"], "US Dollar");

    // An asset without a wallet is refused, and nothing is written.
    let (status, body) = app
        .post(
            "/api/v1/orders",
            a,
            json!({"amount": "10", "currency": "USD", "asset": "bsc:USDT"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "wallet_not_configured")
    );
    assert_eq!(counts(db).await, (0, 0));

    app.wallet(a).await;
    let (status, wallets) = app.get("/api/v1/wallets", a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(wallets["data"][0]["chain"], "bsc");
    assert_eq!(wallets["data"][0]["xpub"], "xpubTEST");
    let (_, assets) = app.get("/api/v1/assets", a).await;
    let usdt = assets["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "bsc:USDT")
        .unwrap();
    assert_eq!(usdt["wallet_configured"], true);
    assert_eq!(usdt["decimals"], 18);
    assert_eq!(usdt["kind"], "token");

    // Create with the asset chosen, fixed stablecoin rate.
    let (status, order) = app
        .post(
            "/api/v1/orders",
            a,
            json!({
                "amount": "12.50", "currency": "usd", "asset": "bsc:USDT",
                "fixed_stablecoin_rate": true, "order_no": "A-1",
                "description": "two coffees", "metadata": {"cart": [1, 2]},
                "success_url": "https://shop.example/ok", "expires_in": 600
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ord_"));
    assert_eq!(order["status"], "pending");
    assert_eq!(order["amount"], "12.5");
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["payment"]["amount_due"], "12.5");
    assert_eq!(
        order["payment"]["amount_due_base_units"],
        "12500000000000000000"
    );
    assert_eq!(order["payment"]["address"], "0xxpubTEST0");
    assert_eq!(
        order["payment"]["payment_uri"],
        "ethereum:0x55d3@56/transfer?address=0xxpubTEST0&uint256=12500000000000000000"
    );
    assert!(
        order["checkout_url"]
            .as_str()
            .unwrap()
            .starts_with("https://pay.example/pay/")
    );
    assert_eq!(order["metadata"]["cart"][1], 2);

    // The same order_no and fields: the existing order (200); other fields: 409.
    let (status, again) = app
        .post(
            "/api/v1/orders",
            a,
            json!({
                "amount": "12.50", "currency": "USD", "asset": "bsc:USDT",
                "fixed_stablecoin_rate": true, "order_no": "A-1",
                "description": "two coffees", "metadata": {"cart": [1, 2]},
                "success_url": "https://shop.example/ok", "expires_in": 600
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str());
    let (status, body) = app
        .post(
            "/api/v1/orders",
            a,
            json!({"amount": "13", "currency": "USD", "order_no": "A-1"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "order_no_conflict")
    );

    // Read it back.
    let (status, got) = app.get(&format!("/api/v1/orders/{id}"), a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, order);

    // Change the asset: a new address and amount at the native coin's rate.
    let (status, changed) = app
        .post(
            &format!("/api/v1/orders/{id}/asset"),
            a,
            json!({"asset": "bsc:BNB"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["payment"]["asset"], "bsc:BNB");
    assert_eq!(changed["payment"]["address"], "0xxpubTEST1");
    // 12.50 USD / 600 = 0.0208333… BNB, rounded up to the wei.
    assert_eq!(
        changed["payment"]["amount_due_base_units"],
        "20833333333333334"
    );
    assert_eq!(
        changed["payment"]["payment_uri"],
        "ethereum:0xxpubTEST1@56?value=20833333333333334"
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/orders/{id}/asset"),
            a,
            json!({"asset": "bitcoin:BTC"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "chain_unsupported"),
        "{body}"
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/orders/{id}/asset"),
            a,
            json!({"asset": "bsc:DOGE"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "unknown_asset")
    );

    // Payments: none yet.
    let (status, payments) = app.get(&format!("/api/v1/orders/{id}/payments"), a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(payments["data"], json!([]));

    // Resolve needs an underpaid order: a pending unpaid one is a conflict.
    let (status, body) = app
        .post(&format!("/api/v1/orders/{id}/resolve"), a, json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "invalid_state"),
        "{body}"
    );

    // Mark settled by hand, with a reason; then cancel is no longer possible.
    let (status, body) = app
        .post(
            &format!("/api/v1/orders/{id}/mark"),
            a,
            json!({"status": "paid"  , "reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_status")
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/orders/{id}/mark"),
            a,
            json!({"status": "settled"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "missing_field")
    );
    assert_eq!(body["error"]["field"], "reason");
    let (status, marked) = app
        .post(
            &format!("/api/v1/orders/{id}/mark"),
            a,
            json!({"status": "settled", "reason": "paid in cash"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{marked}");
    assert_eq!(marked["status"], "settled");
    let (status, body) = app
        .post(&format!("/api/v1/orders/{id}/cancel"), a, json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "invalid_state")
    );

    // A second order without an asset: the buyer chooses; cancel it with an empty body.
    let (status, open) = app
        .post(
            "/api/v1/orders",
            a,
            json!({"amount": "5", "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{open}");
    assert_eq!(open["payment"], Value::Null);
    let oid = open["id"].as_str().unwrap();
    let res = app
        .raw_post(
            &format!("/api/v1/orders/{oid}/cancel"),
            a,
            "application/json",
            "",
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cancelled: Value = res.json().await.unwrap();
    assert_eq!(cancelled["status"], "invalid", "{cancelled}");
    assert_eq!(cancelled["reason"], "marked", "{cancelled}");
    // Invalidate another one by hand.
    let (_, third) = app
        .post(
            "/api/v1/orders",
            a,
            json!({"amount": "1", "currency": "JPY"}),
        )
        .await;
    let (status, inv) = app
        .post(
            &format!("/api/v1/orders/{}/mark", third["id"].as_str().unwrap()),
            a,
            json!({"status": "invalid", "reason": "fraud"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{inv}");
    assert_eq!(inv["status"], "invalid");

    // Unknown ids (well-formed or not) are 404.
    for path in [
        "/api/v1/orders/ord_00000000000000000000000000",
        "/api/v1/orders/nope",
    ] {
        let (status, body) = app.get(path, a).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }
}

async fn pagination(db: &TestDb) {
    let app = App::start(db).await;
    // Orders without an asset need a chain the merchant can be paid on.
    app.wallet(&app.a).await;
    app.wallet(&app.b).await;
    let a = &app.a;
    let ids = app.usd_orders(a, 5).await;
    let (_, other) = app
        .post(
            "/api/v1/orders",
            &app.b,
            json!({"amount": "1", "currency": "USD"}),
        )
        .await;

    let mut seen = Vec::new();
    let mut path = "/api/v1/orders?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&path, a).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for o in page["data"].as_array().unwrap() {
            seen.push(o["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(page["has_more"], true);
                path = format!("/api/v1/orders?limit=2&cursor={c}");
            }
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse(); // newest first
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(sorted_seen.len(), 5, "no duplicates across pages: {seen:?}");
    assert!(!seen.contains(&other["id"].as_str().unwrap().to_owned()));
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    assert_eq!(sorted_seen, sorted_ids);

    let (_, pending) = app.get("/api/v1/orders?status=pending&limit=100", a).await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 5);
    let (_, settled) = app.get("/api/v1/orders?status=settled", a).await;
    assert_eq!(settled["data"], json!([]));
    let (_, future) = app
        .get("/api/v1/orders?created_from=2999-01-01T00:00:00Z", a)
        .await;
    assert_eq!(future["data"], json!([]));

    for (path, expected_code, field) in [
        ("/api/v1/orders?cursor=garbage", "invalid_cursor", "cursor"),
        ("/api/v1/orders?limit=0", "invalid_limit", "limit"),
        ("/api/v1/orders?limit=101", "invalid_limit", "limit"),
        ("/api/v1/orders?status=paid", "invalid_status", "status"),
        (
            "/api/v1/orders?created_from=yesterday",
            "invalid_time",
            "created_from",
        ),
        ("/api/v1/orders?colour=red", "invalid_query", "colour"),
    ] {
        let (status, body) = app.get(path, a).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(code(&body), expected_code, "{path}");
        assert_eq!(body["error"]["field"], field, "{path}");
    }
}

/// Every list of the native API has one envelope: `object`, `data`, `has_more` and
/// `next_cursor` (a string exactly when `has_more`). The events feed and the delivery log
/// had no `has_more` and gave a cursor whenever a page was full, even when nothing followed.
async fn list_envelopes_are_uniform(db: &TestDb) {
    let app = App::start(db).await;
    app.wallet(&app.a).await;
    let a = &app.a;
    let (status, hook) = app
        .post(
            "/api/v1/webhooks",
            a,
            json!({"url": "https://hooks.example/coffer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_owned();
    let order = app.usd_orders(a, 3).await.pop().unwrap();
    // One order.created event each, and a delivery of each to the endpoint.
    app.webhooks.dispatch_once(100).await.unwrap();

    let paged = [
        "/api/v1/events?".to_owned(),
        format!("/api/v1/webhooks/{hook}/deliveries?"),
        "/api/v1/orders?".to_owned(),
    ];
    for base in &paged {
        let mut seen = Vec::new();
        let mut path = format!("{base}limit=2");
        let mut pages = 0;
        loop {
            let (status, page) = app.get(&path, a).await;
            assert_eq!(status, StatusCode::OK, "{path}: {page}");
            pages += 1;
            for item in page["data"].as_array().unwrap() {
                seen.push(item["id"].as_str().unwrap().to_owned());
            }
            if page["has_more"] == true {
                let cursor = page["next_cursor"]
                    .as_str()
                    .expect("a cursor when has_more");
                path = format!("{base}limit=2&cursor={cursor}");
            } else {
                assert_eq!(page["has_more"], false, "{path}: {page}");
                assert!(page["next_cursor"].is_null(), "{path}: {page}");
                break;
            }
        }
        assert_eq!(pages, 2, "{base}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "{base}: {seen:?}");
        // A page holding exactly what is left says so: no cursor to an empty page.
        let (_, page) = app.get(&format!("{base}limit=3"), a).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 3, "{base}");
        assert_eq!(page["has_more"], false, "{base}: {page}");
        assert!(page["next_cursor"].is_null(), "{base}: {page}");
    }

    let every_list = [
        "/api/v1/orders".to_owned(),
        format!("/api/v1/orders/{order}/payments"),
        "/api/v1/payouts".to_owned(),
        "/api/v1/deposits".to_owned(),
        "/api/v1/deposit-accounts".to_owned(),
        "/api/v1/events".to_owned(),
        "/api/v1/webhooks".to_owned(),
        format!("/api/v1/webhooks/{hook}/deliveries"),
        "/api/v1/assets".to_owned(),
        "/api/v1/fiat-currencies".to_owned(),
        "/api/v1/wallets".to_owned(),
        "/api/v1/rates".to_owned(),
    ];
    for path in &every_list {
        let (status, list) = app.get(path, a).await;
        assert_eq!(status, StatusCode::OK, "{path}: {list}");
        assert_eq!(list["object"], "list", "{path}");
        assert!(list["data"].is_array(), "{path}");
        let has_more = list["has_more"].as_bool().expect("has_more");
        let cursor = list.get("next_cursor").expect("next_cursor");
        assert_eq!(cursor.is_string(), has_more, "{path}: {list}");
        assert!(cursor.is_string() || cursor.is_null(), "{path}");
    }
}

async fn merchants_are_isolated(db: &TestDb) {
    let app = App::start(db).await;
    app.wallet(&app.a).await;
    app.wallet(&app.b).await;
    let (_, order) = app
        .post(
            "/api/v1/orders",
            &app.a,
            json!({"amount": "10", "currency": "USD"}),
        )
        .await;
    let id = order["id"].as_str().unwrap();
    let b = &app.b;

    let (status, body) = app.get(&format!("/api/v1/orders/{id}"), b).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = app.get(&format!("/api/v1/orders/{id}/payments"), b).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (_, list) = app.get("/api/v1/orders", b).await;
    assert_eq!(list["data"], json!([]));
    for (action, body) in [
        ("asset", json!({"asset": "bsc:USDT"})),
        ("cancel", json!({})),
        ("mark", json!({"status": "settled", "reason": "mine now"})),
        ("mark", json!({"status": "invalid", "reason": "mine now"})),
        ("resolve", json!({})),
    ] {
        let (status, resp) = app
            .post(&format!("/api/v1/orders/{id}/{action}"), b, body)
            .await;
        assert_eq!(
            (status, code(&resp)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{action}: {resp}"
        );
    }
    // A's order is untouched: still pending, no asset, version 1.
    let (status, after) = app.get(&format!("/api/v1/orders/{id}"), &app.a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, order);
    // B's wallet index was not consumed by the refused asset choice either.
    let (_, wallets) = app.get("/api/v1/wallets", b).await;
    assert_eq!(wallets["data"][0]["next_index"], 0);
}

async fn keys_and_scopes(db: &TestDb) {
    let app = App::start(db).await;
    app.wallet(&app.a).await;
    let reader = app.key(&app.a, vec![Scope::OrdersRead]).await;
    let writer = app.key(&app.a, vec![Scope::OrdersWrite]).await;

    let (status, body) = app.send(Method::GET, "/api/v1/orders", None, None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let res = app
        .http
        .get(format!("{}/api/v1/orders", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let bad = format!("{}x", app.a);
    let (status, _) = app.get("/api/v1/orders", &bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/v1/orders", "ck_not_a_key").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = app
        .post(
            "/api/v1/orders",
            &reader,
            json!({"amount": "1", "currency": "USD"}),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, _) = app.get("/api/v1/orders", &reader).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get("/api/v1/orders", &writer).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, created) = app
        .post(
            "/api/v1/orders",
            &writer,
            json!({"amount": "1", "currency": "USD"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/wallets/bsc",
            Some(&writer),
            Some(json!({"xpub": "xpubX"})),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let wallets = app.key(&app.a, vec![Scope::WalletsWrite]).await;
    let (status, _) = app
        .send(
            Method::PUT,
            "/api/v1/wallets/bsc",
            Some(&wallets),
            Some(json!({"xpub": "xpubX"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/wallets/solana",
            Some(&wallets),
            Some(json!({"xpub": "xpubX"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "unknown_chain")
    );
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/wallets/bsc",
            Some(&wallets),
            Some(json!({"xpub": "zprv-secret"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_wallet")
    );

    // A revoked key stops working at once.
    let cred = app.engine.authenticate(&reader).await.unwrap();
    app.engine
        .revoke_key(&cred.merchant_id, &cred.id)
        .await
        .unwrap();
    let (status, _) = app.get("/api/v1/orders", &reader).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Wrong method on a known route: 405 in the error shape.
    let (status, body) = app
        .send(Method::DELETE, "/api/v1/orders", Some(&app.a), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

async fn bad_input_is_refused_and_writes_nothing(db: &TestDb) {
    let app = App::start(db).await;
    app.wallet(&app.a).await;
    let a = &app.a;
    let big_metadata = json!({"blob": "x".repeat(5000)});
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (
            json!({"amount": "-1", "currency": "USD"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": "0", "currency": "USD"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": "0.001", "currency": "USD"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": "1.5", "currency": "JPY"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": "1e3", "currency": "USD"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": "ten", "currency": "USD"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": 10, "currency": "USD"}),
            "invalid_field",
            Some("amount"),
        ),
        (
            json!({"amount": 10.5, "currency": "USD"}),
            "invalid_field",
            Some("amount"),
        ),
        (json!({"currency": "USD"}), "missing_field", Some("amount")),
        (
            json!({"amount": "1", "currency": "XYZ"}),
            "unknown_currency",
            Some("currency"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "asset": "bsc:DOGE"}),
            "unknown_asset",
            Some("asset"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "asset": "nonsense"}),
            "unknown_asset",
            Some("asset"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "colour": "red"}),
            "unknown_field",
            Some("colour"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "metadata": big_metadata}),
            "metadata_too_large",
            Some("metadata"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "metadata": [1, 2]}),
            "invalid_field",
            Some("metadata"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "success_url": "javascript:alert(1)"}),
            "invalid_url",
            Some("success_url"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "callback_url": "ftp://x.example/"}),
            "invalid_url",
            Some("callback_url"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "expired_url": "not a url"}),
            "invalid_url",
            Some("expired_url"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "expires_in": 5}),
            "invalid_expires_in",
            Some("expires_in"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "expires_in": "600"}),
            "invalid_field",
            Some("expires_in"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "fixed_stablecoin_rate": "yes"}),
            "invalid_field",
            Some("fixed_stablecoin_rate"),
        ),
        (
            json!({"amount": "1", "currency": "USD", "order_no": "has space"}),
            "invalid_order_no",
            Some("order_no"),
        ),
        (json!([1, 2]), "invalid_json", None),
        (json!("amount"), "invalid_json", None),
    ];
    for (body, expected, field) in cases {
        let (status, resp) = app.post("/api/v1/orders", a, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_eq!(code(&resp), expected, "{body}: {resp}");
        assert_eq!(resp["error"]["field"].as_str(), field, "{body}: {resp}");
        assert!(
            resp["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Malformed JSON, trailing garbage, wrong content type, oversized body.
    for (ct, raw, status, expected) in [
        (
            "application/json",
            "{\"amount\": \"1\",",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "application/json",
            "{\"amount\":\"1\",\"currency\":\"USD\"} x",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "text/plain",
            "{\"amount\":\"1\",\"currency\":\"USD\"}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ] {
        let res = app.raw_post("/api/v1/orders", a, ct, raw, None).await;
        assert_eq!(res.status(), status, "{raw}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(code(&body), expected, "{raw}");
    }
    let huge = format!(
        "{{\"amount\":\"1\",\"currency\":\"USD\",\"description\":\"{}\"}}",
        "x".repeat(70_000)
    );
    for idem in [None, Some("huge-1")] {
        // Its own client: the server closes a connection whose body it refused to read.
        let mut req = coffer_testkit::http_client()
            .post(format!("{}/api/v1/orders", app.base))
            .bearer_auth(a)
            .header("content-type", "application/json")
            .body(huge.clone());
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: Value = res.json().await.unwrap();
        assert_eq!(code(&body), "body_too_large");
    }
    // Bad bodies on the other POSTs too.
    let (_, order) = app
        .post(
            "/api/v1/orders",
            a,
            json!({"amount": "1", "currency": "USD"}),
        )
        .await;
    let id = order["id"].as_str().unwrap();
    let before = counts(db).await;
    for (action, body, expected, field) in [
        ("asset", json!({}), "missing_field", "asset"),
        ("asset", json!({"asset": 5}), "invalid_field", "asset"),
        ("cancel", json!({"why": "x"}), "unknown_field", "why"),
        (
            "mark",
            json!({"status": "settled", "reason": ""}),
            "invalid_reason",
            "reason",
        ),
        (
            "mark",
            json!({"status": "settled", "reason": "r".repeat(501)}),
            "invalid_reason",
            "reason",
        ),
    ] {
        let (status, resp) = app
            .post(&format!("/api/v1/orders/{id}/{action}"), a, body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{action}: {resp}");
        assert_eq!(
            (code(&resp), resp["error"]["field"].as_str()),
            (expected, Some(field)),
            "{action}: {resp}"
        );
    }
    // Nothing but the one good order was written, and its wallet index was never taken.
    assert_eq!(counts(db).await, before);
    assert_eq!(before, (1, 1));
    let (_, wallets) = app.get("/api/v1/wallets", a).await;
    assert_eq!(wallets["data"][0]["next_index"], 0);
}

async fn idempotency(db: &TestDb) {
    let app = App::start(db).await;
    app.wallet(&app.a).await;
    app.wallet(&app.b).await;
    let a = &app.a;
    let body =
        r#"{"amount":"10","currency":"USD","asset":"bsc:USDT","fixed_stablecoin_rate":true}"#;

    let first = app
        .raw_post("/api/v1/orders", a, "application/json", body, Some("k-1"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retry = app
        .raw_post("/api/v1/orders", a, "application/json", body, Some("k-1"))
        .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(counts(db).await.0, 1);

    // Same key, another body (or path): 422, nothing written.
    let other = r#"{"amount":"11","currency":"USD"}"#;
    let res = app
        .raw_post("/api/v1/orders", a, "application/json", other, Some("k-1"))
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&res.json().await.unwrap()), "idempotency_key_reused");
    let id = first["id"].as_str().unwrap();
    let res = app
        .raw_post(
            &format!("/api/v1/orders/{id}/cancel"),
            a,
            "application/json",
            body,
            Some("k-1"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(counts(db).await.0, 1);

    // Errors are stored and replayed too.
    let bad = r#"{"amount":"-5","currency":"USD"}"#;
    for _ in 0..2 {
        let res = app
            .raw_post("/api/v1/orders", a, "application/json", bad, Some("k-bad"))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(&res.json().await.unwrap()), "invalid_amount");
    }
    let replay = app
        .raw_post("/api/v1/orders", a, "application/json", bad, Some("k-bad"))
        .await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");

    // Another merchant has its own key space.
    let res = app
        .raw_post(
            "/api/v1/orders",
            &app.b,
            "application/json",
            other,
            Some("k-1"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(counts(db).await.0, 2);

    // A bad key is refused before anything runs.
    let res = app
        .raw_post(
            "/api/v1/orders",
            a,
            "application/json",
            body,
            Some(&"k".repeat(300)),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&res.json().await.unwrap()), "invalid_idempotency_key");

    // Concurrent duplicates: exactly one order, every answer the same order.
    let body = r#"{"amount":"7","currency":"USD","asset":"bsc:BNB"}"#;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let http = app.http.clone();
        let url = format!("{}/api/v1/orders", app.base);
        let key = a.clone();
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .header("idempotency-key", "k-race")
                .body(body)
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(counts(db).await.0, 3);
    // One address index was taken for the race (plus one for k-1): no order was half-made.
    let (_, wallets) = app.get("/api/v1/wallets", a).await;
    assert_eq!(wallets["data"][0]["next_index"], 2);

    // Purging keeps keys younger than 24 h and forgets older ones.
    assert_eq!(app.engine.purge_idempotency().await.unwrap(), 0);
    let merchant = app.engine.authenticate(a).await.unwrap().merchant_id;
    db.store
        .commit(coffer_store::Changeset {
            idempotency_reservations: vec![coffer_store::IdempotencyRecord {
                merchant_id: merchant.clone(),
                key: "k-old".into(),
                fingerprint: "POST /api/v1/orders x".into(),
                response: None,
                created_at: app.engine.now() - time::Duration::hours(25),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(app.engine.purge_idempotency().await.unwrap(), 1);
    assert!(
        db.store
            .get_idempotency(&merchant, "k-old")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store
            .get_idempotency(&merchant, "k-bad")
            .await
            .unwrap()
            .is_some()
    );
    let replay = app
        .raw_post("/api/v1/orders", a, "application/json", bad, Some("k-bad"))
        .await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}

async fn rate_limit(db: &TestDb) {
    let app = App::start_with(
        db,
        ApiSettings {
            rate_limit_per_minute: 3,
            ..ApiSettings::default()
        },
    )
    .await;
    for _ in 0..3 {
        let (status, _) = app.get("/api/v1/orders", &app.a).await;
        assert_eq!(status, StatusCode::OK);
    }
    let res = app
        .http
        .get(format!("{}/api/v1/orders", app.base))
        .bearer_auth(&app.a)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert!(res.headers().get("x-request-id").is_some());
    assert_eq!(code(&res.json().await.unwrap()), "rate_limited");
    // Per key: B is unaffected.
    let (status, _) = app.get("/api/v1/orders", &app.b).await;
    assert_eq!(status, StatusCode::OK);
}

/// Every route the router serves, as the OpenAPI document must list it.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{id}"),
    ("post", "/api/v1/orders/{id}/asset"),
    ("post", "/api/v1/orders/{id}/cancel"),
    ("post", "/api/v1/orders/{id}/mark"),
    ("post", "/api/v1/orders/{id}/resolve"),
    ("post", "/api/v1/orders/{id}/repair"),
    ("get", "/api/v1/orders/{id}/payments"),
    ("get", "/api/v1/assets"),
    ("get", "/api/v1/fiat-currencies"),
    ("get", "/api/v1/rates"),
    ("get", "/api/v1/wallets"),
    ("put", "/api/v1/wallets/{chain}"),
    ("put", "/api/v1/wallets/{chain}/confirmations"),
    ("get", "/api/v1/branding"),
    ("put", "/api/v1/branding"),
    ("post", "/api/v1/deposit-accounts"),
    ("get", "/api/v1/deposit-accounts"),
    ("get", "/api/v1/deposit-accounts/{number}"),
    ("get", "/api/v1/deposits"),
    ("get", "/api/v1/deposits/{id}"),
    ("get", "/api/v1/payouts"),
    ("get", "/api/v1/payouts/{id}"),
    ("post", "/api/v1/payouts/{id}/status"),
    ("get", "/api/v1/dialects/{dialect}/settings"),
    ("put", "/api/v1/dialects/{dialect}/settings"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{id}"),
    ("patch", "/api/v1/webhooks/{id}"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("post", "/api/v1/webhooks/{id}/rotate"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    (
        "post",
        "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
    ),
    ("get", "/api/v1/events"),
];

async fn openapi_and_docs(db: &TestDb) {
    let app = App::start(db).await;
    let res = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("x-request-id").is_some());
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].is_object(), "{method} {path} has responses");
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected);
    // Every $ref points at a schema that exists.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "missing schema {name}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    // And every documented route is really served (not the 404 fallback, not 405).
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{id}", "ord_00000000000000000000000000")
            .replace("{chain}", "bsc");
        let method = Method::from_str(&method.to_uppercase()).unwrap();
        let (status, body) = app
            .send(method.clone(), &concrete, Some(&app.a), Some(json!({})))
            .await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(body["error"]["message"], "no such route", "{method} {path}");
    }

    let res = app
        .http
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("/api/v1/openapi.json"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external assets"
    );

    // CORS is off: no CORS headers, even for a preflight.
    let res = app
        .http
        .request(Method::OPTIONS, format!("{}/api/v1/orders", app.base))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = app
        .http
        .get(format!("{}/api/v1/orders", app.base))
        .bearer_auth(&app.a)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert!(res.headers().get("x-request-id").is_some());
}

/// `POST /api/v1/orders/{id}/repair`: a payment outside the 0.5×–1.2× window is accepted by
/// its transaction hash, then the short amount is accepted as payment in full.
async fn repair(db: &TestDb) {
    let app = App::start(db).await;
    let a = &app.a;
    app.wallet(a).await;
    let (status, order) = app
        .post(
            "/api/v1/orders",
            a,
            json!({"amount": "10", "currency": "USD", "asset": "bsc:USDT", "fixed_stablecoin_rate": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let stored = db
        .store
        .find_order(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let target = stored.target.clone().unwrap();
    let at = time::OffsetDateTime::now_utc();
    app.engine
        .apply_chain_batch(&fixtures::batch(
            "bsc",
            vec![fixtures::mined(
                target.asset.clone(),
                target.address.clone(),
                coffer_core::BaseUnits::new(3_000_000_000_000_000_000),
                "0xabc123",
                100,
                at,
            )],
            120,
        ))
        .await
        .unwrap();
    let path = format!("/api/v1/orders/{id}/repair");
    let (status, body) = app.get(&format!("/api/v1/orders/{id}"), a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["status"].as_str(), body["reason"].as_str()),
        (Some("pending"), Some("none"))
    );
    // bad input and other merchants: refused, nothing changes
    let (status, body) = app.post(&path, a, json!({"txid": "not a hash!"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_txid");
    let (status, _) = app.post(&path, &app.b, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.post(&path, a, json!({"txid": "0xother"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // attach the transaction hash: counted, partially paid
    let (status, body) = app.post(&path, a, json!({"txid": "0xabc123"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["reason"].as_str()),
        (Some("pending"), Some("paid_partial"))
    );
    // accept the amount: settled
    let (status, body) = app
        .post(
            &path,
            a,
            json!({"accept_amount": true, "reason": "customer paid short"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["reason"].as_str()),
        (Some("settled"), Some("marked"))
    );
    let (status, body) = app.post(&path, a, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

/// Dialect settings (what a vendor keeps in its console): admin only, checked before any is
/// written, per merchant.
async fn dialect_settings(db: &TestDb) {
    let app = App::start(db).await;
    let path = "/api/v1/dialects/payprotocol/settings";
    let (status, body) = app.get(path, &app.a).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"], json!({}));
    let put = |key: String, settings: Value| {
        let app = &app;
        async move {
            app.send(
                Method::PUT,
                path,
                Some(&key),
                Some(json!({ "settings": settings })),
            )
            .await
        }
    };
    let url = "https://shop.example/pp/recharge";
    let (status, body) = put(app.a.clone(), json!({"recharge_notify_url": url})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["recharge_notify_url"], url);
    // Bad input: nothing written (the valid setting beside an unknown one is not applied).
    for (settings, bad) in [
        (json!({"recharge_notify_url": "ftp://x"}), "invalid_url"),
        (
            json!({"recharge_notify_url": "https://ok.example/", "nope": "x"}),
            "unknown_setting",
        ),
    ] {
        let (status, body) = put(app.a.clone(), settings).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, bad),
            "{body}"
        );
    }
    let (_, body) = app.get(path, &app.a).await;
    assert_eq!(body["settings"]["recharge_notify_url"], url);
    // Another merchant has its own (none); a non-admin key may not read or write.
    let (_, body) = app.get(path, &app.b).await;
    assert_eq!(body["settings"], json!({}));
    let reader = app.key(&app.a, vec![Scope::OrdersRead]).await;
    let (status, _) = app.get(path, &reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // null clears.
    let (status, body) = put(app.a.clone(), json!({"recharge_notify_url": null})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["settings"], json!({}));
}

/// Deposit accounts and deposits in the native API: idempotent creation by reference, one
/// address per wallet chain, keyset pages, a deposit the watcher reports shown with its
/// account, merchants isolated, bad input refused.
async fn deposit_accounts_and_deposits(db: &TestDb) {
    let app = App::start(db).await;
    let (status, body) = app
        .post(
            "/api/v1/deposit-accounts",
            &app.a,
            json!({"reference": "u1"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "wallet_not_configured"),
        "{body}"
    );
    assert_eq!(body["error"]["field"], "reference");
    app.wallet(&app.a).await;
    app.wallet(&app.b).await;
    let (status, first) = app
        .post(
            "/api/v1/deposit-accounts",
            &app.a,
            json!({"reference": "u1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["object"], "deposit_account");
    assert_eq!(first["reference"], "u1");
    let address = first["addresses"][0]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first["addresses"][0]["chain"], "bsc");
    let (status, again) = app
        .post(
            "/api/v1/deposit-accounts",
            &app.a,
            json!({"reference": " u1 "}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    for body in [
        json!({}),
        json!({"reference": ""}),
        json!({"reference": "x", "other": 1}),
    ] {
        let (status, resp) = app.post("/api/v1/deposit-accounts", &app.a, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    }
    for i in 2..=3 {
        app.post(
            "/api/v1/deposit-accounts",
            &app.a,
            json!({"reference": format!("u{i}")}),
        )
        .await;
    }
    // Keyset pages, newest first.
    let (_, page1) = app.get("/api/v1/deposit-accounts?limit=2", &app.a).await;
    let refs: Vec<&str> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["u3", "u2"]);
    assert_eq!(page1["has_more"], true);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get(
            &format!("/api/v1/deposit-accounts?limit=2&cursor={cursor}"),
            &app.a,
        )
        .await;
    assert_eq!(page2["data"][0]["reference"], "u1");
    assert_eq!(page2["has_more"], false);
    let (status, body) = app
        .get("/api/v1/deposit-accounts?cursor=nope", &app.a)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_cursor")
    );
    let number = first["number"].as_i64().unwrap();
    let (status, one) = app
        .get(&format!("/api/v1/deposit-accounts/{number}"), &app.a)
        .await;
    assert_eq!(
        (status, one["reference"].clone()),
        (StatusCode::OK, json!("u1"))
    );

    // The watcher reports a transfer to the account's address.
    app.engine
        .apply_chain_batch(&fixtures::batch(
            "bsc",
            vec![coffer_engine::ObservedTransfer {
                index: 1,
                from: Some("0xpayer".into()),
                ..fixtures::mined(
                    "bsc:USDT".parse().unwrap(),
                    address,
                    coffer_core::BaseUnits::new(2_500_000_000_000_000_000),
                    "0xdeposit",
                    100,
                    time::OffsetDateTime::now_utc(),
                )
            }],
            100,
        ))
        .await
        .unwrap();
    let (_, deposits) = app
        .get(&format!("/api/v1/deposits?account={number}"), &app.a)
        .await;
    let d = &deposits["data"][0];
    assert_eq!(d["object"], "deposit");
    assert_eq!(d["account"], json!({"number": number, "reference": "u1"}));
    assert_eq!(d["amount"], "2.5");
    assert_eq!(d["amount_base_units"], "2500000000000000000");
    assert_eq!(d["status"], "unconfirmed", "1 of 15 confirmations");
    let id = d["id"].as_str().unwrap();
    let (status, one) = app.get(&format!("/api/v1/deposits/{id}"), &app.a).await;
    assert_eq!(
        (status, one["txid"].clone()),
        (StatusCode::OK, json!("0xdeposit"))
    );
    let (_, none) = app.get("/api/v1/deposits?status=confirmed", &app.a).await;
    assert_eq!(none["data"], json!([]));
    let (status, body) = app.get("/api/v1/deposits?status=paid", &app.a).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_status")
    );
    // The change wrote its event (for webhooks and the events feed).
    let events = db
        .store
        .list_events(&EventQuery {
            kind: Some(coffer_core::EventType::DepositDetected),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.subject, id);
    // Merchant B sees none of it.
    let b = &app.b;
    let (status, _) = app.get(&format!("/api/v1/deposits/{id}"), b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(&format!("/api/v1/deposit-accounts/{number}"), b)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/api/v1/deposits", b).await;
    assert_eq!(list["data"], json!([]));
    let (_, list) = app.get("/api/v1/deposit-accounts", b).await;
    assert_eq!(list["data"], json!([]));
    // B cannot take A's wallet key (it would be given A's addresses).
    let (status, body) = app
        .send(
            Method::PUT,
            "/api/v1/wallets/bsc",
            Some(b),
            Some(json!({"xpub": "xpubTEST"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "wallet_in_use"),
        "{body}"
    );
    // B's own u1 is another account.
    let (status, theirs) = app
        .post("/api/v1/deposit-accounts", b, json!({"reference": "u1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_ne!(theirs["number"], first["number"]);
}

/// Payout requests (refunds, withdrawals) through `/api/v1/payouts`: list and get, the
/// merchant's approval and the transaction that paid it, events, scopes, isolation, bad input.
async fn payouts(db: &TestDb) {
    use coffer_core::{BaseUnits, EventType, PayoutStatus};
    use coffer_engine::{RefundInput, WithdrawalInput};

    let app = App::start(db).await;
    let a = &app.a;
    let ma = app.engine.authenticate(a).await.unwrap().merchant_id;
    let mb = app.engine.authenticate(&app.b).await.unwrap().merchant_id;
    // A paid order of merchant A (10 USDT from 0xpayer), refunded in full via the engine.
    app.wallet(a).await;
    let (status, order) = app
        .post(
            "/api/v1/orders",
            a,
            json!({"amount": "10", "currency": "USD", "asset": "bsc:USDT", "fixed_stablecoin_rate": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id: coffer_core::OrderId = order["id"].as_str().unwrap().parse().unwrap();
    let target = db
        .store
        .find_order(&order_id)
        .await
        .unwrap()
        .unwrap()
        .target
        .unwrap();
    let at = time::OffsetDateTime::now_utc();
    app.engine
        .apply_chain_batch(&fixtures::batch(
            "bsc",
            vec![coffer_engine::ObservedTransfer {
                from: Some("0xpayer".into()),
                ..fixtures::mined(
                    target.asset.clone(),
                    target.address.clone(),
                    target.amount_due,
                    "0xpaid",
                    100,
                    at,
                )
            }],
            120,
        ))
        .await
        .unwrap();
    let refund = app
        .engine
        .request_refund(
            &ma,
            &order_id,
            RefundInput {
                dialect: "payprotocol".into(),
                ..RefundInput::default()
            },
        )
        .await
        .unwrap();
    let withdrawal_input = |amount: u128| WithdrawalInput {
        asset: AssetId::from_str("bsc:USDT").unwrap(),
        amount: BaseUnits::new(amount),
        destination: "0xcold".into(),
        memo: None,
        dialect: "aurpay".into(),
        reference: None,
        dialect_data: Default::default(),
    };
    let withdrawal = app
        .engine
        .request_withdrawal(&ma, withdrawal_input(5))
        .await
        .unwrap();
    let other = app
        .engine
        .request_withdrawal(&mb, withdrawal_input(7))
        .await
        .unwrap();
    let (rid, wid, oid) = (
        refund.id.to_string(),
        withdrawal.id.to_string(),
        other.id.to_string(),
    );

    // list: newest first, the merchant's own only; filters; cursor paging
    let (status, list) = app.get("/api/v1/payouts", a).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [wid.as_str(), rid.as_str()]);
    assert_eq!(list["has_more"], false);
    assert_eq!(list["next_cursor"], Value::Null);
    let r = &list["data"][1];
    assert_eq!(r["object"], "payout");
    assert_eq!(r["kind"], "refund");
    assert_eq!(r["status"], "requested");
    assert_eq!(r["order_id"], order_id.to_string());
    assert_eq!(r["asset"], "bsc:USDT");
    assert_eq!(r["amount_base_units"], target.amount_due.to_string());
    assert_eq!(r["destination"], "0xpayer");
    assert_eq!(r["dialect"], "payprotocol");
    assert_eq!(r["txid"], Value::Null);
    let (_, list) = app.get("/api/v1/payouts", &app.b).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], oid.as_str());
    for (query, expected) in [
        ("kind=refund", vec![rid.as_str()]),
        ("kind=withdrawal", vec![wid.as_str()]),
        ("status=requested", vec![wid.as_str(), rid.as_str()]),
        ("status=approved", vec![]),
        ("kind=refund&status=requested", vec![rid.as_str()]),
    ] {
        let (status, list) = app.get(&format!("/api/v1/payouts?{query}"), a).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let got: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(got, expected, "{query}");
    }
    let (_, page) = app.get("/api/v1/payouts?limit=1", a).await;
    assert_eq!(page["data"][0]["id"], wid.as_str());
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = app
        .get(&format!("/api/v1/payouts?limit=1&cursor={cursor}"), a)
        .await;
    assert_eq!(page["data"][0]["id"], rid.as_str());
    assert_eq!(page["has_more"], false);
    assert_eq!(page["next_cursor"], Value::Null);
    for (path, bad, field) in [
        ("/api/v1/payouts?kind=loan", "invalid_kind", "kind"),
        ("/api/v1/payouts?status=done", "invalid_status", "status"),
        ("/api/v1/payouts?limit=0", "invalid_limit", "limit"),
        ("/api/v1/payouts?cursor=garbage", "invalid_cursor", "cursor"),
        ("/api/v1/payouts?colour=red", "invalid_query", "colour"),
    ] {
        let (status, body) = app.get(path, a).await;
        assert_eq!(
            (status, code(&body), body["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, bad, Some(field)),
            "{path}: {body}"
        );
    }

    // get; another merchant's or a malformed id is 404
    let (status, got) = app.get(&format!("/api/v1/payouts/{rid}"), a).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got, list_item(&app, a, &rid).await);
    for path in [
        format!("/api/v1/payouts/{oid}"),
        "/api/v1/payouts/pout_00000000000000000000000000".into(),
        "/api/v1/payouts/nope".into(),
    ] {
        let (status, body) = app.get(&path, a).await;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    }

    // scopes: reading needs orders:read, moving needs refunds:write
    let reader = app.key(a, vec![Scope::OrdersRead]).await;
    let orders_writer = app.key(a, vec![Scope::OrdersWrite]).await;
    let refunder = app.key(a, vec![Scope::RefundsWrite]).await;
    let rstatus = format!("/api/v1/payouts/{rid}/status");
    let wstatus = format!("/api/v1/payouts/{wid}/status");
    let (status, _) = app.get("/api/v1/payouts", &reader).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&format!("/api/v1/payouts/{rid}"), &refunder).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for key in [&reader, &orders_writer] {
        let (status, body) = app.post(&rstatus, key, json!({"status": "approved"})).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    }

    // bad input, illegal moves, other merchants: refused, nothing written
    let updated = |kind: EventType| {
        let store = db.store.clone();
        async move {
            store
                .list_events(&coffer_store::EventQuery {
                    kind: Some(kind),
                    limit: 500,
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };
    let long = "a".repeat(129);
    for (body, bad, field) in [
        (json!({"status": "done"}), "invalid_status", "status"),
        (json!({"status": "requested"}), "invalid_status", "status"),
        (json!({}), "missing_field", "status"),
        (json!({"status": 5}), "invalid_field", "status"),
        (
            json!({"status": "approved", "note": "x"}),
            "unknown_field",
            "note",
        ),
        (
            json!({"status": "approved", "txid": "0xabc"}),
            "invalid_txid",
            "txid",
        ),
        (
            json!({"status": "rejected", "txid": "0xabc"}),
            "invalid_txid",
            "txid",
        ),
        (
            json!({"status": "sent", "txid": ""}),
            "invalid_txid",
            "txid",
        ),
        (
            json!({"status": "sent", "txid": "0x ab"}),
            "invalid_txid",
            "txid",
        ),
        (
            json!({"status": "sent", "txid": long}),
            "invalid_txid",
            "txid",
        ),
        (
            json!({"status": "sent", "txid": 12}),
            "invalid_field",
            "txid",
        ),
    ] {
        let (status, resp) = app.post(&rstatus, &refunder, body.clone()).await;
        assert_eq!(
            (status, code(&resp), resp["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, bad, Some(field)),
            "{body}: {resp}"
        );
    }
    for to in ["sent", "completed", "failed"] {
        let (status, body) = app.post(&rstatus, &refunder, json!({"status": to})).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::CONFLICT, "invalid_state"),
            "requested -> {to}"
        );
    }
    let (status, _) = app
        .post(
            &format!("/api/v1/payouts/{oid}/status"),
            a,
            json!({"status": "approved"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post(&rstatus, &app.b, json!({"status": "approved"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(updated(EventType::RefundUpdated).await.is_empty());
    assert!(updated(EventType::WithdrawalUpdated).await.is_empty());
    for (merchant, id) in [(&ma, &refund.id), (&mb, &other.id)] {
        let p = app.engine.get_payout(merchant, id).await.unwrap();
        assert_eq!(
            (p.status, p.version, p.txid),
            (PayoutStatus::Requested, 1, None)
        );
    }

    // the refund: approved → sent with its transaction → completed (the hash is kept)
    let (status, body) = app
        .post(&rstatus, &refunder, json!({"status": "approved"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["status"].as_str(), &body["txid"]),
        (Some("approved"), &Value::Null)
    );
    let tx = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";
    let (status, body) = app
        .post(&rstatus, &refunder, json!({"status": "sent", "txid": tx}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["txid"].as_str()),
        (Some("sent"), Some(tx))
    );
    let (status, body) = app.post(&rstatus, a, json!({"status": "completed"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["txid"].as_str()),
        (Some("completed"), Some(tx))
    );
    let (_, got) = app.get(&format!("/api/v1/payouts/{rid}"), &reader).await;
    assert_eq!(got, body);
    let stored = app.engine.get_payout(&ma, &refund.id).await.unwrap();
    assert_eq!((stored.txid.as_deref(), stored.version), (Some(tx), 4));
    let (status, body) = app.post(&rstatus, a, json!({"status": "failed"})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "invalid_state"),
        "nothing leaves completed"
    );
    // one refund.updated per move, carrying the payout and where it came from
    let events = updated(EventType::RefundUpdated).await;
    let moves: Vec<(Value, Value, Value)> = events
        .iter()
        .map(|e| {
            let d = &e.event.data;
            (
                d["previous_status"].clone(),
                d["object"]["status"].clone(),
                d["object"]["txid"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (json!("requested"), json!("approved"), Value::Null),
            (json!("approved"), json!("sent"), json!(tx)),
            (json!("sent"), json!("completed"), json!(tx)),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.event.merchant_id == ma && e.event.subject == rid)
    );

    // the withdrawal: rejected, and then nothing more
    let (status, body) = app
        .post(&wstatus, &refunder, json!({"status": "rejected"}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("rejected"))
    );
    let (status, _) = app
        .post(&wstatus, &refunder, json!({"status": "approved"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(updated(EventType::WithdrawalUpdated).await.len(), 1);
    let (_, list) = app.get("/api/v1/payouts?status=rejected", a).await;
    assert_eq!(list["data"][0]["id"], wid.as_str());
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // eight concurrent approvals of one request: exactly one moves it, the others get 409
    let fresh = app
        .engine
        .request_withdrawal(&ma, withdrawal_input(3))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = app.http.clone();
        let url = format!("{}/api/v1/payouts/{}/status", app.base, fresh.id);
        let key = refunder.clone();
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"status": "approved"}))
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(
            status == StatusCode::OK
                || (status == StatusCode::CONFLICT
                    && ["concurrent_update", "invalid_state"].contains(&code(&body))),
            "{status} {body}"
        );
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses[0], StatusCode::OK);
    assert_eq!(statuses[1], StatusCode::CONFLICT, "only one approval wins");
    assert_eq!(updated(EventType::WithdrawalUpdated).await.len(), 2);
    let p = app.engine.get_payout(&ma, &fresh.id).await.unwrap();
    assert_eq!((p.status, p.version), (PayoutStatus::Approved, 2));
}

/// The payout `id` as `GET /api/v1/payouts` lists it.
async fn list_item(app: &App, key: &str, id: &str) -> Value {
    let (_, list) = app.get("/api/v1/payouts?limit=100", key).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
        .unwrap()
}

/// An order without an asset that no buyer could pay is refused, naming the field and what
/// to do; once the merchant has a wallet it is created (issue 19, item 5).
async fn orders_nobody_can_pay_are_refused(db: &TestDb) {
    let app = App::start(db).await;
    let order = json!({"amount": "5", "currency": "USD"});
    let (status, body) = app.post("/api/v1/orders", &app.a, order.clone()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "wallet_not_configured"),
        "{body}"
    );
    assert_eq!(body["error"]["field"], "asset", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no wallet yet") && message.contains("bsc"),
        "{message}"
    );
    assert_eq!(counts(db).await.0, 0, "nothing written");
    app.wallet(&app.a).await;
    let (status, body) = app.post("/api/v1/orders", &app.a, order).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

both_backends! {
    orders_nobody_can_pay => orders_nobody_can_pay_are_refused;
    deposits => deposit_accounts_and_deposits;
    dialect_settings => dialect_settings;
    repair => repair;
    order_lifecycle => order_lifecycle;
    pagination => pagination;
    list_envelopes_are_uniform => list_envelopes_are_uniform;
    merchants_are_isolated => merchants_are_isolated;
    keys_and_scopes => keys_and_scopes;
    bad_input_is_refused_and_writes_nothing => bad_input_is_refused_and_writes_nothing;
    idempotency => idempotency;
    rate_limit => rate_limit;
    openapi_and_docs => openapi_and_docs;
    payouts => payouts;
}
