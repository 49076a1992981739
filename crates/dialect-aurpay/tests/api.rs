//! Every Aurpay endpoint over real HTTP on a real database (SQLite and PostgreSQL): the
//! documented example request → a response of the documented shape, field by field; the
//! authentication failures → Aurpay's error envelope and nothing written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use coffer_store::{EventQuery, PayoutQuery};
use coffer_testkit::{TestDb, both_backends};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

type Headers = Vec<(&'static str, String)>;

const USDT_CONTRACT: &str = "0xdAC17F958D2ee523a2206206994597C13D831ec7";

async fn env(db: &TestDb) -> Env {
    serve(
        db,
        engine(db, registry("eth", "Ethereum", USDT_CONTRACT)),
        "eth",
    )
    .await
}

/// Assert each field exists with the JSON type named ("string", "number", "bool", "array",
/// "object", "null"; "string|null" allows either).
fn assert_shape(obj: &Value, fields: &[(&str, &str)]) {
    for (name, kinds) in fields {
        let v = obj
            .get(*name)
            .unwrap_or_else(|| panic!("missing field {name} in {obj}"));
        let actual = match v {
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Null => "null",
        };
        assert!(
            kinds.split('|').any(|k| k == actual),
            "{name}: expected {kinds}, got {actual} in {obj}"
        );
    }
}

/// The order object's fields, typed as in Aurpay's callback example.
const ORDER_FIELDS: &[(&str, &str)] = &[
    ("user_id", "string"),
    ("order_id", "string"),
    ("order_type", "string"),
    ("platform", "string"),
    ("status", "string"),
    ("chain", "string"),
    ("chain_name", "string"),
    ("currency", "string"),
    ("amount", "string"),
    ("vs_price", "string"),
    ("vs_currency", "string"),
    ("remark", "string"),
    ("refund", "bool"),
    ("bind_id", "null"),
    ("create_time", "string"),
    ("update_time", "string"),
    ("tx_id", "string|null"),
    ("tx_type", "string"),
    ("obtained", "string|null"),
    ("fee", "string"),
    ("from_addr", "string|null"),
    ("to_addr", "string"),
    ("tx_hash", "string|null"),
    ("tx_hash_list", "array"),
    ("contract_id", "string|null"),
    ("website", "null"),
];

/// The pay-url example from Aurpay's docs (the comments of the curl example removed).
const PAY_URL_EXAMPLE: &str = r#"{
    "price": 10,
    "currency": "USD",
    "succeed_url": "https://example.com/succeed_url",
    "timeout_url": "https://example.com/timeout_url",
    "callback_url": "https://example.com/callback_url",
    "timeout_callback": "https://example.com/timeout_callback",
    "fixed_encrypt_price": false,
    "enable_post_callback": false
}"#;

const PAY_INFO_EXAMPLE: &str = r#"{"chain":"ETH","currency":"USDT-ERC20","vs_currency":"USD","vs_price":18,"callback_url":"https://example.com/cb","timeout_callback":"https://example.com/timeout","enable_post_callback":true}"#;

