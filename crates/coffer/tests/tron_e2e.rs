//! End to end on a scripted TRON chain (java-tron's documented JSON served by
//! `coffer_chain_tron::scripted`; no TRON node installs here) with the real `coffer` binary: a
//! USDT-TRC20 order created through the native API and through each dialect (Aurpay's
//! `TRX`/`USDT-TRC20` codes, Pay Protocol's chain list and `userWalletAddress`, Zaepe's
//! `chain_type`), all paid in one block, processing while that block is above the solidified
//! head and settled once it is solidified; the checkout shows the `tron:` URI, the network
//! warning and the tronscan link. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use coffer_chain_tron::scripted::{ScriptedChain, ScriptedTx};
use coffer_chain_tron::{TronAddress, USDT_MAINNET};
use coffer_core::{MerchantId, OrderId, OrderStatus};
use coffer_testkit::{TestDb, both_backends};
use coffer_webhooks::MasterKey;
use common::dialects::{free_port, pp_request, zaepe_post};
use common::{sigkill, wait_until};
use serde_json::{Value, json};

const MASTER_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";
/// m/44'/195'/0' of the mnemonic "abandon … about".
const TRON_XPUB: &str = "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd";

fn coffer(config: &Path, db: &TestDb) -> Command {
    let mut cmd = common::coffer(config, db);
    cmd.env("COFFER_MASTER_KEY", MASTER_HEX);
    cmd
}

fn config(dir: &Path, rpc: &str, port: u16) -> std::path::PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\nlog_format = \"json\"\n\n[rates]\nsources = [\"fixed\"]\n[rates.fixed]\n\"TRX/USD\" = \"0.25\"\n\n[[chains]]\nid = \"tron\"\nkind = \"tron\"\nrpc = [\"{rpc}\"]\npoll_interval = \"100ms\"\n"
        ),
    )
    .unwrap();
    path
}

