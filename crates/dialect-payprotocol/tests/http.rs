//! The Pay Protocol API over real HTTP on loopback, on SQLite and PostgreSQL: every endpoint's
//! documented example, field by field; signatures computed independently (Python's `hmac`);
//! bad signatures, stale timestamps and missing headers answered in the vendor's envelope with
//! nothing written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::str::FromStr;
use std::sync::Arc;

use coffer_core::{AssetId, BaseUnits};
use coffer_dialect::{Dialect, DialectDeps};
use coffer_engine::{Engine, ObservedTransfer};
use coffer_secrets::MasterKey;
use coffer_store::{OrderQuery, PayoutQuery};
use coffer_testkit::{TestDb, both_backends, fixtures};
use serde_json::{Value, json};

struct Harness {
    engine: Engine,
    base: String,
    key: String,
    secret: String,
    http: reqwest::Client,
}

async fn start(db: &TestDb) -> Harness {
    let engine = fixtures::bsc_shop_engine_now(db);
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
    let app = coffer_dialect_payprotocol::PayProtocolDialect
        .routes(&DialectDeps::new(engine.clone(), Arc::new(master)));
    Harness {
        engine,
        base: fixtures::serve(app).await,
        key: cred.key,
        secret: cred.secret,
        http: coffer_testkit::http_client(),
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

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Harness {
    /// A second merchant with its own Pay Protocol credential, on the same server.
    async fn other_merchant(&self) -> (coffer_core::Merchant, Harness) {
        let master = MasterKey::from_bytes([9; 32]);
        let (merchant, cred) = self
            .engine
            .create_merchant_with_dialect_credential(
                &master,
                "Other",
                &coffer_dialect_payprotocol::CREDENTIAL,
            )
            .await
            .unwrap();
        let other = Harness {
            engine: self.engine.clone(),
            base: self.base.clone(),
            key: cred.key,
            secret: cred.secret,
            http: self.http.clone(),
        };
        (merchant, other)
    }

    async fn call_at(
        &self,
        method: &str,
        path: &str,
        body: &str,
        ts: i64,
        sign: Option<String>,
    ) -> (u16, Value) {
        let ts = ts.to_string();
        let sig =
            sign.unwrap_or_else(|| py_sign(&self.secret, &format!("{ts}{method}{path}{body}")));
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
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

    async fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        self.call_at(method, path, body, now(), None).await
    }

    async fn ok(&self, method: &str, path: &str, body: &str) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["code"], 200, "{v}");
        assert_eq!(v["msg"], "success");
        v["data"].clone()
    }

    async fn orders(&self) -> usize {
        self.engine
            .list_orders(&OrderQuery {
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
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
            "array" => f.is_array(),
            "object" => f.is_object(),
            other => panic!("unknown kind {other}"),
        };
        assert!(ok, "{name} should be {kind}: {f}");
    }
    assert_eq!(obj.len(), fields.len(), "unexpected fields in {v}");
}

const PAYMENT_FIELDS: &[(&str, &str)] = &[
    ("chainId", "int"),
    ("orgId", "int"),
    ("outTradeNo", "string"),
    ("outPaymentNo", "intstr"),
    ("description", "string"),
    ("isLegalTender", "int"),
    ("quoteCurrencySymbol", "string"),
    ("quoteAmount", "string"),
    ("paymentStatus", "int"),
    ("paymentType", "int"),
    ("expectedAmount", "intstr"),
    ("settlementAmount", "intstr"),
    ("settlementCurrencySymbol", "string"),
    ("transferHash", "string"),
    ("userWalletAddress", "string"),
    ("fromAddress", "string"),
    ("createTime", "string"),
    ("blockTime", "int"),
];

const CREATE: &str = r#"{"chainId":56,"description":"Order 1001","outTradeNo":"T1001","isLegalTender":1,"quoteCurrencySymbol":"USD","quoteAmount":"10.5","notifyUrl":"https://shop.example/pp/notify","redirectionUrl":"https://shop.example/done"}"#;

async fn payments_endpoints(db: &TestDb) {
    let h = start(db).await;
    // createPaymentOrder: the documented example's shape
    let data = h
        .ok("POST", "/api/mer/payment/createPaymentOrder", CREATE)
        .await;
    shape(
        &data,
        &[
            ("outPaymentNo", "intstr"),
            ("paymentUrl", "string"),
            ("userWalletAddress", "string"),
            ("saltHash", "string"),
        ],
    );
    let out_payment_no = data["outPaymentNo"].as_str().unwrap().to_owned();
    assert_eq!(out_payment_no.len(), 21);
    assert!(data["paymentUrl"].as_str().unwrap().starts_with("/pay/"));
    let salt = data["saltHash"].as_str().unwrap();
    assert!(salt.starts_with("0x") && salt.len() == 66);
    // the same outTradeNo again is the same order
    let again = h
        .ok("POST", "/api/mer/payment/createPaymentOrder", CREATE)
        .await;
    assert_eq!(again["outPaymentNo"], out_payment_no);
    assert_eq!(h.orders().await, 1);

    // detail, with the query string signed (the vendor's plugin) …
    let path = format!("/api/mer/payment/detail?outTradeNo=T1001&outPaymentNo={out_payment_no}");
    let d = h.ok("GET", &path, "").await;
    shape(&d, PAYMENT_FIELDS);
    assert_eq!(d["chainId"], 56);
    assert_eq!(d["paymentStatus"], 1);
    assert_eq!(d["paymentType"], 1);
    assert_eq!(d["isLegalTender"], 1);
    assert_eq!(d["quoteAmount"], "10.5");
    assert_eq!(d["expectedAmount"], "10500000"); // 10.5 USDT × 10^6
    assert_eq!(d["settlementAmount"], "0");
    assert_eq!(d["settlementCurrencySymbol"], "USDT");
    assert_eq!(d["userWalletAddress"], data["userWalletAddress"]);
    assert_eq!(d["createTime"].as_str().unwrap().len(), 19);
    // … and without it
    let ts = now();
    let sig = py_sign(&h.secret, &format!("{ts}GET/api/mer/payment/detail"));
    let (s, v) = h
        .call_at(
            "GET",
            "/api/mer/payment/detail?outTradeNo=T1001",
            "",
            ts,
            Some(sig),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // a wrong outPaymentNo, an unknown order: the vendor's 404
    let (s, v) = h
        .call(
            "GET",
            "/api/mer/payment/detail?outTradeNo=T1001&outPaymentNo=1",
            "",
        )
        .await;
    assert_eq!((s, v["code"].clone()), (404, json!(404)));
    assert!(v["data"].is_null() && v["msg"].is_string() && v["description"].is_string());

    // list
    let l = h
        .ok("GET", "/api/mer/payment/list?page=1&size=10", "")
        .await;
    shape(
        &l,
        &[
            ("count", "int"),
            ("page", "int"),
            ("size", "int"),
            ("list", "array"),
        ],
    );
    assert_eq!(l["count"], 1);
    shape(&l["list"][0], PAYMENT_FIELDS);
    let l = h
        .ok("GET", "/api/mer/payment/list?paymentStatus=0", "")
        .await;
    assert_eq!(l["count"], 0);
    let (s, _) = h.call("GET", "/api/mer/payment/list?size=501", "").await;
    assert_eq!(s, 400);

    // payInfo
    let p = h
        .ok("GET", "/api/mer/payment/payInfo?outTradeNo=T1001", "")
        .await;
    shape(
        &p,
        &[
            ("countDown", "int"),
            ("orgName", "string"),
            ("userWalletAddress", "string"),
            ("saltHash", "string"),
        ],
    );
    assert_eq!(p["orgName"], "PP Shop");
    let left = p["countDown"].as_i64().unwrap();
    assert!((1700..=1800).contains(&left), "{left}");

    // chain and currency lists; payInfo/update to BNB
    let chains = h.ok("GET", "/api/mer/conf/list/chain", "").await;
    assert_eq!(chains[0]["chainId"], 56);
    assert!(chains[0]["chainName"].is_string());
    let currencies = h
        .ok("GET", "/api/mer/conf/list/currency?chainId=56", "")
        .await;
    let usdt = currencies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["symbol"] == "USDT")
        .unwrap()
        .clone();
    shape(
        &usdt,
        &[
            ("currencyId", "int"),
            ("chainId", "int"),
            ("name", "string"),
            ("symbol", "string"),
            ("address", "string"),
            ("decimals", "int"),
            ("createTime", "string"),
            ("icon", "string"),
            ("exchangeRate", "string"),
        ],
    );
    let bnb = currencies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["symbol"] == "BNB")
        .unwrap()
        .clone();
    let body = format!(
        r#"{{"chainId":56,"currencyId":{},"outTradeNo":"T1001"}}"#,
        bnb["currencyId"]
    );
    let u = h.ok("POST", "/api/mer/payment/payInfo/update", &body).await;
    shape(
        &u,
        &[
            ("expectedAmount", "intstr"),
            ("userWalletAddress", "string"),
            ("saltHash", "string"),
        ],
    );
    assert_eq!(u["expectedAmount"], "17500"); // 10.5 USD / 600 = 0.0175 BNB
    assert_ne!(u["userWalletAddress"], data["userWalletAddress"]);

    // bad input: the vendor's 400 naming the field, nothing written
    let (s, v) = h
        .call("POST", "/api/mer/payment/createPaymentOrder", r#"{"chainId":56,"description":"x","outTradeNo":"T2","isLegalTender":1,"quoteCurrencySymbol":"usd","quoteAmount":"1","notifyUrl":"https://a.example"}"#)
        .await;
    assert_eq!((s, v["code"].clone()), (400, json!(400)), "{v}");
    assert!(
        v["description"]
            .as_str()
            .unwrap()
            .contains("quoteCurrencySymbol")
    );
    let (s, v) = h
        .call("POST", "/api/mer/payment/createPaymentOrder", r#"{"chainId":999,"description":"x","outTradeNo":"T2","isLegalTender":1,"quoteCurrencySymbol":"USD","quoteAmount":"1","notifyUrl":"https://a.example"}"#)
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["description"].as_str().unwrap().contains("chainId"));
    assert_eq!(h.orders().await, 1);
}

async fn auth_failures_write_nothing(db: &TestDb) {
    let h = start(db).await;
    let path = "/api/mer/payment/createPaymentOrder";
    let check = |s: u16, v: &Value| {
        assert_eq!(s, 401, "{v}");
        assert_eq!(v["code"], 401);
        assert!(v["msg"].is_string() && v["description"].is_string() && v["data"].is_null());
    };
    // wrong signature (another secret)
    let ts = now();
    let bad = py_sign("not-the-secret", &format!("{ts}POST{path}{CREATE}"));
    let (s, v) = h.call_at("POST", path, CREATE, ts, Some(bad)).await;
    check(s, &v);
    // a signature over another body
    let other = py_sign(&h.secret, &format!("{ts}POST{path}{{}}"));
    let (s, v) = h.call_at("POST", path, CREATE, ts, Some(other)).await;
    check(s, &v);
    // stale timestamp, correctly signed
    let (s, v) = h.call_at("POST", path, CREATE, now() - 90, None).await;
    check(s, &v);
    let (s, v) = h.call_at("POST", path, CREATE, now() + 90, None).await;
    check(s, &v);
    // missing header
    let resp = h
        .http
        .post(format!("{}{path}", h.base))
        .header("X-PAY-KEY", &h.key)
        .header("X-PAY-TIMESTAMP", now().to_string())
        .body(CREATE)
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    check(s, &resp.json().await.unwrap());
    // unknown key
    let ts = now();
    let resp = h
        .http
        .post(format!("{}{path}", h.base))
        .header("X-PAY-KEY", "ppr_unknown")
        .header("X-PAY-TIMESTAMP", ts.to_string())
        .header(
            "X-PAY-SIGN",
            py_sign(&h.secret, &format!("{ts}POST{path}{CREATE}")),
        )
        .body(CREATE)
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    check(s, &resp.json().await.unwrap());
    assert_eq!(h.orders().await, 0, "nothing written");
    // and the same request, correctly signed, works
    h.ok("POST", path, CREATE).await;
    assert_eq!(h.orders().await, 1);
}

async fn refunds_and_withdrawals(db: &TestDb) {
    let h = start(db).await;
    h.ok("POST", "/api/mer/payment/createPaymentOrder", CREATE)
        .await;
    // not paid yet: refused in the envelope, nothing written
    let (s, v) = h
        .call(
            "POST",
            "/api/mer/refund/createRefundOrder",
            r#"{"outTradeNo":"T1001"}"#,
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["code"], 409);
    // pay it (as a watcher would report it)
    let order = h
        .engine
        .list_orders(&OrderQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    fixtures::pay_in_full(&h.engine, &order, "0xbuyer").await;
    let d = h
        .ok("GET", "/api/mer/payment/detail?outTradeNo=T1001", "")
        .await;
    assert_eq!(d["paymentStatus"], 0, "{d}");
    assert_eq!(d["settlementAmount"], "10500000");
    assert_eq!(d["transferHash"], "0xfeed");
    assert_eq!(d["fromAddress"], "0xbuyer");
    assert!(d["blockTime"].as_i64().unwrap() > 0);

    // refund create → refundId (int); detail and list with the documented fields
    let r = h
        .ok(
            "POST",
            "/api/mer/refund/createRefundOrder",
            r#"{"outTradeNo":"T1001","amount":"2.5","notifyUrl":"https://shop.example/refund"}"#,
        )
        .await;
    shape(&r, &[("refundId", "int")]);
    let id = r["refundId"].as_i64().unwrap();
    let refund_fields: &[(&str, &str)] = &[
        ("chainId", "int"),
        ("currencyId", "int"),
        ("refundId", "int"),
        ("outTradeNo", "string"),
        ("outPaymentNo", "intstr"),
        ("refundAddress", "string"),
        ("refundAmount", "intstr"),
        ("refundFee", "string"),
        ("refundStatus", "int"),
        ("refundTime", "string"),
        ("transferHash", "string"),
    ];
    let d = h
        .ok("GET", &format!("/api/mer/refund/detail?refundId={id}"), "")
        .await;
    shape(&d, refund_fields);
    assert_eq!(d["refundAmount"], "2500000");
    assert_eq!(d["refundAddress"], "0xbuyer");
    assert_eq!(d["refundStatus"], 1, "pending approval");
    let d2 = h
        .ok("GET", "/api/mer/refund/detail?outTradeNo=T1001", "")
        .await;
    assert_eq!(d2["refundId"], id);
    // more than what is left: 400 naming amount
    let (s, v) = h
        .call(
            "POST",
            "/api/mer/refund/createRefundOrder",
            r#"{"outTradeNo":"T1001","amount":"9"}"#,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let l = h.ok("GET", "/api/mer/refund/list?page=1&size=10", "").await;
    assert_eq!(l["count"], 1);
    shape(&l["list"][0], refund_fields);

    // withdraw apply → withdrawId; recorded as a request
    let w = h
        .ok("POST", "/api/mer/withdraw/apply", &format!(
            r#"{{"chainId":56,"currencyId":{},"withdrawAddress":"0xcold","withdrawAmount":"5","outTradeNo":"W1"}}"#,
            d["currencyId"]
        ))
        .await;
    shape(&w, &[("withdrawId", "int")]);
    // A notify URL that can never be called is refused, naming it, with nothing written.
    let (s, v) = h
        .call(
            "POST",
            "/api/mer/withdraw/apply",
            r#"{"chainId":56,"currencyId":2,"withdrawAddress":"0xcold","withdrawAmount":"1","outTradeNo":"W2","notifyUrl":"abc"}"#,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["description"].as_str().unwrap().contains("notifyUrl"),
        "{v}"
    );
    let (items, _) = h
        .engine
        .list_payouts(
            &order.merchant_id,
            PayoutQuery {
                kind: Some(coffer_core::PayoutKind::Withdrawal),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].amount, Some(BaseUnits::new(5_000_000)));
    assert_eq!(items[0].reference.as_deref(), Some("W1"));
    let (s, _) = h
        .call(
            "POST",
            "/api/mer/withdraw/apply",
            r#"{"chainId":56,"currencyId":1,"withdrawAddress":"0xa,0xb","withdrawAmount":"1,2"}"#,
        )
        .await;
    assert_eq!(s, 400);

    // no recharge yet: an empty page
    assert_eq!(h.ok("GET", "/api/mer/recharge/list", "").await["count"], 0);
    // manual notify: no callback was sent yet
    let (s, _) = h
        .call("GET", "/api/mer/payment/notify?outTradeNo=T1001", "")
        .await;
    assert_eq!(s, 404);
}

/// Recharge users (`/user/create`, `/user/detail`, `/user/list`) with the vendor's documented
/// examples: idempotent creation, one address per chain from the wallet's index counter shared
/// with orders, lookups by `userId` and `UUID`, paging and filters, other merchants' users
/// invisible, bad input refused with nothing written.
async fn users_endpoints(db: &TestDb) {
    let h = start(db).await;
    let address = |i: u32| format!("0xab{i:038x}");

    // documented example: body {"uuid":"USER10001"}, data = userId (int)
    let data = h
        .ok("POST", "/api/mer/user/create", r#"{"uuid":"USER10001"}"#)
        .await;
    let first = data
        .as_i64()
        .unwrap_or_else(|| panic!("userId is not an int: {data}"));
    // the same uuid again: the same user, nothing new
    let again = h
        .ok("POST", "/api/mer/user/create", r#"{"uuid":"USER10001"}"#)
        .await;
    assert_eq!(again.as_i64(), Some(first));
    let second = h
        .ok("POST", "/api/mer/user/create", r#"{"uuid":"USER10002"}"#)
        .await
        .as_i64()
        .unwrap();
    assert_ne!(first, second);

    // detail by userId: every documented field with its type
    let d = h
        .ok("GET", &format!("/api/mer/user/detail?userId={first}"), "")
        .await;
    shape(
        &d,
        &[
            ("userId", "int"),
            ("uuid", "string"),
            ("createTime", "string"),
            ("userWallet", "array"),
            ("userType", "int"),
        ],
    );
    assert_eq!(d["userId"], first);
    assert_eq!(d["uuid"], "USER10001");
    assert_eq!(d["userType"], 0);
    assert_eq!(d["createTime"].as_str().unwrap().len(), 19, "{d}");
    let wallets = d["userWallet"].as_array().unwrap();
    assert_eq!(wallets.len(), 1, "{d}");
    shape(
        &wallets[0],
        &[
            ("chainId", "int"),
            ("walletId", "int"),
            ("walletAddress", "string"),
        ],
    );
    assert_eq!(wallets[0]["chainId"], 56);
    assert_eq!(wallets[0]["walletId"], 0);
    assert_eq!(wallets[0]["walletAddress"], address(0).as_str());

    // detail by UUID (the vendor's spelling), with the chain filter
    let d = h
        .ok("GET", "/api/mer/user/detail?UUID=USER10002&chainId=56", "")
        .await;
    assert_eq!(d["userId"], second);
    assert_eq!(d["userWallet"][0]["walletAddress"], address(1).as_str());
    // both given: both must match
    let (s, v) = h
        .call(
            "GET",
            &format!("/api/mer/user/detail?userId={first}&UUID=USER10002"),
            "",
        )
        .await;
    assert_eq!((s, v["code"].clone()), (404, json!(404)), "{v}");

    // a payment order takes the next index: users and orders share the counter
    let order = h
        .ok("POST", "/api/mer/payment/createPaymentOrder", CREATE)
        .await;
    let orders = h
        .engine
        .list_orders(&OrderQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(orders.len(), 1, "{order}");
    assert_eq!(
        orders[0].target.as_ref().unwrap().address,
        address(2),
        "{order}"
    );

    // list: newest first, paging, filters
    let l = h.ok("GET", "/api/mer/user/list?page=1&size=1", "").await;
    shape(
        &l,
        &[
            ("count", "int"),
            ("page", "int"),
            ("size", "int"),
            ("list", "array"),
        ],
    );
    assert_eq!(l["count"], 2);
    assert_eq!((l["page"].clone(), l["size"].clone()), (json!(1), json!(1)));
    assert_eq!(l["list"].as_array().unwrap().len(), 1);
    assert_eq!(l["list"][0]["uuid"], "USER10002");
    let l = h.ok("GET", "/api/mer/user/list?page=2&size=1", "").await;
    assert_eq!(l["list"][0]["uuid"], "USER10001");
    assert_eq!(
        l["list"][0]["userWallet"][0]["walletAddress"],
        address(0).as_str()
    );
    let l = h.ok("GET", "/api/mer/user/list?UUID=USER10001", "").await;
    assert_eq!(l["count"], 1);
    assert_eq!(l["list"][0]["userId"], first);
    let l = h
        .ok(
            "GET",
            &format!("/api/mer/user/list?userId={second}&chainId=56"),
            "",
        )
        .await;
    assert_eq!(l["count"], 1);
    assert_eq!(l["list"][0]["uuid"], "USER10002");
    let l = h.ok("GET", "/api/mer/user/list?userType=1", "").await;
    assert_eq!(l["count"], 0);
    assert_eq!(l["list"], json!([]));
    let l = h.ok("GET", "/api/mer/user/list?userType=0", "").await;
    assert_eq!(l["count"], 2);

    // bad input: the vendor's 400 naming the field, nothing written
    for (method, path, body, field) in [
        ("POST", "/api/mer/user/create", "{}", "uuid"),
        ("POST", "/api/mer/user/create", r#"{"uuid":"  "}"#, "uuid"),
        ("POST", "/api/mer/user/create", "not json", "body"),
        ("GET", "/api/mer/user/detail", "", "userId"),
        ("GET", "/api/mer/user/detail?userId=x", "", "userId"),
        (
            "GET",
            "/api/mer/user/detail?userId=1&chainId=7",
            "",
            "chainId",
        ),
        ("GET", "/api/mer/user/list?size=501", "", "size"),
        ("GET", "/api/mer/user/list?userType=2", "", "userType"),
    ] {
        let (s, v) = h.call(method, path, body).await;
        assert_eq!(s, 400, "{path} {body}: {v}");
        assert_eq!(v["code"], 400, "{v}");
        assert!(
            v["description"].as_str().unwrap().contains(field),
            "{path} {body}: {v}"
        );
    }
    let long = format!(r#"{{"uuid":"{}"}}"#, "u".repeat(65));
    let (s, v) = h.call("POST", "/api/mer/user/create", &long).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["description"].as_str().unwrap().contains("uuid"), "{v}");
    let l = h.ok("GET", "/api/mer/user/list", "").await;
    assert_eq!(l["count"], 2);
    let (s, _) = h
        .call("GET", "/api/mer/user/detail?userId=999999", "")
        .await;
    assert_eq!(s, 404);

    // another merchant sees none of these users and numbers its own independently
    let (other, o) = h.other_merchant().await;
    let (s, _) = o
        .call("GET", &format!("/api/mer/user/detail?userId={first}"), "")
        .await;
    assert_eq!(s, 404);
    let (s, _) = o
        .call("GET", "/api/mer/user/detail?UUID=USER10001", "")
        .await;
    assert_eq!(s, 404);
    assert_eq!(o.ok("GET", "/api/mer/user/list", "").await["count"], 0);
    // no wallet yet: a clear 400, no user
    let (s, v) = o
        .call("POST", "/api/mer/user/create", r#"{"uuid":"USER10001"}"#)
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["description"].as_str().unwrap().contains("wallet"), "{v}");
    h.engine.set_wallet(&other.id, "bsc", "cd").await.unwrap();
    let theirs = o
        .ok("POST", "/api/mer/user/create", r#"{"uuid":"USER10001"}"#)
        .await
        .as_i64()
        .unwrap();
    assert_ne!(theirs, first);
    let d = o.ok("GET", "/api/mer/user/detail?UUID=USER10001", "").await;
    assert_eq!(
        d["userWallet"][0]["walletAddress"],
        format!("0xcd{:038x}", 0).as_str()
    );
    // the first merchant's user is unchanged
    let d = h.ok("GET", "/api/mer/user/detail?UUID=USER10001", "").await;
    assert_eq!(d["userId"], first);
}

const RECHARGE_FIELDS: &[(&str, &str)] = &[
    ("chainId", "int"),
    ("rechargeId", "int"),
    ("userId", "int"),
    ("uuid", "string"),
    ("currencyId", "int"),
    ("rechargeAmount", "intstr"),
    ("rechargeStatus", "int"),
    ("transferHash", "string"),
    ("walletId", "int"),
    ("walletAddress", "string"),
    ("fromAddress", "string"),
    ("createTime", "string"),
    ("confirmTime", "string"),
];

/// Recharges (`/recharge/list`, `/recharge/detail`, `/recharge/notify`): deposits the watcher
/// reports for a recharge user's address, field by field, pending then successful, filters,
/// another merchant's invisible, bad parameters refused.
async fn recharge_endpoints(db: &TestDb) {
    let h = start(db).await;
    let user = h
        .ok("POST", "/api/mer/user/create", r#"{"uuid":"USER7"}"#)
        .await
        .as_i64()
        .unwrap();
    let wallet = h
        .ok("GET", &format!("/api/mer/user/detail?userId={user}"), "")
        .await["userWallet"][0]
        .clone();
    let address = wallet["walletAddress"].as_str().unwrap().to_owned();
    let transfer = ObservedTransfer {
        index: 3,
        from: Some("0xpayer".into()),
        ..fixtures::mined(
            AssetId::from_str("bsc:USDT").unwrap(),
            address.clone(),
            BaseUnits::new(12_340_000),
            "0xdep1",
            100,
            time::OffsetDateTime::now_utc(),
        )
    };
    // 2 confirmations required: first seen pending (status 1).
    let merchant = db.store.list_merchants().await.unwrap()[0].id.clone();
    h.engine
        .set_chain_confirmations(&merchant, "bsc", Some(2))
        .await
        .unwrap();
    h.engine
        .apply_chain_batch(&fixtures::batch("bsc", vec![transfer], 100))
        .await
        .unwrap();
    let l = h
        .ok("GET", "/api/mer/recharge/list?page=1&size=10", "")
        .await;
    assert_eq!(l["count"], 1);
    assert_eq!(
        (l["page"].clone(), l["size"].clone()),
        (json!(1), json!(10))
    );
    let r = l["list"][0].clone();
    shape(&r, RECHARGE_FIELDS);
    assert_eq!(r["rechargeStatus"], 1, "pending");
    assert_eq!(r["confirmTime"], "");
    assert_eq!(r["chainId"], 56);
    assert_eq!(r["userId"], user);
    assert_eq!(r["uuid"], "USER7");
    assert_eq!(r["rechargeAmount"], "12340000", "integer minor units");
    assert_eq!(r["transferHash"], "0xdep1");
    assert_eq!(r["walletAddress"], address.as_str());
    assert_eq!(r["walletId"], wallet["walletId"]);
    assert_eq!(r["fromAddress"], "0xpayer");
    let currencies = h
        .ok("GET", "/api/mer/conf/list/currency?chainId=56", "")
        .await;
    let usdt = currencies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["symbol"] == "USDT")
        .unwrap()
        .clone();
    assert_eq!(r["currencyId"], usdt["currencyId"]);
    // One block deeper: success (status 0) with a confirmation time.
    h.engine
        .apply_chain_batch(&fixtures::batch("bsc", vec![], 101))
        .await
        .unwrap();
    let id = r["rechargeId"].as_i64().unwrap();
    let d = h
        .ok(
            "GET",
            &format!("/api/mer/recharge/detail?rechargeId={id}"),
            "",
        )
        .await;
    shape(&d, RECHARGE_FIELDS);
    assert_eq!(d["rechargeStatus"], 0);
    assert_ne!(d["confirmTime"], "");
    // Filters: by user, uuid, chain and status.
    for (q, n) in [
        (format!("userId={user}"), 1),
        ("UUID=USER7".to_owned(), 1),
        ("UUID=nobody".to_owned(), 0),
        ("chainId=56".to_owned(), 1),
        ("rechargeStatus=0".to_owned(), 1),
        ("rechargeStatus=1".to_owned(), 0),
    ] {
        let l = h
            .ok("GET", &format!("/api/mer/recharge/list?{q}"), "")
            .await;
        assert_eq!(l["count"], n, "{q}");
    }
    // Bad parameters: the vendor's 400 naming the field; unknown: 404.
    for (q, field) in [
        ("/api/mer/recharge/list?rechargeStatus=7", "rechargeStatus"),
        ("/api/mer/recharge/list?chainId=999", "chainId"),
        ("/api/mer/recharge/detail", "rechargeId"),
        ("/api/mer/recharge/detail?rechargeId=x", "rechargeId"),
    ] {
        let (s, v) = h.call("GET", q, "").await;
        assert_eq!(s, 400, "{q}: {v}");
        assert!(v["description"].as_str().unwrap().contains(field), "{v}");
    }
    let (s, v) = h
        .call(
            "GET",
            &format!("/api/mer/recharge/detail?rechargeId={}", id + 1000),
            "",
        )
        .await;
    assert_eq!((s, v["code"].clone()), (404, json!(404)));
    // No callback was sent (no recharge URL set): notify has nothing to re-send.
    let (s, _) = h
        .call(
            "GET",
            &format!("/api/mer/recharge/notify?rechargeId={id}"),
            "",
        )
        .await;
    assert_eq!(s, 404);

    // Another merchant sees none of it.
    let (_, o) = h.other_merchant().await;
    assert_eq!(o.ok("GET", "/api/mer/recharge/list", "").await["count"], 0);
    let (s, _) = o
        .call(
            "GET",
            &format!("/api/mer/recharge/detail?rechargeId={id}"),
            "",
        )
        .await;
    assert_eq!(s, 404);
}

/// `payment/list` filters, counts and pages in the database: every matching order (not a
/// window of the newest), `transferHash` in the shop's letter case, an unknown `chainId` or
/// `paymentStatus` value matching nothing, another merchant's orders never.
async fn payment_list_filters_and_pages(db: &TestDb) {
    let h = start(db).await;
    let mut addresses = Vec::new();
    for n in 1..=5 {
        let body = CREATE.replace("T1001", &format!("L{n}"));
        let data = h
            .ok("POST", "/api/mer/payment/createPaymentOrder", &body)
            .await;
        addresses.push(data["userWalletAddress"].as_str().unwrap().to_owned());
    }
    // L2 is paid in full (10.5 USDT) by a transaction the shop looks up in capitals.
    let transfer = fixtures::mined(
        AssetId::from_str("bsc:USDT").unwrap(),
        addresses[1].clone(),
        BaseUnits::new(10_500_000),
        "0xabc123",
        100,
        time::OffsetDateTime::now_utc(),
    );
    h.engine
        .apply_chain_batch(&fixtures::batch("bsc", vec![transfer], 110))
        .await
        .unwrap();
    let (other_merchant, other) = h.other_merchant().await;
    h.engine
        .set_wallet(&other_merchant.id, "bsc", "cd")
        .await
        .unwrap();
    other
        .ok("POST", "/api/mer/payment/createPaymentOrder", CREATE)
        .await;
    let list = |query: &str| {
        let h = &h;
        let path = format!("/api/mer/payment/list?{query}");
        async move {
            let l = h.ok("GET", &path, "").await;
            let nos: Vec<String> = l["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["outTradeNo"].as_str().unwrap().to_owned())
                .collect();
            (l["count"].as_u64().unwrap(), nos)
        }
    };
    // Newest first, pages of two, the count of all.
    assert_eq!(list("size=2").await, (5, vec!["L5".into(), "L4".into()]));
    assert_eq!(
        list("page=2&size=2").await,
        (5, vec!["L3".into(), "L2".into()])
    );
    assert_eq!(list("page=3&size=2").await, (5, vec!["L1".into()]));
    assert_eq!(list("page=4&size=2").await, (5, vec![]));
    // Filters.
    assert_eq!(list("paymentStatus=0").await, (1, vec!["L2".into()]));
    assert_eq!(list("paymentStatus=1&size=3").await.0, 4);
    assert_eq!(list("paymentStatus=9").await.0, 0);
    assert_eq!(list("transferHash=0xABC123").await, (1, vec!["L2".into()]));
    assert_eq!(list("transferHash=0xabc124").await.0, 0);
    assert_eq!(list("chainId=56").await.0, 5);
    assert_eq!(list("chainId=1").await.0, 0);
    let future = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    assert_eq!(list(&format!("startTime={future}")).await.0, 0);
    assert_eq!(list(&format!("endTime={future}")).await.0, 5);
    // Blank parameters are not given (PHP clients send them so).
    assert_eq!(list("chainId=&paymentStatus=&page=").await.0, 5);
    let (s, v) = h.call("GET", "/api/mer/payment/list?chainId=x", "").await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["description"].as_str().unwrap().contains("chainId"),
        "{v}"
    );
    assert_eq!(
        other.ok("GET", "/api/mer/payment/list", "").await["count"],
        1
    );
}

both_backends! {
    payment_list => payment_list_filters_and_pages;
    recharges => recharge_endpoints;
    users => users_endpoints;
    payments => payments_endpoints;
    auth => auth_failures_write_nothing;
    refunds => refunds_and_withdrawals;
}
