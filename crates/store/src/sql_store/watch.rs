//! What the chain watchers keep: their cursors, and the addresses they watch.
//!
//! The watched set is read a page at a time, each page one short statement walking an index
//! in key order from where the previous page stopped: the full load costs what is open, the
//! incremental load what changed, and no read holds a snapshot for long (on SQLite, the WAL
//! cannot be checkpointed past the oldest reader's snapshot). Pages are not one snapshot: a
//! row that changes during a load has a new `updated_at`, so the next incremental load, which
//! starts before this one did, sees it.

use std::collections::HashSet;

use coffer_core::ChainId;
use time::OffsetDateTime;

use super::first;
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{self, ms};
use crate::{ChainCursor, StoreError, WatchedAddress};

pub(super) const UPSERT_CURSOR: &str = "INSERT INTO chain_cursors (chain, height, hash, recent, updated_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chain) DO UPDATE SET height = excluded.height, \
     hash = excluded.hash, recent = excluded.recent, updated_at = excluded.updated_at";

const SELECT_CURSOR: &str =
    "SELECT chain, height, hash, recent, updated_at FROM chain_cursors WHERE chain = $1";

/// Orders per page of a watched-set load (a few milliseconds of reading).
pub const WATCH_PAGE: i64 = 5_000;

/// The next page of open orders after `($1, $2)` in (monitor_until, id) order (index
/// `orders_monitored`), each with its addresses on chain `$4` (index `order_addresses_order`),
/// or one row with a NULL address if it has none there. Rows of the page's first key may be
/// closed by a millisecond (`monitor_until` = now): the caller drops them.
const SELECT_OPEN_PAGE: &str = "SELECT page.id AS order_id, page.asset, page.monitor_until, \
     a.address FROM (SELECT id, asset, monitor_until FROM orders \
       WHERE (monitor_until, id) > ($1, $2) ORDER BY monitor_until, id LIMIT $3) page \
     LEFT JOIN order_addresses a ON a.order_id = page.id AND a.chain = $4";

/// The next page of orders changed after `($1, $2)` in (updated_at, id) order (index
/// `orders_updated`) whose window is open at `$3`, with their addresses on chain `$5`. The
/// unary `+` keeps both databases from walking `orders_monitored` instead (every open order)
/// for the window test, which filters what changed.
const SELECT_CHANGED_PAGE: &str = "SELECT page.id AS order_id, page.asset, \
     page.monitor_until, page.updated_at, a.address FROM (SELECT id, asset, monitor_until, \
       updated_at FROM orders WHERE (updated_at, id) > ($1, $2) AND +monitor_until > $3 \
       ORDER BY updated_at, id LIMIT $4) page \
     LEFT JOIN order_addresses a ON a.order_id = page.id AND a.chain = $5";

/// Deposit addresses never close: all of them, a page at a time (primary key).
const SELECT_DEPOSIT_PAGE: &str = "SELECT address, created_at FROM deposit_addresses \
     WHERE chain = $1 AND address > $2 ORDER BY address LIMIT $3";

/// Deposit addresses created after `($2, $3)` in (created_at, address) order (index
/// `deposit_addresses_new`).
const SELECT_NEW_DEPOSIT_PAGE: &str = "SELECT address, created_at FROM deposit_addresses \
     WHERE chain = $1 AND (created_at, address) > ($2, $3) ORDER BY created_at, address LIMIT $4";

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

pub(super) fn cursor_query(chain: &ChainId) -> Query {
    Query::new(SELECT_CURSOR).text(chain.as_str())
}

pub(super) async fn cursor<B: Backend>(
    backend: &B,
    chain: &ChainId,
) -> Result<Option<ChainCursor>, StoreError> {
    first(
        backend.fetch(cursor_query(chain)).await?,
        codec::cursor_from_row,
    )
}

/// The page of open orders after `(monitor_until, id)`, with their addresses on `chain`.
pub(super) fn open_page_query(after: (i64, &str), chain: &ChainId) -> Query {
    Query::new(SELECT_OPEN_PAGE)
        .int(after.0)
        .text(after.1)
        .int(WATCH_PAGE)
        .text(chain.as_str())
}

/// The page of orders changed after `(updated_at, id)` and open at `now_ms`, with their
/// addresses on `chain`.
pub(super) fn changed_page_query(after: (i64, &str), now_ms: i64, chain: &ChainId) -> Query {
    Query::new(SELECT_CHANGED_PAGE)
        .int(after.0)
        .text(after.1)
        .int(now_ms)
        .int(WATCH_PAGE)
        .text(chain.as_str())
}

/// The page of deposit addresses on `chain` after `address`.
pub(super) fn deposit_page_query(chain: &ChainId, address: &str) -> Query {
    Query::new(SELECT_DEPOSIT_PAGE)
        .text(chain.as_str())
        .text(address)
        .int(WATCH_PAGE)
}

