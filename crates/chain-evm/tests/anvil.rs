#![allow(clippy::unwrap_used, clippy::expect_used)]
//! EVM payment scenarios against a real anvil, on SQLite and PostgreSQL: the real watcher
//! scans real blocks and the real engine applies them.

mod common;

use coffer_core::{MatchStatus, OrderStatus, PaymentStatus, StatusReason};
use coffer_testkit::{TestDb, both_backends};
use common::*;
use serde_json::json;

async fn exact_payment(db: &TestDb) {
    let env = env(db, 2).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "12.5", "USDT").await;
    assert_eq!(due(&o), 12_500_000);
    pay_token(&env, env.usdt, &address(&o), due(&o)).await;
    sync(&mut w).await;
    // one confirmation of two: seen, not settled
    let seen = reload(&env, &o.id).await;
    assert_eq!(seen.state.status, OrderStatus::Processing);
    assert_eq!(seen.totals.unconfirmed.get(), 12_500_000);
    mine(&env, 1).await;
    sync(&mut w).await;
    let done = reload(&env, &o.id).await;
    assert_eq!(done.state.status, OrderStatus::Settled);
    assert_eq!(done.state.reason, StatusReason::None);
    assert_eq!(done.totals.confirmed.get(), 12_500_000);
    let kinds = event_kinds(&env, &o).await;
    for k in [
        "payment.detected",
        "order.processing",
        "payment.confirmed",
        "order.settled",
    ] {
        assert_eq!(
            kinds.iter().filter(|x| *x == k).count(),
            1,
            "{k} in {kinds:?}"
        );
    }
    // idempotent: more polls change nothing
    sync(&mut w).await;
    assert_eq!(event_kinds(&env, &o).await.len(), kinds.len());
}

async fn partial_then_rest(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "100", "USDC").await;
    let total = due(&o);
    assert_eq!(total, 100 * 10u128.pow(18));
    pay_token(&env, env.usdc, &address(&o), total * 6 / 10).await;
    sync(&mut w).await;
    let partial = reload(&env, &o.id).await;
    assert_eq!(
        (partial.state.status, partial.state.reason),
        (OrderStatus::Pending, StatusReason::PaidPartial)
    );
    pay_token(&env, env.usdc, &address(&o), total - total * 6 / 10).await;
    sync(&mut w).await;
    let done = reload(&env, &o.id).await;
    assert_eq!(
        (done.state.status, done.state.reason),
        (OrderStatus::Settled, StatusReason::None)
    );
    assert_eq!(done.totals.confirmed.get(), total);
}

async fn overpayment(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "10", "USDT").await;
    pay_token(&env, env.usdt, &address(&o), due(&o) + 1_000_000).await;
    sync(&mut w).await;
    let done = reload(&env, &o.id).await;
    assert_eq!(
        (done.state.status, done.state.reason),
        (OrderStatus::Settled, StatusReason::PaidOver)
    );
    assert_eq!(done.totals.confirmed.get(), 11_000_000);
}

async fn two_orders_one_block(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let a = order(&env, "5", "USDT").await;
    let b = order(&env, "7", "USDT").await;
    assert_ne!(address(&a), address(&b));
    rpc(&env.provider, "evm_setAutomine", json!([false])).await;
    pay_token(&env, env.usdt, &address(&a), due(&a)).await;
    pay_token(&env, env.usdt, &address(&b), due(&b)).await;
    rpc(&env.provider, "evm_mine", json!([])).await;
    rpc(&env.provider, "evm_setAutomine", json!([true])).await;
    sync(&mut w).await;
    let pa = db.store.payments_for_order(&a.id).await.unwrap();
    let pb = db.store.payments_for_order(&b.id).await.unwrap();
    assert_eq!(pa.len(), 1);
    assert_eq!(pb.len(), 1);
    assert_eq!(pa[0].block_hash, pb[0].block_hash, "same block");
    for o in [a, b] {
        assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Settled);
    }
}

async fn native_payment(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "20", "ETH").await;
    assert_eq!(due(&o), 10u128.pow(16)); // 20 USD at 2000 USD/ETH
    pay_native(&env, &address(&o), due(&o)).await;
    sync(&mut w).await;
    let done = reload(&env, &o.id).await;
    assert_eq!(done.state.status, OrderStatus::Settled);
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].from_address.as_deref(), Some(PAYER));
}

