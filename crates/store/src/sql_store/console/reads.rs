//! The console's lists, searches and dashboard: each query names the merchant first and has
//! an index that starts with it, so none of them reads all orders at a million orders. Each
//! is built by one function, used both to run it and to show its plan
//! ([`plans`], `EXPLAIN`).

use coffer_core::{
    AssetId, BaseUnits, Deposit, MerchantId, Order, OrderId, PayoutRequest, PayoutStatus, WebhookId,
};
use time::OffsetDateTime;

use super::super::deposits::{self, DEPOSIT_COLUMNS};
use super::super::orders::order_columns;
use super::super::payouts::PAYOUT_COLUMNS;
use super::super::{page_limit, rows};
use crate::backend::{Backend, Query, RowExt, Value};
use crate::codec::{self, corrupt, from_ms, ms};
use crate::webhooks::{DELIVERY_COLUMNS, delivery_from_row};
use crate::{
    ConsoleOrderQuery, DeliveryRecord, DepositAccountRecord, ListCursor, OrderStatsRow, StoreError,
    StoredEvent, WebhookBacklog,
};

/// At most this many orders answer one search (an address or a transaction is normally one
/// order's).
const SEARCH_LIMIT: i64 = 50;
/// At most this many events or deliveries on an order's page.
const DETAIL_LIMIT: i64 = 200;

/// SQL assembled from constant fragments, with its arguments in placeholder order.
struct Built {
    sql: String,
    args: Vec<Value>,
}

impl Built {
    fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            args: Vec::new(),
        }
    }

    /// The next placeholder, bound to `v`.
    fn arg(&mut self, v: Value) -> String {
        self.args.push(v);
        format!("${}", self.args.len())
    }

    fn text(&mut self, v: impl Into<String>) -> String {
        self.arg(Value::Text(v.into()))
    }

    fn int(&mut self, v: i64) -> String {
        self.arg(Value::Int(v))
    }

    /// `AND created_at <= $a AND (created_at < $a OR id < $b)`: the rows after `cursor` in a
    /// `created_at DESC, id DESC` list. The first term bounds the index range (the OR alone
    /// would make the database walk every row before the cursor).
    fn keyset(&mut self, cursor: Option<&ListCursor>, created: &str, id: &str) {
        if let Some(c) = cursor {
            let at = self.int(ms(c.created_at));
            let after = self.text(c.id.clone());
            self.sql.push_str(&format!(
                " AND {created} <= {at} AND ({created} < {at} OR {id} < {after})"
            ));
        }
    }

    fn query(self) -> Query {
        let mut q = Query::built(self.sql);
        q.args = self.args;
        q
    }
}

const SELECT_ORDERS: &str = concat!("SELECT ", order_columns!(), " FROM orders");

pub(super) fn orders_query(q: &ConsoleOrderQuery) -> Query {
    let mut b = Built::new(SELECT_ORDERS);
    // A query without a merchant matches nothing rather than everyone's orders.
    let merchant = b.text(
        q.merchant_id
            .as_ref()
            .map_or_else(String::new, |m| m.as_str().to_owned()),
    );
    b.sql.push_str(&format!(" WHERE merchant_id = {merchant}"));
    if let Some(s) = q.status {
        let p = b.text(s.as_str());
        b.sql.push_str(&format!(" AND status = {p}"));
    }
    if let Some(r) = q.reason {
        let p = b.text(r.as_str());
        b.sql.push_str(&format!(" AND reason = {p}"));
    }
    if let Some(a) = &q.asset {
        let p = b.text(a.to_string());
        b.sql.push_str(&format!(" AND asset = {p}"));
    }
    if let Some(from) = q.created_from {
        let p = b.int(ms(from));
        b.sql.push_str(&format!(" AND created_at >= {p}"));
    }
    if let Some(to) = q.created_to {
        let p = b.int(ms(to));
        b.sql.push_str(&format!(" AND created_at < {p}"));
    }
    b.keyset(q.after.as_ref(), "created_at", "id");
    let limit = b.int(page_limit(q.limit));
    b.sql
        .push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT {limit}"));
    b.query()
}

