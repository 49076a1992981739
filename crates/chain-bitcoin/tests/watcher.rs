#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Bitcoin watcher against the real bcoin regtest node (tools/bitcoin-regtest), through
//! the engine, on SQLite and PostgreSQL: exact payment via the node wallet's `sendtoaddress`,
//! one transaction paying two orders (`sendmany`), partial then the rest, zero-conf detection
//! and zero-conf settlement, a payment evicted from the mempool, a reorg via
//! `invalidateblock`, catch-up after downtime, and the node becoming unavailable mid-scan.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use coffer_chain_bitcoin::bitcoin::{BlockHash, Network as BtcNetwork, Txid};
use coffer_chain_bitcoin::regtest::RegtestNode;
use coffer_chain_bitcoin::{
    BitcoinMethod, BitcoinWatchConfig, BitcoinWatcher, BitcoindRpc, RpcConfig, Step, WatchError,
};
use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, MerchantId,
    Network, Order, OrderStatus, PaymentStatus, Price, StatusReason,
};
use coffer_engine::{
    AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder, SystemClock,
};
use coffer_store::EventQuery;
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;
use serde_json::{Value, json};

// m/84'/1'/0' of the BIP-84 mnemonic "abandon … about".
const TPUB: &str = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M";
// m/84'/1'/1' of the same mnemonic: a second merchant's wallet.
const TPUB2: &str = "tpubDC8msFGeGuwnP2xwTZBBZSie1BLgRAkJhgzpFYTdpGgZNzguXQhNDVWp7mJbHJUjQQvV2myLU9dkx67a7VAUnzY7yT7nvhHj7FgS4oNivvq";

fn chain_id() -> ChainId {
    ChainId::parse("bitcoin").unwrap()
}

fn btc() -> AssetId {
    AssetId::from_str("bitcoin:BTC").unwrap()
}

fn engine(db: &TestDb) -> Engine {
    let chain = Chain {
        id: chain_id(),
        kind: ChainKind::Bitcoin,
        network: Network::Regtest,
        name: "Bitcoin (regtest)".into(),
        confirmations: 1,
        evm_chain_id: None,
    };
    let asset = Asset {
        id: btc(),
        kind: AssetKind::Native,
        decimals: Decimals::new(8).unwrap(),
        display_decimals: 8,
        usd_stablecoin: false,
    };
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new().with(
            "BTC",
            "USD",
            Price::new(Decimal::from_str("50000").unwrap()).unwrap(),
        )),
        assets: Arc::new(AssetRegistry::new(vec![chain], vec![asset]).unwrap()),
        methods: Methods::default().with(ChainKind::Bitcoin, Arc::new(BitcoinMethod::new())),
        // The node stamps blocks with the real time: so does the engine (no late payments).
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings::default()),
    })
}

struct Fixture {
    node: RegtestNode,
    rpc: BitcoindRpc,
    wallet: BitcoindRpc,
    /// The node wallet's own address, for mining.
    miner: String,
    engine: Engine,
    merchant: MerchantId,
}

impl Fixture {
    async fn new(db: &TestDb) -> Self {
        let node = RegtestNode::start().unwrap();
        let rpc = node.client(None).unwrap();
        let wallet = node.client(Some("coffer")).unwrap();
        let miner: String = wallet.call("getnewaddress", json!([])).await.unwrap();
        // Mature coinbases for the node wallet to spend.
        let _: Vec<BlockHash> = rpc
            .call("generatetoaddress", json!([110, miner]))
            .await
            .unwrap();
        let engine = engine(db);
        let (m, _) = engine.create_merchant("Shop").await.unwrap();
        engine.set_wallet(&m.id, "bitcoin", TPUB).await.unwrap();
        Self {
            node,
            rpc,
            wallet,
            miner,
            engine,
            merchant: m.id,
        }
    }

    fn config(&self) -> BitcoinWatchConfig {
        let mut cfg = BitcoinWatchConfig::new(
            chain_id(),
            btc(),
            BtcNetwork::Regtest,
            RpcConfig {
                url: self.node.url(),
                user: self.node.user.clone(),
                password: self.node.password.clone(),
                timeout: Duration::from_secs(10),
            },
        );
        cfg.watch.poll_interval = Duration::from_millis(200);
        cfg
    }

