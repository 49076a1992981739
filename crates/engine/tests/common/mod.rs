//! The fixture shared by the chain-batch tests (payments, payouts): one BSC chain with USDT
//! and USDC, a deterministic address deriver, a manual clock, and helpers that build orders,
//! observed transfers and batches.

#![allow(dead_code)] // each test binary uses its own subset

use std::str::FromStr;
use std::sync::Arc;

use coffer_core::{AssetId, AssetKind, BaseUnits, ChainId, FixedRates, Order};
use coffer_engine::{
    AssetRegistry, BlockRef, ChainBatch, Engine, ManualClock, NewOrder, ObservedTransfer,
};
use coffer_store::ChainCursor;
use coffer_testkit::{TestDb, fixtures};
use rust_decimal::Decimal;
use time::macros::datetime;

pub fn chain() -> ChainId {
    ChainId::parse("bsc").unwrap()
}

pub fn asset(s: &str) -> AssetId {
    AssetId::from_str(&format!("bsc:{s}")).unwrap()
}

pub fn engine(db: &TestDb) -> (Engine, Arc<ManualClock>) {
    let assets = AssetRegistry::new(
        vec![fixtures::bsc(3)],
        vec![
            fixtures::asset("bsc", "BNB", AssetKind::Native, 6, true),
            fixtures::asset("bsc", "USDT", fixtures::token("0xt"), 6, true),
            fixtures::asset("bsc", "USDC", fixtures::token("0xc"), 6, true),
        ],
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2026-05-01 10:00 UTC)));
    let e = fixtures::engine(
        db,
        assets,
        FixedRates::new(),
        fixtures::TestDeriver::dashed(),
        clock.clone(),
    );
    (e, clock)
}

pub async fn order(e: &Engine, symbol: &str) -> Order {
    let (m, _) = e.create_merchant("shop").await.unwrap();
    e.set_wallet(&m.id, "bsc", "w").await.unwrap();
    e.create_order(
        &m.id,
        NewOrder {
            amount: Decimal::from(10),
            currency: "USD".into(),
            asset: Some(asset(symbol)),
            fixed_stablecoin_rate: true,
            dialect: "native".into(),
            ..NewOrder::default()
        },
    )
    .await
    .unwrap()
    .order
}

pub fn transfer(o: &Order, symbol: &str, amount: u128, tx: &str, height: u64) -> ObservedTransfer {
    ObservedTransfer {
        asset: asset(symbol),
        to: o.target.as_ref().unwrap().address.clone(),
        amount: BaseUnits::new(amount),
        txid: tx.into(),
        index: 0,
        from: None,
        block: Some(BlockRef {
            height,
            hash: format!("0xblock{height}"),
            time: datetime!(2026-05-01 10:01 UTC),
        }),
    }
}

pub fn batch(transfers: Vec<ObservedTransfer>, tip: u64, orphaned_from: Option<u64>) -> ChainBatch {
    ChainBatch {
        chain: chain(),
        transfers,
        orphaned_from,
        tip,
        cursor: Some(ChainCursor {
            chain: chain(),
            height: tip,
            hash: format!("0xblock{tip}"),
            recent: vec![(tip, format!("0xblock{tip}"))],
            updated_at: datetime!(2026-05-01 10:01 UTC),
        }),
        dropped_txids: Vec::new(),
        non_replaceable_txids: Vec::new(),
    }
}
