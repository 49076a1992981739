//! Engines over a test database for the tests of every crate above the engine: a
//! deterministic stand-in for key derivation over a real payment method, ready-made chains
//! and assets, the BSC shop the dialect tests share, and the transfers and batches a watcher
//! would report. (The real derivers live in the chain crates and are tested against
//! published vectors there.)

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::order::Derivation;
use coffer_core::{
    Asset, AssetId, AssetKind, BaseUnits, Chain, ChainId, ChainKind, Decimals, FixedRates, Network,
    PaymentTarget, Price,
};
use coffer_engine::{
    AssetRegistry, BlockRef, ChainBatch, Clock, Engine, EngineError, EngineParts, EngineSettings,
    Methods, ObservedTransfer, PaymentMethod, PreparedTarget, SystemClock, TargetRequest,
};
use coffer_store::ChainCursor;
use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::TestDb;

/// Derives `address(descriptor, index)` at path `m/0/{index}`; with [`TestDeriver::xpub_only`]
/// a descriptor not starting with `xpub` is refused as `invalid_wallet` (field `xpub`). It
/// stands in for a real method's derivation only ([`TestDeriver::over`]): payment URIs,
/// confirmation rules and the gap limit stay the real method's.
#[derive(Debug, Clone, Copy)]
pub struct TestDeriver {
    xpub_only: bool,
    address: fn(&str, u32) -> String,
}

impl TestDeriver {
    pub fn new(address: fn(&str, u32) -> String) -> Self {
        Self {
            xpub_only: false,
            address,
        }
    }

    /// `0x` + descriptor + index in hex, 40 hex digits for a two-character descriptor: looks
    /// like an EVM address (the dialect tests).
    pub fn evm_like() -> Self {
        Self::new(|d, i| format!("0x{d}{i:038x}"))
    }

    /// `descriptor-index`.
    pub fn dashed() -> Self {
        Self::new(|d, i| format!("{d}-{i}"))
    }

    /// Refuse descriptors that do not start with `xpub`.
    pub fn xpub_only(mut self) -> Self {
        self.xpub_only = true;
        self
    }

    /// `base` (a chain's real payment method) with this stand-in's wallets and addresses.
    pub fn over(self, base: Arc<dyn PaymentMethod>) -> Arc<dyn PaymentMethod> {
        Arc::new(StandIn {
            deriver: self,
            base,
        })
    }

    /// The EVM payment method with this stand-in's wallets and addresses.
    pub fn evm(self) -> Arc<dyn PaymentMethod> {
        self.over(Arc::new(coffer_chain_evm::EvmMethod))
    }

    fn target(&self, descriptor: &str, index: u32) -> PreparedTarget {
        PreparedTarget {
            address: (self.address)(descriptor, index),
            derivation: Some(Derivation {
                index,
                path: format!("m/0/{index}"),
            }),
            details: Default::default(),
        }
    }
}

/// A real method whose wallets and addresses come from a [`TestDeriver`].
struct StandIn {
    deriver: TestDeriver,
    base: Arc<dyn PaymentMethod>,
}

#[async_trait]
impl PaymentMethod for StandIn {
    fn normalize_wallet(&self, _chain: &Chain, descriptor: &str) -> Result<String, EngineError> {
        if self.deriver.xpub_only && !descriptor.starts_with("xpub") {
            return Err(EngineError::invalid(
                "invalid_wallet",
                "xpub",
                "not an xpub",
            ));
        }
        Ok(descriptor.to_owned())
    }

    async fn prepare_target(&self, req: TargetRequest<'_>) -> Result<PreparedTarget, EngineError> {
        let (descriptor, index) = req.wallet_index()?;
        Ok(self.deriver.target(descriptor, index))
    }

    fn standing_address(
        &self,
        _chain: &Chain,
        descriptor: &str,
        index: u32,
    ) -> Result<PreparedTarget, EngineError> {
        Ok(self.deriver.target(descriptor, index))
    }

    fn payment_uri(&self, chain: &Chain, asset: &Asset, target: &PaymentTarget) -> Option<String> {
        self.base.payment_uri(chain, asset, target)
    }

