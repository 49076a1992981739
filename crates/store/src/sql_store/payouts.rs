//! Payout requests (refunds, withdrawals) the dialects record for the merchant to act on.

use coffer_core::{MerchantId, PayoutId, PayoutKind, PayoutRequest};

use super::{count_of, first, page_limit, rows};
use crate::backend::{Backend, Query};
use crate::codec::{self, ms, to_json};
use crate::{PayoutQuery, StoreError};

pub(super) const INSERT_PAYOUT: &str = "INSERT INTO payout_requests (id, merchant_id, kind, order_id, asset, \
     amount, fiat_amount, fiat_currency, destination, memo, status, dialect, reference, \
     dialect_data, updated_at, version, txid, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

// Identity columns (id, merchant, kind, order, created_at) never change after insert.
pub(super) const UPDATE_PAYOUT: &str = "UPDATE payout_requests SET asset = $1, amount = $2, fiat_amount = $3, \
     fiat_currency = $4, destination = $5, memo = $6, status = $7, dialect = $8, reference = $9, \
     dialect_data = $10, updated_at = $11, version = $12, txid = $13 WHERE id = $14 AND version = $15";

pub(super) const PAYOUT_COLUMNS: &str = "SELECT seq, id, merchant_id, kind, order_id, asset, amount, \
     fiat_amount, fiat_currency, destination, memo, status, dialect, reference, dialect_data, \
     created_at, updated_at, version, txid FROM payout_requests";

const PAYOUT_FILTER: &str = " WHERE ($1 IS NULL OR merchant_id = $1) \
       AND ($2 IS NULL OR kind = $2) \
       AND ($3 IS NULL OR order_id = $3) \
       AND ($4 IS NULL OR status = $4) \
       AND ($5 IS NULL OR dialect = $5) \
       AND ($6 IS NULL OR seq < $6)";

/// The mutable middle of a payout row, in `UPDATE_PAYOUT` order.
fn payout_values(q: Query, p: &PayoutRequest) -> Query {
    q.opt_text(p.asset.as_ref().map(|a| a.to_string()))
        .opt_text(p.amount.map(|a| a.to_string()))
        .opt_text(p.fiat_amount.map(|a| a.to_string()))
        .opt_text(p.fiat_currency.clone())
        .opt_text(p.destination.clone())
        .opt_text(p.memo.clone())
        .text(p.status.as_str())
        .text(p.dialect.clone())
        .opt_text(p.reference.clone())
        .text(to_json(&p.dialect_data))
        .int(ms(p.updated_at))
        .int(p.version)
        .opt_text(p.txid.clone())
}

fn payout_filter(q: Query, query: &PayoutQuery) -> Query {
    q.opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
        .opt_text(query.kind.map(|k| k.as_str()))
        .opt_text(query.order_id.as_ref().map(|o| o.as_str().to_owned()))
        .opt_text(query.status.map(|s| s.as_str()))
        .opt_text(query.dialect.clone())
        .opt_int(query.before_seq)
}

pub(super) fn insert(payout: &PayoutRequest) -> Query {
    payout_values(
        Query::new(INSERT_PAYOUT)
            .text(payout.id.as_str())
            .text(payout.merchant_id.as_str())
            .text(payout.kind.as_str())
            .opt_text(payout.order_id.as_ref().map(|o| o.as_str().to_owned())),
        payout,
    )
    .int(ms(payout.created_at))
}

pub(super) fn update(payout: &PayoutRequest, expected_version: i64) -> Query {
    payout_values(Query::new(UPDATE_PAYOUT), payout)
        .text(payout.id.as_str())
        .int(expected_version)
}

pub(super) async fn get<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    id: &PayoutId,
) -> Result<Option<PayoutRequest>, StoreError> {
    let q = Query::built(format!(
        "{PAYOUT_COLUMNS} WHERE merchant_id = $1 AND id = $2"
    ))
    .text(merchant.as_str())
    .text(id.as_str());
    first(backend.fetch(q).await?, codec::payout_from_row)
}

pub(super) async fn get_by_seq<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    seq: i64,
) -> Result<Option<PayoutRequest>, StoreError> {
    let q = Query::built(format!(
        "{PAYOUT_COLUMNS} WHERE merchant_id = $1 AND seq = $2"
    ))
    .text(merchant.as_str())
    .int(seq);
    first(backend.fetch(q).await?, codec::payout_from_row)
}

pub(super) async fn get_by_reference<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    kind: PayoutKind,
    dialect: &str,
    reference: &str,
) -> Result<Option<PayoutRequest>, StoreError> {
    let q = Query::built(format!(
        "{PAYOUT_COLUMNS} WHERE merchant_id = $1 AND kind = $2 AND dialect = $3 \
             AND reference = $4"
    ))
    .text(merchant.as_str())
    .text(kind.as_str())
    .text(dialect)
    .text(reference);
    first(backend.fetch(q).await?, codec::payout_from_row)
}

pub(super) async fn list<B: Backend>(
    backend: &B,
    query: &PayoutQuery,
) -> Result<Vec<PayoutRequest>, StoreError> {
    let q = Query::built(format!(
        "{PAYOUT_COLUMNS}{PAYOUT_FILTER} ORDER BY seq DESC LIMIT $7 OFFSET $8"
    ));
    let q = payout_filter(q, query)
        .int(page_limit(query.limit))
        .int(i64::from(query.offset));
    rows(backend.fetch(q).await?, codec::payout_from_row)
}

pub(super) async fn count<B: Backend>(backend: &B, query: &PayoutQuery) -> Result<u64, StoreError> {
    let q = Query::built(format!(
        "SELECT count(*) AS n FROM payout_requests{PAYOUT_FILTER}"
    ));
    count_of(backend.fetch(payout_filter(q, query)).await?)
}
