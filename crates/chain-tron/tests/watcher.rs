#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The TRON watcher against a local HTTP server serving a scripted chain in java-tron's
//! documented JSON (`coffer_chain_tron::scripted`; no TRON node installs here), through the
//! real engine, on SQLite and PostgreSQL: exact, partial, over and late payments, TRX, failed
//! (REVERT, OUT_OF_ENERGY) transfers not counted, TRX / TRC-10 / unknown TRC-20 sent to a
//! USDT order recorded and flagged, "processing" before solidification and settlement at it,
//! a block replaced below the solidified head and one dropped before solidification, a node
//! that is down, failover to the second URL, the API-key header.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use coffer_chain_tron::scripted::{Outcome, ScriptedChain, ScriptedTx};
use coffer_chain_tron::{TronAddress, TronMethod, TronRailChain, TronWatcher, USDT_MAINNET};
use coffer_core::{
    AssetId, ChainKind, FixedRates, MatchStatus, MerchantId, Order, OrderStatus, PaymentStatus,
    Price, StatusReason,
};
use coffer_engine::{AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder};
use coffer_rail::{RailChain, Step, WatchError};
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;

/// m/44'/195'/0' of the mnemonic "abandon … about" (tests/tron_reference.py computes it).
const XPUB: &str = "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd";
/// Mainnet's genesis id ends with these 4 bytes: the preset's network check passes.
const MAINNET_GENESIS: &str = "2b6653dc";

fn addr(s: &str) -> TronAddress {
    s.parse().unwrap()
}

fn usdt() -> TronAddress {
    addr(USDT_MAINNET)
}

fn payer() -> TronAddress {
    addr("TPL66VK2gCXNCD7EJg9pgJRfqcRazjhUZY")
}

struct Fx {
    chain: ScriptedChain,
    rail: TronRailChain,
    engine: Engine,
    merchant: MerchantId,
    _server: tokio::task::JoinHandle<()>,
}

fn rail_chain(rpc: &[String], extra: &str) -> TronRailChain {
    let rpc: Vec<String> = rpc.iter().map(|u| format!("{u:?}")).collect();
    let text = format!(
        "id = \"tron\"\nkind = \"tron\"\nrpc = [{}]\npoll_interval = \"10ms\"\n{extra}",
        rpc.join(", ")
    );
    TronRailChain::parse(0, &toml::from_str(&text).unwrap()).unwrap()
}

fn engine(db: &TestDb, rail: &TronRailChain) -> Engine {
    let dec = |s: &str| Price::new(Decimal::from_str(s).unwrap()).unwrap();
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new().with("TRX", "USD", dec("0.25")).with(
            "USDT",
            "USD",
            dec("1"),
        )),
        assets: Arc::new(AssetRegistry::new(vec![rail.chain()], rail.assets()).unwrap()),
        methods: Methods::default().with(ChainKind::Tron, Arc::new(TronMethod)),
        clock: Arc::new(coffer_engine::SystemClock),
        settings: Arc::new(EngineSettings::default()),
    })
}

impl Fx {
    async fn new(db: &TestDb) -> Self {
        Self::with(db, |url| vec![url.to_owned()], "").await
    }

    async fn with(db: &TestDb, urls: impl Fn(&str) -> Vec<String>, extra: &str) -> Self {
        let chain = ScriptedChain::new(MAINNET_GENESIS);
        chain.mine_empty(5);
        chain.solidify(5);
        let (url, server) = chain.serve().await.unwrap();
        let rail = rail_chain(&urls(&url), extra);
        let engine = engine(db, &rail);
        let (m, _) = engine.create_merchant("Shop").await.unwrap();
        engine.set_wallet(&m.id, "tron", XPUB).await.unwrap();
        Self {
            chain,
            rail,
            engine,
            merchant: m.id,
            _server: server,
        }
    }

    fn watcher(&self) -> TronWatcher {
        TronWatcher::new(
            self.engine.clone(),
            self.rail.watch_config().unwrap().unwrap(),
        )
        .unwrap()
    }