fn run(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn is_tron_address(s: &str) -> bool {
    s.starts_with('T') && s.len() == 34 && s.parse::<TronAddress>().is_ok()
}

async fn usdt_trc20_through_every_api(db: &TestDb) {
    let chain = ScriptedChain::new("2b6653dc");
    chain.mine_empty(3);
    chain.solidify_behind(0);
    let (rpc, _server) = chain.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), &rpc, port);
    let base = format!("http://127.0.0.1:{port}");

    let created =
        run(coffer(&cfg, db).args(["merchant", "create", "--name", "Tron shop", "--json"]));
    let merchant: MerchantId = created["merchant_id"].as_str().unwrap().parse().unwrap();
    let api_key = created["api_key"].as_str().unwrap().to_owned();
    let out = coffer(&cfg, db)
        .args([
            "wallet",
            "set",
            "--merchant",
            merchant.as_str(),
            "--chain",
            "tron",
        ])
        .args(["--xpub", TRON_XPUB])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aurpay = run(coffer(&cfg, db)
        .args(["key", "create", "--merchant", merchant.as_str()])
        .args(["--dialect", "aurpay", "--json"]));
    let aurpay_key = aurpay["key"].as_str().unwrap().to_owned();
    let master = MasterKey::from_hex(MASTER_HEX).unwrap();
    let engine = common::anvil_engine(db, "unused", "0x0000000000000000000000000000000000000000");
    let pp = engine
        .create_dialect_credential(&master, &merchant, &coffer_dialect_payprotocol::CREDENTIAL)
        .await
        .unwrap();
    let z = engine
        .create_dialect_credential(&master, &merchant, &coffer_dialect_zaepe::CREDENTIAL)
        .await
        .unwrap();

    let mut serve = common::spawn_serve(coffer(&cfg, db));
    let http = coffer_testkit::http_client();
    wait_until("the server", Duration::from_secs(30), async || {
        http.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let mut orders: Vec<(String, OrderId, String, u128)> = Vec::new();

    // Native API.
    let v: Value = http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&api_key)
        .json(&json!({"amount": "10", "currency": "USD", "asset": "tron:USDT", "fixed_stablecoin_rate": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let native_address = v["payment"]["address"].as_str().unwrap().to_owned();
    assert!(is_tron_address(&native_address), "{v}");
    assert_eq!(v["payment"]["asset"], "tron:USDT");
    assert_eq!(v["payment"]["amount_due_base_units"], "10000000");
    assert_eq!(
        v["payment"]["payment_uri"],
        format!("tron:{native_address}?amount=10&token={USDT_MAINNET}")
    );
    let checkout_url = v["checkout_url"].as_str().unwrap().to_owned();
    let native_id: OrderId = v["id"].as_str().unwrap().parse().unwrap();
    // The checkout: the network warning and the tron: URI (the QR code's).
    let page = http
        .get(&checkout_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Send only USDT on TRON"), "network warning");
    assert!(
        page.contains(&format!("tron:{native_address}")),
        "payment URI"
    );
    orders.push((
        "native".into(),
        native_id.clone(),
        native_address,
        10_000_000,
    ));

    // Aurpay: chain `TRX`, currency `USDT-TRC20`.
    let v: Value = http
        .post(format!("{base}/api/order/pay-info"))
        .header("API-Key", &aurpay_key)
        .header("content-type", "application/json")
        .body(r#"{"chain":"TRX","currency":"USDT-TRC20","vs_currency":"USD","vs_price":18,"fixed_encrypt_price":true,"callback_url":"https://example.com/cb","timeout_callback":"https://example.com/timeout"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = &v["data"];
    assert_eq!(data["contract_addr"], USDT_MAINNET, "{v}");
    let address = data["address"].as_str().unwrap().to_owned();
    assert!(is_tron_address(&address), "{v}");
    let id: OrderId = data["order_id"].as_str().unwrap().parse().unwrap();
    let detail: Value = http
        .get(format!("{base}/api/v2/order/detail/{id}"))
        .header("API-Key", &aurpay_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["data"]["chain"], "TRX", "{detail}");
    assert_eq!(detail["data"]["currency"], "USDT-TRC20", "{detail}");
    orders.push(("aurpay".into(), id, address, 18_000_000));

    // Pay Protocol: the TRON chain from its chain list, a T… userWalletAddress.
    let pp_call = async |method: &str, path: &str, body: &str| -> Value {
        pp_request(&http, &base, &pp, method, path, body).await
    };
    let chains = pp_call("GET", "/api/mer/conf/list/chain", "").await;
    let tron = chains
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chainName"] == "TRON")
        .unwrap_or_else(|| panic!("TRON in {chains}"));
    let chain_number = tron["chainId"].as_i64().unwrap();
    let created = pp_call(
        "POST",
        "/api/mer/payment/createPaymentOrder",
        &format!(
            r#"{{"chainId":{chain_number},"description":"E2E","outTradeNo":"PP-TRON-1","isLegalTender":0,"quoteCurrencySymbol":"USDT","quoteAmount":"12.5","notifyUrl":"https://example.com/pp"}}"#
        ),
    )
    .await;
    let address = created["userWalletAddress"].as_str().unwrap().to_owned();
    assert!(is_tron_address(&address), "{created}");
    let pp_order = db
        .store
        .get_order_by_no(&merchant, "PP-TRON-1")
        .await
        .unwrap()
        .unwrap();
    orders.push(("payprotocol".into(), pp_order.id, address, 12_500_000));

    // Zaepe: chain_type names the chain.
    let body = r#"{"order_no":"ZaepeTron0001","currency":"USDT","amount":"3.25","chain_type":"tron","notify_url":"https://example.com/z"}"#;
    let v = zaepe_post(&http, &base, &z, "/v1/payment", body).await;
    assert_eq!(v["code"], 10000, "{v}");
    let z_order = db
        .store
        .get_order_by_no(&merchant, "ZaepeTron0001")
        .await
        .unwrap()
        .unwrap();
    let address = z_order.target.as_ref().unwrap().address.clone();
    assert!(is_tron_address(&address));
    orders.push(("zaepe".into(), z_order.id, address, 3_250_000));

    for (api, id, _, due) in &orders {
        let o = db.store.find_order(id).await.unwrap().unwrap();
        assert_eq!(o.target.as_ref().unwrap().amount_due.get(), *due, "{api}");
    }

    // All paid in one block, 19 blocks above the solidified head.
    let usdt: TronAddress = USDT_MAINNET.parse().unwrap();
    let payer: TronAddress = "TPL66VK2gCXNCD7EJg9pgJRfqcRazjhUZY".parse().unwrap();
    let txs = orders
        .iter()
        .map(|(_, _, a, due)| ScriptedTx::trc20(usdt, payer, a.parse().unwrap(), *due))
        .collect();
    let (height, txids) = chain.mine(txs);
    chain.mine_empty(18);
    chain.solidify(height - 1);
    for (_, id, _, _) in &orders {
        wait_until("processing", Duration::from_secs(30), async || {
            db.store.find_order(id).await.unwrap().unwrap().state.status == OrderStatus::Processing
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (api, id, _, _) in &orders {
        let o = db.store.find_order(id).await.unwrap().unwrap();
        assert_eq!(
            o.state.status,
            OrderStatus::Processing,
            "{api}: not before solidification"
        );
    }
    chain.solidify(height);
    for (_, id, _, _) in &orders {
        wait_until(
            "settled at solidification",
            Duration::from_secs(30),
            async || {
                db.store.find_order(id).await.unwrap().unwrap().state.status == OrderStatus::Settled
            },
        )
        .await;
    }

    // The checkout's tronscan link.
    let status: Value = http
        .get(format!("{checkout_url}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "settled", "{status}");
    assert_eq!(
        status["transactions"][0]["explorer_url"],
        format!("https://tronscan.org/#/transaction/{}", txids[0]),
        "{status}"
    );
    sigkill(&mut serve);
}

both_backends! {
    usdt_trc20_through_every_api => usdt_trc20_through_every_api;
}
