//! Requests seen before: merchants' idempotency keys, and the dialects' single-use nonces.

use coffer_core::MerchantId;
use time::OffsetDateTime;

use super::first;
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{self, ms};
use crate::{IdempotencyRecord, IdempotencyResponse, StoreError, StoredResponse};

/// A key, in progress (no response yet) or already answered: a response stored in the same
/// changeset as the write it answers (an order) commits with it or not at all.
pub(super) const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency_keys \
     (merchant_id, key, fingerprint, status, body, created_at, completed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(super) const RESPOND_IDEMPOTENCY: &str = "UPDATE idempotency_keys SET status = $3, body = $4, completed_at = $5 \
     WHERE merchant_id = $1 AND key = $2 AND status IS NULL";

pub(super) const RELEASE_IDEMPOTENCY: &str =
    "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND status IS NULL";

pub(super) fn reserve(r: &IdempotencyRecord) -> Query {
    let response = r.response.as_ref();
    Query::new(INSERT_IDEMPOTENCY)
        .text(r.merchant_id.as_str())
        .text(r.key.clone())
        .text(r.fingerprint.clone())
        .opt_int(response.map(|s| i64::from(s.status)))
        .opt_text(response.map(|s| s.body.clone()))
        .int(ms(r.created_at))
        .opt_int(response.map(|_| ms(r.created_at)))
}

pub(super) fn respond(r: &IdempotencyResponse) -> Query {
    Query::new(RESPOND_IDEMPOTENCY)
        .text(r.merchant_id.as_str())
        .text(r.key.clone())
        .int(i64::from(r.response.status))
        .text(r.response.body.clone())
        .int(ms(r.at))
}

pub(super) fn release(merchant: &MerchantId, key: &str) -> Query {
    Query::new(RELEASE_IDEMPOTENCY)
        .text(merchant.as_str())
        .text(key)
}

pub(super) fn get_query(merchant: &MerchantId, key: &str) -> Query {
    Query::new(
        "SELECT merchant_id, key, fingerprint, status, body, created_at \
         FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
    )
    .text(merchant.as_str())
    .text(key)
}

pub(super) async fn get<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    first(backend.fetch(get_query(merchant, key)).await?, |row| {
        let response = match (row.opt_int("status")?, row.opt_text("body")?) {
            (Some(status), Some(body)) => Some(StoredResponse {
                status: u16::try_from(status).map_err(|_| StoreError::Corrupt {
                    column: "idempotency_keys.status".into(),
                    detail: status.to_string(),
                })?,
                body,
            }),
            _ => None,
        };
        Ok(IdempotencyRecord {
            merchant_id: row
                .text("merchant_id")?
                .parse()
                .map_err(|_| StoreError::Corrupt {
                    column: "idempotency_keys.merchant_id".into(),
                    detail: "not a merchant id".into(),
                })?,
            key: row.text("key")?,
            fingerprint: row.text("fingerprint")?,
            response,
            created_at: codec::from_ms("idempotency_keys.created_at", row.int("created_at")?)?,
        })
    })
}

pub(super) async fn purge<B: Backend>(
    backend: &B,
    before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let q = Query::new("DELETE FROM idempotency_keys WHERE created_at < $1").int(ms(before));
    let mut tx = backend.begin().await?;
    let n = B::execute(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(n)
}

pub(super) async fn seen_nonce<B: Backend>(
    backend: &B,
    scope: &str,
    nonce: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut tx = backend.begin().await?;
    B::execute(
        &mut tx,
        Query::new("DELETE FROM seen_nonces WHERE expires_at <= $1").int(ms(now)),
    )
    .await?;
    let inserted = B::execute(
        &mut tx,
        Query::new(
            "INSERT INTO seen_nonces (scope, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, nonce) DO NOTHING",
        )
        .text(scope)
        .text(nonce)
        .int(ms(expires_at)),
    )
    .await?;
    B::commit(tx).await?;
    Ok(inserted == 0)
}
