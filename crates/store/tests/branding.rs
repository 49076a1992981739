//! Merchant branding of the checkout page (migration 0012), on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use coffer_core::{Merchant, MerchantId, SettlementPolicy};
use coffer_store::{BrandingRecord, Changeset, StoreError};
use coffer_testkit::{TestDb, both_backends};
use time::macros::datetime;

async fn merchant(db: &TestDb, id: u8) -> MerchantId {
    let m = Merchant {
        id: MerchantId::from_random([id; 16]),
        name: format!("Shop {id}"),
        policy: SettlementPolicy::default(),
        created_at: datetime!(2026-11-22 12:00 UTC),
    };
    db.store
        .commit(Changeset {
            new_merchants: vec![m.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    m.id
}

async fn set_get_replace(db: &TestDb) {
    let a = merchant(db, 1).await;
    let b = merchant(db, 2).await;
    assert_eq!(db.store.get_branding(&a).await.unwrap(), None);
    let first = BrandingRecord {
        merchant_id: a.clone(),
        display_name: Some("Café «Zwölf» 咖啡".into()),
        logo: Some("data:image/svg+xml;base64,PHN2Zy8+".into()),
        color: Some("#0a7f3f".into()),
        updated_at: datetime!(2026-11-22 12:00:00.123 UTC),
    };
    db.store.set_branding(&first).await.unwrap();
    assert_eq!(
        db.store.get_branding(&a).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        db.store.get_branding(&b).await.unwrap(),
        None,
        "per merchant"
    );
    // replacing clears what the new record leaves out
    let second = BrandingRecord {
        display_name: None,
        logo: None,
        color: Some("#123456".into()),
        updated_at: datetime!(2026-11-22 13:00 UTC),
        ..first
    };
    db.store.set_branding(&second).await.unwrap();
    assert_eq!(db.store.get_branding(&a).await.unwrap(), Some(second));
    // only for merchants that exist
    let ghost = BrandingRecord {
        merchant_id: MerchantId::from_random([9; 16]),
        display_name: None,
        logo: None,
        color: None,
        updated_at: datetime!(2026-11-22 13:00 UTC),
    };
    let err = db.store.set_branding(&ghost).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Database(_) | StoreError::NotFound(_)),
        "{err:?}"
    );
}

both_backends! {
    branding_set_get_replace => set_get_replace;
}