    fn check_confirmations(&self, chain: &Chain, n: u32) -> Result<(), String> {
        self.base.check_confirmations(chain, n)
    }

    fn is_confirmed(&self, required: u32, confirmations: u32, replaceable: bool) -> bool {
        self.base.is_confirmed(required, confirmations, replaceable)
    }

    fn has_gap_limit(&self) -> bool {
        self.base.has_gap_limit()
    }
}

/// BNB Smart Chain (mainnet, EVM chain id 56) asking for `confirmations`.
pub fn bsc(confirmations: u32) -> Chain {
    Chain {
        id: ChainId::parse("bsc").unwrap_or_else(|e| panic!("{e}")),
        kind: ChainKind::Evm,
        network: Network::Mainnet,
        name: "BNB Smart Chain".into(),
        confirmations,
        evm_chain_id: Some(56),
    }
}

/// `chain:symbol` with `decimals` (shown with 6), a USD stablecoin if `stable`.
pub fn asset(chain: &str, symbol: &str, kind: AssetKind, decimals: u8, stable: bool) -> Asset {
    Asset {
        id: AssetId::from_str(&format!("{chain}:{symbol}")).unwrap_or_else(|e| panic!("{e}")),
        kind,
        decimals: Decimals::new(decimals).unwrap_or_else(|e| panic!("{e}")),
        display_decimals: 6,
        usd_stablecoin: stable,
    }
}

/// A token asset kind at `contract`.
pub fn token(contract: &str) -> AssetKind {
    AssetKind::Token {
        contract: contract.into(),
    }
}

/// An engine over the test's database with these assets, rates, EVM deriver and clock.
pub fn engine(
    db: &TestDb,
    assets: AssetRegistry,
    rates: FixedRates,
    deriver: TestDeriver,
    clock: Arc<dyn Clock>,
) -> Engine {
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(rates),
        assets: Arc::new(assets),
        methods: Methods::default().with(ChainKind::Evm, deriver.evm()),
        clock,
        settings: Arc::new(EngineSettings::default()),
    })
}