    fn watcher(&self) -> BitcoinWatcher {
        BitcoinWatcher::new(self.engine.clone(), self.config()).unwrap()
    }

    /// An order for `usd` US dollars (50,000 USD/BTC: 25 USD = 50,000 sat).
    async fn order(&self, merchant: &MerchantId, usd: u32) -> Order {
        self.engine
            .create_order(
                merchant,
                NewOrder {
                    amount: Decimal::from(usd),
                    currency: "USD".into(),
                    asset: Some(btc()),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order
    }

    async fn send(&self, order: &Order, btc: &str) -> Txid {
        let address = &order.target.as_ref().unwrap().address;
        self.wallet
            .call("sendtoaddress", json!([address, btc]))
            .await
            .unwrap()
    }

    /// Pay `btc` to the order with a transaction that signals BIP-125 replaceability (the
    /// wallet's own sends do not): built, signed and broadcast by hand.
    async fn send_rbf(&self, order: &Order, btc: &str) -> Txid {
        let unspent: Vec<Value> = self.wallet.call("listunspent", json!([])).await.unwrap();
        let coin = unspent
            .iter()
            .find(|u| u["amount"].to_string().starts_with("50"))
            .expect("a mature 50 BTC coinbase");
        let amount = Decimal::from_str(&coin["amount"].to_string()).unwrap();
        let pay = Decimal::from_str(btc).unwrap();
        let change = amount - pay - Decimal::from_str("0.0001").unwrap();
        let number = |d: Decimal| serde_json::from_str::<Value>(&d.to_string()).unwrap();
        let change_address: String = self.wallet.call("getnewaddress", json!([])).await.unwrap();
        let mut outputs = serde_json::Map::new();
        outputs.insert(order.target.as_ref().unwrap().address.clone(), number(pay));
        outputs.insert(change_address, number(change));
        let unsigned: String = self
            .rpc
            .call(
                "createrawtransaction",
                json!([[{"txid": coin["txid"], "vout": coin["vout"], "sequence": 0xffff_fffd_u32}], outputs]),
            )
            .await
            .unwrap();
        let key: String = self
            .wallet
            .call("dumpprivkey", json!([coin["address"]]))
            .await
            .unwrap();
        let signed: Value = self
            .rpc
            .call(
                "signrawtransaction",
                json!([unsigned, [{"txid": coin["txid"], "vout": coin["vout"],
                    "scriptPubKey": coin["scriptPubKey"], "amount": coin["amount"]}], [key]]),
            )
            .await
            .unwrap();
        assert_eq!(signed["complete"], json!(true), "{signed}");
        self.rpc
            .call("sendrawtransaction", json!([signed["hex"]]))
            .await
            .unwrap()
    }

    async fn mine(&self, n: u32) -> Vec<BlockHash> {
        self.rpc
            .call("generatetoaddress", json!([n, self.miner]))
            .await
            .unwrap()
    }

    async fn state(&self, o: &Order) -> (OrderStatus, StatusReason) {
        let o = self.engine.get_order(&o.merchant_id, &o.id).await.unwrap();
        (o.state.status, o.state.reason)
    }

    async fn reload(&self, o: &Order) -> Order {
        self.engine.get_order(&o.merchant_id, &o.id).await.unwrap()
    }
}

/// Step until idle at the tip.
async fn sync(w: &mut BitcoinWatcher) {
    for _ in 0..100 {
        match w.step().await {
            Ok(Step::Idle { .. }) => return,
            Ok(Step::Scanned { to, tip }) if to == tip => return,
            Ok(_) | Err(WatchError::ChangedDuringScan) => {}
            Err(e) => panic!("{e}"),
        }
    }
    panic!("did not reach the tip");
}

async fn kinds_for(db: &TestDb, merchant: &MerchantId) -> Vec<String> {
    db.store
        .list_events(&EventQuery {
            merchant_id: Some(merchant.clone()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind.as_str().to_owned())
        .collect()
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| k.as_str() == kind).count()
}

async fn exact_two_orders_and_partial(db: &TestDb) {
    let f = Fixture::new(db).await;
    let mut w = f.watcher();
    sync(&mut w).await;

    // Exact payment: detected in the mempool (processing), settled at one confirmation.
    let a = f.order(&f.merchant, 25).await;
    assert_eq!(a.target.as_ref().unwrap().amount_due.get(), 50_000);
    let txid = f.send(&a, "0.0005").await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&a).await,
        (OrderStatus::Processing, StatusReason::None)
    );
    let p = db.store.payments_for_order(&a.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].txid, txid.to_string());
    assert_eq!(
        (p[0].status, p[0].block_height),
        (PaymentStatus::Unconfirmed, None)
    );
    assert_eq!(p[0].amount.get(), 50_000);
    let mined = f.mine(1).await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&a).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    let p = db.store.payments_for_order(&a.id).await.unwrap();
    assert_eq!(p[0].status, PaymentStatus::Confirmed);
    assert_eq!(p[0].block_hash, Some(mined[0].to_string()));
    assert_eq!(p[0].confirmations, 1);
    // More blocks and polls: nothing counted twice.
    f.mine(2).await;
    sync(&mut w).await;
    sync(&mut w).await;
    let p = db.store.payments_for_order(&a.id).await.unwrap();
    assert_eq!(
        (p.len(), p[0].confirmations),
        (1, 1),
        "confirmed payments keep their count"
    );
    assert_eq!(f.reload(&a).await.totals.confirmed.get(), 50_000);

    // One transaction paying two orders.
    let b = f.order(&f.merchant, 25).await;
    let c = f.order(&f.merchant, 50).await;
    let outputs = json!({
        b.target.as_ref().unwrap().address.clone(): 0.0005,
        c.target.as_ref().unwrap().address.clone(): 0.001,
    });
    let both: Txid = f
        .wallet
        .call("sendmany", json!(["", outputs]))
        .await
        .unwrap();
    for _ in 0..50 {
        if f.rpc.get_raw_mempool().await.unwrap().contains(&both) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sync(&mut w).await;
    assert_eq!(f.state(&b).await.0, OrderStatus::Processing);
    assert_eq!(f.state(&c).await.0, OrderStatus::Processing);
    f.mine(1).await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&b).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    assert_eq!(
        f.state(&c).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    let pb = db.store.payments_for_order(&b.id).await.unwrap();
    let pc = db.store.payments_for_order(&c.id).await.unwrap();
    assert_eq!((pb.len(), pc.len()), (1, 1));
    assert_eq!(pb[0].txid, pc[0].txid);
    assert_ne!(pb[0].output_index, pc[0].output_index);
    assert_eq!((pb[0].amount.get(), pc[0].amount.get()), (50_000, 100_000));

    // Partial, then the rest (each within the 0.5×–1.2× window of what is still owed).
    let d = f.order(&f.merchant, 25).await;
    f.send(&d, "0.0003").await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&d).await,
        (OrderStatus::Pending, StatusReason::PaidPartial)
    );
    f.mine(1).await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&d).await,
        (OrderStatus::Pending, StatusReason::PaidPartial)
    );
    assert_eq!(f.reload(&d).await.totals.confirmed.get(), 30_000);
    f.send(&d, "0.0002").await;
    sync(&mut w).await;
    assert_eq!(f.state(&d).await.0, OrderStatus::Processing);
    f.mine(1).await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&d).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    assert_eq!(f.reload(&d).await.totals.confirmed.get(), 50_000);

    let kinds = kinds_for(db, &f.merchant).await;
    assert_eq!(count(&kinds, "payment.detected"), 5, "{kinds:?}");
    assert_eq!(count(&kinds, "payment.confirmed"), 5, "{kinds:?}");
    assert_eq!(count(&kinds, "payment.reversed"), 0, "{kinds:?}");
    assert_eq!(count(&kinds, "order.settled"), 4, "{kinds:?}");
}

