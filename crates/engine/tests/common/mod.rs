//! The fixture shared by the chain-batch tests (payments, payouts): one BSC chain with USDT
//! and USDC, a deterministic address deriver, a manual clock, and helpers that build orders,
//! observed transfers and batches.

#![allow(dead_code)] // each test binary uses its own subset

use std::str::FromStr;
use std::sync::Arc;

use coffer_core::order::Derivation;
use coffer_core::{
    Asset, AssetId, AssetKind, BaseUnits, Chain, ChainId, ChainKind, Decimals, FixedRates, Network,
    Order,
};
use coffer_engine::{
    AddressDeriver, AllocatedAddress, AssetRegistry, BlockRef, ChainBatch, Derivers, Engine,
    EngineError, EngineSettings, ManualClock, NewOrder, ObservedTransfer,
};
use coffer_store::ChainCursor;
use coffer_testkit::TestDb;
use rust_decimal::Decimal;
use time::macros::datetime;

pub struct Deriver;

impl AddressDeriver for Deriver {
    fn normalize(&self, _: &Chain, d: &str) -> Result<String, EngineError> {
        Ok(d.to_owned())
    }
    fn derive(&self, _: &Chain, d: &str, index: u32) -> Result<AllocatedAddress, EngineError> {
        Ok(AllocatedAddress {
            address: format!("{d}-{index}"),
            derivation: Some(Derivation {
                index,
                path: format!("m/0/{index}"),
            }),
        })
    }
}

pub fn chain() -> ChainId {
    ChainId::parse("bsc").unwrap()
}

pub fn asset(s: &str) -> AssetId {
    AssetId::from_str(&format!("bsc:{s}")).unwrap()
}

pub fn engine(db: &TestDb) -> (Engine, Arc<ManualClock>) {
    let c = Chain {
        id: chain(),
        kind: ChainKind::Evm,
        network: Network::Mainnet,
        name: "BSC".into(),
        confirmations: 3,
        evm_chain_id: Some(56),
    };
    let a = |s: &str, kind| Asset {
        id: asset(s),
        kind,
        decimals: Decimals::new(6).unwrap(),
        display_decimals: 6,
        usd_stablecoin: true,
    };
    let assets = AssetRegistry::new(
        vec![c],
        vec![
            a("BNB", AssetKind::Native),
            a(
                "USDT",
                AssetKind::Token {
                    contract: "0xt".into(),
                },
            ),
            a(
                "USDC",
                AssetKind::Token {
                    contract: "0xc".into(),
                },
            ),
        ],
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2026-05-01 10:00 UTC)));
    (
        Engine {
            store: db.store.clone(),
            rates: Arc::new(FixedRates::new()),
            assets: Arc::new(assets),
            derivers: Derivers::default().with(ChainKind::Evm, Arc::new(Deriver)),
            clock: clock.clone(),
            settings: Arc::new(EngineSettings::default()),
        },
        clock,
    )
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