async fn reverted_transfer_not_counted(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "3", "USDT").await;
    let tx = pay_token_reverting(&env, env.usdt, &address(&o), due(&o)).await;
    let receipt = rpc(&env.provider, "eth_getTransactionReceipt", json!([tx])).await;
    assert_eq!(receipt["status"], json!("0x0"), "mined, and reverted");
    sync(&mut w).await;
    assert!(db.store.payments_for_order(&o.id).await.unwrap().is_empty());
    assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Pending);
    // the same transfer that does not revert is counted
    pay_token(&env, env.usdt, &address(&o), due(&o)).await;
    sync(&mut w).await;
    assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Settled);
}

async fn wrong_token_flagged(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "3", "USDT").await;
    pay_token(&env, env.usdc, &address(&o), 3 * 10u128.pow(18)).await;
    sync(&mut w).await;
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1, "recorded, never dropped");
    assert_eq!(p[0].match_status, MatchStatus::WrongAsset);
    assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Pending);
}

/// Native coin sent to a token order's address, while no order wants the native coin: the
/// whole block is still scanned, the transfer recorded and flagged, never counted.
async fn native_to_token_order_flagged(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "3", "USDT").await;
    let tx = pay_native(&env, &address(&o), 10u128.pow(15)).await;
    sync(&mut w).await;
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1, "recorded, never dropped");
    assert_eq!(p[0].match_status, MatchStatus::WrongAsset);
    assert_eq!(p[0].asset, asset("ETH"));
    assert_eq!(p[0].amount.get(), 10u128.pow(15));
    assert_eq!(p[0].txid, format!("{tx:#x}"));
    let now = reload(&env, &o.id).await;
    assert_eq!(now.state.status, OrderStatus::Pending);
    assert_eq!(now.totals.confirmed.get(), 0);
    // the right token still settles it
    pay_token(&env, env.usdt, &address(&o), due(&o)).await;
    sync(&mut w).await;
    assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Settled);
}

/// Orders created while the watcher runs join its watched set (incremental reload), over
/// many steps, without a full reload.
async fn orders_join_the_running_watcher(db: &TestDb) {
    orders_join(db, std::time::Duration::from_secs(3600)).await;
}

/// The same with a full reload of the watched set started beside every step (it runs as its
/// own task and replaces the set when done): orders created while one runs are not lost
/// when its older set replaces the one in use.
async fn orders_join_while_full_reloads_run(db: &TestDb) {
    orders_join(db, std::time::Duration::ZERO).await;
}

async fn orders_join(db: &TestDb, full_reload: std::time::Duration) {
    let env = env(db, 1).await;
    let mut cfg = watch_config(&env);
    cfg.watch.full_reload = full_reload;
    let mut w = coffer_chain_evm::EvmWatcher::new(env.engine.clone(), cfg).unwrap();
    sync(&mut w).await;
    for (i, symbol) in ["USDT", "ETH", "USDC"].into_iter().enumerate() {
        let o = order(&env, "2", symbol).await;
        match symbol {
            "ETH" => {
                pay_native(&env, &address(&o), due(&o)).await;
            }
            "USDT" => {
                pay_token(&env, env.usdt, &address(&o), due(&o)).await;
            }
            _ => {
                pay_token(&env, env.usdc, &address(&o), due(&o)).await;
            }
        }
        sync(&mut w).await;
        assert_eq!(
            reload(&env, &o.id).await.state.status,
            OrderStatus::Settled,
            "order {i} ({symbol})"
        );
    }
}

