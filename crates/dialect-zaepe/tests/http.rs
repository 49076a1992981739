//! The Zaepe API over real HTTP on loopback, on SQLite and PostgreSQL: the documented examples
//! field by field; signatures computed independently (Python's `hmac`); wrong signature, stale
//! timestamp, replayed nonce and missing header answered in the vendor's error shape with
//! nothing written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use coffer_dialect::{Dialect, DialectDeps};
use coffer_engine::Engine;
use coffer_secrets::MasterKey;
use coffer_store::OrderQuery;
use coffer_testkit::{TestDb, both_backends, fixtures};
use serde_json::Value;

struct Harness {
    engine: Engine,
    merchant: coffer_core::MerchantId,
    base: String,
    key: String,
    secret: String,
    http: reqwest::Client,
}

async fn start(db: &TestDb) -> Harness {
    start_on(fixtures::bsc_shop_engine_now(db), "bsc").await
}

/// The harness over `engine`, the merchant's wallet on `chain`.
async fn start_on(engine: Engine, chain: &str) -> Harness {
    let master = MasterKey::from_bytes([9; 32]);
    let (m, cred) = engine
        .create_merchant_with_dialect_credential(
            &master,
            "Z Shop",
            &coffer_dialect_zaepe::CREDENTIAL,
        )
        .await
        .unwrap();
    engine.set_wallet(&m.id, chain, "cd").await.unwrap();
    let app = coffer_dialect_zaepe::ZaepeDialect
        .routes(&DialectDeps::new(engine.clone(), Arc::new(master)));
    Harness {
        engine,
        merchant: m.id,
        base: fixtures::serve(app).await,
        key: cred.key,
        secret: cred.secret,
        http: coffer_testkit::http_client(),
    }
}

/// Hex (or base64) HMAC-SHA256 over body + "\n" + timestamp + "\n" + nonce, by Python.
fn py_sign(secret: &str, body: &str, ts: &str, nonce: &str, encoding: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import base64,hashlib,hmac,sys; d=hmac.new(sys.argv[1].encode(), (sys.argv[2]+'\\n'+sys.argv[3]+'\\n'+sys.argv[4]).encode(), hashlib.sha256).digest(); print(d.hex() if sys.argv[5]=='hex' else base64.b64encode(d).decode())",
            secret,
            body,
            ts,
            nonce,
            encoding,
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn nonce() -> String {
    coffer_testkit::random_suffix()
}

impl Harness {
    async fn send(&self, path: &str, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    fn headers(
        &self,
        body: &str,
        ts: i64,
        nonce: &str,
        encoding: &str,
    ) -> Vec<(&'static str, String)> {
        let ts = ts.to_string();
        vec![
            ("X-API-Key", self.key.clone()),
            ("X-Timestamp", ts.clone()),
            ("X-Nonce", nonce.to_owned()),
            (
                "X-Signature",
                py_sign(&self.secret, body, &ts, nonce, encoding),
            ),
        ]
    }

    async fn ok(&self, path: &str, body: &str) -> Value {
        let h = self.headers(body, now(), &nonce(), "hex");
        let (s, v) = self.send(path, body, &h).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["code"], 10000);
        assert_eq!(v["message"], "OK");
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
            other => panic!("unknown kind {other}"),
        };
        assert!(ok, "{name} should be {kind}: {f}");
    }
    assert_eq!(obj.len(), fields.len(), "unexpected fields in {v}");
}

const CREATE: &str = r#"{
  "order_no": "Pay1678886400000",
  "currency": "USDT",
  "amount": "0.1",
  "chain_type": "BSC",
  "product_name": "Test product name",
  "notify_url": "http://your.domain/notify",
  "redirect_url": "http://your.domain/redirect",
  "meta": "id:123"
}"#;

const UNPAID: &[(&str, &str)] = &[
    ("id", "string"),
    ("order_no", "string"),
    ("currency", "string"),
    ("amount", "string"),
    ("chain_type", "string"),
    ("order_amount", "string"),
    ("product_name", "string"),
    ("cancel_time", "int"),
    ("meta", "string"),
    ("state", "int"),
    ("pay_url", "string"),
];

