//! The payment-method seam from the engine's side, with a method unlike the address rails: an
//! invoice prepared per order (no wallet, no derivation index), details kept with the order,
//! its own URI scheme, policies and confirmation rule. The engine must need nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::{
    Asset, AssetId, AssetKind, BaseUnits, Chain, ChainId, ChainKind, FixedRates, Network,
    OrderStatus, PaymentStatus, PaymentTarget, Price,
};
use coffer_engine::{
    AssetRegistry, BlockRef, ChainBatch, Engine, EngineError, EngineParts, EngineSettings,
    ManualClock, Methods, NewOrder, ObservedTransfer, PaymentMethod, PreparedTarget, TargetRequest,
};
use coffer_testkit::fixtures;
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;
use time::macros::datetime;

/// Prepares an "invoice" for the amount due, named after the order.
struct InvoiceMethod;

#[async_trait]
impl PaymentMethod for InvoiceMethod {
    fn normalize_wallet(&self, _chain: &Chain, _descriptor: &str) -> Result<String, EngineError> {
        Err(EngineError::invalid(
            "invalid_wallet",
            "xpub",
            "invoices need no wallet",
        ))
    }

    fn uses_wallet_index(&self) -> bool {
        false
    }

    async fn prepare_target(&self, req: TargetRequest<'_>) -> Result<PreparedTarget, EngineError> {
        assert!(req.wallet.is_none(), "no wallet index for an invoice");
        tokio::task::yield_now().await; // I/O happens here in a real rail
        let mut details = serde_json::Map::new();
        details.insert("payment_hash".into(), format!("h-{}", req.order.id).into());
        details.insert("amount".into(), req.amount_due.to_string().into());
        Ok(PreparedTarget {
            address: format!("inv-{}-{}", req.order.id, req.asset.id),
            derivation: None,
            details,
        })
    }

    fn payment_uri(
        &self,
        _chain: &Chain,
        _asset: &Asset,
        target: &PaymentTarget,
    ) -> Option<String> {
        Some(format!("lightning:{}", target.address))
    }

    fn check_confirmations(&self, _chain: &Chain, n: u32) -> Result<(), String> {
        if n == 0 {
            Ok(())
        } else {
            Err("invoices settle at once: confirmations must be 0".into())
        }
    }

    /// Paid is final.
    fn is_confirmed(&self, _required: u32, _confirmations: u32, _replaceable: bool) -> bool {
        true
    }
}

fn engine(db: &TestDb) -> Engine {
    let ln = Chain {
        id: ChainId::parse("ln").unwrap(),
        kind: ChainKind::Lightning,
        network: Network::Mainnet,
        name: "Lightning".into(),
        confirmations: 0,
        evm_chain_id: None,
    };
    let assets = AssetRegistry::new(
        vec![ln, fixtures::bsc(15)],
        vec![
            fixtures::asset("ln", "BTC", AssetKind::Native, 8, false),
            fixtures::asset("bsc", "BNB", AssetKind::Native, 18, false),
        ],
    )
    .unwrap();
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new().with(
            "BTC",
            "USD",
            Price::new(Decimal::from(50_000)).unwrap(),
        )),
        assets: Arc::new(assets),
        methods: Methods::default()
            .with(ChainKind::Lightning, Arc::new(InvoiceMethod))
            .with(ChainKind::Evm, fixtures::TestDeriver::dashed().evm()),
        clock: Arc::new(ManualClock::new(datetime!(2026-05-01 10:00 UTC))),
        settings: Arc::new(EngineSettings::default()),
    })
}

async fn an_invoice_method_plugs_in_without_a_wallet(db: &TestDb) {
    let e = engine(db);
    let (m, _) = e.create_merchant("shop").await.unwrap();
    let asset = AssetId::from_str("ln:BTC").unwrap();
    let o = e
        .create_order(
            &m.id,
            NewOrder {
                amount: Decimal::from(10),
                currency: "USD".into(),
                asset: Some(asset.clone()),
                dialect: "native".into(),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    // No wallet was set: the method needs none, and no index was taken.
    assert!(e.list_wallets(&m.id).await.unwrap().is_empty());
    let t = o.target.clone().unwrap();
    assert_eq!(t.address, format!("inv-{}-ln:BTC", o.id));
    assert_eq!(
        (t.amount_due, t.derivation.clone()),
        (BaseUnits::new(20_000), None)
    );
    assert_eq!(t.details["payment_hash"], format!("h-{}", o.id));
    assert_eq!(t.details["amount"], "20000");
    // Kept with the order.
    assert_eq!(e.get_order(&m.id, &o.id).await.unwrap(), o);
    // The method's URI, also in the order object.
    let uri = format!("lightning:inv-{}-ln:BTC", o.id);
    assert_eq!(e.payment_uri(&t).as_deref(), Some(uri.as_str()));
    assert_eq!(
        coffer_engine::view::order_json(&o, &e)["payment"]["payment_uri"],
        uri
    );
    // Its wallets, policies and gap limit are its own.
    let err = e.set_wallet(&m.id, "ln", "xpub…").await.unwrap_err();
    assert_eq!(err.code(), "invalid_wallet");
    let err = e
        .set_chain_confirmations(&m.id, "ln", Some(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("settle at once"), "{err}");
    e.set_chain_confirmations(&m.id, "ln", Some(0))
        .await
        .unwrap();
    assert!(
        e.set_chain_confirmations(&m.id, "bsc", Some(0))
            .await
            .is_err()
    );
    assert_eq!(
        e.wallet_gap(&m.id, &ChainId::parse("ln").unwrap())
            .await
            .unwrap(),
        None
    );

    // Its confirmation rule: paid, seen outside any block, is settled.
    let paid = ObservedTransfer {
        asset,
        to: t.address.clone(),
        amount: t.amount_due,
        txid: "h".into(),
        index: 0,
        from: None,
        block: None::<BlockRef>,
    };
    let applied = e
        .apply_chain_batch(&ChainBatch {
            chain: ChainId::parse("ln").unwrap(),
            transfers: vec![paid],
            orphaned_from: None,
            tip: 0,
            cursor: None,
            dropped_txids: vec![],
            non_replaceable_txids: vec![],
        })
        .await
        .unwrap();
    assert_eq!((applied.detected, applied.confirmed), (1, 1));
    let settled = e.get_order(&m.id, &o.id).await.unwrap();
    assert_eq!(settled.state.status, OrderStatus::Settled);
    let payments = e.order_payments(&m.id, &o.id).await.unwrap();
    assert_eq!(
        (payments[0].status, payments[0].confirmations),
        (PaymentStatus::Confirmed, 0)
    );
}

both_backends! {
    an_invoice_method_plugs_in_without_a_wallet => an_invoice_method_plugs_in_without_a_wallet;
}