/// The chain's confirmations (1 here) are overridden by the merchant's settlement policy
/// (3), snapshotted on the order.
async fn merchant_confirmations_override(db: &TestDb) {
    let env = env(db, 1).await;
    let merchant = coffer_core::Merchant {
        id: coffer_core::MerchantId::from_random([7; 16]),
        name: "Careful shop".into(),
        policy: coffer_core::SettlementPolicy {
            confirmations: Some(3),
            ..Default::default()
        },
        created_at: env.engine.now(),
    };
    db.store
        .commit(coffer_store::Changeset {
            new_merchants: vec![merchant.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    // another wallet (BIP32 test vector 1, m/0'/1/2'): addresses are unique across merchants
    env.engine
        .set_wallet(&merchant.id, "anvil", "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5")
        .await
        .unwrap();
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let careful = order_on(&env.engine, &merchant.id, "5", "USDT").await;
    assert_eq!(careful.policy.confirmations, Some(3));
    let plain = order(&env, "5", "USDT").await;
    rpc(&env.provider, "evm_setAutomine", json!([false])).await;
    pay_token(&env, env.usdt, &address(&careful), due(&careful)).await;
    pay_token(&env, env.usdt, &address(&plain), due(&plain)).await;
    rpc(&env.provider, "evm_mine", json!([])).await;
    rpc(&env.provider, "evm_setAutomine", json!([true])).await;
    sync(&mut w).await;
    let status = |id| {
        let engine = env.engine.clone();
        async move { engine.find_order(&id).await.unwrap().unwrap().state.status }
    };
    // same block: the chain's 1 confirmation settles the plain order, the careful one waits
    assert_eq!(status(plain.id.clone()).await, OrderStatus::Settled);
    assert_eq!(status(careful.id.clone()).await, OrderStatus::Processing);
    mine(&env, 1).await;
    sync(&mut w).await;
    assert_eq!(status(careful.id.clone()).await, OrderStatus::Processing);
    mine(&env, 1).await;
    sync(&mut w).await;
    assert_eq!(status(careful.id.clone()).await, OrderStatus::Settled);
}

async fn paid_late(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "4", "USDT").await;
    // the next block is mined after the rate lock expired (but inside monitor_until)
    let late = o.expires_at.unix_timestamp() + 60;
    rpc(&env.provider, "evm_setNextBlockTimestamp", json!([late])).await;
    pay_token(&env, env.usdt, &address(&o), due(&o)).await;
    sync(&mut w).await;
    let done = reload(&env, &o.id).await;
    assert_eq!(
        (done.state.status, done.state.reason),
        (OrderStatus::Settled, StatusReason::PaidLate)
    );
}

/// A snapshot to revert to (orphaning what follows), then `o` paid in full: the snapshot, the
/// transaction and its raw bytes (to mine it again on the new branch).
async fn pay_after_snapshot(
    env: &Env,
    o: &coffer_core::Order,
) -> (
    serde_json::Value,
    alloy::primitives::B256,
    serde_json::Value,
) {
    let snapshot = rpc(&env.provider, "evm_snapshot", json!([])).await;
    let tx = pay_token(env, env.usdt, &address(o), due(o)).await;
    let raw = rpc(&env.provider, "eth_getRawTransactionByHash", json!([tx])).await;
    (snapshot, tx, raw)
}

async fn reorg_reverses_then_settles_once(db: &TestDb) {
    let env = env(db, 3).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "9", "USDT").await;
    let (snapshot, tx, raw) = pay_after_snapshot(&env, &o).await;
    sync(&mut w).await;
    assert_eq!(
        reload(&env, &o.id).await.state.status,
        OrderStatus::Processing
    );
    // the block with the payment is orphaned by a longer branch without it
    rpc(&env.provider, "evm_revert", json!([snapshot])).await;
    mine(&env, 3).await;
    sync(&mut w).await;
    let reversed = reload(&env, &o.id).await;
    assert_eq!(
        (reversed.state.status, reversed.state.reason),
        (OrderStatus::Pending, StatusReason::Reversed)
    );
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].status, PaymentStatus::Reversed);
    // the same transaction is mined again: same payment row, settles exactly once
    let again = rpc(&env.provider, "eth_sendRawTransaction", json!([raw])).await;
    assert_eq!(again.as_str().unwrap(), format!("{tx:#x}"));
    mine(&env, 3).await;
    sync(&mut w).await;
    let done = reload(&env, &o.id).await;
    assert_eq!(done.state.status, OrderStatus::Settled);
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].status, PaymentStatus::Confirmed);
    assert_eq!(done.totals.confirmed.get(), due(&o));
    let kinds = event_kinds(&env, &o).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "order.settled").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "payment.reversed").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "order.reversed").count(),
        1,
        "{kinds:?}"
    );
}

