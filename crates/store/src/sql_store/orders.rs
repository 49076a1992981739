//! Orders, their timeline and the addresses they were given.

use coffer_core::{ChainId, MerchantId, Order, OrderId, TimelineEntry};
use time::OffsetDateTime;

use super::{count_of, first, page_limit, rows};
use crate::backend::{Backend, Query, RowExt, Value};
use crate::codec::{self, ms, opt_ms, to_json};
use crate::unique::{Unique, UniqueIndex};
use crate::{OrderFilter, OrderQuery, StoreError};

/// Every column of `orders`, in the order the INSERT binds them: written once, and the
/// INSERT and every SELECT below are built from it at compile time (`concat!` takes literals
/// only, hence a macro rather than a `const`).
macro_rules! order_columns {
    () => {
        "id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
         fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
         rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, \
         policy, description, metadata, success_url, expired_url, callback_url, dialect, \
         expires_at, monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data, \
         target_details, credential_id"
    };
}

pub(super) use order_columns;

/// `SELECT <every column> FROM orders <rest>`: what `codec::order_from_row` reads.
macro_rules! select_orders {
    ($rest:literal) => {
        concat!("SELECT ", order_columns!(), " FROM orders ", $rest)
    };
}

pub(super) const INSERT_ORDER: &str = concat!(
    "INSERT INTO orders (",
    order_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37)"
);

const SELECT_ORDER_BY_MERCHANT_AND_ID: &str = select_orders!("WHERE merchant_id = $1 AND id = $2");

const SELECT_ORDER_BY_NO: &str = select_orders!("WHERE merchant_id = $1 AND order_no = $2");

const SELECT_ORDER_BY_ID: &str = select_orders!("WHERE id = $1");

const SELECT_ORDER_BY_TOKEN: &str = select_orders!("WHERE checkout_token = $1");

pub(super) const SELECT_ORDERS_PAGE: &str = select_orders!(
    "WHERE ($1 IS NULL OR merchant_id = $1) \
       AND ($2 IS NULL OR status = $2) \
       AND ($3 IS NULL OR created_at >= $3) \
       AND ($4 IS NULL OR created_at < $4) \
       AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
     ORDER BY created_at DESC, id DESC \
     LIMIT $7"
);

const SELECT_ORDERS_DUE_FOR_EXPIRY: &str =
    select_orders!("WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2");

const SELECT_ORDERS_BY_ADDRESS: &str = select_orders!(
    "WHERE id IN (SELECT order_id FROM order_addresses WHERE chain = $1 AND address = $2) \
     ORDER BY created_at, id"
);

// Identity columns (id, merchant, order_no, token, created_at, credential_id) never change
// after insert.
pub(super) const UPDATE_ORDER: &str = "UPDATE orders SET status = $1, reason = $2, amount = $3, currency = $4, \
     fixed_stablecoin_rate = $5, asset = $6, amount_due = $7, address = $8, derivation_index = $9, \
     derivation_path = $10, rate_price = $11, rate_source = $12, rate_at = $13, confirmed = $14, \
     unconfirmed = $15, any_late = $16, any_reversed = $17, policy = $18, description = $19, \
     metadata = $20, success_url = $21, expired_url = $22, callback_url = $23, dialect = $24, \
     expires_at = $25, monitor_until = $26, updated_at = $27, version = $28, lock_window_ms = $29, dialect_data = $30, \
     target_details = $31 \
     WHERE id = $32 AND version = $33";

/// The unique indexes a new order can hit that callers tell apart. Its id and checkout token
/// are random: a clash there is [`Unique::Record`].
pub(super) const ORDER_UNIQUE: &[UniqueIndex] = &[
    UniqueIndex {
        rule: Unique::OrderNo,
        postgres: "orders_merchant_id_order_no_key",
        sqlite: "orders.merchant_id, orders.order_no",
    },
    UniqueIndex {
        rule: Unique::Address,
        postgres: "orders_address_unique",
        sqlite: "orders.address",
    },
];

pub(super) const INSERT_ORDER_ADDRESS: &str = "INSERT INTO order_addresses (chain, address, order_id) \
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