/// The shop of the dialect tests: BSC (1 confirmation) with BNB and USDT (BSC's real USDT
/// contract; both 6 decimals here), USDT = 1 USD and BNB = 600 USD, EVM-like test addresses,
/// on `clock`.
pub fn bsc_shop_engine(db: &TestDb, clock: Arc<dyn Clock>) -> Engine {
    let assets = AssetRegistry::new(
        vec![bsc(1)],
        vec![
            asset("bsc", "BNB", AssetKind::Native, 6, false),
            asset(
                "bsc",
                "USDT",
                token("0x55d398326f99059fF775485246999027B3197955"),
                6,
                true,
            ),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let price = |p: Decimal| Price::new(p).unwrap_or_else(|e| panic!("{e}"));
    let rates = FixedRates::new()
        .with("USDT", "USD", price(Decimal::ONE))
        .with("BNB", "USD", price(Decimal::from(600)));
    engine(db, assets, rates, TestDeriver::evm_like(), clock)
}

/// [`bsc_shop_engine`] on the system clock.
pub fn bsc_shop_engine_now(db: &TestDb) -> Engine {
    bsc_shop_engine(db, Arc::new(SystemClock))
}

/// Serve `app` on a free loopback port; answers its base URL (`http://127.0.0.1:PORT`).
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A transfer of `amount` of `asset` to `to` (output or log index 0, no sender), mined in
/// block `height` (hash `0xb{height}`) at `time`: what a watcher reports.
pub fn mined(
    asset: AssetId,
    to: impl Into<String>,
    amount: BaseUnits,
    txid: &str,
    height: u64,
    time: OffsetDateTime,
) -> ObservedTransfer {
    ObservedTransfer {
        asset,
        to: to.into(),
        amount,
        txid: txid.into(),
        index: 0,
        from: None,
        block: Some(BlockRef {
            height,
            hash: format!("0xb{height}"),
            time,
        }),
    }
}

/// Pay `order`'s target in full from `from` (transaction `0xfeed`, block 10, the tip), as a
/// watcher of its chain would report it.
pub async fn pay_in_full(engine: &Engine, order: &coffer_core::Order, from: &str) {
    let target = order
        .target
        .as_ref()
        .unwrap_or_else(|| panic!("order {} has no target", order.id));
    let transfer = ObservedTransfer {
        from: Some(from.into()),
        ..mined(
            target.asset.clone(),
            target.address.clone(),
            target.amount_due,
            "0xfeed",
            10,
            engine.now(),
        )
    };
    engine
        .apply_chain_batch(&batch(target.asset.chain().as_str(), vec![transfer], 10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The batch a watcher of `chain` hands over after seeing `transfers` with the tip at `tip`
/// (no reorg, nothing dropped), moving its cursor to the tip.
pub fn batch(chain: &str, transfers: Vec<ObservedTransfer>, tip: u64) -> ChainBatch {
    let chain = ChainId::parse(chain).unwrap_or_else(|e| panic!("{e}"));
    let hash = format!("0xb{tip}");
    ChainBatch {
        chain: chain.clone(),
        transfers,
        orphaned_from: None,
        tip,
        cursor: Some(ChainCursor {
            chain,
            height: tip,
            hash: hash.clone(),
            recent: vec![(tip, hash)],
            updated_at: OffsetDateTime::now_utc(),
        }),
        dropped_txids: Vec::new(),
        non_replaceable_txids: Vec::new(),
    }
}

/// A reorganisation round trip on the BSC shop ([`bsc_shop_engine`], one confirmation): a new
/// merchant's order for 10 USD in USDT, created as `dialect` would with a `callback_url`, is
/// paid in full in block `n` and settles; a reorganisation orphans block `n` and the payment
/// is reversed; the same transaction is mined again in block `n + 1` and the order settles
/// again (`n` lies past the chain's cursor, so calls can follow one another on one database).
/// Answers the order and every event of its merchant, oldest first.
pub async fn settle_reorg_resettle(
    db: &TestDb,
    engine: &Engine,
    dialect: &str,
) -> (coffer_core::Order, Vec<coffer_core::Event>) {
    let fail = |e: EngineError| -> ! { panic!("{e}") };
    let (merchant, _) = engine
        .create_merchant("reorg shop")
        .await
        .unwrap_or_else(|e| fail(e));
    engine
        .set_wallet(&merchant.id, "bsc", &format!("w{}", merchant.id))
        .await
        .unwrap_or_else(|e| fail(e));
    let order = engine
        .create_order(
            &merchant.id,
            coffer_engine::NewOrder {
                amount: Decimal::from(10),
                currency: "USD".into(),
                asset: Some(AssetId::from_str("bsc:USDT").unwrap_or_else(|e| panic!("{e}"))),
                links: coffer_core::order::OrderLinks {
                    callback_url: Some("https://shop.example/callback".into()),
                    ..Default::default()
                },
                dialect: dialect.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| fail(e))
        .order;
    let target = order
        .target
        .clone()
        .unwrap_or_else(|| panic!("the order has no address"));
    let at = OffsetDateTime::now_utc();
    let chain = ChainId::parse("bsc").unwrap_or_else(|e| panic!("{e}"));
    let n = db
        .store
        .chain_cursor(&chain)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .map_or(10, |c| c.height + 10);
    let txid = format!("0xfeed{}", order.id);
    let pay = |height| {
        mined(
            target.asset.clone(),
            target.address.clone(),
            target.amount_due,
            &txid,
            height,
            at,
        )
    };
    let apply = |b: ChainBatch| async move {
        engine
            .apply_chain_batch(&b)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    apply(batch("bsc", vec![pay(n)], n)).await;
    let mut orphaned = batch("bsc", Vec::new(), n);
    orphaned.orphaned_from = Some(n);
    apply(orphaned).await;
    apply(batch("bsc", vec![pay(n + 1)], n + 1)).await;
    let events = db
        .store
        .list_events(&coffer_store::EventQuery {
            merchant_id: Some(order.merchant_id.clone()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|e| e.event)
        .collect();
    (order, events)
}
