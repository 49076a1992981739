//! End to end on a real anvil with the real `coffer` binary, per dialect: an order created
//! through Pay Protocol's and Zaepe's APIs, paid with a real USDT transfer, and the dialect's
//! callback received at a loopback receiver and verified the way a shop's plugin would
//! (signature recomputed with Python's `hmac`). The Pay Protocol receiver first answers `ok`,
//! which is not `success`, so the callback must come again. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::dialects::{B64, HEX, free_port, pp_request, python, unix_now, zaepe_post};
use common::{XPUB, sigkill as stop, wait_until};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use coffer_chain_evm::testtools::Anvil;
use coffer_chain_evm::testtools::devchain::{DevChain, PAYER};
use coffer_core::{ChainId, MerchantId};
use coffer_testkit::{TestDb, both_backends};
use coffer_webhooks::MasterKey;
use serde_json::Value;

const MASTER_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";

fn coffer(config: &Path, db: &TestDb) -> Command {
    let mut cmd = common::coffer(config, db);
    cmd.env("COFFER_MASTER_KEY", MASTER_HEX);
    cmd
}

fn config(dir: &Path, rpc: &str, usdt: &str, port: u16) -> std::path::PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\nlog_format = \"json\"\n\n[webhooks]\nallow_private = true\n\n[[chains]]\nid = \"bsc\"\nkind = \"evm\"\nnetwork = \"regtest\"\nchain_id = 31337\nrpc = [\"{rpc}\"]\nconfirmations = 1\npoll_interval = \"100ms\"\nnative = {{ symbol = \"ETH\", decimals = 18 }}\n[[chains.tokens]]\nsymbol = \"USDT\"\ncontract = \"{usdt}\"\ndecimals = 6\n"
        ),
    )
    .unwrap();
    path
}

fn spawn_serve(config: &Path, db: &TestDb) -> Child {
    common::spawn_serve(coffer(config, db))
}