pub(super) const INSERT_TRANSITION: &str = "INSERT INTO order_transitions (order_id, at, from_status, from_reason, to_status, to_reason, \
     cause, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

fn order_values(q: Query, order: &Order) -> Query {
    let target = order.target.as_ref();
    q.text(order.state.status.as_str())
        .text(order.state.reason.as_str())
        .text(order.amount.to_string())
        .text(order.currency.clone())
        .boolean(order.fixed_stablecoin_rate)
        .opt_text(target.map(|t| t.asset.to_string()))
        .opt_text(target.map(|t| t.amount_due.to_string()))
        .opt_text(target.map(|t| t.address.clone()))
        .opt_int(
            target
                .and_then(|t| t.derivation.as_ref())
                .map(|d| i64::from(d.index)),
        )
        .opt_text(
            target
                .and_then(|t| t.derivation.as_ref())
                .map(|d| d.path.clone()),
        )
        .opt_text(target.map(|t| t.rate.price.get().to_string()))
        .opt_text(target.map(|t| t.rate.source.clone()))
        .opt_int(target.map(|t| ms(t.rate.at)))
        .text(order.totals.confirmed.to_string())
        .text(order.totals.unconfirmed.to_string())
        .boolean(order.totals.late)
        .boolean(order.totals.any_reversed)
        .text(to_json(&order.policy))
        .opt_text(order.description.clone())
        .text(to_json(&order.metadata))
        .opt_text(order.links.success_url.clone())
        .opt_text(order.links.expired_url.clone())
        .opt_text(order.links.callback_url.clone())
        .text(order.dialect.clone())
        .int(ms(order.expires_at))
        .int(ms(order.monitor_until))
}

pub(super) fn insert(order: &Order) -> Query {
    let q = Query::new(INSERT_ORDER)
        .text(order.id.as_str())
        .text(order.merchant_id.as_str())
        .opt_text(order.order_no.clone())
        .text(order.checkout_token.as_str());
    // The shared middle section is status..monitor_until in the same order as UPDATE_ORDER.
    order_values(q, order)
        .int(ms(order.created_at))
        .int(ms(order.updated_at))
        .int(order.version)
        .int(window_ms(order))
        .text(to_json(&order.dialect_data))
        .text(target_details(order))
        .opt_text(order.credential_id.clone())
}

pub(super) fn update(order: &Order, expected_version: i64) -> Query {
    order_values(Query::new(UPDATE_ORDER), order)
        .int(ms(order.updated_at))
        .int(order.version)
        .int(window_ms(order))
        .text(to_json(&order.dialect_data))
        .text(target_details(order))
        .text(order.id.as_str())
        .int(expected_version)
}

/// The payment method's details of the order's target (`{}` without a target).
fn target_details(order: &Order) -> String {
    order
        .target
        .as_ref()
        .map_or_else(|| "{}".to_owned(), |t| to_json(&t.details))
}

fn window_ms(order: &Order) -> i64 {
    i64::try_from(order.lock_window.whole_milliseconds()).unwrap_or(i64::MAX)
}

/// Keep every address an order was given watched: `choose_asset` can change it.
pub(super) fn address(order: &Order) -> Option<Query> {
    let target = order.target.as_ref()?;
    Some(
        Query::new(INSERT_ORDER_ADDRESS)
            .text(target.asset.chain().as_str())
            .text(target.address.clone())
            .text(order.id.as_str()),
    )
}

/// A timeline entry of an order.
pub(super) fn transition(order_id: &OrderId, entry: &TimelineEntry) -> Query {
    Query::new(INSERT_TRANSITION)
        .text(order_id.as_str())
        .int(ms(entry.at))
        .opt_text(entry.from.map(|s| s.status.as_str()))
        .opt_text(entry.from.map(|s| s.reason.as_str()))
        .text(entry.to.status.as_str())
        .text(entry.to.reason.as_str())
        .text(entry.cause.as_str())
        .opt_text(entry.note.clone())
}