pub(super) async fn orders<B: Backend>(
    backend: &B,
    q: &ConsoleOrderQuery,
) -> Result<Vec<Order>, StoreError> {
    if q.merchant_id.is_none() {
        return Ok(Vec::new());
    }
    rows(backend.fetch(orders_query(q)).await?, codec::order_from_row)
}

pub(super) fn by_address_query(merchant: &MerchantId, address: &str) -> Query {
    Query::new(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE merchant_id = $1 AND id IN \
         (SELECT order_id FROM order_addresses WHERE lower(address) = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .text(merchant.as_str())
    .text(address.trim().to_lowercase())
    .int(SEARCH_LIMIT)
}

pub(super) fn by_txid_query(merchant: &MerchantId, txid: &str) -> Query {
    Query::new(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE merchant_id = $1 AND id IN \
         (SELECT order_id FROM payments WHERE lower(txid) = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .text(merchant.as_str())
    .text(txid.trim().to_lowercase())
    .int(SEARCH_LIMIT)
}

pub(super) async fn fetch_orders<B: Backend>(
    backend: &B,
    q: Query,
) -> Result<Vec<Order>, StoreError> {
    rows(backend.fetch(q).await?, codec::order_from_row)
}

/// Amounts are decimal text up to 39 digits (u128), which neither database sums exactly in
/// one integer type: SQLite's SUM overflows at 2^63 and PostgreSQL's numeric is not what
/// SQLite has. So each amount is left-padded to 39 digits and summed in three slices of at
/// most 15 digits (as BIGINT: exact on both while a group has fewer than ~9,000 amounts near
/// u128::MAX, i.e. always), and the slices are put together in Rust.
const PADDED: &str = "substr('000000000000000000000000000000000000000' || confirmed, \
     length(confirmed) + 1, 39)";

pub(super) fn stats_query(
    merchant: &MerchantId,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Query {
    let sql = format!(
        "SELECT created_at / 86400000 AS day, status, asset, COUNT(*) AS n, \
         CAST(SUM(CAST(substr({PADDED}, 1, 15) AS BIGINT)) AS TEXT) AS hi, \
         CAST(SUM(CAST(substr({PADDED}, 16, 12) AS BIGINT)) AS TEXT) AS mid, \
         CAST(SUM(CAST(substr({PADDED}, 28, 12) AS BIGINT)) AS TEXT) AS lo \
         FROM orders WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3 \
         GROUP BY created_at / 86400000, status, asset"
    );
    Query::built(sql)
        .text(merchant.as_str())
        .int(ms(from))
        .int(ms(to))
}

fn slice(row: &impl RowExt, col: &str) -> Result<u128, StoreError> {
    let raw = row.text(col)?;
    raw.trim()
        .parse::<u128>()
        .map_err(|e| corrupt("orders.confirmed (sum)", e))
}

fn stats_from_row(row: &impl RowExt) -> Result<OrderStatsRow, StoreError> {
    const E12: u128 = 1_000_000_000_000;
    let total = slice(row, "hi")?
        .checked_mul(E12 * E12)
        .and_then(|hi| hi.checked_add(slice(row, "mid").ok()?.checked_mul(E12)?))
        .and_then(|v| v.checked_add(slice(row, "lo").ok()?))
        .ok_or_else(|| corrupt("orders.confirmed (sum)", "the sum exceeds u128"))?;
    Ok(OrderStatsRow {
        day: row.int("day")?,
        status: row
            .text("status")?
            .parse()
            .map_err(|e| corrupt("orders.status", e))?,
        asset: row
            .opt_text("asset")?
            .map(|a| a.parse::<AssetId>().map_err(|e| corrupt("orders.asset", e)))
            .transpose()?,
        count: u64::try_from(row.int("n")?).unwrap_or(0),
        received: BaseUnits::new(total),
    })
}

pub(super) async fn stats<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<OrderStatsRow>, StoreError> {
    rows(
        backend.fetch(stats_query(merchant, from, to)).await?,
        stats_from_row,
    )
}

pub(super) fn events_query(merchant: &MerchantId, order: &OrderId) -> Query {
    Query::new(
        "SELECT seq, id, merchant_id, type, subject, data, created_at FROM events \
         WHERE subject = $1 AND merchant_id = $2 ORDER BY seq LIMIT $3",
    )
    .text(order.as_str())
    .text(merchant.as_str())
    .int(DETAIL_LIMIT)
}

pub(super) async fn events<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    order: &OrderId,
) -> Result<Vec<StoredEvent>, StoreError> {
    rows(
        backend.fetch(events_query(merchant, order)).await?,
        codec::event_from_row,
    )
}

pub(super) fn order_deliveries_query(merchant: &MerchantId, order: &OrderId) -> Query {
    Query::built(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
         WHERE d.merchant_id = $1 AND d.event_id IN \
         (SELECT e.id FROM events e WHERE e.subject = $2 AND e.merchant_id = $1) \
         ORDER BY d.created_at DESC, d.id DESC LIMIT $3"
    ))
    .text(merchant.as_str())
    .text(order.as_str())
    .int(DETAIL_LIMIT)
}

pub(super) fn endpoint_deliveries_query(
    merchant: &MerchantId,
    endpoint: &WebhookId,
    after: Option<&ListCursor>,
    limit: u32,
) -> Query {
    let mut b = Built::new(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.endpoint_id = "
    ));
    let e = b.text(endpoint.as_str());
    let m = b.text(merchant.as_str());
    b.sql.push_str(&format!("{e} AND d.merchant_id = {m}"));
    b.keyset(after, "d.created_at", "d.id");
    let limit = b.int(page_limit(limit));
    b.sql.push_str(&format!(
        " ORDER BY d.created_at DESC, d.id DESC LIMIT {limit}"
    ));
    b.query()
}

pub(super) async fn deliveries<B: Backend>(
    backend: &B,
    q: Query,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    rows(backend.fetch(q).await?, delivery_from_row)
}

pub(super) fn payouts_query(
    merchant: &MerchantId,
    status: Option<PayoutStatus>,
    order: Option<&OrderId>,
    after: Option<&ListCursor>,
    limit: u32,
) -> Query {
    let mut b = Built::new(PAYOUT_COLUMNS);
    let m = b.text(merchant.as_str());
    b.sql.push_str(&format!(" WHERE merchant_id = {m}"));
    if let Some(s) = status {
        let p = b.text(s.as_str());
        b.sql.push_str(&format!(" AND status = {p}"));
    }
    if let Some(o) = order {
        let p = b.text(o.as_str());
        b.sql.push_str(&format!(" AND order_id = {p}"));
    }
    b.keyset(after, "created_at", "id");
    let limit = b.int(page_limit(limit));
    b.sql
        .push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT {limit}"));
    b.query()
}

pub(super) async fn payouts<B: Backend>(
    backend: &B,
    q: Query,
) -> Result<Vec<PayoutRequest>, StoreError> {
    rows(backend.fetch(q).await?, codec::payout_from_row)
}

pub(super) fn deposit_accounts_query(
    merchant: &MerchantId,
    before_seq: Option<i64>,
    limit: u32,
) -> Query {
    Query::new(
        "SELECT seq, merchant_id, uuid, dialect, created_at FROM deposit_accounts \
         WHERE merchant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
    )
    .text(merchant.as_str())
    .int(before_seq.unwrap_or(i64::MAX))
    .int(page_limit(limit))
}

pub(super) async fn deposit_accounts<B: Backend>(
    backend: &B,
    q: Query,
) -> Result<Vec<DepositAccountRecord>, StoreError> {
    let mut accounts = rows(backend.fetch(q).await?, deposits::account_from_row)?;
    for account in &mut accounts {
        deposits::load_addresses(backend, account).await?;
    }
    Ok(accounts)
}

pub(super) fn deposits_query(merchant: &MerchantId, before_seq: Option<i64>, limit: u32) -> Query {
    Query::built(format!(
        "{DEPOSIT_COLUMNS} WHERE merchant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    ))
    .text(merchant.as_str())
    .int(before_seq.unwrap_or(i64::MAX))
    .int(page_limit(limit))
}

pub(super) async fn deposits<B: Backend>(
    backend: &B,
    q: Query,
) -> Result<Vec<Deposit>, StoreError> {
    rows(backend.fetch(q).await?, deposits::deposit_from_row)
}

fn opt_time(row: &impl RowExt, col: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    row.opt_int(col)?.map(|v| from_ms(col, v)).transpose()
}

fn count(row: Option<&impl RowExt>) -> Result<u64, StoreError> {
    match row {
        Some(r) => Ok(u64::try_from(r.int("n")?).unwrap_or(0)),
        None => Ok(0),
    }
}

pub(super) async fn backlog<B: Backend>(backend: &B) -> Result<WebhookBacklog, StoreError> {
    let pending = backend
        .fetch(Query::new(
            "SELECT COUNT(*) AS n, MIN(next_attempt_at) AS oldest FROM webhook_deliveries \
             WHERE status = 'pending'",
        ))
        .await?;
    let outbox = backend
        .fetch(Query::new(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox \
             WHERE dispatched_at IS NULL",
        ))
        .await?;
    let failing = backend
        .fetch(Query::new(
            "SELECT COUNT(*) AS n FROM webhook_endpoints \
             WHERE failing_since IS NOT NULL AND deleted_at IS NULL",
        ))
        .await?;
    Ok(WebhookBacklog {
        pending: count(pending.first())?,
        oldest_pending_due: match pending.first() {
            Some(r) => opt_time(r, "oldest")?,
            None => None,
        },
        outbox: count(outbox.first())?,
        oldest_outbox: match outbox.first() {
            Some(r) => opt_time(r, "oldest")?,
            None => None,
        },
        failing_endpoints: count(failing.first())?,
    })
}

/// Every list and search of the console for `merchant`, with a cursor and a window at `at`.
fn sample_queries(m: &MerchantId, at: OffsetDateTime) -> Vec<(&'static str, Query)> {
    let order = OrderId::from_random([8; 16]);
    let endpoint = WebhookId::from_random([9; 16]);
    let cursor = ListCursor {
        created_at: at,
        id: order.to_string(),
    };
    let base = ConsoleOrderQuery {
        merchant_id: Some(m.clone()),
        limit: 50,
        ..ConsoleOrderQuery::default()
    };
    let q = |f: &dyn Fn(&mut ConsoleOrderQuery)| {
        let mut query = base.clone();
        f(&mut query);
        orders_query(&query)
    };
    vec![
        ("orders", q(&|_| {})),
        ("orders, next page", q(&|o| o.after = Some(cursor.clone()))),
        (
            "orders by status",
            q(&|o| o.status = Some(coffer_core::OrderStatus::Settled)),
        ),
        (
            "orders by reason",
            q(&|o| o.reason = Some(coffer_core::StatusReason::PaidLate)),
        ),
        ("orders by asset", q(&|o| o.asset = "bsc:USDT".parse().ok())),
        (
            "orders by date",
            q(&|o| {
                o.created_from = Some(at - time::Duration::days(1));
                o.created_to = Some(at);
            }),
        ),
        ("search by address", by_address_query(m, "0xABC")),
        ("search by txid", by_txid_query(m, "0xabc")),
        (
            "dashboard",
            stats_query(m, at - time::Duration::days(30), at),
        ),
        ("order events", events_query(m, &order)),
        ("order deliveries", order_deliveries_query(m, &order)),
        (
            "endpoint deliveries",
            endpoint_deliveries_query(m, &endpoint, Some(&cursor), 50),
        ),
        ("payouts", payouts_query(m, None, None, Some(&cursor), 50)),
        (
            "order payouts",
            payouts_query(m, None, Some(&order), None, 50),
        ),
        (
            "deposit accounts",
            deposit_accounts_query(m, Some(i64::MAX), 50),
        ),
        ("deposits", deposits_query(m, Some(i64::MAX), 50)),
    ]
}

pub(super) async fn plans<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    at: OffsetDateTime,
) -> Result<Vec<(String, String)>, StoreError> {
    let sqlite = backend.kind() == "sqlite";
    let mut out = Vec::new();
    for (name, q) in sample_queries(merchant, at) {
        let prefix = if sqlite {
            "EXPLAIN QUERY PLAN "
        } else {
            "EXPLAIN "
        };
        let mut explained = Query::built(format!("{prefix}{}", q.sql));
        explained.args = q.args;
        let lines = backend.fetch(explained).await?;
        let mut plan = Vec::new();
        for row in &lines {
            plan.push(if sqlite {
                row.text("detail")?
            } else {
                row.text("QUERY PLAN")?
            });
        }
        out.push((name.to_owned(), plan.join("\n")));
    }
    Ok(out)
}