/// Issue 14, item 11: a reorg *after* settlement (one confirmation), then the same
/// transaction mined again. The order settles twice — the shop was told `order.reversed` in
/// between and must learn it is paid again — but both `order.settled` events carry the same
/// `dedupe_key`, the second is `restored`, and the payment's repeated `payment.detected` /
/// `payment.confirmed` repeat their keys: a shop deduplicating on `dedupe_key` fulfils once.
async fn reorg_after_settlement_resettles_with_the_same_dedupe_key(db: &TestDb) {
    let env = env(db, 1).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let o = order(&env, "9", "USDT").await;
    let (snapshot, _, raw) = pay_after_snapshot(&env, &o).await;
    sync(&mut w).await;
    assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Settled);
    // a longer branch without the payment's block
    rpc(&env.provider, "evm_revert", json!([snapshot])).await;
    mine(&env, 3).await;
    sync(&mut w).await;
    let reversed = reload(&env, &o.id).await;
    assert_eq!(
        (reversed.state.status, reversed.state.reason),
        (OrderStatus::Pending, StatusReason::Reversed)
    );
    // the same transaction, mined again
    rpc(&env.provider, "eth_sendRawTransaction", json!([raw])).await;
    mine(&env, 1).await;
    sync(&mut w).await;
    assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Settled);
    let payments = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(payments.len(), 1, "one payment row");

    let events = order_events(&env, &o).await;
    let of = |kind: &str| {
        events
            .iter()
            .filter(|e| e.kind.as_str() == kind)
            .collect::<Vec<_>>()
    };
    let settled = of("order.settled");
    assert_eq!(settled.len(), 2, "{events:?}");
    assert_ne!(settled[0].id, settled[1].id);
    assert_eq!(settled[0].dedupe_key(), settled[1].dedupe_key());
    assert_eq!(
        settled[0].dedupe_key(),
        format!("{}:order.settled:{}", o.id, due(&o))
    );
    assert!(!settled[0].restored() && settled[1].restored());
    assert_eq!(of("order.reversed").len(), 1);
    assert_eq!(of("payment.reversed").len(), 1);
    for kind in ["payment.detected", "payment.confirmed"] {
        let twice = of(kind);
        assert_eq!(twice.len(), 2, "{kind}");
        assert_eq!(twice[0].dedupe_key(), format!("{}:{kind}", payments[0].id));
        assert_eq!(twice[1].dedupe_key(), twice[0].dedupe_key());
    }
    let mut facts: Vec<String> = events.iter().map(coffer_core::Event::dedupe_key).collect();
    facts.sort();
    facts.dedup();
    assert_eq!(
        facts.len(),
        events.len() - 3,
        "only the three repeats share a key"
    );
}

async fn anvil_restart_mid_scan(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("anvil-state.json");
    let state_arg = state.to_str().unwrap().to_owned();
    let mut env = env_with(db, 1, &["--state", &state_arg]).await;
    let mut w = watcher(&env).await;
    sync(&mut w).await;
    let a = order(&env, "2", "USDT").await;
    let b = order(&env, "3", "USDT").await;
    pay_token(&env, env.usdt, &address(&a), due(&a)).await;
    mine(&env, 5).await;
    // the node goes away before the watcher saw any of it
    let port = env.anvil.port;
    env.anvil.terminate();
    assert!(
        w.step().await.is_err(),
        "no node: the step fails, nothing is written"
    );
    assert_eq!(reload(&env, &a.id).await.state.status, OrderStatus::Pending);
    // it comes back with its state; the watcher catches up from its cursor
    env.anvil =
        coffer_chain_evm::testtools::Anvil::start_on(port, &["--state", &state_arg]).unwrap();
    pay_token(&env, env.usdt, &address(&b), due(&b)).await;
    sync(&mut w).await;
    for o in [&a, &b] {
        assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Settled);
        assert_eq!(db.store.payments_for_order(&o.id).await.unwrap().len(), 1);
    }
}

both_backends! {
    exact => exact_payment;
    partial => partial_then_rest;
    over => overpayment;
    two_in_one_block => two_orders_one_block;
    native => native_payment;
    reverted => reverted_transfer_not_counted;
    wrong_token => wrong_token_flagged;
    native_to_token_order => native_to_token_order_flagged;
    joins_running_watcher => orders_join_the_running_watcher;
    joins_while_full_reloads_run => orders_join_while_full_reloads_run;
    merchant_confirmations => merchant_confirmations_override;
    late => paid_late;
    reorg => reorg_reverses_then_settles_once;
    reorg_after_settlement => reorg_after_settlement_resettles_with_the_same_dedupe_key;
    anvil_restart => anvil_restart_mid_scan;
}