pub(super) fn get_query(merchant: &MerchantId, id: &OrderId) -> Query {
    Query::new(SELECT_ORDER_BY_MERCHANT_AND_ID)
        .text(merchant.as_str())
        .text(id.as_str())
}

pub(super) async fn get<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    id: &OrderId,
) -> Result<Option<Order>, StoreError> {
    first(
        backend.fetch(get_query(merchant, id)).await?,
        codec::order_from_row,
    )
}

pub(super) fn by_no_query(merchant: &MerchantId, order_no: &str) -> Query {
    Query::new(SELECT_ORDER_BY_NO)
        .text(merchant.as_str())
        .text(order_no)
}

pub(super) async fn get_by_no<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    order_no: &str,
) -> Result<Option<Order>, StoreError> {
    first(
        backend.fetch(by_no_query(merchant, order_no)).await?,
        codec::order_from_row,
    )
}

pub(super) async fn find<B: Backend>(
    backend: &B,
    id: &OrderId,
) -> Result<Option<Order>, StoreError> {
    let q = Query::new(SELECT_ORDER_BY_ID).text(id.as_str());
    first(backend.fetch(q).await?, codec::order_from_row)
}

pub(super) fn by_token_query(token: &str) -> Query {
    Query::new(SELECT_ORDER_BY_TOKEN).text(token)
}

pub(super) async fn find_by_token<B: Backend>(
    backend: &B,
    token: &str,
) -> Result<Option<Order>, StoreError> {
    first(
        backend.fetch(by_token_query(token)).await?,
        codec::order_from_row,
    )
}

pub(super) async fn list<B: Backend>(
    backend: &B,
    query: &OrderQuery,
) -> Result<Vec<Order>, StoreError> {
    let q = Query::new(SELECT_ORDERS_PAGE)
        .opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
        .opt_text(query.status.map(|s| s.as_str()))
        .opt_int(opt_ms(query.created_from))
        .opt_int(opt_ms(query.created_to))
        .opt_int(query.after.as_ref().map(|c| ms(c.created_at)))
        .opt_text(query.after.as_ref().map(|c| c.id.as_str().to_owned()))
        .int(page_limit(query.limit));
    rows(backend.fetch(q).await?, codec::order_from_row)
}

pub(super) async fn due_for_expiry<B: Backend>(
    backend: &B,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<Order>, StoreError> {
    let q = Query::new(SELECT_ORDERS_DUE_FOR_EXPIRY)
        .int(ms(now))
        .int(page_limit(limit));
    rows(backend.fetch(q).await?, codec::order_from_row)
}

pub(super) fn changed_since_query(since: OffsetDateTime, limit: u32) -> Query {
    Query::new(
        "SELECT id, updated_at FROM orders WHERE updated_at >= $1 ORDER BY updated_at LIMIT $2",
    )
    .int(ms(since))
    .int(page_limit(limit))
}

/// Orders changed at or after `since` (`orders_updated` index), oldest change first.
pub(super) async fn changed_since<B: Backend>(
    backend: &B,
    since: OffsetDateTime,
    limit: u32,
) -> Result<Vec<(OrderId, OffsetDateTime)>, StoreError> {
    rows(
        backend.fetch(changed_since_query(since, limit)).await?,
        |row| {
            let id = row.text("id")?;
            let id = id.parse().map_err(|e| StoreError::Corrupt {
                column: "orders.id".into(),
                detail: format!("{e}"),
            })?;
            Ok((
                id,
                codec::from_ms("orders.updated_at", row.int("updated_at")?)?,
            ))
        },
    )
}

pub(super) fn for_address_query(chain: &ChainId, address: &str) -> Query {
    Query::new(SELECT_ORDERS_BY_ADDRESS)
        .text(chain.as_str())
        .text(address)
}

pub(super) async fn for_address<B: Backend>(
    backend: &B,
    chain: &ChainId,
    address: &str,
) -> Result<Vec<Order>, StoreError> {
    rows(
        backend.fetch(for_address_query(chain, address)).await?,
        codec::order_from_row,
    )
}

pub(super) async fn count<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
) -> Result<u64, StoreError> {
    let q = Query::new("SELECT COUNT(*) AS n FROM orders WHERE merchant_id = $1")
        .text(merchant.as_str());
    count_of(backend.fetch(q).await?)
}