async fn counts(env: &Env) -> (u64, usize, u64) {
    let orders = env.store.count_orders(&env.merchant).await.unwrap();
    let events = env
        .store
        .list_events(&EventQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    let (_, payouts) = env
        .engine
        .list_payouts(
            &env.merchant,
            PayoutQuery {
                limit: 1,
                ..PayoutQuery::default()
            },
        )
        .await
        .unwrap();
    (orders, events, payouts)
}

async fn pay_url_documented_example(db: &TestDb) {
    let env = env(db).await;
    let (status, body) = with_key(&env, Method::POST, "/api/order/pay-url", PAY_URL_EXAMPLE).await;
    let data = data_of(status, &body);
    assert_shape(&data, &[("pay_url", "string")]);
    let pay_url = data["pay_url"].as_str().unwrap();
    assert!(
        pay_url.starts_with(&format!("{PUBLIC_URL}/pay/")),
        "{pay_url}"
    );
    // The order waits for the buyer to pick a coin on the checkout page.
    let orders = env.engine.orders_page(&env.merchant, 1, 10).await.unwrap();
    let order = &orders.items[0];
    assert!(order.target.is_none());
    assert_eq!(order.dialect, "aurpay");
    assert_eq!(order.amount.to_string(), "10");
    assert_eq!(
        order.links.success_url.as_deref(),
        Some("https://example.com/succeed_url")
    );
    assert_eq!(
        order.dialect_data["timeout_callback"],
        json!("https://example.com/timeout_callback")
    );
    assert_eq!(order.dialect_data["auth_mode"], json!("api_key"));
    assert_eq!(order.dialect_data["enable_post_callback"], json!(false));

    // The prose's spelling `succend_url` is accepted too; the header name in any case.
    let body = r#"{"price":"12.5","currency":"usd","succend_url":"https://example.com/s"}"#;
    let (status, resp) = send(
        &env,
        Method::POST,
        "/api/order/pay-url",
        &[("API-KEY", env.cred.key.clone())],
        body,
    )
    .await;
    data_of(status, &resp);
    let order = &env
        .engine
        .orders_page(&env.merchant, 1, 1)
        .await
        .unwrap()
        .items[0];
    assert_eq!(
        order.links.success_url.as_deref(),
        Some("https://example.com/s")
    );
    assert_eq!(order.currency, "USD");

    // Bad input: Aurpay's envelope naming the field, nothing written.
    let before = counts(&env).await;
    for (bad, field) in [
        (r#"{"currency":"USD"}"#, "price"),
        (r#"{"price":10}"#, "currency"),
        (r#"{"price":"ten","currency":"USD"}"#, "price"),
        (r#"{"price":-1,"currency":"USD"}"#, "price"),
        (
            r#"{"price":10,"currency":"USD","callback_url":"ftp://x"}"#,
            "callback_url",
        ),
        (
            r#"{"price":10,"currency":"USD","enable_post_callback":"maybe"}"#,
            "enable_post_callback",
        ),
        ("not json", "JSON"),
    ] {
        let (status, resp) = with_key(&env, Method::POST, "/api/order/pay-url", bad).await;
        let message = error_of(status, &resp, 400);
        assert!(message.contains(field), "{bad}: {message}");
    }
    assert_eq!(counts(&env).await, before);
}

async fn pay_info_documented_example(db: &TestDb) {
    let env = env(db).await;
    let (status, body) =
        with_signature(&env, Method::POST, "/api/order/pay-info", PAY_INFO_EXAMPLE).await;
    let data = data_of(status, &body);
    assert_shape(
        &data,
        &[
            ("order_id", "string"),
            ("status", "string"),
            ("amount", "number"),
            ("create_time", "string"),
            ("vs_currency", "string"),
            ("vs_price", "number"),
            ("address", "string"),
            ("contract_addr", "string"),
            ("pay_url", "string"),
        ],
    );
    assert_eq!(data["status"], "PENDING");
    assert_eq!(data["vs_currency"], "USD");
    assert_eq!(data["vs_price"], json!(18));
    assert_eq!(data["contract_addr"], USDT_CONTRACT);
    assert!(data["address"].as_str().unwrap().starts_with("0x"));
    assert!(!data["create_time"].as_str().unwrap().ends_with('Z'));
    let order_id = data["order_id"].as_str().unwrap();
    let order = env
        .engine
        .get_order(&env.merchant, &order_id.parse().unwrap())
        .await
        .unwrap();
    // 18 USD in USDT at the market rate 0.9998, written exactly as the amount due (6 decimals).
    let due = order.target.as_ref().unwrap().amount_due;
    assert!(due.get() > 18_000_000 && due.get() < 18_010_000, "{due:?}");
    let expected = format!(
        r#""amount":{}"#,
        due.format(coffer_core::Decimals::new(6).unwrap())
    );
    assert!(
        body.to_string().contains(&expected),
        "{body} has {expected}"
    );
    assert_eq!(order.dialect_data["auth_mode"], json!("signature"));
    assert_eq!(order.dialect_data["enable_post_callback"], json!(true));

    // Unknown coin: a clear error, nothing written.
    let before = counts(&env).await;
    let bad = r#"{"chain":"TRX","currency":"USDT-TRC20","vs_currency":"USD","vs_price":18}"#;
    let (status, resp) = with_signature(&env, Method::POST, "/api/order/pay-info", bad).await;
    assert!(error_of(status, &resp, 400).contains("currency"));
    let bad = r#"{"chain":"ETH","currency":"USDT-ERC20","vs_currency":"USD"}"#;
    let (status, resp) = with_signature(&env, Method::POST, "/api/order/pay-info", bad).await;
    assert!(error_of(status, &resp, 400).contains("vs_price"));
    assert_eq!(counts(&env).await, before);
}

async fn orders_list_and_detail(db: &TestDb) {
    let env = env(db).await;
    for _ in 0..3 {
        let (s, b) = with_key(&env, Method::POST, "/api/order/pay-info", PAY_INFO_EXAMPLE).await;
        data_of(s, &b);
    }
    // Signed GET: the query string inside the signed path and without it both pass.
    let path = "/api/v2/order/?page=1&size=2";
    let (status, body) = with_signature(&env, Method::GET, path, "").await;
    let data = data_of(status, &body);
    assert_shape(
        &data,
        &[
            ("page", "number"),
            ("size", "number"),
            ("total", "number"),
            ("max_page", "number"),
            ("data", "array"),
        ],
    );
    assert_eq!(data["total"], json!(3));
    assert_eq!(data["max_page"], json!(2));
    assert_eq!(data["data"].as_array().unwrap().len(), 2);
    for order in data["data"].as_array().unwrap() {
        assert_shape(order, ORDER_FIELDS);
        assert_eq!(order["status"], "PENDING");
        assert_eq!(order["chain"], "ETH");
        assert_eq!(order["chain_name"], "Ethereum");
        assert_eq!(order["currency"], "USDT-ERC20");
        assert_eq!(order["vs_price"], "18.0");
        assert_eq!(order["order_type"], "ORDER");
    }
    let headers = signed_headers(&env, "GET", "/api/v2/order/", "", &iso_now(0));
    let (status, body) = send(
        &env,
        Method::GET,
        "/api/v2/order/?page=2&size=2",
        &headers,
        "",
    )
    .await;
    let page2 = data_of(status, &body);
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    let first_ids: Vec<_> = data["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].clone())
        .collect();
    assert!(!first_ids.contains(&page2["data"][0]["order_id"]));

    // Detail: the same object.
    let id = data["data"][0]["order_id"].as_str().unwrap();
    let (status, body) =
        with_key(&env, Method::GET, &format!("/api/v2/order/detail/{id}"), "").await;
    let detail = data_of(status, &body);
    assert_shape(&detail, ORDER_FIELDS);
    assert_eq!(detail["order_id"], json!(id));

    // Another merchant's order and a malformed id: 404, exactly like a missing one.
    let other = env
        .engine
        .create_dialect_credential(
            &env.master,
            &env.engine.create_merchant("Other").await.unwrap().0.id,
            &coffer_dialect_aurpay::CREDENTIAL,
        )
        .await
        .unwrap();
    let (status, body) = send(
        &env,
        Method::GET,
        &format!("/api/v2/order/detail/{id}"),
        &[("API-Key", other.key.clone())],
        "",
    )
    .await;
    error_of(status, &body, 404);
    let (status, body) = with_key(
        &env,
        Method::GET,
        "/api/v2/order/detail/20250207040935220628",
        "",
    )
    .await;
    error_of(status, &body, 404);
    let (status, body) = with_key(&env, Method::GET, "/api/v2/order/?page=0", "").await;
    assert!(error_of(status, &body, 400).contains("page"));
}

async fn authentication_failures_write_nothing(db: &TestDb) {
    let env = env(db).await;
    let path = "/api/order/pay-info";
    let body = PAY_INFO_EXAMPLE;
    let before = counts(&env).await;
    let good_once = signed_headers(&env, "POST", path, body, &iso_now(0));
    let good = || good_once.clone();
    let replace = |mut h: Vec<(&'static str, String)>, name: &str, value: &str| {
        for (k, v) in &mut h {
            if *k == name {
                *v = value.to_owned();
            }
        }
        h
    };
    let remove = |h: Vec<(&'static str, String)>, name: &str| {
        h.into_iter()
            .filter(|(k, _)| *k != name)
            .collect::<Vec<_>>()
    };
    let stale_date = iso_now(-330);
    let stale = signed_headers(&env, "POST", path, body, &stale_date);
    let future = signed_headers(&env, "POST", path, body, &iso_now(330));
    let wrong_secret = {
        let date = iso_now(0);
        let md5 = py_md5(body);
        let origin = format!("HMAC-SHA256 | {date} | POST {path} | {md5}");
        vec![
            ("API-Token", env.cred.token.clone().unwrap()),
            ("Algorithm", "HMAC-SHA256".to_owned()),
            ("Date", date),
            ("Body-MD5", md5),
            ("Signature", py_hmac_b64("not-the-secret", &origin)),
        ]
    };
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("no credentials", vec![], "API-Key"),
        (
            "unknown API-Key",
            vec![("API-Key", "aurk_nope".to_owned())],
            "API-Key",
        ),
        (
            "API-Secret used as API-Key",
            vec![("API-Key", env.cred.secret.clone())],
            "API-Key",
        ),
        (
            "unknown API-Token",
            replace(good(), "API-Token", "aurt_nope"),
            "API-Token",
        ),
        ("wrong secret", wrong_secret, "Signature"),
        (
            "tampered signature",
            replace(good(), "Signature", "AAAA"),
            "Signature",
        ),
        ("stale Date", stale, "Date"),
        ("future Date", future, "Date"),
        ("bad Date", replace(good(), "Date", "yesterday"), "Date"),
        ("missing Date", remove(good(), "Date"), "Date"),
        (
            "missing Signature",
            remove(good(), "Signature"),
            "Signature",
        ),
        (
            "missing Algorithm",
            remove(good(), "Algorithm"),
            "Algorithm",
        ),
        (
            "other Algorithm",
            replace(good(), "Algorithm", "HMAC-SHA1"),
            "Algorithm",
        ),
        ("missing Body-MD5", remove(good(), "Body-MD5"), "Body-MD5"),
        (
            "wrong Body-MD5",
            replace(good(), "Body-MD5", &py_md5("{}")),
            "Body-MD5",
        ),
    ];
    for (what, headers, needle) in cases {
        let (status, resp) = send(&env, Method::POST, path, &headers, body).await;
        let message = error_of(status, &resp, 401);
        assert!(message.contains(needle), "{what}: {message}");
    }
    // A signature over another body (the body was changed in transit).
    let headers = good();
    let (status, resp) = send(&env, Method::POST, path, &headers, &body.replace("18", "1")).await;
    error_of(status, &resp, 401);
    // A revoked credential stops working at once.
    env.engine
        .revoke_dialect_credential(&env.merchant, &env.cred.id)
        .await
        .unwrap();
    let (status, resp) = with_key(&env, Method::POST, path, body).await;
    error_of(status, &resp, 401);
    let (status, resp) = with_signature(&env, Method::POST, path, body).await;
    error_of(status, &resp, 401);
    assert_eq!(counts(&env).await, before, "nothing written");
}

async fn lists_wallets_transactions_refunds_withdrawals(db: &TestDb) {
    let env = env(db).await;
    let (s, b) = with_key(&env, Method::GET, "/api/order/pay/real-currency", "").await;
    let fiat = data_of(s, &b);
    let usd = fiat
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == "USD")
        .unwrap();
    assert_shape(
        usd,
        &[
            ("currency", "string"),
            ("name", "string"),
            ("precision", "number"),
        ],
    );

    let (s, b) = with_signature(&env, Method::GET, "/api/order/pay/crypto-currency", "").await;
    let crypto = data_of(s, &b);
    let usdt = crypto
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == "USDT-ERC20")
        .unwrap();
    assert_shape(
        usdt,
        &[
            ("chain", "string"),
            ("chain_name", "string"),
            ("currency", "string"),
            ("contract_addr", "string"),
            ("decimals", "number"),
        ],
    );
    assert_eq!(usdt["chain"], "ETH");
    let eth = crypto
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == "ETH")
        .unwrap();
    assert!(eth["contract_addr"].is_null());

    for path in ["/api/v2/wallet", "/api/v2/wallet/self-custody"] {
        let (s, b) = with_key(&env, Method::GET, path, "").await;
        let wallets = data_of(s, &b);
        let w = &wallets[0];
        assert_shape(
            w,
            &[
                ("chain", "string"),
                ("chain_name", "string"),
                ("wallet_type", "string"),
                ("xpub", "string"),
                ("currencies", "array"),
            ],
        );
        assert_eq!(w["xpub"], XPUB);
    }

    let (s, b) = with_key(&env, Method::GET, "/api/v2/tx?page=1&size=10", "").await;
    let tx = data_of(s, &b);
    assert_shape(
        &tx,
        &[
            ("page", "number"),
            ("size", "number"),
            ("total", "number"),
            ("max_page", "number"),
            ("data", "array"),
        ],
    );
    assert_eq!(tx["total"], json!(0));

    // Refund info of an unpaid order; a refund of it is refused (nothing received).
    let (s, b) = with_key(&env, Method::POST, "/api/order/pay-info", PAY_INFO_EXAMPLE).await;
    let id = data_of(s, &b)["order_id"].as_str().unwrap().to_owned();
    let (s, b) = with_key(
        &env,
        Method::GET,
        &format!("/api/v2/order/refund-info/{id}"),
        "",
    )
    .await;
    let info = data_of(s, &b);
    assert_shape(
        &info,
        &[
            ("order_id", "string"),
            ("chain", "string"),
            ("currency", "string"),
            ("amount", "string"),
            ("refund", "bool"),
            ("refund_status", "null"),
        ],
    );
    assert_eq!(info["refundable"], json!(false));
    let before = counts(&env).await;
    let (s, b) = with_key(
        &env,
        Method::POST,
        &format!("/api/v2/order/refund/{id}"),
        r#"{"address":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}"#,
    )
    .await;
    error_of(s, &b, 409);
    assert_eq!(counts(&env).await, before);

    // Withdraw: recorded as a request awaiting the merchant's approval.
    let body = r#"{"chain":"ETH","currency":"USDT-ERC20","amount":"12.5","address":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}"#;
    let (s, b) = with_signature(&env, Method::POST, "/api/v2/wallet/withdraw", body).await;
    let w = data_of(s, &b);
    assert_shape(
        &w,
        &[
            ("withdraw_id", "string"),
            ("status", "string"),
            ("chain", "string"),
            ("currency", "string"),
            ("amount", "string"),
            ("address", "string"),
        ],
    );
    assert_eq!(w["status"], "PENDING");
    assert_eq!(w["amount"], "12.5");
    let (payouts, total) = env
        .engine
        .list_payouts(
            &env.merchant,
            PayoutQuery {
                limit: 10,
                ..PayoutQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(payouts[0].status, coffer_core::PayoutStatus::Requested);
    assert_eq!(payouts[0].amount.unwrap().get(), 12_500_000);
    let bad = r#"{"chain":"ETH","currency":"USDT-ERC20","amount":"1.0000001","address":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}"#;
    let (s, b) = with_key(&env, Method::POST, "/api/v2/wallet/withdraw", bad).await;
    assert!(error_of(s, &b, 400).contains("amount"));

    // Lightning: a clear error in Aurpay's envelope.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/bln/order",
            r#"{"price":20,"currency":"USD"}"#,
        ),
        (
            Method::POST,
            "/api/bln/withdraw",
            r#"{"ln_invoices":"lntb1..."}"#,
        ),
        (Method::GET, "/api/bln/balance", ""),
    ] {
        let (s, b) = with_key(&env, method, path, body).await;
        assert!(error_of(s, &b, 501).contains("Lightning is not enabled"));
    }
}

async fn get_api_key_with_the_console_login(db: &TestDb) {
    let env = env(db).await;
    env.engine
        .set_merchant_login(
            &env.merchant,
            "shop@example.com",
            "correct horse battery staple",
        )
        .await
        .unwrap();
    let path = "/api/plugin/key/aurpay";
    let (s, b) = send(
        &env,
        Method::POST,
        path,
        &[],
        r#"{"username":"shop@example.com","password":"correct horse battery staple"}"#,
    )
    .await;
    let data = data_of(s, &b);
    assert_shape(&data, &[("access_token", "string")]);
    let token = data["access_token"].as_str().unwrap().to_owned();
    // Usable as API-Key.
    let (s, b) = send(
        &env,
        Method::GET,
        "/api/v2/order/",
        &[("API-Key", token.clone())],
        "",
    )
    .await;
    data_of(s, &b);
    // The Postman collection's form-urlencoded variant.
    let resp = env
        .client
        .post(format!("{}{path}", env.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("username=shop%40example.com&password=correct+horse+battery+staple")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["access_token"], json!(token));
    // Wrong password, unknown user: the same answer.
    for body in [
        r#"{"username":"shop@example.com","password":"wrong horse battery staple"}"#,
        r#"{"username":"nobody@example.com","password":"correct horse battery staple"}"#,
    ] {
        let (s, b) = send(&env, Method::POST, path, &[], body).await;
        assert_eq!(error_of(s, &b, 401), "invalid username or password");
    }
    let (s, b) = send(&env, Method::POST, path, &[], r#"{"username":"x"}"#).await;
    assert!(error_of(s, &b, 400).contains("password"));
    // Guessing: after five failures (one above, four here) the username is locked, even for
    // the right password, without checking it; other usernames are not.
    let wrong = r#"{"username":"shop@example.com","password":"wrong horse battery staple"}"#;
    for _ in 0..4 {
        let (s, b) = send(&env, Method::POST, path, &[], wrong).await;
        error_of(s, &b, 401);
    }
    let right = r#"{"username":"shop@example.com","password":"correct horse battery staple"}"#;
    let (s, b) = send(&env, Method::POST, path, &[], right).await;
    assert!(
        error_of(s, &b, 429).contains("too many failed logins"),
        "{b}"
    );
    let (s, b) = send(
        &env,
        Method::POST,
        path,
        &[],
        r#"{"username":"other@example.com","password":"wrong horse battery staple"}"#,
    )
    .await;
    error_of(s, &b, 401);
    // The legacy plugin check.
    let resp = env
        .client
        .get(format!(
            "{}/api/plugin/key/verify?id=1&key={token}&name=WOOCOMMERCE&url=shop",
            env.base
        ))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"], json!(true));
}

async fn shop_order_id_and_legacy_plugin_endpoints(db: &TestDb) {
    let env = env(db).await;
    // The undocumented `id` some clients send: a repeat returns the same order, a different
    // amount under the same id is refused.
    let body = r#"{"price":10,"currency":"USD","id":"wc-1001"}"#;
    let (s, b) = with_key(&env, Method::POST, "/api/order/pay-url", body).await;
    let first = data_of(s, &b)["pay_url"].clone();
    let (s, b) = with_key(&env, Method::POST, "/api/order/pay-url", body).await;
    assert_eq!(data_of(s, &b)["pay_url"], first);
    assert_eq!(db.store.count_orders(&env.merchant).await.unwrap(), 1);
    let (s, b) = with_key(
        &env,
        Method::POST,
        "/api/order/pay-url",
        r#"{"price":11,"currency":"USD","id":"wc-1001"}"#,
    )
    .await;
    error_of(s, &b, 409);

    // Old WooCommerce plugin: a coin chosen in the shop, `data.pay_url`.
    let body = r#"{"chain":"ETH","currency":"USDT-ERC20","callback":"https://shop.example/cb","platform":"WOOCOMMERCE","origin":{"id":"77","currency":"USD","price":"19.9","url":"https://shop.example","callback_url":"https://shop.example/cb?order=77"}}"#;
    let (s, b) = with_key(&env, Method::POST, "/api/order/plugin", body).await;
    let data = data_of(s, &b);
    assert!(data["pay_url"].as_str().unwrap().starts_with(PUBLIC_URL));
    let order = env
        .store
        .get_order_by_no(&env.merchant, "77")
        .await
        .unwrap()
        .unwrap();
    assert!(order.target.is_some());
    assert_eq!(
        order.links.callback_url.as_deref(),
        Some("https://shop.example/cb?order=77")
    );

    // Old EDD plugin: the key in the body, `data.token` (the checkout token).
    let body = format!(
        r#"{{"platform":"EASYDIGITALDOWNLOADS","origin":{{"id":"edd-5","price":5,"currency":"USD","callback_url":"https://shop.example/edd","succeed_url":"https://shop.example/thanks","url":"https://shop.example"}},"user_id":"u1","key":"{}"}}"#,
        env.cred.key
    );
    let (s, b) = send(&env, Method::POST, "/api/order/pay/token", &[], &body).await;
    let data = data_of(s, &b);
    let token = data["token"].as_str().unwrap();
    let order = env.store.find_order_by_token(token).await.unwrap().unwrap();
    assert_eq!(order.order_no.as_deref(), Some("edd-5"));
    let before = counts(&env).await;
    let (s, b) = send(
        &env,
        Method::POST,
        "/api/order/pay/token",
        &[],
        &body.replace(&env.cred.key, "aurk_wrong"),
    )
    .await;
    error_of(s, &b, 401);
    assert_eq!(counts(&env).await, before);
}

both_backends! {
    shop_order_id_and_legacy_plugin_endpoints => shop_order_id_and_legacy_plugin_endpoints;
    pay_url_documented_example => pay_url_documented_example;
    pay_info_documented_example => pay_info_documented_example;
    orders_list_and_detail => orders_list_and_detail;
    authentication_failures_write_nothing => authentication_failures_write_nothing;
    lists_wallets_transactions_refunds_withdrawals => lists_wallets_transactions_refunds_withdrawals;
    get_api_key_with_the_console_login => get_api_key_with_the_console_login;
}
