//! Pay Protocol refund and withdrawal callbacks over real HTTP on loopback, on SQLite and
//! PostgreSQL: a refund created through the dialect on a paid order and a withdrawal applied
//! through it, moved by the engine (as the merchant would approve them), and their callbacks
//! delivered by the real outbox to a loopback receiver that checks them the way a shop would:
//! POST to the given `notifyUrl`, the documented fields field by field, `X-PAY-SIGN`
//! recomputed with Python's `hmac`, again after an answer other than `success` (on the
//! vendor's 15 s schedule, run on a manual clock). Also: no callback on request, approval or
//! sending, none without a `notifyUrl`, `/refund/notify` re-sends once, unknown refunds get
//! the vendor's 404 with nothing written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, Uri};
use coffer_core::{MerchantId, PayoutId, PayoutStatus};
use coffer_dialect::{Dialect, DialectDeps};
use coffer_engine::{Engine, ManualClock};
use coffer_secrets::MasterKey;
use coffer_store::{DeliveryQuery, DeliveryRecord, OrderQuery};
use coffer_testkit::{TestDb, both_backends, fixtures};
use coffer_webhooks::{Formatters, RetrySchedule, Settings, Webhooks};
use serde_json::Value;

/// One request the shop's receiver got.
#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    uri: String,
    headers: HeaderMap,
    body: String,
}

type Hits = Arc<Mutex<Vec<Hit>>>;