// ---- page-numbered lists with filters (the dialects') ---------------------------------

/// A statement assembled from constants as its arguments are bound: `$n` in ascending order
/// of first use.
struct Statement {
    sql: String,
    args: Vec<Value>,
}

impl Statement {
    fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            args: Vec::new(),
        }
    }

    /// Bind `value`; its placeholder.
    fn bind(&mut self, value: Value) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    fn text(&mut self, value: impl Into<String>) -> String {
        self.bind(Value::Text(value.into()))
    }

    fn int(&mut self, value: i64) -> String {
        self.bind(Value::Int(value))
    }

    fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    fn finish(self) -> Query {
        let mut query = Query::built(self.sql);
        query.args = self.args;
        query
    }
}

/// `head` (a `SELECT … FROM orders`) with the filter's conditions.
fn filtered(head: &str, filter: &OrderFilter) -> Statement {
    let mut s = Statement::new(head);
    let p = s.text(filter.merchant_id.as_str());
    s.push(&format!(" WHERE merchant_id = {p}"));
    if let Some(from) = filter.created_from {
        let p = s.int(ms(from));
        s.push(&format!(" AND created_at >= {p}"));
    }
    if let Some(to) = filter.created_to {
        let p = s.int(ms(to));
        s.push(&format!(" AND created_at < {p}"));
    }
    if let Some(chain) = &filter.chain {
        // Asset ids are `chain:SYMBOL`.
        let p = s.text(format!("{}:", chain.as_str()));
        s.push(&format!(" AND substr(asset, 1, length({p})) = {p}"));
    }
    if let Some(states) = &filter.states {
        let mut any = Vec::with_capacity(states.len());
        for state in states {
            let status = s.text(state.status.as_str());
            let reason = s.text(state.reason.as_str());
            any.push(format!("(status = {status} AND reason = {reason})"));
        }
        if any.is_empty() {
            any.push("1 = 0".to_owned());
        }
        s.push(&format!(" AND ({})", any.join(" OR ")));
    }
    if let Some(txid) = &filter.txid {
        let merchant = s.text(filter.merchant_id.as_str());
        let given = s.text(txid.clone());
        let lower = s.text(txid.to_ascii_lowercase());
        s.push(&format!(
            " AND id IN (SELECT p.order_id FROM payments p \
             WHERE p.merchant_id = {merchant} AND p.txid IN ({given}, {lower}))"
        ));
    }
    s
}

pub(super) async fn matching<B: Backend>(
    backend: &B,
    filter: &OrderFilter,
    offset: u64,
    limit: u32,
) -> Result<Vec<Order>, StoreError> {
    let mut s = filtered(concat!("SELECT ", order_columns!(), " FROM orders"), filter);
    let limit = s.int(page_limit(limit));
    let offset = s.int(i64::try_from(offset).unwrap_or(i64::MAX));
    s.push(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
    ));
    rows(backend.fetch(s.finish()).await?, codec::order_from_row)
}

pub(super) async fn count_matching<B: Backend>(
    backend: &B,
    filter: &OrderFilter,
) -> Result<u64, StoreError> {
    let s = filtered("SELECT COUNT(*) AS n FROM orders", filter);
    count_of(backend.fetch(s.finish()).await?)
}

pub(super) async fn timeline<B: Backend>(
    backend: &B,
    order: &OrderId,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let q = Query::new(
        "SELECT at, from_status, from_reason, to_status, to_reason, cause, note \
         FROM order_transitions WHERE order_id = $1 ORDER BY seq",
    )
    .text(order.as_str());
    rows(backend.fetch(q).await?, codec::timeline_from_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insert_binds_every_column_once() {
        let columns: Vec<&str> = order_columns!().split(',').map(str::trim).collect();
        assert_eq!(
            crate::sql_store::tests::placeholders(INSERT_ORDER),
            (1..=columns.len()).collect::<Vec<_>>()
        );
    }
}