async fn create_and_info(db: &TestDb) {
    let h = start(db).await;
    let d = h.ok("/v1/payment", CREATE).await;
    shape(
        &d,
        &[
            ("id", "string"),
            ("order_no", "string"),
            ("currency", "string"),
            ("amount", "string"),
            ("order_amount", "string"),
            ("cancel_time", "int"),
            ("state", "int"),
            ("pay_url", "string"),
        ],
    );
    assert_eq!(d["order_no"], "Pay1678886400000");
    assert_eq!(d["amount"], "0.1");
    assert_eq!(d["order_amount"], "0.1");
    assert_eq!(d["state"], 1);
    let cancel = d["cancel_time"].as_i64().unwrap() - now();
    assert!((1700..=1800).contains(&cancel), "{cancel}");
    assert!(d["pay_url"].as_str().unwrap().contains("/pay/"));

    // info by merchant number and by system id; unpaid shape
    let i = h
        .ok("/v1/payment/info", r#"{"order_no":"Pay1678886400000"}"#)
        .await;
    shape(&i, UNPAID);
    assert_eq!(i["meta"], "id:123");
    assert_eq!(i["chain_type"], "bsc");
    let by_id = h
        .ok(
            "/v1/payment/info",
            &format!(r#"{{"order_no":"{}"}}"#, d["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(by_id["order_no"], "Pay1678886400000");

    // pay it: the paid shape
    let order = h
        .engine
        .list_orders(&OrderQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let target = order.target.clone().unwrap();
    let at = time::OffsetDateTime::now_utc();
    h.engine
        .apply_chain_batch(&fixtures::batch(
            "bsc",
            vec![fixtures::mined(
                target.asset.clone(),
                target.address.clone(),
                target.amount_due,
                "0xabc",
                5,
                at,
            )],
            5,
        ))
        .await
        .unwrap();
    let paid = h
        .ok("/v1/payment/info", r#"{"order_no":"Pay1678886400000"}"#)
        .await;
    let mut fields: Vec<(&str, &str)> = UNPAID
        .iter()
        .copied()
        .filter(|(n, _)| *n != "pay_url")
        .collect();
    fields.extend([
        ("pay_amount", "string"),
        ("fee", "string"),
        ("txid", "string"),
        ("pay_time", "int"),
    ]);
    shape(&paid, &fields);
    assert_eq!(paid["state"], 2);
    assert_eq!(paid["pay_amount"], "0.1");
    assert_eq!(paid["txid"], "0xabc");

    // bad parameters: 10003 naming the field, nothing written
    let bad = CREATE.replace("Pay1678886400000", "short");
    let h2 = h.headers(&bad, now(), &nonce(), "hex");
    let (s, v) = h.send("/v1/payment", &bad, &h2).await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], 10003);
    assert!(v["message"].as_str().unwrap().contains("`order_no`"), "{v}");
    let bad = CREATE
        .replace("BSC", "tron")
        .replace("Pay1678886400000", "Pay1678886400001");
    let h2 = h.headers(&bad, now(), &nonce(), "hex");
    let (s, v) = h.send("/v1/payment", &bad, &h2).await;
    assert_eq!((s, v["code"].as_i64()), (400, Some(10003)));
    assert_eq!(h.orders().await, 1);
    let (s, v) = {
        let b = r#"{"order_no":"NoSuchOrder1"}"#;
        let hh = h.headers(b, now(), &nonce(), "hex");
        h.send("/v1/payment/info", b, &hh).await
    };
    assert_eq!((s, v["code"].as_i64()), (404, Some(10004)));
}

async fn auth_failures_write_nothing(db: &TestDb) {
    let h = start(db).await;
    let check = |s: u16, v: &Value| {
        assert_eq!(s, 401, "{v}");
        assert!(v["code"].is_u64() && v["message"].is_string(), "{v}");
        assert!(v.get("data").is_none());
    };
    // wrong signature
    let mut hs = h.headers(CREATE, now(), &nonce(), "hex");
    hs[3].1 = py_sign("wrong", CREATE, &hs[1].1, &hs[2].1, "hex");
    let (s, v) = h.send("/v1/payment", CREATE, &hs).await;
    check(s, &v);
    // the body changed after signing
    let hs = h.headers(CREATE, now(), &nonce(), "hex");
    let (s, v) = h
        .send("/v1/payment", &CREATE.replace("0.1", "0.2"), &hs)
        .await;
    check(s, &v);
    // stale timestamp
    let hs = h.headers(CREATE, now() - 400, &nonce(), "hex");
    let (s, v) = h.send("/v1/payment", CREATE, &hs).await;
    check(s, &v);
    // missing header
    let mut hs = h.headers(CREATE, now(), &nonce(), "hex");
    hs.remove(2);
    let (s, v) = h.send("/v1/payment", CREATE, &hs).await;
    check(s, &v);
    assert_eq!(h.orders().await, 0, "nothing written");

    // base64 is accepted too; the same nonce again is a replay, refused, nothing written
    let n = nonce();
    let hs = h.headers(CREATE, now(), &n, "base64");
    let (s, v) = h.send("/v1/payment", CREATE, &hs).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.orders().await, 1);
    let other = CREATE.replace("Pay1678886400000", "Pay1678886400009");
    let hs = h.headers(&other, now(), &n, "hex");
    let (s, v) = h.send("/v1/payment", &other, &hs).await;
    check(s, &v);
    assert_eq!(v["code"], 10002);
    assert_eq!(h.orders().await, 1, "a replay writes nothing");
}

/// The operator named its BNB Smart Chain `binance` (EVM chain id 56): the vendor's example
/// `"chain_type": "BSC"` (and `bsc`, `Bsc`) still means it; an unconfigured name does not.
async fn vendor_chain_names(db: &TestDb) {
    use coffer_core::AssetKind;
    let chain = coffer_core::Chain {
        id: coffer_core::ChainId::parse("binance").unwrap(),
        ..fixtures::bsc(1)
    };
    let usdt = fixtures::asset(
        "binance",
        "USDT",
        fixtures::token("0x55d398326f99059fF775485246999027B3197955"),
        6,
        true,
    );
    let assets = coffer_engine::AssetRegistry::new(
        vec![chain],
        vec![
            fixtures::asset("binance", "BNB", AssetKind::Native, 6, false),
            usdt,
        ],
    )
    .unwrap();
    let rates = coffer_core::FixedRates::new().with(
        "USDT",
        "USD",
        coffer_core::Price::new(rust_decimal::Decimal::ONE).unwrap(),
    );
    let engine = fixtures::engine(
        db,
        assets,
        rates,
        fixtures::TestDeriver::evm_like(),
        Arc::new(coffer_engine::SystemClock),
    );
    let h = start_on(engine, "binance").await;
    for (n, chain_type) in ["BSC", "bsc", "Bsc"].into_iter().enumerate() {
        let body = CREATE
            .replace("Pay1678886400000", &format!("Pay167888640000{n}"))
            .replace("\"BSC\"", &format!("\"{chain_type}\""))
            .replace("\"0.1\"", "\"0.10\"");
        let d = h.ok("/v1/payment", &body).await;
        assert_eq!(d["amount"], "0.10", "echoed as sent");
        let info = h
            .ok(
                "/v1/payment/info",
                &format!(r#"{{"order_no":"{}"}}"#, d["id"].as_str().unwrap()),
            )
            .await;
        assert_eq!(info["amount"], "0.10", "echoed as sent");
        assert_eq!(
            info["chain_type"], "bsc",
            "the vendor's name, not Coffer's chain id"
        );
        let order = h
            .engine
            .order_by_no(&h.merchant, &format!("Pay167888640000{n}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.target.unwrap().asset.to_string(), "binance:USDT");
    }
    let body = CREATE.replace("\"BSC\"", "\"tron\"");
    let (status, v) = h
        .send(
            "/v1/payment",
            &body,
            &h.headers(&body, now(), &nonce(), "hex"),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["code"], 10003);
}

both_backends! {
    create_info => create_and_info;
    chain_names => vendor_chain_names;
    auth => auth_failures_write_nothing;
}