    async fn order(&self, usd: &str, symbol: &str) -> Order {
        self.engine
            .create_order(
                &self.merchant,
                NewOrder {
                    amount: Decimal::from_str(usd).unwrap(),
                    currency: "USD".into(),
                    asset: Some(AssetId::from_str(&format!("tron:{symbol}")).unwrap()),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order
    }

    async fn state(&self, o: &Order) -> (OrderStatus, StatusReason) {
        let o = self.engine.get_order(&o.merchant_id, &o.id).await.unwrap();
        (o.state.status, o.state.reason)
    }

    /// Mine `txs` in a block, then `behind` more, solidifying all but the newest `behind`.
    fn mine_solid_behind(&self, txs: Vec<ScriptedTx>, behind: u64) -> (u64, Vec<String>) {
        let mined = self.chain.mine(txs);
        self.chain.mine_empty(behind);
        self.chain.solidify_behind(behind);
        mined
    }
}

fn to(o: &Order) -> TronAddress {
    addr(&o.target.as_ref().unwrap().address)
}

fn due(o: &Order) -> u128 {
    o.target.as_ref().unwrap().amount_due.get()
}

/// Step until idle at the solidified head.
async fn sync(w: &mut TronWatcher) {
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

async fn payments(db: &TestDb, o: &Order) -> Vec<coffer_core::Payment> {
    db.store.payments_for_order(&o.id).await.unwrap()
}

async fn exact_partial_over_and_trx(db: &TestDb) {
    let f = Fx::new(db).await;
    let mut w = f.watcher();
    sync(&mut w).await;
    assert_eq!(w.health().lock().unwrap().tip, Some(5));

    // Exact USDT, seen 18 blocks before solidification: processing, then settled.
    let a = f.order("12.5", "USDT").await;
    assert!(a.target.as_ref().unwrap().address.starts_with('T'));
    assert_eq!(due(&a), 12_500_000);
    let (height, txids) =
        f.mine_solid_behind(vec![ScriptedTx::trc20(usdt(), payer(), to(&a), due(&a))], 0);
    f.chain.mine_empty(18);
    f.chain.solidify(height - 1);
    sync(&mut w).await;
    assert_eq!(
        f.state(&a).await,
        (OrderStatus::Processing, StatusReason::None)
    );
    let p = payments(db, &a).await;
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].status, p[0].block_height),
        (PaymentStatus::Unconfirmed, None)
    );
    assert_eq!(p[0].txid, txids[0]);
    assert_eq!(
        p[0].from_address.as_deref(),
        Some("TPL66VK2gCXNCD7EJg9pgJRfqcRazjhUZY")
    );
    f.chain.solidify(height);
    sync(&mut w).await;
    assert_eq!(
        f.state(&a).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    let p = payments(db, &a).await;
    assert_eq!(p.len(), 1, "the processing payment is the one confirmed");
    assert_eq!(p[0].status, PaymentStatus::Confirmed);
    assert_eq!(p[0].block_height, Some(height));
    assert_eq!(p[0].block_hash, f.chain.block_id(height));
    assert_eq!(p[0].amount.get(), 12_500_000);

    // Partial (60 %), then the rest in a later block.
    let b = f.order("10", "USDT").await;
    f.mine_solid_behind(
        vec![ScriptedTx::trc20(usdt(), payer(), to(&b), due(&b) * 6 / 10)],
        0,
    );
    sync(&mut w).await;
    assert_eq!(
        f.state(&b).await,
        (OrderStatus::Pending, StatusReason::PaidPartial)
    );
    f.mine_solid_behind(
        vec![ScriptedTx::trc20(usdt(), payer(), to(&b), due(&b) * 4 / 10)],
        0,
    );
    sync(&mut w).await;
    assert_eq!(
        f.state(&b).await,
        (OrderStatus::Settled, StatusReason::None)
    );

    // Over (110 %), and TRX (5 USD at 0.25 = 20 TRX = 20,000,000 sun), in one block with a
    // batch transfer paying two orders from one transaction.
    let c = f.order("10", "USDT").await;
    let d = f.order("5", "TRX").await;
    assert_eq!(due(&d), 20_000_000);
    let e = f.order("3", "USDT").await;
    let g = f.order("4", "USDT").await;
    f.mine_solid_behind(
        vec![
            ScriptedTx::trc20(usdt(), payer(), to(&c), due(&c) * 11 / 10),
            ScriptedTx::trx(payer(), to(&d), 20_000_000),
            ScriptedTx::Trc20 {
                caller: payer(),
                contract: usdt(),
                transfers: vec![(payer(), to(&e), due(&e)), (payer(), to(&g), due(&g))],
                outcome: Outcome::Success,
            },
        ],
        0,
    );
    sync(&mut w).await;
    assert_eq!(
        f.state(&c).await,
        (OrderStatus::Settled, StatusReason::PaidOver)
    );
    assert_eq!(
        f.state(&d).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    assert_eq!(
        f.state(&e).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    assert_eq!(
        f.state(&g).await,
        (OrderStatus::Settled, StatusReason::None)
    );
    let (pe, pg) = (payments(db, &e).await, payments(db, &g).await);
    assert_eq!(pe[0].txid, pg[0].txid);
    assert_ne!(pe[0].output_index, pg[0].output_index);

    // More blocks and polls count nothing twice.
    f.mine_solid_behind(Vec::new(), 3);
    sync(&mut w).await;
    sync(&mut w).await;
    for o in [&a, &b, &c, &d, &e, &g] {
        let n = if o.id == b.id { 2 } else { 1 };
        assert_eq!(payments(db, o).await.len(), n);
    }
}

async fn failed_and_foreign_transfers(db: &TestDb) {
    let f = Fx::new(db).await;
    let mut w = f.watcher();
    sync(&mut w).await;
    let o = f.order("7", "USDT").await;
    // Failed transfers of the full amount, carrying their Transfer events: not counted.
    f.mine_solid_behind(
        vec![
            ScriptedTx::trc20_failed(usdt(), payer(), to(&o), due(&o), Outcome::Revert),
            ScriptedTx::trc20_failed(usdt(), payer(), to(&o), due(&o), Outcome::OutOfEnergy),
            ScriptedTx::Trx {
                from: payer(),
                to: to(&o),
                sun: 1_000_000,
                outcome: Outcome::Revert,
            },
        ],
        0,
    );
    sync(&mut w).await;
    assert_eq!(
        f.state(&o).await,
        (OrderStatus::Pending, StatusReason::None)
    );
    assert!(payments(db, &o).await.is_empty());

    // TRX, a TRC-10 token and an unconfigured TRC-20 (a counterfeit "USDT") to the USDT
    // order's address: recorded, flagged as the wrong asset, not counted.
    let fake = addr("THk5qH79SoAaUnUh8JVdRarSESTZpqPjSQ");
    f.mine_solid_behind(
        vec![
            ScriptedTx::trx(payer(), to(&o), 3_000_000),
            ScriptedTx::Trc10 {
                from: payer(),
                to: to(&o),
                token_id: "1002000".into(),
                amount: 500,
            },
            ScriptedTx::trc20(fake, payer(), to(&o), due(&o)),
        ],
        0,
    );
    sync(&mut w).await;
    assert_eq!(
        f.state(&o).await,
        (OrderStatus::Pending, StatusReason::None)
    );
    let mut got: Vec<(String, MatchStatus, u128)> = payments(db, &o)
        .await
        .into_iter()
        .map(|p| (p.asset.to_string(), p.match_status, p.amount.get()))
        .collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    let fake_symbol = format!("tron:TRC20.{}", hex::encode_upper(&fake.account()[..5]));
    let mut want = vec![
        (
            "tron:TRC10.1002000".to_owned(),
            MatchStatus::WrongAsset,
            500,
        ),
        ("tron:TRX".to_owned(), MatchStatus::WrongAsset, 3_000_000),
        (fake_symbol, MatchStatus::WrongAsset, due(&o)),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got, want);

    // The real USDT still settles it.
    f.mine_solid_behind(vec![ScriptedTx::trc20(usdt(), payer(), to(&o), due(&o))], 0);
    sync(&mut w).await;
    assert_eq!(
        f.state(&o).await,
        (OrderStatus::Settled, StatusReason::None)
    );
}

async fn paid_late(db: &TestDb) {
    let f = Fx::new(db).await;
    let mut w = f.watcher();
    sync(&mut w).await;
    let o = f.order("4", "USDT").await;
    // Mined after the rate lock expired (inside the monitoring window).
    let late = o.expires_at - f.engine.now() + time::Duration::seconds(60);
    f.chain
        .advance_clock(i64::try_from(late.whole_milliseconds()).unwrap());
    f.mine_solid_behind(vec![ScriptedTx::trc20(usdt(), payer(), to(&o), due(&o))], 0);
    sync(&mut w).await;
    assert_eq!(
        f.state(&o).await,
        (OrderStatus::Settled, StatusReason::PaidLate)
    );
    assert!(payments(db, &o).await[0].late);
}

/// A block replaced below the solidified head (a real chain never does this; the common
/// watcher's walk-back is what it exercises): the payment is reversed, and counted once when
/// it is mined again. Then a transfer seen in a block that is dropped before it solidifies:
/// reported, then reversed.
async fn replaced_blocks(db: &TestDb) {
    let f = Fx::new(db).await;
    let mut w = f.watcher();
    sync(&mut w).await;
    let o = f.order("9", "USDT").await;
    let pay = || vec![ScriptedTx::trc20(usdt(), payer(), to(&o), due(&o))];
    let (height, _) = f.mine_solid_behind(pay(), 0);
    f.chain.mine_empty(2);
    f.chain.solidify_behind(0);
    sync(&mut w).await;
    assert_eq!(
        f.state(&o).await,
        (OrderStatus::Settled, StatusReason::None)
    );

    f.chain.reorg_from(height);
    f.chain.mine_empty(4);
    f.chain.solidify_behind(0);
    sync(&mut w).await;
    let p = payments(db, &o).await;
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].status, PaymentStatus::Reversed);
    assert_ne!(f.state(&o).await.0, OrderStatus::Settled);

    f.mine_solid_behind(pay(), 0);
    sync(&mut w).await;
    assert_eq!(f.state(&o).await.0, OrderStatus::Settled);
    let p = payments(db, &o).await;
    let confirmed: Vec<_> = p
        .iter()
        .filter(|p| p.status == PaymentStatus::Confirmed)
        .collect();
    assert_eq!(confirmed.len(), 1);

    // Seen above the solidified head, then that block is replaced before it solidifies.
    let q = f.order("6", "USDT").await;
    let (h, txids) = f
        .chain
        .mine(vec![ScriptedTx::trc20(usdt(), payer(), to(&q), due(&q))]);
    f.chain.mine_empty(3);
    sync(&mut w).await;
    assert_eq!(f.state(&q).await.0, OrderStatus::Processing);
    f.chain.reorg_from(h);
    f.chain.mine_empty(5);
    f.chain.solidify(h + 1);
    sync(&mut w).await;
    let p = payments(db, &q).await;
    assert_eq!((p.len(), p[0].txid.as_str()), (1, txids[0].as_str()));
    assert_eq!(p[0].status, PaymentStatus::Reversed);
    assert_eq!(
        f.state(&q).await,
        (OrderStatus::Pending, StatusReason::Reversed)
    );
}

/// A node that does not answer: the first URL is closed, so every call fails over to the
/// second (which wants the API key); then the second goes down too (unreachable, nothing
/// lost) and comes back.
async fn failover_and_unreachable(db: &TestDb) {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let f = Fx::with(
        db,
        |url| vec![closed.clone(), url.to_owned()],
        "api_key = \"key-1\"\nrpc_timeout = \"2s\"\n",
    )
    .await;
    f.chain.require_api_key("key-1");
    let mut w = f.watcher();
    sync(&mut w).await;
    let o = f.order("5", "USDT").await;
    f.mine_solid_behind(vec![ScriptedTx::trc20(usdt(), payer(), to(&o), due(&o))], 0);
    sync(&mut w).await;
    assert_eq!(f.state(&o).await.0, OrderStatus::Settled);

    let p = f.order("5", "USDT").await;
    f.chain.set_down(true);
    f.mine_solid_behind(vec![ScriptedTx::trc20(usdt(), payer(), to(&p), due(&p))], 0);
    let err = w.step().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    {
        let h = w.health();
        let h = h.lock().unwrap();
        assert!(h.unreachable);
        assert!(!err.to_string().contains("key-1"));
    }
    assert_eq!(f.state(&p).await.0, OrderStatus::Pending);
    f.chain.set_down(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    sync(&mut w).await;
    assert_eq!(f.state(&p).await.0, OrderStatus::Settled);
    assert!(!w.health().lock().unwrap().unreachable);

    // A wrong key is refused by the node: the watcher reports the failure, nothing is paid,
    // and the key is in no message.
    let wrong = rail_chain(&[f.chain.serve().await.unwrap().0], "api_key = \"key-2\"\n");
    let mut w2 =
        TronWatcher::new(f.engine.clone(), wrong.watch_config().unwrap().unwrap()).unwrap();
    let err = w2.step().await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("key-"), "{err}");
}

/// A node on another network (its genesis block is not mainnet's) is refused at start.
async fn wrong_network_refused(db: &TestDb) {
    let chain = ScriptedChain::new("cd8690dc");
    let (url, _server) = chain.serve().await.unwrap();
    let rail = rail_chain(&[url], "");
    let engine = engine(db, &rail);
    let w = TronWatcher::new(engine, rail.watch_config().unwrap().unwrap()).unwrap();
    let err = w.check().await.unwrap_err();
    assert!(
        matches!(err, coffer_rail::SourceError::Mismatch(_)),
        "{err}"
    );
}

both_backends! {
    exact_partial_over_and_trx => exact_partial_over_and_trx;
    failed_and_foreign_transfers => failed_and_foreign_transfers;
    paid_late => paid_late;
    replaced_blocks => replaced_blocks;
    failover_and_unreachable => failover_and_unreachable;
    wrong_network_refused => wrong_network_refused;
}
