//! Dialect credentials (seam S1) on real databases (SQLite and PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use coffer_core::FixedRates;
use coffer_engine::dialect_keys::identifier_hash;
use coffer_engine::{
    AssetRegistry, Engine, EngineError, EngineParts, EngineSettings, ManualClock, Methods,
};
use coffer_secrets::MasterKey;
use coffer_store::DialectIdentifier;
use coffer_testkit::{TestDb, both_backends};
use time::macros::datetime;

fn engine(db: &TestDb) -> Engine {
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new()),
        assets: Arc::new(AssetRegistry::new(vec![], vec![]).unwrap()),
        methods: Methods::default(),
        clock: Arc::new(ManualClock::new(datetime!(2026-05-01 10:00 UTC))),
        settings: Arc::new(EngineSettings::default()),
    })
}

async fn aurpay_credential_roundtrip(db: &TestDb) {
    let engine = engine(db);
    let master = MasterKey::from_bytes([3; 32]);
    let (merchant, created) = engine
        .create_merchant_with_dialect_credential(&master, "Shop", "aurpay")
        .await
        .unwrap();
    let token = created.token.clone().unwrap();
    assert!(created.callback_token.is_some() && created.callback_secret.is_some());
    assert_ne!(created.key, created.secret);

    // Found by key and by token, secrets opened.
    let by_key = engine
        .find_dialect_credential(&master, "aurpay", &created.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_key.merchant_id, merchant.id);
    assert_eq!(by_key.secret, created.secret);
    assert_eq!(by_key.callback_secret, created.callback_secret);
    let by_token = engine
        .find_dialect_credential_by_token(&master, "aurpay", &token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_token.id, created.id);
    assert_eq!(by_token.key, created.key);

    // The key is not a token, another dialect does not see it, unknown values are None.
    for (dialect, value, by_token) in [
        ("aurpay", created.key.as_str(), true),
        ("aurpay", token.as_str(), false),
        ("zaepe", created.key.as_str(), false),
        ("aurpay", "nope", false),
        ("aurpay", "", false),
    ] {
        let found = if by_token {
            engine
                .find_dialect_credential_by_token(&master, dialect, value)
                .await
        } else {
            engine
                .find_dialect_credential(&master, dialect, value)
                .await
        };
        assert!(found.unwrap().is_none(), "{dialect} {value}");
    }

    // Nothing secret is stored in clear.
    let stored = db
        .store
        .find_dialect_credential(
            "aurpay",
            DialectIdentifier::Key,
            &identifier_hash(&created.key),
        )
        .await
        .unwrap()
        .unwrap();
    for secret in [&created.key, &created.secret, &token] {
        assert!(!stored.sealed.contains(secret.as_str()));
        assert!(!stored.key_hash.contains(secret.as_str()));
    }
    assert!(created.key.starts_with(&stored.key_prefix));

    // The wrong master key cannot open it: an internal error, never a match.
    let wrong = MasterKey::from_bytes([4; 32]);
    assert!(matches!(
        engine
            .find_dialect_credential(&wrong, "aurpay", &created.key)
            .await,
        Err(EngineError::Store(_))
    ));

    // Active credential for callbacks; listing shows no secrets.
    let active = engine
        .active_dialect_credential(&master, &merchant.id, "aurpay")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.id, created.id);
    let list = engine
        .list_dialect_credentials(&merchant.id, Some("aurpay"))
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].has_token);

    // Revoked: not found any more, revoking twice is NotFound.
    engine
        .revoke_dialect_credential(&merchant.id, &created.id)
        .await
        .unwrap();
    assert!(
        engine
            .find_dialect_credential(&master, "aurpay", &created.key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        engine
            .find_dialect_credential_by_token(&master, "aurpay", &token)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        engine
            .active_dialect_credential(&master, &merchant.id, "aurpay")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        engine
            .revoke_dialect_credential(&merchant.id, &created.id)
            .await,
        Err(EngineError::NotFound(_))
    ));
}

async fn other_dialects_and_isolation(db: &TestDb) {
    let engine = engine(db);
    let master = MasterKey::from_bytes([5; 32]);
    let (a, pay) = engine
        .create_merchant_with_dialect_credential(&master, "A", "payprotocol")
        .await
        .unwrap();
    assert!(pay.token.is_none() && pay.callback_secret.is_none());
    let (b, _) = engine.create_merchant("B").await.unwrap();
    // Another merchant cannot revoke A's credential.
    assert!(matches!(
        engine.revoke_dialect_credential(&b.id, &pay.id).await,
        Err(EngineError::NotFound(_))
    ));
    let found = engine
        .find_dialect_credential(&master, "payprotocol", &pay.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.merchant_id, a.id);
    // Unknown dialect and unknown merchant are clear errors.
    let err = engine
        .create_dialect_credential(&master, &a.id, "stripe")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_dialect");
    let ghost = coffer_core::MerchantId::from_random([9; 16]);
    assert!(matches!(
        engine
            .create_dialect_credential(&master, &ghost, "zaepe")
            .await,
        Err(EngineError::NotFound("merchant"))
    ));
    assert!(
        engine
            .list_dialect_credentials(&b.id, None)
            .await
            .unwrap()
            .is_empty()
    );
}

both_backends! {
    aurpay_credential_roundtrip => aurpay_credential_roundtrip;
    other_dialects_and_isolation => other_dialects_and_isolation;
}