/// The shop: the first refund and the first withdrawal callback are answered `ok` (not
/// `success`, so they must come again); the vendor's WooCommerce plugin's callback
/// (`/?wc-api=wc_gateway_crypto`) as its `wp_send_json("success")` does; everything else
/// `success`.
async fn receive(
    State(hits): State<Hits>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let wordpress = uri.query() == Some("wc-api=wc_gateway_crypto");
    let mut hits = hits.lock().unwrap();
    let path = uri.path().to_owned();
    let first = !hits.iter().any(|h| h.path == path);
    hits.push(Hit {
        method: method.to_string(),
        path: path.clone(),
        uri: uri.to_string(),
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    if wordpress {
        // wp_send_json(): the JSON encoding of the string, with WordPress's content type.
        (
            [("content-type", "application/json; charset=UTF-8")],
            "\"success\"",
        )
            .into_response()
    } else if first && (path == "/refund/cb" || path == "/withdraw/cb") {
        "ok".into_response()
    } else {
        "success".into_response()
    }
}

struct Harness {
    engine: Engine,
    clock: Arc<ManualClock>,
    merchant: MerchantId,
    api: String,
    shop: String,
    hits: Hits,
    key: String,
    secret: String,
    http: reqwest::Client,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn start(db: &TestDb) -> Harness {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let engine = fixtures::bsc_shop_engine(db, clock.clone());
    let master = MasterKey::from_bytes([9; 32]);
    let (m, cred) = engine
        .create_merchant_with_dialect_credential(
            &master,
            "PP Shop",
            &coffer_dialect_payprotocol::CREDENTIAL,
        )
        .await
        .unwrap();
    engine.set_wallet(&m.id, "bsc", "ab").await.unwrap();
    let dialect = coffer_dialect_payprotocol::PayProtocolDialect;
    let deps = DialectDeps::new(engine.clone(), Arc::new(master.clone()));
    let api = fixtures::serve(dialect.routes(&deps)).await;
    let hits: Hits = Arc::default();
    let shop = fixtures::serve(
        axum::Router::new()
            .fallback(receive)
            .with_state(hits.clone()),
    )
    .await;
    // The outbox with the Pay Protocol formatter (its own 15 s, 30 s, … schedule), allowed to
    // call loopback (tests only).
    let settings = Settings {
        allow_private: true,
        retry: RetrySchedule {
            delays: vec![Duration::from_secs(1)],
        },
        poll_interval: Duration::from_millis(20),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        lease: Duration::from_secs(5),
        ..Settings::default()
    };
    let formatters =
        Formatters::new(settings.retry.clone()).with(dialect.name(), dialect.formatter(&deps));
    let hooks = Webhooks::new(db.store.clone(), clock.clone(), master, settings)
        .with_formatters(formatters);
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move { hooks.run(rx).await.unwrap() });
    Harness {
        engine,
        clock,
        merchant: m.id,
        api,
        shop,
        hits,
        key: cred.key,
        secret: cred.secret,
        http: coffer_testkit::http_client(),
        _stop: stop,
    }
}

/// Base64 HMAC-SHA256, computed by Python's standard library (independent of the crate).
fn py_sign(secret: &str, message: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import base64,hashlib,hmac,sys; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).digest()).decode())",
            secret,
            message,
        ])
        .output()
        .expect("python3");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Harness {
    /// A signed request to the dialect, stamped with the server's (manual) clock.
    async fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let ts = self.engine.now().unix_timestamp().to_string();
        let sig = py_sign(&self.secret, &format!("{ts}{method}{path}{body}"));
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.api))
            .header("X-PAY-KEY", &self.key)
            .header("X-PAY-TIMESTAMP", &ts)
            .header("X-PAY-SIGN", sig);
        if method == "POST" {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn ok(&self, method: &str, path: &str, body: &str) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["code"], 200, "{v}");
        v["data"].clone()
    }

    fn hits_at(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// Wait until `path` got `n` requests; return them.
    async fn wait_hits(&self, path: &str, n: usize) -> Vec<Hit> {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let hits = self.hits_at(path);
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < end,
                "{path}: {} of {n} callbacks arrived",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until the newest delivery to `url` has `status` after `attempts` recorded
    /// attempts; return the deliveries to `url`.
    async fn settled(&self, url: &str, status: &str, attempts: u32) -> Vec<DeliveryRecord> {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let d = self.deliveries().await;
            let to: Vec<DeliveryRecord> = d.into_iter().filter(|d| d.url == url).collect();
            if to
                .first()
                .is_some_and(|d| d.status.as_str() == status && d.attempts == attempts)
            {
                return to;
            }
            assert!(
                Instant::now() < end,
                "delivery to {url} not {status}: {to:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.engine
            .list_deliveries(
                &self.merchant,
                DeliveryQuery {
                    limit: 500,
                    ..DeliveryQuery::default()
                },
            )
            .await
            .unwrap()
    }

    async fn set(&self, seq: i64, to: PayoutStatus) {
        let p = self
            .engine
            .get_payout_by_seq(&self.merchant, seq)
            .await
            .unwrap();
        self.move_to(&p.id, to).await;
    }

    async fn move_to(&self, id: &PayoutId, to: PayoutStatus) {
        self.engine
            .set_payout_status(&self.merchant, id, to, None)
            .await
            .unwrap();
    }

    /// What the shop checks: POST, JSON, its key, a fresh timestamp, and `X-PAY-SIGN` =
    /// base64(HMAC-SHA256(secret, timestamp + "POST" + path and query + body)).
    fn verify_like_a_shop(&self, hit: &Hit, path_and_query: &str) -> Value {
        assert_eq!(hit.method, "POST");
        assert_eq!(hit.uri, path_and_query);
        let h = |n: &str| hit.headers.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("content-type"), "application/json");
        assert_eq!(h("x-pay-key"), self.key);
        let ts = h("x-pay-timestamp");
        assert_eq!(
            ts.parse::<i64>().unwrap(),
            self.engine.now().unix_timestamp(),
            "seconds, from the server's clock"
        );
        let message = format!("{ts}POST{path_and_query}{}", hit.body);
        assert_eq!(h("x-pay-sign"), py_sign(&self.secret, &message));
        assert_ne!(h("x-pay-sign"), py_sign("another secret", &message));
        serde_json::from_str(&hit.body).unwrap()
    }

    /// Pay the (only) order in full, as a watcher would report it.
    async fn pay(&self) {
        let order = self
            .engine
            .list_orders(&OrderQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .remove(0);
        fixtures::pay_in_full(&self.engine, &order, "0xbuyer").await;
    }
}

/// Assert that `v` has exactly these fields with these JSON types.
fn shape(v: &Value, fields: &[(&str, &str)]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    for (name, kind) in fields {
        let f = obj
            .get(*name)
            .unwrap_or_else(|| panic!("missing {name} in {v}"));
        let ok = match *kind {
            "string" => f.is_string(),
            "int" => f.is_i64() || f.is_u64(),
            "intstr" => f
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
            "time" => f.as_str().is_some_and(|s| {
                time::PrimitiveDateTime::parse(
                    s,
                    time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second]"
                    ),
                )
                .is_ok()
            }),
            other => panic!("unknown kind {other}"),
        };
        assert!(ok, "{name} should be {kind}: {f}");
    }
    assert_eq!(obj.len(), fields.len(), "unexpected fields in {v}");
}

