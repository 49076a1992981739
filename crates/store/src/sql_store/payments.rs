//! Payments: transfers to orders' addresses, inserted once and updated as they confirm.

use coffer_core::{ChainId, MerchantId, OrderId, Payment};

use super::{count_of, page_limit, rows};
use crate::StoreError;
use crate::backend::{Backend, Query};
use crate::codec::{self, ms, to_json};

pub(super) const UPSERT_PAYMENT: &str = "INSERT INTO payments (id, order_id, merchant_id, chain, asset, amount, txid, output_index, \
     from_address, to_address, block_height, block_hash, confirmations, status, match_status, late, \
     occurred_at, detected_at, updated_at, details) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
     $20) \
     ON CONFLICT (id) DO UPDATE SET block_height = excluded.block_height, \
     block_hash = excluded.block_hash, confirmations = excluded.confirmations, \
     status = excluded.status, match_status = excluded.match_status, late = excluded.late, \
     updated_at = excluded.updated_at, details = excluded.details";

/// `SELECT <every column> FROM payments <rest>`: what `codec::payment_from_row` reads (the
/// column list written once).
macro_rules! select_payments {
    ($rest:literal) => {
        concat!(
            "SELECT id, order_id, merchant_id, asset, amount, txid, output_index, from_address, \
             to_address, block_height, block_hash, confirmations, status, match_status, late, \
             occurred_at, detected_at, updated_at, details FROM payments ",
            $rest
        )
    };
}

const SELECT_PAYMENTS: &str = select_payments!("WHERE order_id = $1 ORDER BY detected_at, id");

const SELECT_MERCHANT_PAYMENTS: &str = select_payments!(
    "WHERE merchant_id = $1 ORDER BY detected_at DESC, id DESC LIMIT $2 OFFSET $3"
);

/// Payments whose confirmations can still change: unconfirmed, confirmed without a block
/// (zero-conf), or confirmed at or above `$2`. Three branches, each a range of index
/// `payments_open` (chain, status, block_height): the confirmed history below the height is
/// never read, however long it is.
const SELECT_OPEN_PAYMENTS: &str = concat!(
    select_payments!("WHERE chain = $1 AND status = 'unconfirmed' "),
    "UNION ALL ",
    select_payments!("WHERE chain = $1 AND status = 'confirmed' AND block_height IS NULL "),
    "UNION ALL ",
    select_payments!("WHERE chain = $1 AND status = 'confirmed' AND block_height >= $2 "),
    "ORDER BY detected_at, id"
);

pub(super) fn upsert(p: &Payment) -> Query {
    Query::new(UPSERT_PAYMENT)
        .text(p.id.as_str())
        .text(p.order_id.as_str())
        .text(p.merchant_id.as_str())
        .text(p.asset.chain().as_str())
        .text(p.asset.to_string())
        .text(p.amount.to_string())
        .text(p.txid.clone())
        .int(i64::from(p.output_index))
        .opt_text(p.from_address.clone())
        .text(p.to_address.clone())
        .opt_int(p.block_height.map(|h| i64::try_from(h).unwrap_or(i64::MAX)))
        .opt_text(p.block_hash.clone())
        .int(i64::from(p.confirmations))
        .text(p.status.as_str())
        .text(p.match_status.as_str())
        .boolean(p.late)
        .int(ms(p.occurred_at))
        .int(ms(p.detected_at))
        .int(ms(p.updated_at))
        .text(to_json(&p.details))
}

pub(super) fn for_order_query(order: &OrderId) -> Query {
    Query::new(SELECT_PAYMENTS).text(order.as_str())
}

pub(super) async fn for_order<B: Backend>(
    backend: &B,
    order: &OrderId,
) -> Result<Vec<Payment>, StoreError> {
    rows(
        backend.fetch(for_order_query(order)).await?,
        codec::payment_from_row,
    )
}

pub(super) fn open_query(chain: &ChainId, from_height: u64) -> Query {
    Query::new(SELECT_OPEN_PAYMENTS)
        .text(chain.as_str())
        .int(i64::try_from(from_height).unwrap_or(i64::MAX))
}

pub(super) async fn open<B: Backend>(
    backend: &B,
    chain: &ChainId,
    from_height: u64,
) -> Result<Vec<Payment>, StoreError> {
    rows(
        backend.fetch(open_query(chain, from_height)).await?,
        codec::payment_from_row,
    )
}

pub(super) async fn of_merchant<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    offset: u64,
    limit: u32,
) -> Result<Vec<Payment>, StoreError> {
    let q = Query::new(SELECT_MERCHANT_PAYMENTS)
        .text(merchant.as_str())
        .int(page_limit(limit))
        .int(i64::try_from(offset).unwrap_or(i64::MAX));
    rows(backend.fetch(q).await?, codec::payment_from_row)
}

pub(super) async fn count_of_merchant<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
) -> Result<u64, StoreError> {
    let q = Query::new("SELECT COUNT(*) AS n FROM payments WHERE merchant_id = $1")
        .text(merchant.as_str());
    count_of(backend.fetch(q).await?)
}