async fn zero_conf_and_mempool_drop(db: &TestDb) {
    let f = Fixture::new(db).await;
    let mut w = f.watcher();
    sync(&mut w).await;

    // A merchant on zero-conf: a non-RBF payment settles from the mempool.
    let zc = f
        .engine
        .create_merchant("Zero-conf shop")
        .await
        .unwrap()
        .0
        .id;
    f.engine.set_wallet(&zc, "bitcoin", TPUB2).await.unwrap();
    let refused = f
        .engine
        .set_chain_confirmations(&zc, "bitcoin", Some(3))
        .await;
    assert_eq!(refused.unwrap_err().code(), "invalid_confirmations");
    let m = f
        .engine
        .set_chain_confirmations(&zc, "bitcoin", Some(0))
        .await
        .unwrap();
    assert_eq!(m.policy.confirmations_for("bitcoin"), Some(0));
    let z = f.order(&zc, 25).await;
    assert_eq!(z.policy.confirmations_for("bitcoin"), Some(0));
    let txid = f.send(&z, "0.0005").await;
    // The wallet's transaction does not signal RBF (and none of its parents).
    assert_eq!(f.rpc.mempool_replaceable(&txid).await.unwrap(), Some(false));
    sync(&mut w).await;
    assert_eq!(
        f.state(&z).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    let p = db.store.payments_for_order(&z.id).await.unwrap();
    assert_eq!(
        (p[0].status, p[0].confirmations),
        (PaymentStatus::Confirmed, 0)
    );
    f.mine(1).await;
    sync(&mut w).await;
    let p = db.store.payments_for_order(&z.id).await.unwrap();
    assert_eq!(
        (p[0].status, p[0].block_height.is_some()),
        (PaymentStatus::Confirmed, true)
    );
    let kinds = kinds_for(db, &zc).await;
    assert_eq!(count(&kinds, "payment.confirmed"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "order.settled"), 1, "{kinds:?}");

    // Same merchant, a payment that signals RBF: processing only, settled at one confirmation.
    let r = f.order(&zc, 25).await;
    let rbf = f.send_rbf(&r, "0.0005").await;
    assert_eq!(f.rpc.mempool_replaceable(&rbf).await.unwrap(), Some(true));
    sync(&mut w).await;
    assert_eq!(
        f.state(&r).await,
        (OrderStatus::Processing, StatusReason::None)
    );
    let p = db.store.payments_for_order(&r.id).await.unwrap();
    assert_eq!(
        (p[0].txid.clone(), p[0].status),
        (rbf.to_string(), PaymentStatus::Unconfirmed)
    );
    f.mine(1).await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&r).await,
        (OrderStatus::Settled, StatusReason::None)
    );

    // The default merchant (1 confirmation): a payment leaves the mempool without being mined
    // (evicted) → payment.reversed, the order back to pending.
    let e = f.order(&f.merchant, 25).await;
    let gone = f.send(&e, "0.0005").await;
    sync(&mut w).await;
    assert_eq!(f.state(&e).await.0, OrderStatus::Processing);
    let _: Value = f
        .rpc
        .call("evictmempooltransaction", json!([gone.to_string()]))
        .await
        .unwrap();
    assert!(!f.rpc.get_raw_mempool().await.unwrap().contains(&gone));
    sync(&mut w).await;
    assert_eq!(
        f.state(&e).await,
        (OrderStatus::Pending, StatusReason::Reversed)
    );
    let p = db.store.payments_for_order(&e.id).await.unwrap();
    assert_eq!(p[0].status, PaymentStatus::Reversed);
    // A block later, still reversed, nothing new.
    f.mine(1).await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&e).await,
        (OrderStatus::Pending, StatusReason::Reversed)
    );
    let kinds = kinds_for(db, &f.merchant).await;
    assert_eq!(count(&kinds, "payment.detected"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "payment.reversed"), 1, "{kinds:?}");

    // A new watcher (a restart) still follows a payment that is only in the mempool, and
    // notices when it is dropped while it was down.
    let g = f.order(&f.merchant, 25).await;
    let gone = f.send(&g, "0.0005").await;
    sync(&mut w).await;
    drop(w);
    let _: Value = f
        .rpc
        .call("evictmempooltransaction", json!([gone.to_string()]))
        .await
        .unwrap();
    let mut w = f.watcher();
    sync(&mut w).await;
    assert_eq!(
        f.state(&g).await,
        (OrderStatus::Pending, StatusReason::Reversed)
    );
}