/// RPC failover, a stalled tip and endpoints that disagree, as `/readyz` reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_stall_and_disagreement() {
    let db = coffer_testkit::fresh_sqlite().await.unwrap();
    let env = env(&db, 1).await;
    // a dead endpoint first: calls fail over to the live one
    let dead = format!(
        "http://127.0.0.1:{}",
        coffer_chain_evm::testtools::free_port()
    );
    let mut cfg = watch_config(&env);
    cfg.rpc = vec![dead, env.anvil.url()];
    cfg.rpc_timeout = std::time::Duration::from_secs(2);
    cfg.watch.stall_after = std::time::Duration::from_millis(300);
    let mut w = coffer_chain_evm::EvmWatcher::new(env.engine.clone(), cfg.clone()).unwrap();
    w.check().await.unwrap();
    sync(&mut w).await;
    let o = order(&env, "1", "USDT").await;
    pay_token(&env, env.usdt, &address(&o), due(&o)).await;
    sync(&mut w).await;
    assert_eq!(reload(&env, &o.id).await.state.status, OrderStatus::Settled);
    let health = w.health();
    assert!(health.lock().unwrap().ok(), "{:?}", health.lock().unwrap());
    // no new block for longer than stall_after: stalled
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    sync(&mut w).await;
    assert!(health.lock().unwrap().stalled);
    assert!(!health.lock().unwrap().ok());
    mine(&env, 1).await;
    sync(&mut w).await;
    assert!(!health.lock().unwrap().stalled, "advancing again");
    // a second node far behind: the tips disagree
    let other = coffer_chain_evm::testtools::Anvil::start(&[]).unwrap();
    mine(&env, 20).await;
    cfg.rpc = vec![env.anvil.url(), other.url()];
    let mut w2 = coffer_chain_evm::EvmWatcher::new(env.engine.clone(), cfg).unwrap();
    w2.step().await.unwrap();
    let h2 = w2.health();
    assert!(
        h2.lock().unwrap().disagreement.is_some(),
        "{:?}",
        h2.lock().unwrap()
    );
    // a wrong chain id is refused at start-up
    let mut wrong = watch_config(&env);
    wrong.evm_chain_id = Some(56);
    let err = coffer_chain_evm::EvmWatcher::new(env.engine.clone(), wrong)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("31337"), "{err}");
}

/// A provider that refuses `eth_getLogs` over more than `limit` blocks (as public RPC
/// endpoints do), in front of the real anvil; counts its refusals.
async fn limiting_proxy(
    upstream: String,
    limit: u64,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let refused = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = refused.clone();
    let client = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let client = client.clone();
            let upstream = upstream.clone();
            let counter = counter.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                    && v["method"] == "eth_getLogs"
                {
                    let p = &v["params"][0];
                    let height = |k: &str| {
                        u64::from_str_radix(
                            p[k].as_str().unwrap().trim_start_matches("0x"),
                            16,
                        )
                        .unwrap()
                    };
                    if height("toBlock") + 1 > height("fromBlock") + limit {
                        counter.fetch_add(1, Ordering::SeqCst);
                        return axum::Json(json!({"jsonrpc": "2.0", "id": v["id"],
                            "error": {"code": -32005, "message": format!("query exceeds max block range {limit}")}}))
                        .into_response();
                    }
                }
                let bytes = client
                    .post(&upstream)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                ([("content-type", "application/json")], bytes).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), refused)
}

/// The `eth_getLogs` range adapts to a provider's limit: halved on refusal, and it does not
/// grow back past the refused size (no refusal on every other step).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_logs_range_adapts_to_a_provider_limit() {
    use std::sync::atomic::Ordering;
    let db = coffer_testkit::fresh_sqlite().await.unwrap();
    let env = env(&db, 1).await;
    let (url, refused) = limiting_proxy(env.anvil.url(), 10).await;
    let mut cfg = watch_config(&env);
    cfg.rpc = vec![url];
    cfg.max_range = 64;
    let mut w = coffer_chain_evm::EvmWatcher::new(env.engine.clone(), cfg).unwrap();
    sync(&mut w).await;
    let catch_up = async |w: &mut coffer_chain_evm::EvmWatcher| {
        let mut failures = 0;
        loop {
            match w.step().await {
                Ok(coffer_chain_evm::Step::Scanned { to, tip }) if to < tip => {}
                Ok(_) => return failures,
                Err(_) => {
                    failures += 1;
                    assert!(failures < 10, "the range never fitted");
                }
            }
        }
    };
    let a = order(&env, "1", "USDT").await;
    mine(&env, 30).await;
    pay_token(&env, env.usdt, &address(&a), due(&a)).await;
    mine(&env, 30).await;
    let failures = catch_up(&mut w).await;
    assert_eq!(reload(&env, &a.id).await.state.status, OrderStatus::Settled);
    // 64 → 32 → 16 → 8: three refused steps (each tried three times on the one endpoint)
    assert_eq!(failures, 3);
    let after_probe = refused.load(Ordering::SeqCst);
    assert_eq!(after_probe, 9);
    // once found, the limit holds: another catch-up is refused no more
    let b = order(&env, "1", "USDT").await;
    mine(&env, 40).await;
    pay_token(&env, env.usdt, &address(&b), due(&b)).await;
    mine(&env, 40).await;
    assert_eq!(catch_up(&mut w).await, 0);
    assert_eq!(refused.load(Ordering::SeqCst), after_probe);
    assert_eq!(reload(&env, &b.id).await.state.status, OrderStatus::Settled);
}