/// The page of deposit addresses on `chain` created after `(created_at, address)`.
pub(super) fn new_deposit_page_query(chain: &ChainId, after: (i64, &str)) -> Query {
    Query::new(SELECT_NEW_DEPOSIT_PAGE)
        .text(chain.as_str())
        .int(after.0)
        .text(after.1)
        .int(WATCH_PAGE)
}

/// Which orders a page walks, and from where.
#[derive(Clone, Copy)]
enum Walk {
    /// Open at `now`: by (monitor_until, id).
    Open,
    /// Changed at or after `since`: by (updated_at, id).
    Changed { since_ms: i64 },
}

pub(super) async fn watched<B: Backend>(
    backend: &B,
    chain: &ChainId,
    now: OffsetDateTime,
) -> Result<Vec<WatchedAddress>, StoreError> {
    let mut out = order_addresses(backend, chain, now, Walk::Open).await?;
    deposit_addresses(backend, chain, None, &mut out).await?;
    Ok(out)
}

pub(super) async fn watched_since<B: Backend>(
    backend: &B,
    chain: &ChainId,
    now: OffsetDateTime,
    since: OffsetDateTime,
) -> Result<Vec<WatchedAddress>, StoreError> {
    let since_ms = ms(since);
    let mut out = order_addresses(backend, chain, now, Walk::Changed { since_ms }).await?;
    deposit_addresses(backend, chain, Some(since_ms), &mut out).await?;
    Ok(out)
}

/// The addresses on `chain` of the orders `walk` selects whose window is open at `now`.
async fn order_addresses<B: Backend>(
    backend: &B,
    chain: &ChainId,
    now: OffsetDateTime,
    walk: Walk,
) -> Result<Vec<WatchedAddress>, StoreError> {
    let now_ms = ms(now);
    let mut out = Vec::new();
    // (key, id) of the last order read; an empty id sorts before every id, so the first page
    // starts at the key itself: monitor_until >= now, or updated_at >= since.
    let mut after = (
        match walk {
            Walk::Open => now_ms,
            Walk::Changed { since_ms } => since_ms,
        },
        String::new(),
    );
    loop {
        let q = match walk {
            Walk::Open => open_page_query((after.0, &after.1), chain),
            Walk::Changed { .. } => changed_page_query((after.0, &after.1), now_ms, chain),
        };
        let rows = backend.fetch(q).await?;
        let mut orders = HashSet::with_capacity(rows.len());
        for row in &rows {
            let id = row.text("order_id")?;
            let until_ms = row.int("monitor_until")?;
            let key = match walk {
                Walk::Open => until_ms,
                Walk::Changed { .. } => row.int("updated_at")?,
            };
            if (key, id.as_str()) > (after.0, after.1.as_str()) {
                after = (key, id.clone());
            }
            let address = row.opt_text("address")?;
            if let Some(address) = address.filter(|_| until_ms > now_ms) {
                out.push(WatchedAddress {
                    address,
                    order_id: Some(id.parse().map_err(|e| StoreError::Corrupt {
                        column: "orders.id".into(),
                        detail: format!("{e}"),
                    })?),
                    asset: row.opt_text("asset")?.and_then(|a| a.parse().ok()),
                    monitor_until: codec::from_ms("orders.monitor_until", until_ms)?,
                });
            }
            orders.insert(id);
        }
        if i64::try_from(orders.len()).unwrap_or(i64::MAX) < WATCH_PAGE {
            return Ok(out);
        }
    }
}

/// Every deposit address on `chain`, or (with `since_ms`) those created at or after it.
async fn deposit_addresses<B: Backend>(
    backend: &B,
    chain: &ChainId,
    since_ms: Option<i64>,
    out: &mut Vec<WatchedAddress>,
) -> Result<(), StoreError> {
    let until = codec::from_ms("deposit watch", crate::DEPOSIT_WATCH_UNTIL_MS)?;
    let mut after = (since_ms.unwrap_or(0), String::new());
    loop {
        let q = match since_ms {
            None => deposit_page_query(chain, &after.1),
            Some(_) => new_deposit_page_query(chain, (after.0, &after.1)),
        };
        let rows = backend.fetch(q).await?;
        let n = rows.len();
        for row in &rows {
            let address = row.text("address")?;
            let key = (row.int("created_at")?, address.clone());
            // By address alone for the full list, by (created_at, address) since a time.
            if since_ms.is_none() || key > after {
                after = key;
            }
            out.push(WatchedAddress {
                address,
                order_id: None,
                asset: None,
                monitor_until: until,
            });
        }
        if i64::try_from(n).unwrap_or(i64::MAX) < WATCH_PAGE {
            return Ok(());
        }
    }
}