async fn reorg_back_to_mempool_then_remined(db: &TestDb) {
    let f = Fixture::new(db).await;
    let mut w = f.watcher();
    sync(&mut w).await;
    let o = f.order(&f.merchant, 25).await;
    f.send(&o, "0.0005").await;
    let x = f.mine(1).await[0];
    sync(&mut w).await;
    assert_eq!(
        f.state(&o).await,
        (OrderStatus::Settled, StatusReason::None)
    );

    // The confirming block is invalidated: the transaction goes back to the mempool.
    let _: Value = f
        .rpc
        .call("invalidateblock", json!([x.to_string()]))
        .await
        .unwrap();
    sync(&mut w).await;
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].status, p[0].block_height),
        (PaymentStatus::Unconfirmed, None)
    );
    assert_eq!(f.state(&o).await.0, OrderStatus::Processing);

    // Re-mined on the new branch: settled again, the payment counted once.
    let y = f.mine(1).await[0];
    assert_ne!(x, y);
    sync(&mut w).await;
    assert_eq!(
        f.state(&o).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    let p = db.store.payments_for_order(&o.id).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].block_hash, Some(y.to_string()));
    assert_eq!(f.reload(&o).await.totals.confirmed.get(), 50_000);
    let kinds = kinds_for(db, &f.merchant).await;
    assert_eq!(count(&kinds, "payment.detected"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "payment.reversed"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "payment.confirmed"), 2, "{kinds:?}");
    let cursor = db.store.chain_cursor(&chain_id()).await.unwrap().unwrap();
    assert_eq!(cursor.hash, y.to_string());

    // A deeper reorg to a longer branch without the payment: reversed for good.
    let o2 = f.order(&f.merchant, 25).await;
    let t2 = f.send(&o2, "0.0005").await;
    let z = f.mine(2).await;
    sync(&mut w).await;
    assert_eq!(f.state(&o2).await.0, OrderStatus::Settled);
    let _: Value = f
        .rpc
        .call("invalidateblock", json!([z[0].to_string()]))
        .await
        .unwrap();
    // (If the node did not take it back into its mempool, there is nothing to evict.)
    let _ = f
        .rpc
        .call::<Value>("evictmempooltransaction", json!([t2.to_string()]))
        .await;
    f.mine(3).await;
    sync(&mut w).await;
    assert_eq!(
        f.state(&o2).await,
        (OrderStatus::Pending, StatusReason::Reversed)
    );
    let p = db.store.payments_for_order(&o2.id).await.unwrap();
    assert_eq!(p[0].status, PaymentStatus::Reversed);
}

