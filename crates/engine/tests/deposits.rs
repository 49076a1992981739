//! Deposit accounts (Pay Protocol's recharge users) on real databases: idempotent per
//! (merchant, uuid) even under concurrent requests, one address per chain from the wallet's
//! index counter shared with orders, merchants isolated.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, Network,
};
use coffer_engine::{AssetRegistry, Engine, EngineParts, EngineSettings, Methods, SystemClock};
use coffer_store::DepositAccountQuery;

use coffer_testkit::fixtures::TestDeriver;
use coffer_testkit::{TestDb, both_backends};

fn engine(db: &TestDb) -> Engine {
    let chain = |id: &str, evm: u64| Chain {
        id: ChainId::parse(id).unwrap(),
        kind: ChainKind::Evm,
        network: Network::Mainnet,
        name: id.into(),
        confirmations: 1,
        evm_chain_id: Some(evm),
    };
    let usdt = |c: &str| Asset {
        id: AssetId::from_str(&format!("{c}:USDT")).unwrap(),
        kind: AssetKind::Token {
            contract: format!("0x{c}"),
        },
        decimals: Decimals::new(6).unwrap(),
        display_decimals: 6,
        usd_stablecoin: true,
    };
    let assets = AssetRegistry::new(
        vec![chain("bsc", 56), chain("ethereum", 1)],
        vec![usdt("bsc"), usdt("ethereum")],
    )
    .unwrap();
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new()),
        assets: Arc::new(assets),
        methods: Methods::default().with(ChainKind::Evm, TestDeriver::dashed().evm()),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings::default()),
    })
}

