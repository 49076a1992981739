//! Shared fixtures: a real database, the real engine (EVM deriver over the test xpub), the
//! dialect served over loopback HTTP, and signatures computed independently by python3.

#![allow(dead_code)]

use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;

use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, MerchantId,
    Network, Price,
};
use coffer_dialect::{Dialect, DialectDeps};
use coffer_dialect_aurpay::AurpayDialect;
use coffer_engine::{
    AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewDialectCredential, SystemClock,
};
use coffer_secrets::MasterKey;
use coffer_testkit::TestDb;
use rust_decimal::Decimal;

/// The account xpub (m/44'/60'/0') of the test mnemonic "test test … junk".
pub const XPUB: &str = "xpub6BemYiVNp19ZzUSZng6uUnx3dQm5eRwcjTjZh2wBRosHnSF4QNykc8MvSiJcUseh3sA1WL82iquWY2bRBv8Qqsn8ugJK63aLXKyPosCnGUv";
pub const PUBLIC_URL: &str = "https://pay.example";

pub fn registry(chain_id: &str, chain_name: &str, usdt_contract: &str) -> AssetRegistry {
    let chain = Chain {
        id: ChainId::parse(chain_id).unwrap(),
        kind: ChainKind::Evm,
        network: Network::Regtest,
        name: chain_name.into(),
        confirmations: 1,
        evm_chain_id: Some(31337),
    };
    let a = |symbol: &str, kind: AssetKind, decimals: u8, stable: bool| Asset {
        id: AssetId::from_str(&format!("{chain_id}:{symbol}")).unwrap(),
        kind,
        decimals: Decimals::new(decimals).unwrap(),
        display_decimals: 6,
        usd_stablecoin: stable,
    };
    AssetRegistry::new(
        vec![chain],
        vec![
            a("ETH", AssetKind::Native, 18, false),
            a(
                "USDT",
                AssetKind::Token {
                    contract: usdt_contract.into(),
                },
                6,
                true,
            ),
        ],
    )
    .unwrap()
}

pub fn engine(db: &TestDb, assets: AssetRegistry) -> Engine {
    engine_at(db, assets, Arc::new(SystemClock))
}

/// [`engine`] on `clock`.
pub fn engine_at(
    db: &TestDb,
    assets: AssetRegistry,
    clock: Arc<dyn coffer_engine::Clock>,
) -> Engine {
    let rates = FixedRates::new()
        .with("ETH", "USD", Price::new(Decimal::from(2000)).unwrap())
        .with(
            "USDT",
            "USD",
            Price::new(Decimal::from_str("0.9998").unwrap()).unwrap(),
        );
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(rates),
        assets: Arc::new(assets),
        methods: Methods::default().with(ChainKind::Evm, Arc::new(coffer_chain_evm::EvmMethod)),
        clock,
        settings: Arc::new(EngineSettings {
            public_url: PUBLIC_URL.into(),
            ..EngineSettings::default()
        }),
    })
}

pub struct Env {
    pub engine: Engine,
    /// The test's database, for assertions.
    pub store: Arc<dyn coffer_store::Store>,
    pub master: MasterKey,
    pub base: String,
    pub client: reqwest::Client,
    pub merchant: MerchantId,
    pub cred: NewDialectCredential,
}

/// A merchant with an Aurpay credential and a wallet on `chain_id`, and the dialect served on
/// a loopback port.
pub async fn serve(db: &TestDb, engine: Engine, chain_id: &str) -> Env {
    let master = MasterKey::from_bytes([11; 32]);
    let (merchant, cred) = engine
        .create_merchant_with_dialect_credential(
            &master,
            "Aurpay shop",
            &coffer_dialect_aurpay::CREDENTIAL,
        )
        .await
        .unwrap();
    engine
        .set_wallet(&merchant.id, chain_id, XPUB)
        .await
        .unwrap();
    let app: axum::Router =
        AurpayDialect.routes(&DialectDeps::new(engine.clone(), Arc::new(master.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Env {
        engine,
        store: db.store.clone(),
        master,
        base: format!("http://{addr}"),
        client: coffer_testkit::http_client(),
        merchant: merchant.id,
        cred,
    }
}

/// base64 HMAC-SHA256, computed by python3's hmac (independent of the Rust code).
pub fn py_hmac_b64(secret: &str, message: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,base64,sys; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).digest()).decode())",
            secret,
            message,
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

/// Lowercase hex MD5, computed by python3's hashlib.
pub fn py_md5(body: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.md5(sys.argv[1].encode()).hexdigest())",
            body,
        ])
        .output()
        .expect("python3");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `Date` as the JS clients send it (`toISOString()`).
pub fn iso_now(offset_secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The signature headers a client computes for `METHOD signed_path` with `body`.
pub fn signed_headers(
    env: &Env,
    method: &str,
    signed_path: &str,
    body: &str,
    date: &str,
) -> Vec<(&'static str, String)> {
    let token = env.cred.token.clone().unwrap();
    let mut headers = vec![
        ("API-Token", token),
        ("Algorithm", "HMAC-SHA256".into()),
        ("Date", date.to_owned()),
    ];
    // One python3 run computes Body-MD5 and the signature, as the public JS client does.
    let script = r#"
import hmac, hashlib, base64, sys
secret, method, path, date, body = sys.argv[1:6]
origin = "HMAC-SHA256 | %s | %s %s" % (date, method, path)
md5 = ""
if body:
    md5 = hashlib.md5(body.encode()).hexdigest()
    origin += " | " + md5
sig = base64.b64encode(hmac.new(secret.encode(), origin.encode(), hashlib.sha256).digest()).decode()
print(md5)
print(sig)
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &env.cred.secret,
            method,
            signed_path,
            date,
            body,
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let md5 = lines.next().unwrap_or_default().to_owned();
    let sig = lines.next().unwrap().to_owned();
    if !body.is_empty() {
        headers.push(("Body-MD5", md5));
    }
    headers.push(("Signature", sig));
    headers
}

pub async fn send(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, serde_json::Value) {
    let mut req = env
        .client
        .request(method, format!("{}{path}", env.base))
        .header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if !body.is_empty() {
        req = req.body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

/// Send with API-Key mode.
pub async fn with_key(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    send(
        env,
        method,
        path,
        &[("API-Key", env.cred.key.clone())],
        body,
    )
    .await
}

/// Send in signature mode, signing `path` exactly as sent.
pub async fn with_signature(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let headers = signed_headers(env, method.as_str(), path, body, &iso_now(0));
    send(env, method, path, &headers, body).await
}

/// The success envelope: `code` 0, `message` "ok", `result` true; returns `data`.
pub fn data_of(status: u16, body: &serde_json::Value) -> serde_json::Value {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], serde_json::json!(0), "{body}");
    assert!(body["code"].is_i64());
    assert_eq!(body["message"], "ok");
    assert_eq!(body["result"], serde_json::json!(true));
    body["data"].clone()
}

/// The error envelope with the given code; returns the message.
pub fn error_of(status: u16, body: &serde_json::Value, code: u16) -> String {
    assert_eq!(status, code, "{body}");
    assert_eq!(body["code"], serde_json::json!(code), "{body}");
    assert_eq!(body["result"], serde_json::json!(false), "{body}");
    assert!(body["data"].is_null(), "{body}");
    let message = body["message"].as_str().unwrap().to_owned();
    assert!(!message.is_empty());
    message
}
