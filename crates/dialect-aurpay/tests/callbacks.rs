//! Aurpay callbacks end to end: an order created through `pay-info` on a real anvil, paid with
//! a real USDT-like token transfer, seen by the real watcher, and the callback delivered by the
//! real outbox to a loopback receiver that verifies it the way the shop's plugin does (the
//! Signature recomputed by python3). Also the timeout callback (GET, with the API-Key), on a
//! manual clock. Both databases.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, Uri};
use coffer_chain_evm::testtools::Anvil;
use coffer_chain_evm::testtools::devchain::DevChain;
use coffer_chain_evm::{EvmWatchConfig, EvmWatcher, Tokens};
use coffer_core::{AssetId, ChainId, OrderStatus};
use coffer_dialect::Dialect;
use coffer_engine::{Engine, ManualClock, NewDialectCredential};
use coffer_testkit::{TestDb, both_backends};
use coffer_webhooks::{Formatters, RetrySchedule, Settings, Webhooks};
use common::*;
use reqwest::Method;
use serde_json::Value;

#[derive(Debug, Clone)]
struct Hit {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

type Hits = Arc<Mutex<Vec<Hit>>>;

async fn receive(
    State(hits): State<Hits>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    hits.lock().unwrap().push(Hit {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    "ok"
}

/// A loopback receiver answering 200 to everything; returns its base URL.
async fn receiver(hits: Hits) -> String {
    let app = axum::Router::new().fallback(receive).with_state(hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The outbox machinery with the Aurpay formatter, allowed to call loopback (tests only).
fn start_webhooks(env: &Env) -> tokio::sync::watch::Sender<bool> {
    let retry = RetrySchedule {
        delays: vec![Duration::from_millis(200); 3],
    };
    let settings = Settings {
        allow_private: true,
        retry: retry.clone(),
        poll_interval: Duration::from_millis(20),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        lease: Duration::from_secs(5),
        ..Settings::default()
    };
    let deps = coffer_dialect::DialectDeps {
        engine: env.engine.clone(),
        master: Arc::new(env.master.clone()),
        retry: retry.clone(),
    };
    let dialect = coffer_dialect_aurpay::AurpayDialect;
    let formatters = Formatters::new(retry).with(dialect.name(), dialect.formatter(&deps));
    let hooks = Webhooks::new(
        env.store.clone(),
        env.engine.clock().clone(),
        env.master.clone(),
        settings,
    )
    .with_formatters(formatters);
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move { hooks.run(rx).await.unwrap() });
    stop
}

async fn wait_for_hit(hits: &Hits, deadline: Duration) -> Hit {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if let Some(hit) = hits.lock().unwrap().first().cloned() {
            return hit;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no callback arrived");
}

fn header(hit: &Hit, name: &str) -> String {
    hit.headers
        .get(name)
        .unwrap_or_else(|| panic!("callback without {name}: {hit:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// What the plugin does: `Callback-Token` equals the dashboard's, and `Signature` equals
/// base64(HMAC-SHA256(callback secret, "{Date} | {full callback URL}")).
fn verify_like_the_plugin(env: &Env, hit: &Hit, full_url: &str) {
    verify_with(&env.cred, hit, full_url);
}

/// [`verify_like_the_plugin`] for a shop configured with `cred`.
fn verify_with(cred: &NewDialectCredential, hit: &Hit, full_url: &str) {
    assert_eq!(
        header(hit, "callback-token"),
        cred.callback_token.clone().unwrap()
    );
    let date = header(hit, "date");
    assert!(date.ends_with('Z') && date.contains('T'), "{date}");
    let expected = py_hmac_b64(
        cred.callback_secret.as_deref().unwrap(),
        &format!("{date} | {full_url}"),
    );
    assert_eq!(header(hit, "signature"), expected);
    // A plugin with another secret would refuse it.
    assert_ne!(
        py_hmac_b64("another secret", &format!("{date} | {full_url}")),
        expected
    );
}

async fn paid_order_calls_back_signed(db: &TestDb) {
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let usdt_hex = usdt.to_checksum(None);
    let env = serve(
        db,
        engine(db, registry("anvil", "Anvil", &usdt_hex)),
        "anvil",
    )
    .await;
    let hits: Hits = Arc::default();
    let base = receiver(hits.clone()).await;
    let stop = start_webhooks(&env);

    // The shop creates the order through pay-info, signed, with POST callbacks.
    let callback = format!("{base}/aurpay/callback?id=32");
    let body = serde_json::json!({
        "chain": "ANVIL", "currency": "USDT", "vs_currency": "USD", "vs_price": 25,
        "fixed_encrypt_price": true, "callback_url": callback,
        "timeout_callback": format!("{base}/aurpay/timeout?id=32"),
        "enable_post_callback": true,
    })
    .to_string();
    let (status, resp) = with_signature(&env, Method::POST, "/api/order/pay-info", &body).await;
    let data = data_of(status, &resp);
    let address = data["address"].as_str().unwrap().to_owned();
    assert_eq!(data["contract_addr"].as_str().unwrap(), usdt_hex);
    // fixed_encrypt_price: 25 USD is exactly 25 USDT.
    assert_eq!(data["amount"], serde_json::json!(25));
    let order_id = data["order_id"].as_str().unwrap().to_owned();

    // The watcher runs; the buyer pays with a real token transfer.
    let mut cfg = EvmWatchConfig::new(ChainId::parse("anvil").unwrap(), vec![anvil.url()]);
    cfg.evm_chain_id = Some(31337);
    cfg.watch.poll_interval = Duration::from_millis(100);
    cfg.tokens = Tokens::new([(usdt, AssetId::from_str("anvil:USDT").unwrap())]);
    cfg.native = Some(AssetId::from_str("anvil:ETH").unwrap());
    let mut watcher = EvmWatcher::new(env.engine.clone(), cfg).unwrap();
    watcher.check().await.unwrap();
    watcher.step().await.unwrap();
    let tx = chain.pay_token(usdt, &address, 25_000_000).await.unwrap();
    chain.mine(1).await.unwrap();
    let id = order_id.parse().unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Err(e) = watcher.step().await {
            eprintln!("watcher step: {e}");
        }
        let order = env.engine.get_order(&env.merchant, &id).await.unwrap();
        if order.state.status == OrderStatus::Settled {
            break;
        }
        assert!(Instant::now() < end, "order not settled: {:?}", order.state);
        chain.mine(1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Exactly one callback: to callback_url, POST with the order, signed.
    let hit = wait_for_hit(&hits, Duration::from_secs(20)).await;
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.uri, "/aurpay/callback?id=32");
    verify_like_the_plugin(&env, &hit, &callback);
    assert!(
        hit.headers.get("api-key").is_none(),
        "signature mode: no API-Key"
    );
    let order: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(order["order_id"], serde_json::json!(order_id));
    assert_eq!(order["status"], "SUCCESS");
    assert_eq!(order["amount"], "25");
    assert_eq!(order["currency"], "USDT");
    assert_eq!(order["to_addr"].as_str().unwrap(), address);
    assert_eq!(order["tx_hash"].as_str().unwrap(), tx.to_string());
    assert_eq!(order["obtained"], "25");
    // The shop's status check (`SUCCESS`) sees the same through the detail endpoint.
    let (s, b) = with_key(
        &env,
        Method::GET,
        &format!("/api/v2/order/detail/{order_id}"),
        "",
    )
    .await;
    assert_eq!(data_of(s, &b)["status"], "SUCCESS");
    // The transactions list shows the transfer.
    let (s, b) = with_key(&env, Method::GET, "/api/v2/tx", "").await;
    let txs = data_of(s, &b);
    assert_eq!(txs["total"], serde_json::json!(1));
    assert_eq!(txs["data"][0]["tx_hash"].as_str().unwrap(), tx.to_string());
    assert_eq!(txs["data"][0]["tx_type"], "ORDER");
    // A refund of the paid order: recorded, awaiting the merchant's approval; no body field
    // → the address the payment came from.
    let (s, b) = with_signature(
        &env,
        Method::POST,
        &format!("/api/v2/order/refund/{order_id}"),
        "",
    )
    .await;
    let refund = data_of(s, &b);
    assert_eq!(refund["refund_status"], "PENDING");
    assert_eq!(refund["refund_amount"], "25");
    assert_eq!(
        refund["refund_address"].as_str().unwrap().to_lowercase(),
        coffer_chain_evm::testtools::devchain::PAYER.to_lowercase()
    );
    let (s, b) = with_key(
        &env,
        Method::GET,
        &format!("/api/v2/order/refund-info/{order_id}"),
        "",
    )
    .await;
    let info = data_of(s, &b);
    assert_eq!(info["refund"], serde_json::json!(true));
    assert_eq!(info["refund_status"], "PENDING");
    assert_eq!(info["refund_id"], refund["refund_id"]);
    // Nothing more is refundable: a second request is refused.
    let (s, b) = with_key(
        &env,
        Method::POST,
        &format!("/api/v2/order/refund/{order_id}"),
        "",
    )
    .await;
    assert!(!b["result"].as_bool().unwrap(), "{b}");
    assert!(s == 409 || s == 400, "{s} {b}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hits.lock().unwrap().len(), 1, "only the success callback");
    let _ = stop.send(true);
}

/// The dialect on Ethereum with USDT, on a manual clock.
async fn manual_env(db: &TestDb) -> (Arc<ManualClock>, Env) {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let engine: Engine = engine_at(
        db,
        registry(
            "eth",
            "Ethereum",
            "0xdAC17F958D2ee523a2206206994597C13D831ec7",
        ),
        clock.clone(),
    );
    (clock, serve(db, engine, "eth").await)
}

async fn timeout_callback_is_a_get_with_the_api_key(db: &TestDb) {
    let (clock, env) = manual_env(db).await;
    let hits: Hits = Arc::default();
    let base = receiver(hits.clone()).await;
    let stop = start_webhooks(&env);
    let timeout = format!("{base}/timeout?order=7&x=a%20b");
    let body = serde_json::json!({
        "price": "9.99", "currency": "EUR", "callback_url": format!("{base}/paid"),
        "timeout_callback": timeout,
    })
    .to_string();
    let (s, b) = with_key(&env, Method::POST, "/api/order/pay-url", &body).await;
    data_of(s, &b);
    // 31 minutes later the order times out.
    clock.advance(time::Duration::minutes(31));
    assert_eq!(env.engine.expire_due(10).await.unwrap(), 1);
    let hit = wait_for_hit(&hits, Duration::from_secs(20)).await;
    assert_eq!(hit.method, "GET");
    assert!(hit.body.is_empty());
    assert_eq!(hit.uri, "/timeout?order=7&x=a%20b");
    verify_like_the_plugin(&env, &hit, &timeout);
    assert_eq!(header(&hit, "api-key"), env.cred.key);
    let order = &env
        .engine
        .orders_page(&env.merchant, 1, 1)
        .await
        .unwrap()
        .items[0];
    assert_eq!(order.state.status, OrderStatus::Expired);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hits.lock().unwrap().len(), 1, "no success callback");
    let _ = stop.send(true);
}

/// Wait until `n` callbacks arrived; return them.
async fn wait_for_hits(hits: &Hits, n: usize) -> Vec<Hit> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let got = hits.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < end,
            "{} of {n} callbacks arrived",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The callback whose path is `path`.
fn hit_at<'a>(hits: &'a [Hit], path: &str) -> &'a Hit {
    hits.iter()
        .find(|h| h.uri.split('?').next() == Some(path))
        .unwrap_or_else(|| panic!("no callback to {path}: {hits:?}"))
}

/// A pay-url order in API-Key mode with `cred`, timing out to `{base}{path}`.
async fn order_with(env: &Env, cred: &NewDialectCredential, base: &str, path: &str) {
    let body = serde_json::json!({
        "price": "9.99", "currency": "EUR", "timeout_callback": format!("{base}{path}"),
    })
    .to_string();
    let (s, b) = send(
        env,
        Method::POST,
        "/api/order/pay-url",
        &[("API-Key", cred.key.clone())],
        &body,
    )
    .await;
    data_of(s, &b);
}

/// A shop stays on the credential it was configured with after the operator creates another
/// (`coffer key create --dialect aurpay` again): its orders' callbacks carry that
/// credential's `API-Key` and `Callback-Token` and are signed with its callback secret; the
/// new credential's orders get the new one. Once the creating credential is revoked, its
/// orders' callbacks use the merchant's newest active credential.
async fn callbacks_use_the_creating_credential(db: &TestDb) {
    let (clock, env) = manual_env(db).await;
    let first = env.cred.clone();
    let hits: Hits = Arc::default();
    let base = receiver(hits.clone()).await;
    let stop = start_webhooks(&env);
    order_with(&env, &first, &base, "/timeout/a").await;
    let second = env
        .engine
        .create_dialect_credential(
            &env.master,
            &env.merchant,
            &coffer_dialect_aurpay::CREDENTIAL,
        )
        .await
        .unwrap();
    order_with(&env, &second, &base, "/timeout/c").await;
    clock.advance(time::Duration::minutes(31));
    assert_eq!(env.engine.expire_due(10).await.unwrap(), 2);
    let got = wait_for_hits(&hits, 2).await;
    for (path, cred) in [("/timeout/a", &first), ("/timeout/c", &second)] {
        let hit = hit_at(&got, path);
        verify_with(cred, hit, &format!("{base}{path}"));
        assert_eq!(header(hit, "api-key"), cred.key, "{path}");
    }

    // the first credential revoked while its order is pending: the newest active one signs
    order_with(&env, &first, &base, "/timeout/b").await;
    let revoked = env
        .engine
        .list_dialect_credentials(&env.merchant, Some("aurpay"))
        .await
        .unwrap()
        .into_iter()
        .find(|c| first.key.starts_with(&c.key_prefix))
        .unwrap();
    env.engine
        .revoke_dialect_credential(&env.merchant, &revoked.id)
        .await
        .unwrap();
    clock.advance(time::Duration::minutes(31));
    assert_eq!(env.engine.expire_due(10).await.unwrap(), 1);
    let got = wait_for_hits(&hits, 3).await;
    let hit = hit_at(&got, "/timeout/b");
    verify_with(&second, hit, &format!("{base}/timeout/b"));
    assert_eq!(header(hit, "api-key"), second.key);
    let _ = stop.send(true);
}

/// The WooCommerce gateway `aurpay-for-woocommerce` (`APWC_Gateway::ipn_callback`): answers
/// 400 `Public Key Error` unless `$_GET['public_key']` is its configured Public Key, else 200.
async fn wc_gateway(
    State((hits, public_key)): State<(Hits, String)>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let got = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("public_key="))
        .unwrap_or_default()
        .to_owned();
    hits.lock().unwrap().push(Hit {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: Vec::new(),
    });
    if got == public_key {
        axum::Json(serde_json::json!({"success": true, "data": {"a": public_key}})).into_response()
    } else {
        (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"message": format!("Public Key Error: {got}")})),
        )
            .into_response()
    }
}

/// The same gateway's `process_payment()`, byte for byte: `json_encode($data)` (slashes
/// escaped, the WooCommerce order id an integer, `price` its `get_total()` string) POSTed to
/// `pay/token` with `Content-Type: application/json; charset=utf-8` and `API-KEY`; its
/// callback URL `site_url()/?wc-api=APWC_Gateway&order_id=N`. Aurpay's server appends
/// `public_key` to that URL for this flow; the callback is acknowledged at its first attempt.
async fn pay_token_callback_carries_the_public_key(db: &TestDb) {
    let (_clock, env) = manual_env(db).await;
    let hits: Hits = Arc::default();
    let app = axum::Router::new()
        .fallback(wc_gateway)
        .with_state((hits.clone(), env.cred.key.clone()));
    let site = coffer_testkit::fixtures::serve(app).await;
    let stop = start_webhooks(&env);
    let callback = format!("{site}/?wc-api=APWC_Gateway&order_id=57");
    let escaped = |s: &str| s.replace('/', "\\/");
    let body = format!(
        r#"{{"platform":"WOOCOMMERCE","origin":{{"id":57,"price":"18.00","currency":"USD","callback_url":"{}","succeed_url":"{}","url":"{}"}}}}"#,
        escaped(&callback),
        escaped(&format!(
            "{site}/checkout/order-received/57/?key=wc_order_hV2mQ"
        )),
        escaped(&site),
    );
    let resp = env
        .client
        .post(format!("{}/api/order/pay/token", env.base))
        .header("Content-Type", "application/json; charset=utf-8")
        .header("API-KEY", &env.cred.key)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let data = data_of(status, &resp.json().await.unwrap());
    assert!(
        data["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{data}"
    );

    // the buyer picks USDT at the cashier and pays in full (as the watcher reports it)
    let order = env
        .engine
        .orders_page(&env.merchant, 1, 1)
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(order.order_no.as_deref(), Some("57"));
    let usdt = AssetId::from_str("eth:USDT").unwrap();
    let order = env
        .engine
        .choose_asset(&env.merchant, &order.id, &usdt)
        .await
        .unwrap();
    coffer_testkit::fixtures::pay_in_full(&env.engine, &order, "0xbuyer").await;

    let hit = wait_for_hit(&hits, Duration::from_secs(20)).await;
    assert_eq!(hit.method, "GET");
    let full = format!("{callback}&public_key={}", env.cred.key);
    assert_eq!(
        hit.uri,
        format!(
            "/?wc-api=APWC_Gateway&order_id=57&public_key={}",
            env.cred.key
        )
    );
    verify_like_the_plugin(&env, &hit, &full);
    // accepted by the gateway at the first attempt: no retry follows
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hits.lock().unwrap().len(), 1, "{:?}", hits.lock().unwrap());
    let deliveries = env
        .engine
        .list_deliveries(
            &env.merchant,
            coffer_store::DeliveryQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let delivery = deliveries.iter().find(|d| d.url == callback).unwrap();
    assert_eq!(delivery.status.as_str(), "succeeded");
    assert_eq!(delivery.attempts, 1);
    let _ = stop.send(true);
}

both_backends! {
    callbacks_use_the_creating_credential => callbacks_use_the_creating_credential;
    pay_token_callback_carries_the_public_key => pay_token_callback_carries_the_public_key;
    paid_order_calls_back_signed => paid_order_calls_back_signed;
    timeout_callback_is_a_get_with_the_api_key => timeout_callback_is_a_get_with_the_api_key;
}