/// Lag is a health fact: more than `max_lag_blocks` behind, the chain is not ready and
/// `/readyz` says why; caught up, it is ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_behind_the_tip_makes_the_chain_not_ready() {
    let db = coffer_testkit::fresh_sqlite().await.unwrap();
    let env = env(&db, 1).await;
    let mut cfg = watch_config(&env);
    cfg.max_range = 2; // two blocks a step
    cfg.watch.max_lag_blocks = 3;
    let mut w = coffer_chain_evm::EvmWatcher::new(env.engine.clone(), cfg).unwrap();
    sync(&mut w).await;
    let health = w.health();
    let (ready, facts) = health.lock().unwrap().readiness();
    assert!(ready, "{facts}");
    assert_eq!(
        (facts["lag"].clone(), facts["lagging"].clone()),
        (json!(0), json!(false))
    );
    mine(&env, 10).await;
    let step = w.step().await.unwrap();
    assert!(
        matches!(step, coffer_chain_evm::Step::Scanned { to, tip } if tip - to == 8),
        "{step:?}"
    );
    let (ready, facts) = health.lock().unwrap().readiness();
    assert!(!ready, "{facts}");
    assert_eq!(facts["lag"], 8, "{facts}");
    assert_eq!(facts["lagging"], true, "{facts}");
    assert_eq!(
        facts["reason"], "lagging: 8 blocks behind the tip (max_lag_blocks = 3)",
        "{facts}"
    );
    sync(&mut w).await;
    let (ready, facts) = health.lock().unwrap().readiness();
    assert!(ready, "caught up: {facts}");
    assert_eq!(facts["reason"], serde_json::Value::Null);
}

/// An address whose order is past `monitor_until` leaves the watched set for good: a later
/// payment to it is not seen, and the incremental reload does not bring it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_past_monitor_until_leave_the_watched_set() {
    let db = coffer_testkit::fresh_sqlite().await.unwrap();
    let env = env(&db, 1).await;
    let clock = std::sync::Arc::new(coffer_engine::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let engine = coffer_engine::Engine::new(coffer_engine::EngineParts {
        store: db.store.clone(),
        rates: std::sync::Arc::new(coffer_core::FixedRates::new()),
        assets: env.engine.assets().clone(),
        methods: coffer_engine::Methods::default().with(
            coffer_core::ChainKind::Evm,
            std::sync::Arc::new(coffer_chain_evm::EvmMethod),
        ),
        clock: clock.clone(),
        settings: env.engine.settings().clone(),
    });
    let mut w = coffer_chain_evm::EvmWatcher::new(engine.clone(), watch_config(&env)).unwrap();
    sync(&mut w).await;
    let o = order_on(&engine, &env.merchant, "2", "USDT").await;
    sync(&mut w).await;
    assert_eq!(w.watched().len(), 1);
    // past the order's monitoring window
    clock.advance(o.monitor_until - engine.now() + time::Duration::seconds(1));
    mine(&env, 1).await;
    sync(&mut w).await;
    assert!(w.watched().is_empty(), "the address left");
    pay_token(&env, env.usdt, &address(&o), due(&o)).await;
    sync(&mut w).await;
    sync(&mut w).await;
    assert!(w.watched().is_empty(), "and stays out");
    assert!(db.store.payments_for_order(&o.id).await.unwrap().is_empty());
}