async fn catch_up_and_node_unavailable(db: &TestDb) {
    let f = Fixture::new(db).await;
    let mut cfg = f.config();
    cfg.max_blocks_per_batch = 7;
    cfg.rpc.timeout = Duration::from_secs(1);
    let mut w = BitcoinWatcher::new(f.engine.clone(), cfg.clone()).unwrap();
    sync(&mut w).await;
    let start = db
        .store
        .chain_cursor(&chain_id())
        .await
        .unwrap()
        .unwrap()
        .height;

    // Downtime: 30 blocks with a payment in the middle, then catch up in batches of 7.
    let o = f.order(&f.merchant, 25).await;
    f.mine(10).await;
    f.send(&o, "0.0005").await;
    f.mine(20).await;
    let mut steps = 0;
    loop {
        steps += 1;
        match w.step().await.unwrap() {
            Step::Scanned { to, tip } if to < tip => {}
            _ => break,
        }
    }
    assert_eq!(steps, 5, "30 blocks in batches of 7");
    let cursor = db.store.chain_cursor(&chain_id()).await.unwrap().unwrap();
    assert_eq!(cursor.height, start + 30);
    assert_eq!(f.state(&o).await.0, OrderStatus::Settled);

    // The node stops answering mid-scan (SIGSTOP: bcoin keeps its chain in memory only, so
    // it cannot be restarted with the same chain), then resumes (SIGCONT).
    let o2 = f.order(&f.merchant, 25).await;
    f.send(&o2, "0.0005").await;
    f.mine(3).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let health = w.health();
    let task = tokio::spawn(w.run(stop_rx));
    signal(f.node.pid, "-STOP");
    let mut unavailable = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let h = health.lock().unwrap().clone();
        if !h.ok() && h.last_error.is_some() {
            unavailable = true;
            break;
        }
    }
    signal(f.node.pid, "-CONT");
    assert!(
        unavailable,
        "readiness must drop while the node does not answer"
    );
    let mut settled = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if f.state(&o2).await.0 == OrderStatus::Settled && health.lock().unwrap().ok() {
            settled = true;
            break;
        }
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    assert!(settled, "caught up after the node came back");
    let p = db.store.payments_for_order(&o2.id).await.unwrap();
    assert_eq!(p.len(), 1);
    let kinds = kinds_for(db, &f.merchant).await;
    assert_eq!(count(&kinds, "payment.detected"), 2, "{kinds:?}");
    assert_eq!(count(&kinds, "payment.confirmed"), 2, "{kinds:?}");
}

