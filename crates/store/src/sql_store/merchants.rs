//! Merchants and their API credentials.

use coffer_core::{ApiCredential, KeyId, Merchant, MerchantId};
use time::OffsetDateTime;

use super::{first, rows};
use crate::backend::{Backend, Query};
use crate::codec::{self, ms, opt_ms, to_json};
use crate::{CredentialRecord, StoreError};

pub(super) const INSERT_MERCHANT: &str =
    "INSERT INTO merchants (id, name, policy, created_at) VALUES ($1, $2, $3, $4)";

pub(super) fn insert(merchant: &Merchant) -> Query {
    Query::new(INSERT_MERCHANT)
        .text(merchant.id.as_str())
        .text(merchant.name.clone())
        .text(to_json(&merchant.policy))
        .int(ms(merchant.created_at))
}

pub(super) fn get_query(id: &MerchantId) -> Query {
    Query::new("SELECT id, name, policy, created_at FROM merchants WHERE id = $1").text(id.as_str())
}

pub(super) async fn get<B: Backend>(
    backend: &B,
    id: &MerchantId,
) -> Result<Option<Merchant>, StoreError> {
    first(
        backend.fetch(get_query(id)).await?,
        codec::merchant_from_row,
    )
}

pub(super) async fn list<B: Backend>(backend: &B) -> Result<Vec<Merchant>, StoreError> {
    let q =
        Query::new("SELECT id, name, policy, created_at FROM merchants ORDER BY created_at, id");
    rows(backend.fetch(q).await?, codec::merchant_from_row)
}

pub(super) async fn set_policy<B: Backend>(
    backend: &B,
    id: &MerchantId,
    policy: &coffer_core::SettlementPolicy,
) -> Result<bool, StoreError> {
    let q = Query::new("UPDATE merchants SET policy = $1 WHERE id = $2")
        .text(to_json(policy))
        .text(id.as_str());
    let mut tx = backend.begin().await?;
    let n = B::execute(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(n == 1)
}

pub(super) async fn insert_credential<B: Backend>(
    backend: &B,
    record: CredentialRecord,
) -> Result<(), StoreError> {
    let c = &record.credential;
    let q = Query::new(
        "INSERT INTO api_credentials (id, merchant_id, label, scopes, secret_hash, created_at, \
         expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .text(c.id.as_str())
    .text(c.merchant_id.as_str())
    .text(c.label.clone())
    .text(codec::scopes_to_text(&c.scopes))
    .text(record.secret_hash.clone())
    .int(ms(c.created_at))
    .opt_int(opt_ms(c.expires_at))
    .opt_int(opt_ms(c.revoked_at));
    let mut tx = backend.begin().await?;
    B::execute(&mut tx, q).await?;
    B::commit(tx).await
}

pub(super) fn credential_query(id: &KeyId) -> Query {
    Query::new(
        "SELECT id, merchant_id, label, scopes, secret_hash, created_at, expires_at, revoked_at \
         FROM api_credentials WHERE id = $1",
    )
    .text(id.as_str())
}

pub(super) async fn get_credential<B: Backend>(
    backend: &B,
    id: &KeyId,
) -> Result<Option<CredentialRecord>, StoreError> {
    first(
        backend.fetch(credential_query(id)).await?,
        codec::credential_from_row,
    )
}

pub(super) async fn list_credentials<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
) -> Result<Vec<ApiCredential>, StoreError> {
    let q = Query::new(
        "SELECT id, merchant_id, label, scopes, secret_hash, created_at, expires_at, revoked_at \
         FROM api_credentials WHERE merchant_id = $1 ORDER BY created_at, id",
    )
    .text(merchant.as_str());
    rows(backend.fetch(q).await?, |r| {
        codec::credential_from_row(r).map(|c| c.credential)
    })
}

pub(super) async fn revoke_credential<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    id: &KeyId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let q = Query::new(
        "UPDATE api_credentials SET revoked_at = $1 \
         WHERE merchant_id = $2 AND id = $3 AND revoked_at IS NULL",
    )
    .int(ms(at))
    .text(merchant.as_str())
    .text(id.as_str());
    let mut tx = backend.begin().await?;
    let n = B::execute(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(n == 1)
}
