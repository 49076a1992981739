//! The [`Store`] implementation, written once over any [`Backend`].

use async_trait::async_trait;
use coffer_core::{
    ApiCredential, KeyId, Merchant, MerchantId, Order, OrderId, Payment, TimelineEntry,
};
use time::OffsetDateTime;

use crate::backend::{Backend, Query};
use crate::codec::{self, ms, opt_ms, to_json};
use crate::{Changeset, CredentialRecord, EventQuery, OrderQuery, Store, StoreError, StoredEvent};

/// Largest page any list query returns.
pub const MAX_PAGE: u32 = 500;

pub struct SqlStore<B: Backend> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub fn new(backend: B) -> Self {
        Self { backend }
    }
}

#[cfg(test)]
const ORDER_COLUMNS: &str = "id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version";

// `concat!` needs literals, so the column list is repeated in the SELECTs below; a unit test
// checks every copy against ORDER_COLUMNS.
const SELECT_ORDER_BY_MERCHANT_AND_ID: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version \
     FROM orders WHERE merchant_id = $1 AND id = $2";
const SELECT_ORDER_BY_NO: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version \
     FROM orders WHERE merchant_id = $1 AND order_no = $2";
const SELECT_ORDER_BY_ID: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version \
     FROM orders WHERE id = $1";
const SELECT_ORDER_BY_TOKEN: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version \
     FROM orders WHERE checkout_token = $1";
const SELECT_ORDERS_PAGE: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version \
     FROM orders \
     WHERE ($1 IS NULL OR merchant_id = $1) \
       AND ($2 IS NULL OR status = $2) \
       AND ($3 IS NULL OR created_at >= $3) \
       AND ($4 IS NULL OR created_at < $4) \
       AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
     ORDER BY created_at DESC, id DESC \
     LIMIT $7";

const SELECT_ORDERS_DUE_FOR_EXPIRY: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version \
     FROM orders WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2";

const INSERT_ORDER: &str = "INSERT INTO orders (id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)";

// Identity columns (id, merchant, order_no, token, created_at) never change after insert.
const UPDATE_ORDER: &str = "UPDATE orders SET status = $1, reason = $2, amount = $3, currency = $4, \
     fixed_stablecoin_rate = $5, asset = $6, amount_due = $7, address = $8, derivation_index = $9, \
     derivation_path = $10, rate_price = $11, rate_source = $12, rate_at = $13, confirmed = $14, \
     unconfirmed = $15, any_late = $16, any_reversed = $17, policy = $18, description = $19, \
     metadata = $20, success_url = $21, expired_url = $22, callback_url = $23, dialect = $24, \
     expires_at = $25, monitor_until = $26, updated_at = $27, version = $28 \
     WHERE id = $29 AND version = $30";

const UPSERT_PAYMENT: &str = "INSERT INTO payments (id, order_id, merchant_id, chain, asset, amount, txid, output_index, \
     from_address, to_address, block_height, block_hash, confirmations, status, match_status, late, \
     occurred_at, detected_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
     ON CONFLICT (id) DO UPDATE SET block_height = excluded.block_height, \
     block_hash = excluded.block_hash, confirmations = excluded.confirmations, \
     status = excluded.status, match_status = excluded.match_status, late = excluded.late, \
     updated_at = excluded.updated_at";

const SELECT_PAYMENTS: &str = "SELECT id, order_id, merchant_id, asset, amount, txid, output_index, from_address, \
     to_address, block_height, block_hash, confirmations, status, match_status, late, occurred_at, \
     detected_at, updated_at FROM payments WHERE order_id = $1 ORDER BY detected_at, id";