async fn accounts_are_idempotent_and_share_the_index_counter(db: &TestDb) {
    let e = engine(db);
    let (m, _) = e.create_merchant("Shop").await.unwrap();
    // no wallet: refused, nothing written
    let err = e
        .create_deposit_account(&m.id, "payprotocol", "U1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "wallet_not_configured");
    let (_, n) = e
        .list_deposit_accounts(&m.id, DepositAccountQuery::default())
        .await
        .unwrap();
    assert_eq!(n, 0);
    e.set_wallet(&m.id, "bsc", "b").await.unwrap();
    e.set_wallet(&m.id, "ethereum", "e").await.unwrap();

    // the same uuid requested concurrently: one account, every caller gets it
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (e, m) = (e.clone(), m.id.clone());
        tasks.push(tokio::spawn(async move {
            e.create_deposit_account(&m, "payprotocol", " U1 ")
                .await
                .unwrap()
        }));
    }
    let mut seqs = HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (account, new) = t.await.unwrap();
        created += usize::from(new);
        seqs.insert(account.seq);
        assert_eq!(account.uuid, "U1");
        assert_eq!(account.addresses.len(), 2, "{account:?}");
    }
    assert_eq!(created, 1);
    assert_eq!(seqs.len(), 1);
    let first = e
        .deposit_account(&m.id, None, Some("U1"))
        .await
        .unwrap()
        .unwrap();
    let chains: Vec<&str> = first.addresses.iter().map(|a| a.chain.as_str()).collect();
    assert_eq!(chains, ["bsc", "ethereum"]);
    for a in &first.addresses {
        assert_eq!(
            a.address,
            format!("{}-{}", &a.chain.as_str()[..1], a.derivation_index)
        );
    }

    // a second user and an order: every index on a chain is used once
    let (second, new) = e
        .create_deposit_account(&m.id, "payprotocol", "U2")
        .await
        .unwrap();
    assert!(new);
    assert!(second.seq > first.seq);
    let order = e
        .create_order(
            &m.id,
            coffer_engine::NewOrder {
                amount: rust_decimal::Decimal::ONE,
                currency: "USD".into(),
                asset: Some(AssetId::from_str("bsc:USDT").unwrap()),
                fixed_stablecoin_rate: true,
                dialect: "native".into(),
                ..coffer_engine::NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order;
    let order_index = order
        .target
        .as_ref()
        .unwrap()
        .derivation
        .as_ref()
        .unwrap()
        .index;
    let mut bsc = HashSet::new();
    for account in [&first, &second] {
        for a in &account.addresses {
            if a.chain.as_str() == "bsc" {
                assert!(bsc.insert(a.derivation_index));
            }
        }
    }
    assert!(bsc.insert(order_index), "{bsc:?} {order_index}");
    let wallet = e
        .wallet(&m.id, &ChainId::parse("bsc").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(wallet.next_index > *bsc.iter().max().unwrap());

    // lookups: by number, by uuid, both; other merchants see nothing
    let by_seq = e
        .deposit_account(&m.id, Some(first.seq), None)
        .await
        .unwrap();
    assert_eq!(by_seq.as_ref(), Some(&first));
    assert!(
        e.deposit_account(&m.id, Some(first.seq), Some("U2"))
            .await
            .unwrap()
            .is_none()
    );
    let (other, _) = e.create_merchant("Other").await.unwrap();
    assert!(
        e.deposit_account(&other.id, Some(first.seq), None)
            .await
            .unwrap()
            .is_none()
    );
    let (items, n) = e
        .list_deposit_accounts(&other.id, DepositAccountQuery::default())
        .await
        .unwrap();
    assert_eq!((items.len(), n), (0, 0));
    let (items, n) = e
        .list_deposit_accounts(
            &m.id,
            DepositAccountQuery {
                limit: 1,
                ..DepositAccountQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(items, vec![second.clone()]);

    // bad uuids
    for bad in ["", "   ", &"x".repeat(65), "a\u{0}b"] {
        let err = e
            .create_deposit_account(&m.id, "payprotocol", bad)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_uuid", "{bad:?}");
    }
}

/// A wallet key is one merchant's, for good; setting an old key again continues after the
/// last address it handed out (nothing is handed out twice); and an address an order has is
/// never stored as a deposit address (a transfer there would go to the order).
async fn wallet_keys_and_addresses_are_never_shared(db: &TestDb) {
    let e = engine(db);
    let (a, _) = e.create_merchant("A").await.unwrap();
    let (b, _) = e.create_merchant("B").await.unwrap();
    let order = async |m: &coffer_core::MerchantId| {
        e.create_order(
            m,
            coffer_engine::NewOrder {
                amount: rust_decimal::Decimal::ONE,
                currency: "USD".into(),
                asset: Some(AssetId::from_str("bsc:USDT").unwrap()),
                fixed_stablecoin_rate: true,
                dialect: "native".into(),
                ..coffer_engine::NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order
        .target
        .unwrap()
        .address
    };
    e.set_wallet(&a.id, "bsc", "k1").await.unwrap();
    let err = e.set_wallet(&b.id, "bsc", "k1").await.unwrap_err();
    assert_eq!(err.code(), "wallet_in_use", "{err}");
    assert_eq!(order(&a.id).await, "k1-0");
    assert_eq!(order(&a.id).await, "k1-1");
    e.set_wallet(&a.id, "bsc", "k2").await.unwrap();
    assert_eq!(order(&a.id).await, "k2-0");
    // Replaced, k1 is still A's.
    let err = e.set_wallet(&b.id, "bsc", "k1").await.unwrap_err();
    assert_eq!(err.code(), "wallet_in_use", "{err}");
    // Set again, it continues at 2; k2 will continue at 1.
    e.set_wallet(&a.id, "bsc", "k1").await.unwrap();
    assert_eq!(order(&a.id).await, "k1-2");
    let (account, _) = e
        .create_deposit_account(&a.id, "payprotocol", "U1")
        .await
        .unwrap();
    assert_eq!(account.addresses[0].address, "k1-3");
    e.set_wallet(&a.id, "bsc", "k2").await.unwrap();
    assert_eq!(order(&a.id).await, "k2-1");
    // The store itself refuses a deposit address an order has, writing nothing.
    let err = db
        .store
        .commit(coffer_store::Changeset {
            new_deposit_accounts: vec![coffer_store::NewDepositAccount {
                merchant_id: a.id.clone(),
                uuid: "U2".into(),
                dialect: "payprotocol".into(),
                created_at: time::OffsetDateTime::now_utc(),
                addresses: vec![coffer_store::DepositAddressRecord {
                    chain: ChainId::parse("bsc").unwrap(),
                    address: "k1-0".into(),
                    derivation_index: 0,
                }],
            }],
            ..coffer_store::Changeset::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            coffer_store::StoreError::Duplicate(coffer_store::Unique::Address)
        ),
        "{err:?}"
    );
    let (accounts, _) = e
        .list_deposit_accounts(&a.id, DepositAccountQuery::default())
        .await
        .unwrap();
    assert_eq!(accounts.len(), 1, "nothing written");
}

both_backends! {
    accounts => accounts_are_idempotent_and_share_the_index_counter;
    keys_and_addresses_not_shared => wallet_keys_and_addresses_are_never_shared;
}
