//! Merchants' receiving wallets, the keys they ever set, and the derivation indexes used.

use coffer_core::{ChainId, MerchantId};
use time::OffsetDateTime;

use super::{first, rows};
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{self, ms};
use crate::unique::Unique;
use crate::{StoreError, WalletMark, WalletRecord};

// Monotonic: concurrent orders may commit their indexes in any order.
pub(super) const MARK_WALLET_INDEX: &str = "UPDATE wallets SET next_index = \
     CASE WHEN next_index > $1 THEN next_index ELSE $1 + 1 END \
     WHERE merchant_id = $2 AND chain = $3 AND descriptor = $4";

pub(super) fn mark(mark: &WalletMark) -> Query {
    Query::new(MARK_WALLET_INDEX)
        .int(i64::from(mark.index))
        .text(mark.merchant_id.as_str())
        .text(mark.chain.as_str())
        .text(mark.descriptor.clone())
}

pub(super) async fn set<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    chain: &ChainId,
    descriptor: &str,
    at: OffsetDateTime,
) -> Result<WalletRecord, StoreError> {
    let mut tx = backend.begin().await?;
    // Every key set is recorded once, for the merchant that set it first: another
    // merchant's key is refused (it would be handed that merchant's addresses).
    let q = Query::new(
        "INSERT INTO wallet_keys (chain, descriptor, merchant_id, next_index) \
         VALUES ($1, $2, $3, 0) ON CONFLICT (chain, descriptor) DO NOTHING",
    )
    .text(chain.as_str())
    .text(descriptor)
    .text(merchant.as_str());
    B::execute(&mut tx, q).await?;
    let q = Query::new(
        "SELECT merchant_id, next_index FROM wallet_keys WHERE chain = $1 AND descriptor = $2",
    )
    .text(chain.as_str())
    .text(descriptor);
    let rows = B::fetch_in(&mut tx, q).await?;
    let Some(key) = rows.first() else {
        return Err(StoreError::NotFound("wallet key"));
    };
    if key.text("merchant_id")? != merchant.as_str() {
        return Err(StoreError::Duplicate(Unique::WalletKey));
    }
    let resume_at = key.int("next_index")?;
    // The key being replaced keeps its position, for when it is set again.
    let q = Query::new(
        "UPDATE wallet_keys SET next_index = CASE WHEN wallet_keys.next_index < w.next_index \
           THEN w.next_index ELSE wallet_keys.next_index END \
         FROM wallets w WHERE w.merchant_id = $1 AND w.chain = $2 \
           AND wallet_keys.chain = w.chain AND wallet_keys.descriptor = w.descriptor",
    )
    .text(merchant.as_str())
    .text(chain.as_str());
    B::execute(&mut tx, q).await?;
    // The same key keeps its position; another continues where it last stopped (0 if new).
    let q = Query::new(
        "INSERT INTO wallets (merchant_id, chain, descriptor, next_index, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (merchant_id, chain) DO UPDATE SET \
           next_index = CASE WHEN wallets.descriptor = excluded.descriptor \
                             THEN wallets.next_index ELSE excluded.next_index END, \
           descriptor = excluded.descriptor, updated_at = excluded.updated_at",
    )
    .text(merchant.as_str())
    .text(chain.as_str())
    .text(descriptor)
    .int(resume_at)
    .int(ms(at))
    .on_duplicate(Unique::WalletKey);
    B::execute(&mut tx, q).await?;
    let q = Query::new(
        "SELECT merchant_id, chain, descriptor, next_index, created_at, updated_at \
         FROM wallets WHERE merchant_id = $1 AND chain = $2",
    )
    .text(merchant.as_str())
    .text(chain.as_str());
    let record = first(B::fetch_in(&mut tx, q).await?, codec::wallet_from_row)?
        .ok_or(StoreError::NotFound("wallet"))?;
    B::commit(tx).await?;
    Ok(record)
}

pub(super) fn get_query(merchant: &MerchantId, chain: &ChainId) -> Query {
    Query::new(
        "SELECT merchant_id, chain, descriptor, next_index, created_at, updated_at \
         FROM wallets WHERE merchant_id = $1 AND chain = $2",
    )
    .text(merchant.as_str())
    .text(chain.as_str())
}

pub(super) async fn get<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    chain: &ChainId,
) -> Result<Option<WalletRecord>, StoreError> {
    first(
        backend.fetch(get_query(merchant, chain)).await?,
        codec::wallet_from_row,
    )
}

pub(super) async fn list<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
) -> Result<Vec<WalletRecord>, StoreError> {
    let q = Query::new(
        "SELECT merchant_id, chain, descriptor, next_index, created_at, updated_at \
         FROM wallets WHERE merchant_id = $1 ORDER BY chain",
    )
    .text(merchant.as_str());
    rows(backend.fetch(q).await?, codec::wallet_from_row)
}

pub(super) async fn take_index<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    chain: &ChainId,
) -> Result<(u32, String), StoreError> {
    let mut tx = backend.begin().await?;
    let q = Query::new(
        "UPDATE wallets SET next_index = next_index + 1 \
         WHERE merchant_id = $1 AND chain = $2 RETURNING next_index - 1 AS taken, descriptor",
    )
    .text(merchant.as_str())
    .text(chain.as_str());
    let rows = B::fetch_in(&mut tx, q).await?;
    let row = rows.first().ok_or(StoreError::NotFound("wallet"))?;
    let taken = u32::try_from(crate::backend::RowExt::int(row, "taken")?).map_err(|_| {
        StoreError::Corrupt {
            column: "wallets.next_index".into(),
            detail: "exhausted".into(),
        }
    })?;
    let descriptor = crate::backend::RowExt::text(row, "descriptor")?;
    B::commit(tx).await?;
    Ok((taken, descriptor))
}

pub(super) async fn address_usage<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    chain: &ChainId,
) -> Result<Vec<(u32, bool)>, StoreError> {
    let q = Query::new(
        "SELECT o.derivation_index AS idx, CAST(CASE WHEN EXISTS (SELECT 1 FROM payments p \
         WHERE p.order_id = o.id AND p.status <> 'reversed') THEN 1 ELSE 0 END AS BIGINT) AS paid \
         FROM orders o WHERE o.merchant_id = $1 AND o.asset LIKE $2 \
         AND o.derivation_index IS NOT NULL \
         UNION ALL SELECT d.derivation_index AS idx, CAST(CASE WHEN EXISTS (SELECT 1 \
         FROM deposits x WHERE x.chain = d.chain AND x.to_address = d.address \
         AND x.status <> 'reversed') THEN 1 ELSE 0 END AS BIGINT) AS paid \
         FROM deposit_addresses d WHERE d.merchant_id = $1 AND d.chain = $3",
    )
    .text(merchant.as_str())
    .text(format!("{}:%", chain.as_str()))
    .text(chain.as_str());
    rows(backend.fetch(q).await?, |row| {
        let idx = u32::try_from(row.int("idx")?).map_err(|e| StoreError::Corrupt {
            column: "orders.derivation_index".into(),
            detail: e.to_string(),
        })?;
        Ok((idx, row.int("paid")? != 0))
    })
}