const REFUND_FIELDS: &[(&str, &str)] = &[
    ("chainId", "int"),
    ("currencyId", "int"),
    ("refundId", "int"),
    ("outTradeNo", "string"),
    ("outPaymentNo", "intstr"),
    ("refundAddress", "string"),
    ("refundAmount", "intstr"),
    ("refundFee", "string"),
    ("refundStatus", "int"),
    ("refundTime", "time"),
    ("transferHash", "string"),
];

const WITHDRAWAL_FIELDS: &[(&str, &str)] = &[
    ("chainId", "int"),
    ("currencyId", "int"),
    ("withdrawId", "int"),
    ("outTradeNo", "string"),
    ("withdrawAmount", "intstr"),
    ("withdrawAddress", "string"),
    ("withdrawStatus", "int"),
    ("applyTime", "time"),
    ("transferHash", "string"),
];

/// The vendor's WooCommerce plugin (`PayProtocol-Network/wc-plugin`,
/// `class-wc-gateway-crypto.php`) exactly as it builds its requests: `outTradeNo` =
/// `WP-ORDER-{X-PAY-KEY}-{order number}` (its default `order_prefix`), the body
/// `json_encode(..., JSON_UNESCAPED_SLASHES)` of its `$crypto_args` in its key order with
/// `chainId` a string (a WordPress option) and `quoteAmount` WooCommerce's `get_total()`
/// (`"18.00"`), the notify URL `site_url() . '/?wc-api=wc_gateway_crypto'`. Its callback
/// handler answers `wp_send_json("success")` (a JSON string, quotes included) and re-reads
/// the payment with the query unencoded and signed as sent; it completes the order only if
/// `quoteAmount` equals its total.
async fn woocommerce_plugin(db: &TestDb) {
    let h = start(db).await;
    assert!(
        h.key.len() <= 32,
        "a Pay Protocol key is short like the vendor's: {}",
        h.key
    );
    let wc_order = "10472";
    let order_prefix = format!("WP-ORDER-{}-", h.key);
    let out_trade_no = format!("{order_prefix}{wc_order}");
    let notify = format!("{}/?wc-api=wc_gateway_crypto", h.shop);
    let body = format!(
        r#"{{"chainId":"56","outTradeNo":"{out_trade_no}","description":"Currently WooCommerce product information","isLegalTender":1,"notifyUrl":"{notify}","quoteCurrencySymbol":"USD","quoteAmount":"18.00","redirectionUrl":"https://shop.example/checkout/order-received/{wc_order}/?key=wc_order_Xq3ZpL0aT9bEw"}}"#
    );
    let created = h
        .ok("POST", "/api/mer/payment/createPaymentOrder", &body)
        .await;
    assert!(created["paymentUrl"].as_str().unwrap().starts_with("/pay/"));
    h.pay().await;

    // the callback, acknowledged at its first attempt by the JSON string "success"
    let hits = h.wait_hits("/", 1).await;
    let cb = h.verify_like_a_shop(&hits[0], "/?wc-api=wc_gateway_crypto");
    assert_eq!(cb["outTradeNo"], out_trade_no.as_str());
    assert_eq!(cb["quoteAmount"], "18.00", "echoed as given");
    h.settled(&notify, "succeeded", 1).await;

    // the plugin's handler: get_payments_result(), its query neither encoded nor reordered
    let detail = h
        .ok(
            "GET",
            &format!(
                "/api/mer/payment/detail?outTradeNo={}&outPaymentNo={}",
                cb["outTradeNo"].as_str().unwrap(),
                cb["outPaymentNo"].as_str().unwrap()
            ),
            "",
        )
        .await;
    assert_eq!(detail["paymentStatus"], 0);
    assert_eq!(detail["quoteCurrencySymbol"], "USD");
    assert_eq!(detail["quoteAmount"], "18.00", "echoed as given");
    // str_replace($this->order_prefix, '', outTradeNo): the WooCommerce order again
    assert_eq!(
        detail["outTradeNo"]
            .as_str()
            .unwrap()
            .replace(&order_prefix, ""),
        wc_order
    );
    // the payment callback is not sent again (no retry after the acknowledgement)
    h.clock.advance(time::Duration::seconds(20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.hits_at("/").len(), 1);
}

/// A shop still on a key made before keys were shortened (57 characters): it keeps
/// authenticating, and the plugin's `WP-ORDER-{key}-{order number}` still fits.
async fn long_key_still_works(db: &TestDb) {
    let mut h = start(db).await;
    let long = coffer_engine::CredentialShape {
        key_chars: coffer_engine::dialect_keys::LONG_KEY,
        ..coffer_dialect_payprotocol::CREDENTIAL
    };
    let master = MasterKey::from_bytes([9; 32]);
    let old = h
        .engine
        .create_dialect_credential(&master, &h.merchant, &long)
        .await
        .unwrap();
    assert_eq!(old.key.len(), 57);
    h.key = old.key;
    h.secret = old.secret;
    let out_trade_no = format!("WP-ORDER-{}-10473", h.key);
    let body = format!(
        r#"{{"chainId":"56","outTradeNo":"{out_trade_no}","description":"Currently WooCommerce product information","isLegalTender":1,"notifyUrl":"{}/?wc-api=wc_gateway_crypto","quoteCurrencySymbol":"USD","quoteAmount":"18.00"}}"#,
        h.shop
    );
    h.ok("POST", "/api/mer/payment/createPaymentOrder", &body)
        .await;
    let detail = h
        .ok(
            "GET",
            &format!("/api/mer/payment/detail?outTradeNo={out_trade_no}"),
            "",
        )
        .await;
    assert_eq!(detail["outTradeNo"], out_trade_no.as_str());
}

async fn refund_callbacks(db: &TestDb) {
    let h = start(db).await;
    let create = format!(
        r#"{{"chainId":56,"description":"Order 1001","outTradeNo":"T1001","isLegalTender":1,"quoteCurrencySymbol":"USD","quoteAmount":"10.5","notifyUrl":"{}/pay"}}"#,
        h.shop
    );
    let created = h
        .ok("POST", "/api/mer/payment/createPaymentOrder", &create)
        .await;
    h.pay().await;
    // the payment callback (answered `success` at once)
    h.wait_hits("/pay", 1).await;
    h.settled(&format!("{}/pay", h.shop), "succeeded", 1).await;

    // a refund with its own notifyUrl; requested, approved, sent: no callback yet
    let notify = format!("{}/refund/cb?shop=1", h.shop);
    let r = h
        .ok(
            "POST",
            "/api/mer/refund/createRefundOrder",
            &format!(r#"{{"outTradeNo":"T1001","amount":"2.5","notifyUrl":"{notify}"}}"#),
        )
        .await;
    let id = r["refundId"].as_i64().unwrap();
    h.set(id, PayoutStatus::Approved).await;
    // marked sent with the transaction that paid it; completed later without one keeps it
    let payout = h.engine.get_payout_by_seq(&h.merchant, id).await.unwrap();
    h.engine
        .set_payout_status(
            &h.merchant,
            &payout.id,
            PayoutStatus::Sent,
            Some("0xrefundtx1".into()),
        )
        .await
        .unwrap();
    // not sent yet: nothing to re-trigger
    let (s, v) = h
        .call("GET", &format!("/api/mer/refund/notify?refundId={id}"), "")
        .await;
    assert_eq!(s, 404, "{v}");
    h.set(id, PayoutStatus::Completed).await;

    // the callback: POST to the refund's notifyUrl, signed, with the refund-detail fields
    let hits = h.wait_hits("/refund/cb", 1).await;
    let cb = h.verify_like_a_shop(&hits[0], "/refund/cb?shop=1");
    shape(&cb, REFUND_FIELDS);
    assert_eq!(cb["chainId"], 56);
    assert_eq!(cb["currencyId"], 2, "USDT, second in the asset list");
    assert_eq!(cb["refundId"], id);
    assert_eq!(cb["outTradeNo"], "T1001");
    assert_eq!(cb["outPaymentNo"], created["outPaymentNo"]);
    assert_eq!(cb["refundAddress"], "0xbuyer", "the payer's address");
    assert_eq!(cb["refundAmount"], "2500000", "minor units");
    assert_eq!(cb["refundFee"], "0");
    assert_eq!(cb["refundStatus"], 0, "success");
    assert_eq!(
        cb["transferHash"], "0xrefundtx1",
        "the hash given when marked sent"
    );
    // exactly what refund/detail answers (the same mapping)
    let detail = h
        .ok("GET", &format!("/api/mer/refund/detail?refundId={id}"), "")
        .await;
    assert_eq!(cb, detail);
    // the only delivery for this refund is the final one: none for requested, approved, sent
    let to_refund = h.settled(&notify, "pending", 1).await;
    assert_eq!(to_refund.len(), 1, "one callback for four events");

    // answered `ok`: comes again after 15 s (± the outbox's 10 % jitter), not before
    h.clock.advance(time::Duration::seconds(13));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.hits_at("/refund/cb").len(), 1, "not before 15 s");
    h.clock.advance(time::Duration::seconds(4));
    let hits = h.wait_hits("/refund/cb", 2).await;
    assert_eq!(hits[1].body, hits[0].body);
    h.verify_like_a_shop(&hits[1], "/refund/cb?shop=1");
    h.settled(&notify, "succeeded", 2).await;
    // `success`: no more attempts
    h.clock.advance(time::Duration::minutes(20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.hits_at("/refund/cb").len(), 2);

    // a second refund, rejected straight away: refundStatus 5 to its own URL
    let r2 = h
        .ok(
            "POST",
            "/api/mer/refund/createRefundOrder",
            &format!(
                r#"{{"outTradeNo":"T1001","amount":"1","notifyUrl":"{}/refund/two"}}"#,
                h.shop
            ),
        )
        .await;
    let id2 = r2["refundId"].as_i64().unwrap();
    h.set(id2, PayoutStatus::Rejected).await;
    let hits = h.wait_hits("/refund/two", 1).await;
    let cb2 = h.verify_like_a_shop(&hits[0], "/refund/two");
    shape(&cb2, REFUND_FIELDS);
    assert_eq!(cb2["refundId"], id2);
    assert_eq!(cb2["refundStatus"], 5, "rejected");
    assert_eq!(cb2["refundAmount"], "1000000");

    // a refund without notifyUrl: no callback (the order's notifyUrl gets no refund bodies)
    let r3 = h
        .ok(
            "POST",
            "/api/mer/refund/createRefundOrder",
            r#"{"outTradeNo":"T1001","amount":"1"}"#,
        )
        .await;
    let id3 = r3["refundId"].as_i64().unwrap();
    h.set(id3, PayoutStatus::Rejected).await;

    // manual re-trigger of the first refund (by refundId and outTradeNo): sent once more
    let before = h.deliveries().await;
    let n = h.hits_at("/refund/cb").len();
    let data = h
        .ok(
            "GET",
            &format!("/api/mer/refund/notify?refundId={id}&outTradeNo=T1001"),
            "",
        )
        .await;
    assert_eq!(data, Value::Null);
    let hits = h.wait_hits("/refund/cb", n + 1).await;
    let again = h.verify_like_a_shop(&hits[n], "/refund/cb?shop=1");
    assert_eq!(again["refundId"], id);
    assert_eq!(again["refundStatus"], 0);
    h.settled(&notify, "succeeded", 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.hits_at("/refund/cb").len(), n + 1, "once");
    assert_eq!(h.hits_at("/refund/two").len(), 1, "the other refund not");
    assert_eq!(
        h.deliveries().await.len(),
        before.len(),
        "a redelivery, no new row"
    );

    // payment/notify re-sends the payment callback, not a refund one (same outTradeNo)
    let pays = h.hits_at("/pay").len();
    h.ok("GET", "/api/mer/payment/notify?outTradeNo=T1001", "")
        .await;
    let hits = h.wait_hits("/pay", pays + 1).await;
    let pay: Value = serde_json::from_str(&hits[pays].body).unwrap();
    assert_eq!(pay["paymentStatus"], 0);
    assert!(pay.get("refundId").is_none());

    // unknown refunds: the vendor's 404 envelope, nothing written
    let w = h
        .ok(
            "POST",
            "/api/mer/withdraw/apply",
            r#"{"chainId":56,"currencyId":2,"withdrawAddress":"0xcold","withdrawAmount":"5"}"#,
        )
        .await;
    let wid = w["withdrawId"].as_i64().unwrap();
    let before = h.deliveries().await;
    for query in [
        "refundId=999".to_owned(),
        format!("refundId={wid}"),
        "outTradeNo=NOPE".to_owned(),
        format!("refundId={id}&outTradeNo=NOPE"),
    ] {
        let (s, v) = h
            .call("GET", &format!("/api/mer/refund/notify?{query}"), "")
            .await;
        assert_eq!(s, 404, "{query}: {v}");
        assert_eq!(v["code"], 404);
        assert_eq!(v["msg"], "not found");
        assert!(v["description"].as_str().unwrap().contains("not found"));
        assert_eq!(v["data"], Value::Null);
    }
    let (s, v) = h.call("GET", "/api/mer/refund/notify", "").await;
    assert_eq!(s, 400, "{v}");
    assert!(v["description"].as_str().unwrap().contains("refundId"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.deliveries().await, before, "nothing written");
    assert_eq!(h.hits_at("/refund/cb").len(), n + 1);
    // the refund without notifyUrl never got a delivery
    let needle = format!("\"refundId\":{id3},");
    assert!(
        !before.iter().any(|d| d
            .request_body
            .as_deref()
            .is_some_and(|b| b.contains(&needle))),
        "no callback without a notifyUrl"
    );
}

async fn withdrawal_callbacks(db: &TestDb) {
    let h = start(db).await;
    let notify = format!("{}/withdraw/cb", h.shop);
    let w = h
        .ok(
            "POST",
            "/api/mer/withdraw/apply",
            &format!(
                r#"{{"chainId":56,"currencyId":2,"withdrawAddress":"0xcold","withdrawAmount":"5.25","outTradeNo":"W1","notifyUrl":"{notify}"}}"#
            ),
        )
        .await;
    let id = w["withdrawId"].as_i64().unwrap();
    let applied = h.engine.now();
    h.set(id, PayoutStatus::Approved).await;
    h.set(id, PayoutStatus::Sent).await;
    h.set(id, PayoutStatus::Failed).await;

    let hits = h.wait_hits("/withdraw/cb", 1).await;
    let cb = h.verify_like_a_shop(&hits[0], "/withdraw/cb");
    shape(&cb, WITHDRAWAL_FIELDS);
    assert_eq!(cb["chainId"], 56);
    assert_eq!(cb["currencyId"], 2);
    assert_eq!(cb["withdrawId"], id);
    assert_eq!(cb["outTradeNo"], "W1");
    assert_eq!(cb["withdrawAmount"], "5250000", "minor units");
    assert_eq!(cb["withdrawAddress"], "0xcold");
    assert_eq!(cb["withdrawStatus"], 4, "failure");
    let expected_time = applied
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap();
    assert_eq!(cb["applyTime"], expected_time.as_str());
    assert_eq!(cb["transferHash"], "");
    let to = h.settled(&notify, "pending", 1).await;
    assert_eq!(to.len(), 1, "one callback for four events");

    // answered `ok`: again 15 s (± 10 %) later, then `success` ends it
    h.clock.advance(time::Duration::seconds(17));
    let hits = h.wait_hits("/withdraw/cb", 2).await;
    assert_eq!(hits[1].body, hits[0].body);
    h.verify_like_a_shop(&hits[1], "/withdraw/cb");
    h.settled(&notify, "succeeded", 2).await;

    // a rejected withdrawal without notifyUrl: no callback; a completed one with: status 0
    let plain = h
        .ok(
            "POST",
            "/api/mer/withdraw/apply",
            r#"{"chainId":56,"currencyId":1,"withdrawAddress":"0xcold","withdrawAmount":"1"}"#,
        )
        .await;
    h.set(
        plain["withdrawId"].as_i64().unwrap(),
        PayoutStatus::Rejected,
    )
    .await;
    let done = h
        .ok(
            "POST",
            "/api/mer/withdraw/apply",
            &format!(
                r#"{{"chainId":56,"currencyId":1,"withdrawAddress":"0xcold","withdrawAmount":"0.5","notifyUrl":"{}/withdraw/two"}}"#,
                h.shop
            ),
        )
        .await;
    let done_id = done["withdrawId"].as_i64().unwrap();
    h.set(done_id, PayoutStatus::Approved).await;
    h.set(done_id, PayoutStatus::Sent).await;
    h.set(done_id, PayoutStatus::Completed).await;
    let hits = h.wait_hits("/withdraw/two", 1).await;
    let cb = h.verify_like_a_shop(&hits[0], "/withdraw/two");
    shape(&cb, WITHDRAWAL_FIELDS);
    assert_eq!(cb["withdrawStatus"], 0, "success");
    assert_eq!(cb["currencyId"], 1);
    assert_eq!(cb["withdrawAmount"], "500000");
    assert_eq!(cb["outTradeNo"], "", "none given");
    // events are dispatched in order: the earlier rejection made no delivery
    h.settled(&format!("{}/withdraw/two", h.shop), "succeeded", 1)
        .await;
    let urls: Vec<String> = h.deliveries().await.into_iter().map(|d| d.url).collect();
    assert_eq!(urls.len(), 2, "{urls:?}");
}

both_backends! {
    woocommerce => woocommerce_plugin;
    long_key => long_key_still_works;
    refunds => refund_callbacks;
    withdrawals => withdrawal_callbacks;
}
