#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Bitcoin deriver behind the engine: a merchant's vpub/descriptor is normalised and
//! stored, and each order gets the next external address (BIP-84 vectors on regtest), on
//! SQLite and PostgreSQL.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

use coffer_chain_bitcoin::bitcoin::base58;
use coffer_chain_bitcoin::{BitcoinMethod, GAP_LIMIT_WARNING, gap_report};
use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, Network, Price,
};
use coffer_engine::{
    AssetRegistry, Engine, EngineError, EngineParts, EngineSettings, ManualClock, Methods, NewOrder,
};
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;
use time::macros::datetime;

// m/84'/1'/0' of the BIP-84 mnemonic "abandon … about".
const TPUB: &str = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M";
const ZPUB: &str = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";

fn engine(db: &TestDb) -> Engine {
    let chain = Chain {
        id: ChainId::parse("bitcoin").unwrap(),
        kind: ChainKind::Bitcoin,
        network: Network::Regtest,
        name: "Bitcoin (regtest)".into(),
        confirmations: 1,
        evm_chain_id: None,
    };
    let btc = Asset {
        id: AssetId::from_str("bitcoin:BTC").unwrap(),
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
        assets: Arc::new(AssetRegistry::new(vec![chain], vec![btc]).unwrap()),
        methods: Methods::default().with(ChainKind::Bitcoin, Arc::new(BitcoinMethod::new())),
        clock: Arc::new(ManualClock::new(datetime!(2026-05-01 10:00 UTC))),
        settings: Arc::new(EngineSettings::default()),
    })
}

async fn orders_get_fresh_bip84_addresses(db: &TestDb) {
    let e = engine(db);
    let (m, _) = e.create_merchant("Shop").await.unwrap();
    // A mainnet key on a regtest chain is refused, naming the field.
    match e.set_wallet(&m.id, "bitcoin", ZPUB).await {
        Err(EngineError::Invalid { code, field, .. }) => {
            assert_eq!((code, field), ("invalid_wallet", Some("xpub")));
        }
        other => panic!("{other:?}"),
    }
    // The same account as a vpub.
    let mut data = base58::decode_check(TPUB).unwrap();
    data[..4].copy_from_slice(&[0x04, 0x5f, 0x1c, 0xf6]);
    let vpub = base58::encode_check(&data);
    let record = e.set_wallet(&m.id, "bitcoin", &vpub).await.unwrap();
    assert!(
        record.descriptor.starts_with(&format!("wpkh({TPUB}/0/*)#")),
        "{}",
        record.descriptor
    );

    let expected = [
        "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk",
        "bcrt1qd7spv5q28348xl4myc8zmh983w5jx32cs707jh",
    ];
    let mut seen = Vec::new();
    for _ in 0..3 {
        let order = e
            .create_order(
                &m.id,
                NewOrder {
                    amount: Decimal::from_str("25").unwrap(),
                    currency: "USD".into(),
                    asset: Some(AssetId::from_str("bitcoin:BTC").unwrap()),
                    ..NewOrder::default()
                },
            )
            .await
            .unwrap()
            .order;
        let target = order.target.unwrap();
        // 25 USD at 50,000 USD/BTC = 0.0005 BTC = 50,000 sat.
        assert_eq!(target.amount_due.get(), 50_000);
        seen.push(target.address);
    }
    assert_eq!(seen[..2], expected);
    assert!(seen[2].starts_with("bcrt1q"));
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        3,
        "never reused"
    );

    // Three issued, none paid: a run of 3, no warning yet.
    let issued: BTreeSet<u32> = (0..3).collect();
    let report = gap_report(&issued, &BTreeSet::new(), GAP_LIMIT_WARNING);
    assert_eq!((report.longest_run, report.warn), (3, false));
}

both_backends! {
    orders_get_fresh_bip84_addresses => orders_get_fresh_bip84_addresses;
}