/// A deposit account's standing address (Pay Protocol's recharge user) on Bitcoin: followed
/// by the watcher with no order, the payment seen in the mempool, confirmed, taken back to the
/// mempool by a reorg (reversed) and confirmed again — one deposit all along — and a second
/// payment to the same address recorded as a second deposit.
async fn deposit_address_followed_through_a_reorg(db: &TestDb) {
    let f = Fixture::new(db).await;
    let mut w = f.watcher();
    sync(&mut w).await;
    let (account, _) = f
        .engine
        .create_deposit_account(&f.merchant, "payprotocol", "USER-BTC")
        .await
        .unwrap();
    let address = account.addresses[0].address.clone();
    assert!(address.starts_with("bcrt1q"), "{address}");
    let deposits = async || {
        db.store
            .list_deposits(&coffer_store::DepositQuery {
                merchant_id: Some(f.merchant.clone()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
    };

    let txid: Txid = f
        .wallet
        .call("sendtoaddress", json!([address, "0.0123"]))
        .await
        .unwrap();
    sync(&mut w).await;
    let d = deposits().await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].txid, txid.to_string());
    assert_eq!(d[0].amount.get(), 1_230_000);
    assert_eq!(
        (d[0].status, d[0].block_height),
        (PaymentStatus::Unconfirmed, None)
    );

    let x = f.mine(1).await[0];
    sync(&mut w).await;
    let d = deposits().await;
    assert_eq!(d[0].status, PaymentStatus::Confirmed);
    assert_eq!(d[0].block_hash, Some(x.to_string()));

    let _: Value = f
        .rpc
        .call("invalidateblock", json!([x.to_string()]))
        .await
        .unwrap();
    sync(&mut w).await;
    let d = deposits().await;
    assert_eq!(
        (d[0].status, d[0].block_height),
        (PaymentStatus::Unconfirmed, None)
    );
    let y = f.mine(1).await[0];
    sync(&mut w).await;
    let d = deposits().await;
    assert_eq!(d.len(), 1, "one deposit through the reorg");
    assert_eq!(d[0].status, PaymentStatus::Confirmed);
    assert_eq!(d[0].block_hash, Some(y.to_string()));
    let kinds = kinds_for(db, &f.merchant).await;
    assert_eq!(count(&kinds, "deposit.detected"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "deposit.confirmed"), 2, "{kinds:?}");
    assert_eq!(count(&kinds, "deposit.reversed"), 1, "{kinds:?}");

    // The same address paid again: a second deposit.
    let _: Txid = f
        .wallet
        .call("sendtoaddress", json!([address, "0.5"]))
        .await
        .unwrap();
    f.mine(1).await;
    sync(&mut w).await;
    let d = deposits().await;
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].amount.get(), 50_000_000);
    assert_eq!(d[0].status, PaymentStatus::Confirmed);
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

both_backends! {
    deposit_address => deposit_address_followed_through_a_reorg;
    exact_two_orders_partial => exact_two_orders_and_partial;
    zero_conf_and_drop => zero_conf_and_mempool_drop;
    reorg => reorg_back_to_mempool_then_remined;
    catch_up_and_unavailable => catch_up_and_node_unavailable;
}