type Calls = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// The shop: records every callback; Pay Protocol's first one is answered `ok`.
async fn receiver() -> (String, Calls, Calls) {
    let pp: Calls = Arc::default();
    let z: Calls = Arc::default();
    let (pp2, z2) = (pp.clone(), z.clone());
    let app = axum::Router::new()
        .route(
            "/pp/notify",
            axum::routing::post(move |h: HeaderMap, b: Bytes| {
                let calls = pp2.clone();
                async move {
                    let mut c = calls.lock().unwrap();
                    c.push((h, String::from_utf8(b.to_vec()).unwrap()));
                    if c.len() == 1 { "ok" } else { "success" }
                }
            }),
        )
        .route(
            "/z/notify",
            axum::routing::post(move |h: HeaderMap, b: Bytes| {
                let calls = z2.clone();
                async move {
                    calls
                        .lock()
                        .unwrap()
                        .push((h, String::from_utf8(b.to_vec()).unwrap()));
                    "ok"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), pp, z)
}

async fn pay_through_dialects(db: &TestDb) {
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let usdt_s = usdt.to_checksum(None);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), &anvil.url(), &usdt_s, port);
    let base = format!("http://127.0.0.1:{port}");

    let out = coffer(&cfg, db)
        .args(["merchant", "create", "--name", "Dialect shop", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let merchant: MerchantId = created["merchant_id"].as_str().unwrap().parse().unwrap();
    let out = coffer(&cfg, db)
        .args([
            "wallet",
            "set",
            "--merchant",
            merchant.as_str(),
            "--chain",
            "bsc",
            "--xpub",
            XPUB,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let engine = common::anvil_engine(db, "bsc", &usdt_s);
    let master = MasterKey::from_hex(MASTER_HEX).unwrap();
    let pp = engine
        .create_dialect_credential(&master, &merchant, &coffer_dialect_payprotocol::CREDENTIAL)
        .await
        .unwrap();
    let z = engine
        .create_dialect_credential(&master, &merchant, &coffer_dialect_zaepe::CREDENTIAL)
        .await
        .unwrap();

    let (shop, pp_calls, z_calls) = receiver().await;
    let mut serve = spawn_serve(&cfg, db);
    let http = coffer_testkit::http_client();
    wait_until("the server", Duration::from_secs(30), async || {
        http.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let chain_id = ChainId::parse("bsc").unwrap();
    wait_until(
        "the watcher's cursor",
        Duration::from_secs(30),
        async || db.store.chain_cursor(&chain_id).await.unwrap().is_some(),
    )
    .await;

    // Pay Protocol: create, signed like the vendor's plugin
    let pp_body = format!(
        r#"{{"chainId":31337,"description":"E2E","outTradeNo":"PP-E2E-1","isLegalTender":0,"quoteCurrencySymbol":"USDT","quoteAmount":"12.5","notifyUrl":"{shop}/pp/notify"}}"#
    );
    let pp_call = async |method: &str, path: &str, body: &str| -> Value {
        pp_request(&http, &base, &pp, method, path, body).await
    };
    let created = pp_call("POST", "/api/mer/payment/createPaymentOrder", &pp_body).await;
    let pp_address = created["userWalletAddress"].as_str().unwrap().to_owned();

    // Zaepe: create
    let z_body = format!(
        r#"{{"order_no":"ZaepeE2E0001","currency":"USDT","amount":"3.25","chain_type":"bsc","notify_url":"{shop}/z/notify"}}"#
    );
    let v = zaepe_post(&http, &base, &z, "/v1/payment", &z_body).await;
    assert_eq!(v["code"], 10000, "{v}");
    assert_eq!(v["data"]["order_amount"], "3.25");
    // the buyer's page shows the address
    let z_order = db
        .store
        .get_order_by_no(&merchant, "ZaepeE2E0001")
        .await
        .unwrap()
        .unwrap();
    let z_address = z_order.target.as_ref().unwrap().address.clone();

    // the buyers pay with real token transfers
    chain
        .pay_token(usdt, &pp_address, 12_500_000)
        .await
        .unwrap();
    chain.pay_token(usdt, &z_address, 3_250_000).await.unwrap();
    chain.mine(2).await.unwrap();

    // Zaepe's callback, verified as a plugin would
    wait_until("the Zaepe callback", Duration::from_secs(60), async || {
        !z_calls.lock().unwrap().is_empty()
    })
    .await;
    let (h, body) = z_calls.lock().unwrap()[0].clone();
    let hv = |n: &str| h.get(n).unwrap().to_str().unwrap().to_owned();
    assert_eq!(hv("x-api-key"), z.key);
    let ts: i64 = hv("x-timestamp").parse().unwrap();
    assert!((unix_now() - ts).abs() <= 300);
    let expected = python(HEX, &[&z.secret, &body, &hv("x-timestamp"), &hv("x-nonce")]);
    assert_eq!(hv("x-signature"), expected, "Zaepe callback signature");
    let cb: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cb["order_no"], "ZaepeE2E0001");
    assert_eq!(cb["state"], 2);
    assert_eq!(cb["pay_amount"], "3.25");
    assert!(cb["txid"].as_str().unwrap().starts_with("0x"));

    // Pay Protocol's callback: answered `ok` first, so it comes again (15 s later)
    wait_until(
        "the Pay Protocol callback, retried",
        Duration::from_secs(60),
        async || pp_calls.lock().unwrap().len() >= 2,
    )
    .await;
    let calls = pp_calls.lock().unwrap().clone();
    for (h, body) in &calls {
        let hv = |n: &str| h.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(hv("x-pay-key"), pp.key);
        assert_eq!(hv("content-type"), "application/json");
        let ts = hv("x-pay-timestamp");
        assert!((unix_now() - ts.parse::<i64>().unwrap()).abs() <= 120);
        let expected = python(B64, &[&pp.secret, &format!("{ts}POST/pp/notify{body}")]);
        assert_eq!(
            hv("x-pay-sign"),
            expected,
            "Pay Protocol callback signature"
        );
        let cb: Value = serde_json::from_str(body).unwrap();
        assert_eq!(cb["outTradeNo"], "PP-E2E-1");
        assert_eq!(cb["paymentStatus"], 0);
        assert_eq!(cb["expectedAmount"], "12500000");
        assert_eq!(cb["settlementAmount"], "12500000");
        assert_eq!(
            cb["fromAddress"].as_str().unwrap().to_lowercase(),
            PAYER.to_lowercase()
        );
    }
    // like the vendor's plugin, re-query the order before trusting it
    let detail = pp_call("GET", "/api/mer/payment/detail?outTradeNo=PP-E2E-1", "").await;
    assert_eq!(detail["paymentStatus"], 0);
    assert_eq!(detail["userWalletAddress"].as_str().unwrap(), pp_address);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        pp_calls.lock().unwrap().len(),
        2,
        "no attempt after `success`"
    );

    // manual re-trigger: one more callback through the delivery log
    pp_call("GET", "/api/mer/payment/notify?outTradeNo=PP-E2E-1", "").await;
    wait_until(
        "the re-triggered callback",
        Duration::from_secs(30),
        async || pp_calls.lock().unwrap().len() >= 3,
    )
    .await;
    stop(&mut serve);
}

/// Pay Protocol recharge: a user created through the dialect while the server runs gets a
/// standing address the watcher picks up; real USDT sent to it twice is reported as two
/// recharges and each confirmed one is called back, signed, to the merchant's recharge URL
/// (set with the CLI, as the vendor's console would).
async fn recharge_through_pay_protocol(db: &TestDb) {
    let anvil = Anvil::start(&[]).unwrap();
    let chain = DevChain::new(&anvil.url()).unwrap();
    let usdt = chain.deploy_token("Tether USD", "USDT", 6).await.unwrap();
    let usdt_s = usdt.to_checksum(None);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), &anvil.url(), &usdt_s, port);
    let base = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let out = coffer(&cfg, db).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let created: Value = serde_json::from_str(&run(&[
        "merchant",
        "create",
        "--name",
        "Recharge shop",
        "--json",
    ]))
    .unwrap();
    let merchant: MerchantId = created["merchant_id"].as_str().unwrap().parse().unwrap();
    run(&[
        "wallet",
        "set",
        "--merchant",
        merchant.as_str(),
        "--chain",
        "bsc",
        "--xpub",
        XPUB,
    ]);
    let calls: Calls = Arc::default();
    let calls2 = calls.clone();
    let app = axum::Router::new().route(
        "/pp/recharge",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let calls = calls2.clone();
            async move {
                calls
                    .lock()
                    .unwrap()
                    .push((h, String::from_utf8(b.to_vec()).unwrap()));
                "success"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let bad = coffer(&cfg, db)
        .args([
            "merchant",
            "dialect",
            "--merchant",
            merchant.as_str(),
            "payprotocol.nope=x",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "an unknown setting is refused");
    run(&[
        "merchant",
        "dialect",
        "--merchant",
        merchant.as_str(),
        &format!("payprotocol.recharge_notify_url={shop}/pp/recharge"),
    ]);
    let engine = common::anvil_engine(db, "bsc", &usdt_s);
    let master = MasterKey::from_hex(MASTER_HEX).unwrap();
    let pp = engine
        .create_dialect_credential(&master, &merchant, &coffer_dialect_payprotocol::CREDENTIAL)
        .await
        .unwrap();

    let mut serve = spawn_serve(&cfg, db);
    let http = coffer_testkit::http_client();
    wait_until("the server", Duration::from_secs(30), async || {
        http.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let chain_id = ChainId::parse("bsc").unwrap();
    wait_until(
        "the watcher's cursor",
        Duration::from_secs(30),
        async || db.store.chain_cursor(&chain_id).await.unwrap().is_some(),
    )
    .await;
    let pp_call = async |method: &str, path: &str, body: &str| -> Value {
        pp_request(&http, &base, &pp, method, path, body).await
    };

    // The user is created after the watcher started: its address joins the watched set.
    let user = pp_call("POST", "/api/mer/user/create", r#"{"uuid":"GAMER-1"}"#)
        .await
        .as_i64()
        .unwrap();
    let detail = pp_call("GET", &format!("/api/mer/user/detail?userId={user}"), "").await;
    let address = detail["userWallet"][0]["walletAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    // Give the watcher a poll to load it, then pay twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    chain.pay_token(usdt, &address, 20_000_000).await.unwrap();
    chain.mine(1).await.unwrap();
    chain.pay_token(usdt, &address, 5_500_000).await.unwrap();
    chain.mine(2).await.unwrap();

    wait_until(
        "two recharge callbacks",
        Duration::from_secs(60),
        async || calls.lock().unwrap().len() >= 2,
    )
    .await;
    let got = calls.lock().unwrap().clone();
    let mut amounts = Vec::new();
    for (h, body) in &got {
        let hv = |n: &str| h.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(hv("x-pay-key"), pp.key);
        let ts = hv("x-pay-timestamp");
        let expected = python(B64, &[&pp.secret, &format!("{ts}POST/pp/recharge{body}")]);
        assert_eq!(hv("x-pay-sign"), expected, "recharge callback signature");
        let cb: Value = serde_json::from_str(body).unwrap();
        assert_eq!(cb["userId"], user);
        assert_eq!(cb["uuid"], "GAMER-1");
        assert_eq!(cb["rechargeStatus"], 0, "success");
        assert_eq!(cb["walletAddress"], address.as_str());
        assert_eq!(cb["chainId"], 31337);
        assert_eq!(
            cb["fromAddress"].as_str().unwrap().to_lowercase(),
            PAYER.to_lowercase()
        );
        assert!(cb["transferHash"].as_str().unwrap().starts_with("0x"));
        assert_ne!(cb["confirmTime"], "");
        // like a shop, re-query before crediting the user
        let id = cb["rechargeId"].as_i64().unwrap();
        let d = pp_call(
            "GET",
            &format!("/api/mer/recharge/detail?rechargeId={id}"),
            "",
        )
        .await;
        assert_eq!(d["rechargeAmount"], cb["rechargeAmount"]);
        assert_eq!(d["rechargeStatus"], 0);
        amounts.push(cb["rechargeAmount"].as_str().unwrap().to_owned());
    }
    amounts.sort();
    assert_eq!(amounts, ["20000000", "5500000"]);
    let list = pp_call("GET", &format!("/api/mer/recharge/list?userId={user}"), "").await;
    assert_eq!(list["count"], 2);

    // Manual re-trigger: one more callback for that recharge.
    let first: Value = serde_json::from_str(&got[0].1).unwrap();
    pp_call(
        "GET",
        &format!(
            "/api/mer/recharge/notify?rechargeId={}",
            first["rechargeId"]
        ),
        "",
    )
    .await;
    wait_until(
        "the re-triggered recharge callback",
        Duration::from_secs(30),
        async || calls.lock().unwrap().len() >= 3,
    )
    .await;
    let again: Value = serde_json::from_str(&calls.lock().unwrap()[2].1).unwrap();
    assert_eq!(again["rechargeId"], first["rechargeId"]);
    stop(&mut serve);
}

both_backends! {
    pay_through_dialects => pay_through_dialects;
    recharge_through_pay_protocol => recharge_through_pay_protocol;
}