const INSERT_TRANSITION: &str = "INSERT INTO order_transitions (order_id, at, from_status, from_reason, to_status, to_reason, \
     cause, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const INSERT_EVENT: &str = "INSERT INTO events (id, merchant_id, type, subject, data, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (event_id, created_at) VALUES ($1, $2)";

const SELECT_EVENTS: &str = "SELECT seq, id, merchant_id, type, subject, data, created_at FROM events \
     WHERE ($1 IS NULL OR merchant_id = $1) \
       AND ($2 IS NULL OR type = $2) \
       AND ($3 IS NULL OR created_at >= $3) \
       AND ($4 IS NULL OR seq > $4) \
     ORDER BY seq LIMIT $5";

const SELECT_PENDING_OUTBOX: &str = "SELECT o.seq AS seq, e.id AS id, e.merchant_id AS merchant_id, e.type AS type, \
     e.subject AS subject, e.data AS data, e.created_at AS created_at \
     FROM outbox o JOIN events e ON e.id = o.event_id \
     WHERE o.dispatched_at IS NULL ORDER BY o.seq LIMIT $1";

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

fn insert_order(order: &Order) -> Query {
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
}

fn update_order(order: &Order, expected_version: i64) -> Query {
    order_values(Query::new(UPDATE_ORDER), order)
        .int(ms(order.updated_at))
        .int(order.version)
        .text(order.id.as_str())
        .int(expected_version)
}

fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

fn rows<R, T>(rows: Vec<R>, f: impl Fn(&R) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

fn first<R, T>(
    rows: Vec<R>,
    f: impl Fn(&R) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    rows.first().map(f).transpose()
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrate().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    async fn commit(&self, changes: Changeset) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.backend.begin().await?;
        for merchant in &changes.new_merchants {
            let q = Query::new(
                "INSERT INTO merchants (id, name, policy, created_at) VALUES ($1, $2, $3, $4)",
            )
            .text(merchant.id.as_str())
            .text(merchant.name.clone())
            .text(to_json(&merchant.policy))
            .int(ms(merchant.created_at));
            B::execute(&mut tx, q).await?;
        }
        for order in &changes.new_orders {
            B::execute(&mut tx, insert_order(order))
                .await
                .map_err(|e| match e {
                    // id and token are 128/256 random bits: a clash is the merchant's order_no.
                    StoreError::Duplicate(_) => StoreError::Duplicate("order_no"),
                    other => other,
                })?;
        }
        for update in &changes.order_updates {
            if update.order.version != update.expected_version + 1 {
                return Err(StoreError::Conflict("order version"));
            }
            let n = B::execute(
                &mut tx,
                update_order(&update.order, update.expected_version),
            )
            .await?;
            if n != 1 {
                return Err(StoreError::Conflict("order"));
            }
        }
        for p in &changes.payments {
            let q = Query::new(UPSERT_PAYMENT)
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
                .int(ms(p.updated_at));
            B::execute(&mut tx, q).await.map_err(|e| match e {
                StoreError::Duplicate(_) => StoreError::Duplicate("payment (chain, txid, output)"),
                other => other,
            })?;
        }
        for (order_id, entry) in &changes.timeline {
            let q = Query::new(INSERT_TRANSITION)
                .text(order_id.as_str())
                .int(ms(entry.at))
                .opt_text(entry.from.map(|s| s.status.as_str()))
                .opt_text(entry.from.map(|s| s.reason.as_str()))
                .text(entry.to.status.as_str())
                .text(entry.to.reason.as_str())
                .text(entry.cause.as_str())
                .opt_text(entry.note.clone());
            B::execute(&mut tx, q).await?;
        }
        for event in &changes.events {
            let q = Query::new(INSERT_EVENT)
                .text(event.id.as_str())
                .text(event.merchant_id.as_str())
                .text(event.kind.as_str())
                .text(event.subject.clone())
                .text(to_json(&event.data))
                .int(ms(event.created_at));
            B::execute(&mut tx, q).await?;
            let q = Query::new(INSERT_OUTBOX)
                .text(event.id.as_str())
                .int(ms(event.created_at));
            B::execute(&mut tx, q).await?;
        }
        B::commit(tx).await
    }

    async fn get_merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, StoreError> {
        let q = Query::new("SELECT id, name, policy, created_at FROM merchants WHERE id = $1")
            .text(id.as_str());
        first(self.backend.fetch(q).await?, codec::merchant_from_row)
    }

    async fn list_merchants(&self) -> Result<Vec<Merchant>, StoreError> {
        let q = Query::new(
            "SELECT id, name, policy, created_at FROM merchants ORDER BY created_at, id",
        );
        rows(self.backend.fetch(q).await?, codec::merchant_from_row)
    }

    async fn insert_credential(&self, record: CredentialRecord) -> Result<(), StoreError> {
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
        let mut tx = self.backend.begin().await?;
        B::execute(&mut tx, q).await?;
        B::commit(tx).await
    }

    async fn get_credential(&self, id: &KeyId) -> Result<Option<CredentialRecord>, StoreError> {
        let q = Query::new(
            "SELECT id, merchant_id, label, scopes, secret_hash, created_at, expires_at, revoked_at \
             FROM api_credentials WHERE id = $1",
        )
        .text(id.as_str());
        first(self.backend.fetch(q).await?, codec::credential_from_row)
    }

    async fn list_credentials(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<ApiCredential>, StoreError> {
        let q = Query::new(
            "SELECT id, merchant_id, label, scopes, secret_hash, created_at, expires_at, revoked_at \
             FROM api_credentials WHERE merchant_id = $1 ORDER BY created_at, id",
        )
        .text(merchant.as_str());
        rows(self.backend.fetch(q).await?, |r| {
            codec::credential_from_row(r).map(|c| c.credential)
        })
    }

    async fn revoke_credential(
        &self,
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
        let mut tx = self.backend.begin().await?;
        let n = B::execute(&mut tx, q).await?;
        B::commit(tx).await?;
        Ok(n == 1)
    }

    async fn get_order(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<Order>, StoreError> {
        let q = Query::new(SELECT_ORDER_BY_MERCHANT_AND_ID)
            .text(merchant.as_str())
            .text(id.as_str());
        first(self.backend.fetch(q).await?, codec::order_from_row)
    }

    async fn get_order_by_no(
        &self,
        merchant: &MerchantId,
        order_no: &str,
    ) -> Result<Option<Order>, StoreError> {
        let q = Query::new(SELECT_ORDER_BY_NO)
            .text(merchant.as_str())
            .text(order_no);
        first(self.backend.fetch(q).await?, codec::order_from_row)
    }

    async fn find_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        let q = Query::new(SELECT_ORDER_BY_ID).text(id.as_str());
        first(self.backend.fetch(q).await?, codec::order_from_row)
    }

    async fn find_order_by_token(&self, token: &str) -> Result<Option<Order>, StoreError> {
        let q = Query::new(SELECT_ORDER_BY_TOKEN).text(token);
        first(self.backend.fetch(q).await?, codec::order_from_row)
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>, StoreError> {
        let q = Query::new(SELECT_ORDERS_PAGE)
            .opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
            .opt_text(query.status.map(|s| s.as_str()))
            .opt_int(opt_ms(query.created_from))
            .opt_int(opt_ms(query.created_to))
            .opt_int(query.after.as_ref().map(|c| ms(c.created_at)))
            .opt_text(query.after.as_ref().map(|c| c.id.as_str().to_owned()))
            .int(page_limit(query.limit));
        rows(self.backend.fetch(q).await?, codec::order_from_row)
    }

    async fn orders_due_for_expiry(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let q = Query::new(SELECT_ORDERS_DUE_FOR_EXPIRY)
            .int(ms(now))
            .int(page_limit(limit));
        rows(self.backend.fetch(q).await?, codec::order_from_row)
    }

    async fn timeline(&self, order: &OrderId) -> Result<Vec<TimelineEntry>, StoreError> {
        let q = Query::new(
            "SELECT at, from_status, from_reason, to_status, to_reason, cause, note \
             FROM order_transitions WHERE order_id = $1 ORDER BY seq",
        )
        .text(order.as_str());
        rows(self.backend.fetch(q).await?, codec::timeline_from_row)
    }

    async fn payments_for_order(&self, order: &OrderId) -> Result<Vec<Payment>, StoreError> {
        let q = Query::new(SELECT_PAYMENTS).text(order.as_str());
        rows(self.backend.fetch(q).await?, codec::payment_from_row)
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let q = Query::new(SELECT_EVENTS)
            .opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
            .opt_text(query.kind.map(|k| k.as_str()))
            .opt_int(opt_ms(query.created_from))
            .opt_int(query.after_seq)
            .int(page_limit(query.limit));
        rows(self.backend.fetch(q).await?, codec::event_from_row)
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let q = Query::new(SELECT_PENDING_OUTBOX).int(page_limit(limit));
        rows(self.backend.fetch(q).await?, codec::event_from_row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_select_uses_the_full_column_list() {
        let normalise = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let columns = normalise(ORDER_COLUMNS);
        for sql in [
            SELECT_ORDER_BY_MERCHANT_AND_ID,
            SELECT_ORDER_BY_NO,
            SELECT_ORDER_BY_ID,
            SELECT_ORDER_BY_TOKEN,
            SELECT_ORDERS_PAGE,
            SELECT_ORDERS_DUE_FOR_EXPIRY,
            INSERT_ORDER,
        ] {
            assert!(normalise(sql).contains(&columns), "{sql}");
        }
    }

    #[test]
    fn placeholders_ascend_in_order_of_first_use() {
        // SQLite numbers `$n` parameters by first appearance; keeping them ascending makes the
        // same SQL bind identically on both databases.
        for sql in [
            SELECT_ORDERS_PAGE,
            INSERT_ORDER,
            UPDATE_ORDER,
            UPSERT_PAYMENT,
            INSERT_TRANSITION,
            SELECT_EVENTS,
        ] {
            let mut seen = Vec::new();
            let bytes = sql.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'$' {
                    let digits: String = sql[i + 1..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let n: usize = digits.parse().unwrap();
                    if !seen.contains(&n) {
                        assert_eq!(n, seen.len() + 1, "{sql}");
                        seen.push(n);
                    }
                    i += digits.len();
                }
                i += 1;
            }
        }
    }
}
