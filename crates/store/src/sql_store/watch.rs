//! What the chain watchers keep: their cursors, and the addresses they watch.

use coffer_core::ChainId;
use time::OffsetDateTime;

use super::{first, rows};
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{self, ms};
use crate::{ChainCursor, StoreError, WatchedAddress};

pub(super) const UPSERT_CURSOR: &str = "INSERT INTO chain_cursors (chain, height, hash, recent, updated_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chain) DO UPDATE SET height = excluded.height, \
     hash = excluded.hash, recent = excluded.recent, updated_at = excluded.updated_at";

const SELECT_CURSOR: &str =
    "SELECT chain, height, hash, recent, updated_at FROM chain_cursors WHERE chain = $1";

// Deposit addresses never close: they are listed with no order, any asset, and a window
// ending in year 9999 ($3 in the full list, $4 since a time).
const SELECT_WATCHED: &str = "SELECT a.address, a.order_id, o.asset, o.monitor_until FROM order_addresses a \
     JOIN orders o ON o.id = a.order_id WHERE a.chain = $1 AND o.monitor_until > $2 \
     UNION ALL SELECT d.address, NULL, NULL, $3 FROM deposit_addresses d WHERE d.chain = $1";

// CROSS JOIN makes SQLite walk the few recently updated orders (orders_updated) and look up
// their addresses, rather than every address of the chain; PostgreSQL plans it as any join.
const SELECT_WATCHED_SINCE: &str = "SELECT a.address, a.order_id, o.asset, o.monitor_until FROM orders o \
     CROSS JOIN order_addresses a \
     WHERE a.order_id = o.id AND o.updated_at >= $3 AND a.chain = $1 AND o.monitor_until > $2 \
     UNION ALL SELECT d.address, NULL, NULL, $4 FROM deposit_addresses d \
     WHERE d.chain = $1 AND d.created_at >= $3";

pub(super) fn upsert_cursor(cursor: &ChainCursor) -> Query {
    let recent: Vec<serde_json::Value> = cursor
        .recent
        .iter()
        .map(|(h, hash)| serde_json::json!([h, hash]))
        .collect();
    Query::new(UPSERT_CURSOR)
        .text(cursor.chain.as_str())
        .int(i64::try_from(cursor.height).unwrap_or(i64::MAX))
        .text(cursor.hash.clone())
        .text(serde_json::Value::Array(recent).to_string())
        .int(ms(cursor.updated_at))
}

fn watched_from_row<R: RowExt>(row: &R) -> Result<WatchedAddress, StoreError> {
    Ok(WatchedAddress {
        address: row.text("address")?,
        order_id: row
            .opt_text("order_id")?
            .map(|id| id.parse())
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                column: "order_addresses.order_id".into(),
                detail: format!("{e}"),
            })?,
        asset: row.opt_text("asset")?.and_then(|a| a.parse().ok()),
        monitor_until: codec::from_ms("orders.monitor_until", row.int("monitor_until")?)?,
    })
}

pub(super) async fn cursor<B: Backend>(
    backend: &B,
    chain: &ChainId,
) -> Result<Option<ChainCursor>, StoreError> {
    let q = Query::new(SELECT_CURSOR).text(chain.as_str());
    first(backend.fetch(q).await?, codec::cursor_from_row)
}

pub(super) async fn watched<B: Backend>(
    backend: &B,
    chain: &ChainId,
    now: OffsetDateTime,
) -> Result<Vec<WatchedAddress>, StoreError> {
    let q = Query::new(SELECT_WATCHED)
        .text(chain.as_str())
        .int(ms(now))
        .int(crate::DEPOSIT_WATCH_UNTIL_MS);
    rows(backend.fetch(q).await?, watched_from_row)
}

pub(super) async fn watched_since<B: Backend>(
    backend: &B,
    chain: &ChainId,
    now: OffsetDateTime,
    since: OffsetDateTime,
) -> Result<Vec<WatchedAddress>, StoreError> {
    let q = Query::new(SELECT_WATCHED_SINCE)
        .text(chain.as_str())
        .int(ms(now))
        .int(ms(since))
        .int(crate::DEPOSIT_WATCH_UNTIL_MS);
    rows(backend.fetch(q).await?, watched_from_row)
}
