//! Dialect credentials on real databases (SQLite and PostgreSQL). The engine names no
//! dialect: credentials take the shape a dialect gives (two shapes here, like the vendors').

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use coffer_core::FixedRates;
use coffer_engine::dialect_keys::identifier_hash;
use coffer_engine::{
    AssetRegistry, CredentialShape, Engine, EngineError, EngineParts, EngineSettings, ManualClock,
    Methods, NewDialectCredential,
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

/// A shape with every part: a token and callback values besides the key and secret.
const SIGNED: CredentialShape = CredentialShape {
    dialect: "signed",
    tag: "sig",
    key: "API-Key",
    key_chars: coffer_engine::dialect_keys::LONG_KEY,
    secret: "API-Secret",
    token: Some("API-Token"),
    callback_token: Some("Callback-Token"),
    callback_secret: Some("callback secret"),
};

/// A key and a secret only.
const PLAIN: CredentialShape = CredentialShape {
    dialect: "plain",
    tag: "pln",
    key: "X-Key",
    key_chars: coffer_engine::dialect_keys::SHORT_KEY,
    secret: "secret",
    token: None,
    callback_token: None,
    callback_secret: None,
};

async fn full_credential_roundtrip(db: &TestDb) {
    let engine = engine(db);
    let master = MasterKey::from_bytes([3; 32]);
    let (merchant, created) = engine
        .create_merchant_with_dialect_credential(&master, "Shop", &SIGNED)
        .await
        .unwrap();
    let token = created.token.clone().unwrap();
    assert!(created.callback_token.is_some() && created.callback_secret.is_some());
    assert_ne!(created.key, created.secret);

    // Found by key and by token, secrets opened.
    let by_key = engine
        .find_dialect_credential(&master, "signed", &created.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_key.merchant_id, merchant.id);
    assert_eq!(by_key.secret, created.secret);
    assert_eq!(by_key.callback_secret, created.callback_secret);
    let by_token = engine
        .find_dialect_credential_by_token(&master, "signed", &token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_token.id, created.id);
    assert_eq!(by_token.key, created.key);

    // The key is not a token, another dialect does not see it, unknown values are None.
    for (dialect, value, by_token) in [
        ("signed", created.key.as_str(), true),
        ("signed", token.as_str(), false),
        ("plain", created.key.as_str(), false),
        ("signed", "nope", false),
        ("signed", "", false),
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
            "signed",
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
            .find_dialect_credential(&wrong, "signed", &created.key)
            .await,
        Err(EngineError::Store(_))
    ));

    // Active credential for callbacks; listing shows no secrets.
    let active = engine
        .active_dialect_credential(&master, &merchant.id, "signed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.id, created.id);
    let list = engine
        .list_dialect_credentials(&merchant.id, Some("signed"))
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
            .find_dialect_credential(&master, "signed", &created.key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        engine
            .find_dialect_credential_by_token(&master, "signed", &token)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        engine
            .active_dialect_credential(&master, &merchant.id, "signed")
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
        .create_merchant_with_dialect_credential(&master, "A", &PLAIN)
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
        .find_dialect_credential(&master, "plain", &pay.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.merchant_id, a.id);
    // An unknown merchant is a clear error (unknown dialects are the registry's to refuse).
    let ghost = coffer_core::MerchantId::from_random([9; 16]);
    assert!(matches!(
        engine
            .create_dialect_credential(&master, &ghost, &PLAIN)
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

/// The parts under the shape's labels, in the vendors' order; generated values carry the tag.
#[test]
fn labelled_parts() {
    let at = datetime!(2026-05-01 10:00 UTC);
    let c = |token: Option<&str>, cb: Option<&str>| NewDialectCredential {
        id: "dcr_x".into(),
        merchant_id: coffer_core::MerchantId::from_random([1; 16]),
        dialect: "signed".into(),
        key: "k".into(),
        secret: "s".into(),
        token: token.map(str::to_owned),
        callback_token: cb.map(str::to_owned),
        callback_secret: cb.map(str::to_owned),
        created_at: at,
    };
    let labels = |shape: &CredentialShape, c: &NewDialectCredential| {
        shape
            .labelled(c)
            .into_iter()
            .map(|(l, v)| format!("{l}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        labels(&SIGNED, &c(Some("t"), Some("c"))),
        [
            "API-Key=k",
            "API-Token=t",
            "API-Secret=s",
            "Callback-Token=c",
            "callback secret=c"
        ]
    );
    assert_eq!(labels(&PLAIN, &c(None, None)), ["X-Key=k", "secret=s"]);
}

async fn generated_values_follow_the_shape(db: &TestDb) {
    let engine = engine(db);
    let master = MasterKey::from_bytes([6; 32]);
    let (_, signed) = engine
        .create_merchant_with_dialect_credential(&master, "S", &SIGNED)
        .await
        .unwrap();
    assert!(signed.key.starts_with("sigk_") && signed.secret.starts_with("sigs_"));
    assert!(
        signed
            .token
            .as_deref()
            .is_some_and(|t| t.starts_with("sigt_"))
    );
    assert_eq!(signed.dialect, "signed");
    let (_, plain) = engine
        .create_merchant_with_dialect_credential(&master, "P", &PLAIN)
        .await
        .unwrap();
    assert!(plain.key.starts_with("plnk_"));
    assert!(plain.token.is_none() && plain.callback_token.is_none());
}

both_backends! {
    full_credential_roundtrip => full_credential_roundtrip;
    generated_values_follow_the_shape => generated_values_follow_the_shape;
    other_dialects_and_isolation => other_dialects_and_isolation;
}
