//! The [`Store`] implementation, written once over any [`Backend`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::{
    ApiCredential, ChainId, DeliveryId, EventId, KeyId, Merchant, MerchantId, Order, OrderId,
    Payment, TimelineEntry, WebhookId,
};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::backend::RowExt;
use crate::backend::{Backend, Query};
use crate::codec::{self, ms, opt_ms, to_json};
use crate::dialect;
use crate::unique::{OnDuplicate, Unique, UniqueIndex};
use crate::webhooks;
use crate::{
    AttemptRecord, ChainCursor, Changeset, ClaimedDelivery, CredentialRecord, DeliveryQuery,
    DeliveryRecord, EventQuery, IdempotencyRecord, NewDelivery, OrderQuery, Store, StoreError,
    StoredEvent, StoredResponse, WalletMark, WalletRecord, WatchedAddress, WebhookEndpointRecord,
};

/// Largest page any list query returns.
pub const MAX_PAGE: u32 = 500;

/// Most changesets one group commit applies in a single transaction.
pub const MAX_GROUP: usize = 256;

pub struct SqlStore<B: Backend> {
    backend: Arc<B>,
    /// Set when commits go through a group-commit writer task instead of each caller opening
    /// its own transaction.
    group: Option<GroupCommit>,
}

impl<B: Backend> SqlStore<B> {
    /// The highest event number a reader may be given. PostgreSQL hands out numbers when a
    /// row is inserted, not when it commits: a reader can see number n+1 while n is still being
    /// written, and a cursor past n+1 would skip n for good. So readers stop before the oldest
    /// gap among the newest numbers whose next event was written less than
    /// `EVENT_GAP_WAIT_MS` ago by the database's clock (a transaction still writing; events
    /// are a changeset's last writes, so a number is held only for the moments before its
    /// commit). An older gap is a rollback's and is passed. Without a gap the limit is the
    /// newest number seen, so events committed between this look and the read wait for the
    /// next one. SQLite commits one writer at a time in number order: no limit.
    async fn events_horizon(&self) -> Result<Option<i64>, StoreError> {
        if self.backend.kind() != "postgres" {
            return Ok(None);
        }
        let q = Query::new(
            "SELECT seq, CAST(EXTRACT(EPOCH FROM (clock_timestamp() - inserted_at)) * 1000 \
             AS BIGINT) AS age_ms FROM events ORDER BY seq DESC LIMIT $1",
        )
        .int(EVENT_GAP_WINDOW);
        let newest_first = self.backend.fetch(q).await?;
        let Some(newest) = newest_first.first() else {
            return Ok(Some(0));
        };
        let mut horizon = newest.int("seq")?;
        for pair in newest_first.windows(2) {
            let (newer, older) = (pair[0].int("seq")?, pair[1].int("seq")?);
            if newer > older + 1 && pair[0].int("age_ms")? < EVENT_GAP_WAIT_MS {
                horizon = older;
            }
        }
        Ok(Some(horizon))
    }

    /// Every `commit` runs its own transaction. Right for PostgreSQL, whose server batches
    /// the WAL flushes of concurrent transactions itself.
    pub fn new(backend: B) -> Self {
        Self {
            backend: Arc::new(backend),
            group: None,
        }
    }

    /// Concurrent `commit`s are queued to one writer task, which applies whatever is queued
    /// (up to `max_group` changesets) in one transaction, each changeset in its own savepoint,
    /// and commits once: one fsync for the whole group. A changeset that fails rolls back to
    /// its savepoint and gets its own error; the others still commit. Every caller is answered
    /// only after the transaction holding its changeset is durable (or has failed).
    ///
    /// Right for SQLite, which has one writer and pays one fsync per transaction. Must be
    /// called inside a tokio runtime; the writer task ends when the store is dropped.
    pub fn with_group_commit(backend: B, max_group: usize) -> Self {
        let backend = Arc::new(backend);
        let max_group = max_group.max(1);
        let (queue, jobs) = mpsc::channel(max_group.saturating_mul(4));
        tokio::spawn(group_writer(backend.clone(), jobs, max_group));
        Self {
            backend,
            group: Some(GroupCommit { queue }),
        }
    }
}

/// One queued `commit` and where its outcome goes.
struct Job {
    /// Planned by the caller, off the writer's critical path.
    writes: Vec<Write>,
    /// Kept to plan again should the group's multi-row pass fail.
    changes: Changeset,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    async fn commit(&self, changes: Changeset) -> Result<(), StoreError> {
        let stopped = || StoreError::Unavailable("the database writer task has stopped".into());
        // A changeset refused up front never takes a place in the queue.
        let writes = plan(&changes)?;
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Job {
                writes,
                changes,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        // If this caller goes away now, its changeset is still committed (or not) with its
        // group; only the answer is lost, as with a dropped connection mid-COMMIT.
        outcome.await.map_err(|_| stopped())?
    }
}

/// The writer task: take everything queued, commit it as one group, answer, repeat.
async fn group_writer<B: Backend>(
    backend: Arc<B>,
    mut jobs: mpsc::Receiver<Job>,
    max_group: usize,
) {
    let mut group = Vec::with_capacity(max_group);
    while jobs.recv_many(&mut group, max_group).await > 0 {
        let mut changesets = Vec::with_capacity(group.len());
        let mut writes = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        for job in group.drain(..) {
            changesets.push(job.changes);
            writes.push(job.writes);
            replies.push(job.reply);
        }
        let outcomes = commit_group(&*backend, &changesets, writes).await;
        debug_assert_eq!(outcomes.len(), replies.len());
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // The caller may have gone away; its changeset's fate is decided either way.
            let _ = reply.send(outcome);
        }
    }
}

/// One changeset, one transaction.
async fn commit_alone<B: Backend>(backend: &B, changes: &Changeset) -> Result<(), StoreError> {
    commit_writes(backend, plan(changes)?).await
}

async fn commit_writes<B: Backend>(backend: &B, writes: Vec<Write>) -> Result<(), StoreError> {
    let mut tx = backend.begin().await?;
    apply::<B>(&mut tx, writes).await?;
    B::commit(tx).await
}

const SAVEPOINT: &str = "SAVEPOINT coffer_changeset";
const RELEASE: &str = "RELEASE SAVEPOINT coffer_changeset";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT coffer_changeset";

/// Commit several changesets (`writes[i]` is `plan(&changesets[i])`) in one transaction and
/// return one outcome per changeset.
///
/// The changesets were queued concurrently, so any serial order is a correct one. Those that
/// only insert (orders being created, events, payments…) are first tried together, as one
/// multi-row statement per table, first thing in the transaction: a few statements for the
/// whole group instead of several per changeset. If that fails, the transaction is rolled
/// back and begun again, and they join the others, which run one by one, each in its own
/// savepoint, so each failure (a duplicate `order_no`, a stale version…) rolls back that
/// changeset alone and is reported to its caller alone. Then one COMMIT, one fsync, for all.
async fn commit_group<B: Backend>(
    backend: &B,
    changesets: &[Changeset],
    mut writes: Vec<Vec<Write>>,
) -> Vec<Result<(), StoreError>> {
    if writes.len() == 1
        && let Some(only) = writes.pop()
    {
        return vec![commit_writes(backend, only).await];
    }
    let mut outcomes = vec![None; changesets.len()];
    let group = run_group(backend, changesets, writes, &mut outcomes).await;
    outcomes
        .into_iter()
        .map(|outcome| match (outcome, &group) {
            // A changeset that failed wrote nothing, whatever happened to the group.
            (Some(Err(own)), _) => Err(own),
            // The group's transaction is lost (dropping it rolled it back).
            (_, Err(e)) => Err(e.clone()),
            (Some(Ok(())), Ok(())) => Ok(()),
            (None, Ok(())) => Err(StoreError::Database(
                "group commit skipped a changeset".into(),
            )),
        })
        .collect()
}

/// Apply the group and commit. Fills in each changeset's own outcome; an `Err` return means
/// the transaction is gone and nothing of the group is written.
async fn run_group<B: Backend>(
    backend: &B,
    changesets: &[Changeset],
    writes: Vec<Vec<Write>>,
    outcomes: &mut [Option<Result<(), StoreError>>],
) -> Result<(), StoreError> {
    let mut merged = Vec::new();
    let mut alone = Vec::new();
    for (i, writes) in writes.into_iter().enumerate() {
        if writes.iter().all(|w| w.kind.mergeable()) {
            merged.push((i, writes));
        } else {
            alone.push((i, writes));
        }
    }
    let mut tx = backend.begin().await?;
    if merged.len() > 1 {
        let members: Vec<usize> = merged.iter().map(|(i, _)| *i).collect();
        let statements = merge(
            merged.into_iter().map(|(_, writes)| writes),
            B::ANONYMOUS_PLACEHOLDERS,
        );
        let marks = merged_marks(members.iter().map(|&i| &changesets[i]));
        // Nothing else is in the transaction yet, so a failure here needs no savepoint (whose
        // journal would cost a copy of every page the pass touches): roll back, start over.
        if run_fast::<B>(&mut tx, statements, marks).await.is_ok() {
            for i in members {
                outcomes[i] = Some(Ok(()));
            }
        } else {
            // Someone's changeset fails: find out whose, one by one.
            B::rollback(tx).await?;
            tx = backend.begin().await?;
            for i in members {
                match plan(&changesets[i]) {
                    Ok(writes) => alone.push((i, writes)),
                    Err(refused) => outcomes[i] = Some(Err(refused)),
                }
            }
            alone.sort_by_key(|(i, _)| *i);
        }
    } else {
        alone.extend(merged);
    }
    for (i, writes) in alone {
        B::execute(&mut tx, Query::new(SAVEPOINT)).await?;
        match apply::<B>(&mut tx, writes).await {
            Ok(()) => {
                B::execute(&mut tx, Query::new(RELEASE)).await?;
                outcomes[i] = Some(Ok(()));
            }
            Err(own) => {
                outcomes[i] = Some(Err(own));
                // If even this fails (the database dropped the whole transaction on a disk
                // error, say), the group is lost.
                B::execute(&mut tx, Query::new(ROLLBACK_TO)).await?;
                B::execute(&mut tx, Query::new(RELEASE)).await?;
            }
        }
    }
    B::commit(tx).await
}

#[cfg(test)]
const ORDER_COLUMNS: &str = "id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data";

// `concat!` needs literals, so the column list is repeated in the SELECTs below; a unit test
// checks every copy against ORDER_COLUMNS.
const SELECT_ORDER_BY_MERCHANT_AND_ID: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data \
     FROM orders WHERE merchant_id = $1 AND id = $2";
const SELECT_ORDER_BY_NO: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data \
     FROM orders WHERE merchant_id = $1 AND order_no = $2";
const SELECT_ORDER_BY_ID: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data \
     FROM orders WHERE id = $1";
const SELECT_ORDER_BY_TOKEN: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data \
     FROM orders WHERE checkout_token = $1";
const SELECT_ORDERS_PAGE: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data \
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
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data \
     FROM orders WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2";

const INSERT_MERCHANT: &str =
    "INSERT INTO merchants (id, name, policy, created_at) VALUES ($1, $2, $3, $4)";

const INSERT_ORDER: &str = "INSERT INTO orders (id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35)";

// Identity columns (id, merchant, order_no, token, created_at) never change after insert.
const UPDATE_ORDER: &str = "UPDATE orders SET status = $1, reason = $2, amount = $3, currency = $4, \
     fixed_stablecoin_rate = $5, asset = $6, amount_due = $7, address = $8, derivation_index = $9, \
     derivation_path = $10, rate_price = $11, rate_source = $12, rate_at = $13, confirmed = $14, \
     unconfirmed = $15, any_late = $16, any_reversed = $17, policy = $18, description = $19, \
     metadata = $20, success_url = $21, expired_url = $22, callback_url = $23, dialect = $24, \
     expires_at = $25, monitor_until = $26, updated_at = $27, version = $28, lock_window_ms = $29, dialect_data = $30 \
     WHERE id = $31 AND version = $32";

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

const SELECT_MERCHANT_PAYMENTS: &str = "SELECT id, order_id, merchant_id, asset, amount, txid, output_index, from_address, \
     to_address, block_height, block_hash, confirmations, status, match_status, late, occurred_at, \
     detected_at, updated_at FROM payments WHERE merchant_id = $1 \
     ORDER BY detected_at DESC, id DESC LIMIT $2 OFFSET $3";

/// The `n` of a `SELECT COUNT(*) AS n` (0 without a row).
fn count_of<R: RowExt>(rows: Vec<R>) -> Result<u64, StoreError> {
    match rows.first() {
        Some(r) => Ok(u64::try_from(r.int("n")?).unwrap_or(0)),
        None => Ok(0),
    }
}

// Monotonic: concurrent orders may commit their indexes in any order.
const MARK_WALLET_INDEX: &str = "UPDATE wallets SET next_index = \
     CASE WHEN next_index > $1 THEN next_index ELSE $1 + 1 END \
     WHERE merchant_id = $2 AND chain = $3 AND descriptor = $4";

const INSERT_ORDER_ADDRESS: &str = "INSERT INTO order_addresses (chain, address, order_id) \
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

const UPSERT_CURSOR: &str = "INSERT INTO chain_cursors (chain, height, hash, recent, updated_at) \
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

const SELECT_ORDERS_BY_ADDRESS: &str = "SELECT id, merchant_id, order_no, checkout_token, status, reason, amount, currency, \
     fixed_stablecoin_rate, asset, amount_due, address, derivation_index, derivation_path, \
     rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, any_reversed, policy, \
     description, metadata, success_url, expired_url, callback_url, dialect, expires_at, \
     monitor_until, created_at, updated_at, version, lock_window_ms, dialect_data \
     FROM orders WHERE id IN (SELECT order_id FROM order_addresses WHERE chain = $1 AND address = $2) \
     ORDER BY created_at, id";

const SELECT_OPEN_PAYMENTS: &str = "SELECT id, order_id, merchant_id, asset, amount, txid, output_index, from_address, \
     to_address, block_height, block_hash, confirmations, status, match_status, late, occurred_at, \
     detected_at, updated_at FROM payments WHERE chain = $1 AND status <> 'reversed' \
     AND (status = 'unconfirmed' OR block_height IS NULL OR block_height >= $2) \
     ORDER BY detected_at, id";

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
       AND ($5 IS NULL OR seq <= $5) \
     ORDER BY seq LIMIT $6";

/// How many of the newest event numbers are checked for gaps (see `events_horizon`).
const EVENT_GAP_WINDOW: i64 = 2000;
/// How long a gap in event numbers is taken for a transaction still writing, in ms; an older
/// one is a rollback's and is passed.
const EVENT_GAP_WAIT_MS: i64 = 5000;

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
        .int(window_ms(order))
        .text(to_json(&order.dialect_data))
}

fn update_order(order: &Order, expected_version: i64) -> Query {
    order_values(Query::new(UPDATE_ORDER), order)
        .int(ms(order.updated_at))
        .int(order.version)
        .int(window_ms(order))
        .text(to_json(&order.dialect_data))
        .text(order.id.as_str())
        .int(expected_version)
}

fn window_ms(order: &Order) -> i64 {
    i64::try_from(order.lock_window.whole_milliseconds()).unwrap_or(i64::MAX)
}

fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
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

fn rows<R, T>(rows: Vec<R>, f: impl Fn(&R) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

fn first<R, T>(
    rows: Vec<R>,
    f: impl Fn(&R) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    rows.first().map(f).transpose()
}

/// What a write touches: decides how its errors read, and whether the writes of concurrent
/// changesets may share one multi-row statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Merchant,
    Order,
    OrderUpdate,
    Payment,
    Transition,
    Event,
    Outbox,
    IdempotencyReserve,
    IdempotencyRespond,
    IdempotencyRelease,
    WalletMark,
    OrderAddress,
    Cursor,
    Payout,
    PayoutUpdate,
    DepositAccount,
    DepositAddress,
    Deposit,
    DepositUpdate,
}

impl Kind {
    /// The kinds whose rows merge, in the order their statements run: every row that a later
    /// kind refers to is written before it.
    const MERGED: [Kind; 7] = [
        Kind::Merchant,
        Kind::Order,
        Kind::OrderAddress,
        Kind::Payment,
        Kind::Transition,
        Kind::Event,
        Kind::Outbox,
    ];

    /// Whether a changeset made of such writes can join the group's fast pass: the kinds in
    /// [`Kind::MERGED`] as multi-row inserts, and wallet marks collapsed to one update per
    /// wallet (see [`merged_marks`]). An order update must hit exactly its expected version,
    /// which a multi-row statement cannot report row by row.
    fn mergeable(self) -> bool {
        Kind::MERGED.contains(&self) || self == Kind::WalletMark
    }

    fn sql(self) -> &'static str {
        match self {
            Kind::Merchant => INSERT_MERCHANT,
            Kind::Order => INSERT_ORDER,
            Kind::OrderUpdate => UPDATE_ORDER,
            Kind::Payment => UPSERT_PAYMENT,
            Kind::Transition => INSERT_TRANSITION,
            Kind::Event => INSERT_EVENT,
            Kind::Outbox => INSERT_OUTBOX,
            Kind::IdempotencyReserve => INSERT_IDEMPOTENCY,
            Kind::IdempotencyRespond => RESPOND_IDEMPOTENCY,
            Kind::IdempotencyRelease => RELEASE_IDEMPOTENCY,
            Kind::WalletMark => MARK_WALLET_INDEX,
            Kind::OrderAddress => INSERT_ORDER_ADDRESS,
            Kind::Cursor => UPSERT_CURSOR,
            Kind::Payout => INSERT_PAYOUT,
            Kind::PayoutUpdate => UPDATE_PAYOUT,
            Kind::DepositAccount => crate::deposit::INSERT_ACCOUNT,
            Kind::DepositAddress => crate::deposit::INSERT_ADDRESS,
            Kind::Deposit => crate::deposit::INSERT_DEPOSIT,
            Kind::DepositUpdate => crate::deposit::UPDATE_DEPOSIT,
        }
    }

    /// What a unique violation of the statement means: decided here, where the statement
    /// and the unique indexes it can hit are known.
    fn on_duplicate(self) -> OnDuplicate {
        match self {
            Kind::Order => ORDER_UNIQUE.into(),
            // The one unique column an order update can change is its address.
            Kind::OrderUpdate | Kind::DepositAddress => Unique::Address.into(),
            Kind::Payment | Kind::Deposit => Unique::Transfer.into(),
            Kind::IdempotencyReserve => Unique::IdempotencyKey.into(),
            Kind::Payout | Kind::PayoutUpdate => Unique::PayoutReference.into(),
            Kind::DepositAccount => Unique::DepositAccount.into(),
            // Random ids, or nothing unique a caller could repeat.
            Kind::Merchant
            | Kind::Transition
            | Kind::Event
            | Kind::Outbox
            | Kind::IdempotencyRespond
            | Kind::IdempotencyRelease
            | Kind::WalletMark
            | Kind::OrderAddress
            | Kind::Cursor
            | Kind::DepositUpdate => Unique::Record.into(),
        }
    }
}

/// The unique indexes a new order can hit that callers tell apart. Its id and checkout token
/// are random: a clash there is [`Unique::Record`].
const ORDER_UNIQUE: &[UniqueIndex] = &[
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

/// One row written by a changeset: `query` is `kind.sql()` with its arguments.
struct Write {
    kind: Kind,
    query: Query,
}

/// The writes of one changeset, in the order they apply, or why it is refused up front.
fn plan(changes: &Changeset) -> Result<Vec<Write>, StoreError> {
    let mut writes = Vec::with_capacity(
        changes.new_merchants.len()
            + changes.new_orders.len()
            + changes.order_updates.len()
            + changes.payments.len()
            + changes.timeline.len()
            + 2 * changes.events.len()
            + changes.idempotency_reservations.len()
            + changes.idempotency_responses.len()
            + changes.idempotency_releases.len()
            + changes.wallet_marks.len()
            + 2,
    );
    for mark in &changes.wallet_marks {
        let query = mark_wallet(mark);
        writes.push(Write {
            kind: Kind::WalletMark,
            query,
        });
    }
    for merchant in &changes.new_merchants {
        let query = Query::new(INSERT_MERCHANT)
            .text(merchant.id.as_str())
            .text(merchant.name.clone())
            .text(to_json(&merchant.policy))
            .int(ms(merchant.created_at));
        writes.push(Write {
            kind: Kind::Merchant,
            query,
        });
    }
    for order in &changes.new_orders {
        writes.push(Write {
            kind: Kind::Order,
            query: insert_order(order),
        });
        writes.extend(order_address(order));
    }
    for update in &changes.order_updates {
        if update.order.version != update.expected_version + 1 {
            return Err(StoreError::Conflict("order version"));
        }
        writes.push(Write {
            kind: Kind::OrderUpdate,
            query: update_order(&update.order, update.expected_version),
        });
        writes.extend(order_address(&update.order));
    }
    for p in &changes.payments {
        let query = Query::new(UPSERT_PAYMENT)
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
        writes.push(Write {
            kind: Kind::Payment,
            query,
        });
    }
    for (order_id, entry) in &changes.timeline {
        let query = Query::new(INSERT_TRANSITION)
            .text(order_id.as_str())
            .int(ms(entry.at))
            .opt_text(entry.from.map(|s| s.status.as_str()))
            .opt_text(entry.from.map(|s| s.reason.as_str()))
            .text(entry.to.status.as_str())
            .text(entry.to.reason.as_str())
            .text(entry.cause.as_str())
            .opt_text(entry.note.clone());
        writes.push(Write {
            kind: Kind::Transition,
            query,
        });
    }
    for r in &changes.idempotency_reservations {
        let query = Query::new(INSERT_IDEMPOTENCY)
            .text(r.merchant_id.as_str())
            .text(r.key.clone())
            .text(r.fingerprint.clone())
            .int(ms(r.created_at));
        writes.push(Write {
            kind: Kind::IdempotencyReserve,
            query,
        });
    }
    for r in &changes.idempotency_responses {
        let query = Query::new(RESPOND_IDEMPOTENCY)
            .text(r.merchant_id.as_str())
            .text(r.key.clone())
            .int(i64::from(r.response.status))
            .text(r.response.body.clone())
            .int(ms(r.at));
        writes.push(Write {
            kind: Kind::IdempotencyRespond,
            query,
        });
    }
    for (merchant, key) in &changes.idempotency_releases {
        let query = Query::new(RELEASE_IDEMPOTENCY)
            .text(merchant.as_str())
            .text(key.clone());
        writes.push(Write {
            kind: Kind::IdempotencyRelease,
            query,
        });
    }
    for payout in &changes.new_payouts {
        writes.push(Write {
            kind: Kind::Payout,
            query: payout_values(
                Query::new(INSERT_PAYOUT)
                    .text(payout.id.as_str())
                    .text(payout.merchant_id.as_str())
                    .text(payout.kind.as_str())
                    .opt_text(payout.order_id.as_ref().map(|o| o.as_str().to_owned())),
                payout,
            )
            .int(ms(payout.created_at)),
        });
    }
    for update in &changes.payout_updates {
        let payout = &update.payout;
        if payout.version != update.expected_version + 1 {
            return Err(StoreError::Conflict("payout version"));
        }
        writes.push(Write {
            kind: Kind::PayoutUpdate,
            query: payout_values(Query::new(UPDATE_PAYOUT), payout)
                .text(payout.id.as_str())
                .int(update.expected_version),
        });
    }
    for account in &changes.new_deposit_accounts {
        writes.push(Write {
            kind: Kind::DepositAccount,
            query: crate::deposit::insert_account(account),
        });
        for query in crate::deposit::insert_addresses(account) {
            writes.push(Write {
                kind: Kind::DepositAddress,
                query,
            });
        }
    }
    for deposit in &changes.deposits {
        writes.push(if deposit.seq == 0 {
            Write {
                kind: Kind::Deposit,
                query: crate::deposit::insert(deposit),
            }
        } else {
            Write {
                kind: Kind::DepositUpdate,
                query: crate::deposit::update(deposit),
            }
        });
    }
    if let Some(cursor) = &changes.cursor {
        let recent: Vec<serde_json::Value> = cursor
            .recent
            .iter()
            .map(|(h, hash)| serde_json::json!([h, hash]))
            .collect();
        let query = Query::new(UPSERT_CURSOR)
            .text(cursor.chain.as_str())
            .int(i64::try_from(cursor.height).unwrap_or(i64::MAX))
            .text(cursor.hash.clone())
            .text(serde_json::Value::Array(recent).to_string())
            .int(ms(cursor.updated_at));
        writes.push(Write {
            kind: Kind::Cursor,
            query,
        });
    }
    // Events last: every write that can still fail (a duplicate, a stale version) runs
    // before them, so a refused changeset rarely burns event numbers (a gap readers wait on).
    for event in &changes.events {
        let query = Query::new(INSERT_EVENT)
            .text(event.id.as_str())
            .text(event.merchant_id.as_str())
            .text(event.kind.as_str())
            .text(event.subject.clone())
            .text(to_json(&event.data))
            .int(ms(event.created_at));
        writes.push(Write {
            kind: Kind::Event,
            query,
        });
        let query = Query::new(INSERT_OUTBOX)
            .text(event.id.as_str())
            .int(ms(event.created_at));
        writes.push(Write {
            kind: Kind::Outbox,
            query,
        });
    }
    Ok(writes)
}

const INSERT_PAYOUT: &str = "INSERT INTO payout_requests (id, merchant_id, kind, order_id, asset, \
     amount, fiat_amount, fiat_currency, destination, memo, status, dialect, reference, \
     dialect_data, updated_at, version, txid, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

// Identity columns (id, merchant, kind, order, created_at) never change after insert.
const UPDATE_PAYOUT: &str = "UPDATE payout_requests SET asset = $1, amount = $2, fiat_amount = $3, \
     fiat_currency = $4, destination = $5, memo = $6, status = $7, dialect = $8, reference = $9, \
     dialect_data = $10, updated_at = $11, version = $12, txid = $13 WHERE id = $14 AND version = $15";

const PAYOUT_COLUMNS: &str = "SELECT seq, id, merchant_id, kind, order_id, asset, amount, \
     fiat_amount, fiat_currency, destination, memo, status, dialect, reference, dialect_data, \
     created_at, updated_at, version, txid FROM payout_requests";

const PAYOUT_FILTER: &str = " WHERE ($1 IS NULL OR merchant_id = $1) \
       AND ($2 IS NULL OR kind = $2) \
       AND ($3 IS NULL OR order_id = $3) \
       AND ($4 IS NULL OR status = $4) \
       AND ($5 IS NULL OR dialect = $5) \
       AND ($6 IS NULL OR seq < $6)";

/// The mutable middle of a payout row, in `UPDATE_PAYOUT` order.
fn payout_values(q: Query, p: &coffer_core::PayoutRequest) -> Query {
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

fn payout_filter(q: Query, query: &crate::PayoutQuery) -> Query {
    q.opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
        .opt_text(query.kind.map(|k| k.as_str()))
        .opt_text(query.order_id.as_ref().map(|o| o.as_str().to_owned()))
        .opt_text(query.status.map(|s| s.as_str()))
        .opt_text(query.dialect.clone())
        .opt_int(query.before_seq)
}

const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency_keys \
     (merchant_id, key, fingerprint, status, body, created_at, completed_at) \
     VALUES ($1, $2, $3, NULL, NULL, $4, NULL)";
const RESPOND_IDEMPOTENCY: &str = "UPDATE idempotency_keys SET status = $3, body = $4, completed_at = $5 \
     WHERE merchant_id = $1 AND key = $2 AND status IS NULL";
const RELEASE_IDEMPOTENCY: &str =
    "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND status IS NULL";

fn mark_wallet(mark: &WalletMark) -> Query {
    Query::new(MARK_WALLET_INDEX)
        .int(i64::from(mark.index))
        .text(mark.merchant_id.as_str())
        .text(mark.chain.as_str())
        .text(mark.descriptor.clone())
}

/// The wallet marks of several changesets as one update per wallet, at its highest index. A
/// mark only ever raises `next_index`, and every mark of one wallet and descriptor matches
/// the same row or none, so the highest one has the effect, and the outcome, of them all.
/// Wallets come in a fixed order, so concurrent groups take their row locks in one order.
fn merged_marks<'a>(changesets: impl IntoIterator<Item = &'a Changeset>) -> Vec<Query> {
    let mut highest: BTreeMap<(&str, &str, &str), &WalletMark> = BTreeMap::new();
    for mark in changesets.into_iter().flat_map(|c| &c.wallet_marks) {
        let key = (
            mark.merchant_id.as_str(),
            mark.chain.as_str(),
            mark.descriptor.as_str(),
        );
        let entry = highest.entry(key).or_insert(mark);
        if mark.index > entry.index {
            *entry = mark;
        }
    }
    highest.into_values().map(mark_wallet).collect()
}

/// Keep every address an order was given watched: `choose_asset` can change it.
fn order_address(order: &Order) -> Option<Write> {
    let target = order.target.as_ref()?;
    Some(Write {
        kind: Kind::OrderAddress,
        query: Query::new(INSERT_ORDER_ADDRESS)
            .text(target.asset.chain().as_str())
            .text(target.address.clone())
            .text(order.id.as_str()),
    })
}

/// Run one changeset's writes, statement by statement, inside the caller's transaction. On
/// error the caller rolls back (the whole transaction, or this changeset's savepoint).
async fn apply<B: Backend>(tx: &mut B::Tx, writes: Vec<Write>) -> Result<(), StoreError> {
    for Write { kind, query } in writes {
        let n = B::execute(tx, query.on_duplicate(kind.on_duplicate())).await?;
        if kind == Kind::WalletMark && n != 1 {
            return Err(StoreError::Conflict("wallet"));
        }
        if kind == Kind::OrderUpdate && n != 1 {
            return Err(StoreError::Conflict("order"));
        }
        if kind == Kind::PayoutUpdate && n != 1 {
            return Err(StoreError::Conflict("payout"));
        }
        if kind == Kind::IdempotencyRespond && n != 1 {
            return Err(StoreError::Conflict("idempotency key"));
        }
        if kind == Kind::DepositAddress && n != 1 {
            return Err(StoreError::Duplicate(Unique::Address));
        }
        if kind == Kind::DepositUpdate && n != 1 {
            return Err(StoreError::NotFound("deposit"));
        }
    }
    Ok(())
}

/// The group's fast pass: its multi-row inserts, then its wallet marks, each of which must
/// match its wallet.
async fn run_fast<B: Backend>(
    tx: &mut B::Tx,
    statements: Vec<Query>,
    marks: Vec<Query>,
) -> Result<(), StoreError> {
    for q in statements {
        B::execute(tx, q).await?;
    }
    for q in marks {
        if B::execute(tx, q).await? != 1 {
            return Err(StoreError::Conflict("wallet"));
        }
    }
    Ok(())
}

/// Most rows in one multi-row statement. Row counts are powers of two up to this, so a
/// handful of statement shapes per table stays in the prepared-statement cache.
const MAX_ROWS_PER_STATEMENT: usize = 256;
/// SQLite's default limit on bound values per statement (PostgreSQL allows 65,535).
const MAX_BINDS_PER_STATEMENT: usize = 32_766;

/// The writes of several changesets as multi-row INSERTs, one run per kind in
/// [`Kind::MERGED`] order; rows keep the changesets' order within a kind.
fn merge(changesets: impl IntoIterator<Item = Vec<Write>>, anonymous: bool) -> Vec<Query> {
    let mut by_kind: [Vec<Query>; Kind::MERGED.len()] = Default::default();
    for writes in changesets {
        for Write { kind, query } in writes {
            if let Some(k) = Kind::MERGED.iter().position(|m| *m == kind) {
                by_kind[k].push(query);
            } else {
                // The caller merges wallet marks itself; nothing else may reach here.
                debug_assert_eq!(kind, Kind::WalletMark);
            }
        }
    }
    let mut statements = Vec::new();
    for (kind, rows) in Kind::MERGED.iter().zip(by_kind) {
        let binds = rows.first().map_or(1, |q| q.args.len().max(1));
        let cap = (MAX_BINDS_PER_STATEMENT / binds).clamp(1, MAX_ROWS_PER_STATEMENT);
        let mut rows = rows.into_iter();
        let mut left = rows.len();
        while left > 0 {
            // Largest power of two that fits: 7 rows run as 4 + 2 + 1.
            let n = 1usize << (left.min(cap)).ilog2();
            let mut args = Vec::with_capacity(n * binds);
            for q in rows.by_ref().take(n) {
                args.extend(q.args);
            }
            let mut statement = Query::built(if n == 1 {
                Cow::Borrowed(kind.sql())
            } else {
                Cow::Owned(multi_row(kind.sql(), n, anonymous))
            });
            statement.args = args;
            statements.push(statement);
            left -= n;
        }
    }
    statements
}

/// `INSERT … VALUES ($1, …, $k) [tail]` as `INSERT … VALUES ($1, …, $k), ($k+1, …), … [tail]`
/// with `rows` rows, or with every placeholder `?` if `anonymous`. Each placeholder of the
/// row appears once, in order (a unit test checks every statement this is used on), so both
/// forms bind the same arguments.
fn multi_row(sql: &str, rows: usize, anonymous: bool) -> String {
    let Some(open) = sql.find("VALUES (").map(|i| i + "VALUES ".len()) else {
        return sql.to_owned();
    };
    let Some(close) = sql[open..].find(')').map(|i| open + i + 1) else {
        return sql.to_owned();
    };
    let (head, row, tail) = (&sql[..open], &sql[open..close], &sql[close..]);
    let per_row = row.matches('$').count();
    let mut out = String::with_capacity(head.len() + rows * (row.len() + 8) + tail.len());
    out.push_str(head);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        let mut rest = row;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if anonymous {
                out.push('?');
            } else {
                let n: usize = rest[..digits].parse().unwrap_or(0);
                out.push('$');
                out.push_str(&(n + r * per_row).to_string());
            }
            rest = &rest[digits..];
        }
        out.push_str(rest);
    }
    out.push_str(tail);
    out
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
        match &self.group {
            Some(queue) => queue.commit(changes).await,
            None => commit_alone(&*self.backend, &changes).await,
        }
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

    async fn set_merchant_policy(
        &self,
        id: &MerchantId,
        policy: &coffer_core::SettlementPolicy,
    ) -> Result<bool, StoreError> {
        let q = Query::new("UPDATE merchants SET policy = $1 WHERE id = $2")
            .text(to_json(policy))
            .text(id.as_str());
        let mut tx = self.backend.begin().await?;
        let n = B::execute(&mut tx, q).await?;
        B::commit(tx).await?;
        Ok(n == 1)
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

    async fn set_wallet(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
        descriptor: &str,
        at: OffsetDateTime,
    ) -> Result<WalletRecord, StoreError> {
        let mut tx = self.backend.begin().await?;
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

    async fn get_wallet(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<Option<WalletRecord>, StoreError> {
        let q = Query::new(
            "SELECT merchant_id, chain, descriptor, next_index, created_at, updated_at \
             FROM wallets WHERE merchant_id = $1 AND chain = $2",
        )
        .text(merchant.as_str())
        .text(chain.as_str());
        first(self.backend.fetch(q).await?, codec::wallet_from_row)
    }

    async fn list_wallets(&self, merchant: &MerchantId) -> Result<Vec<WalletRecord>, StoreError> {
        let q = Query::new(
            "SELECT merchant_id, chain, descriptor, next_index, created_at, updated_at \
             FROM wallets WHERE merchant_id = $1 ORDER BY chain",
        )
        .text(merchant.as_str());
        rows(self.backend.fetch(q).await?, codec::wallet_from_row)
    }

    async fn take_address_index(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<(u32, String), StoreError> {
        let mut tx = self.backend.begin().await?;
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

    async fn get_idempotency(
        &self,
        merchant: &MerchantId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let q = Query::new(
            "SELECT merchant_id, key, fingerprint, status, body, created_at \
             FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        )
        .text(merchant.as_str())
        .text(key);
        first(self.backend.fetch(q).await?, |row| {
            use crate::backend::RowExt;
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

    async fn chain_cursor(&self, chain: &ChainId) -> Result<Option<ChainCursor>, StoreError> {
        let q = Query::new(SELECT_CURSOR).text(chain.as_str());
        first(self.backend.fetch(q).await?, codec::cursor_from_row)
    }

    async fn watched_addresses(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, StoreError> {
        let q = Query::new(SELECT_WATCHED)
            .text(chain.as_str())
            .int(ms(now))
            .int(crate::DEPOSIT_WATCH_UNTIL_MS);
        rows(self.backend.fetch(q).await?, watched_from_row)
    }

    async fn watched_addresses_since(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, StoreError> {
        let q = Query::new(SELECT_WATCHED_SINCE)
            .text(chain.as_str())
            .int(ms(now))
            .int(ms(since))
            .int(crate::DEPOSIT_WATCH_UNTIL_MS);
        rows(self.backend.fetch(q).await?, watched_from_row)
    }

    async fn purge_idempotency(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let q = Query::new("DELETE FROM idempotency_keys WHERE created_at < $1").int(ms(before));
        let mut tx = self.backend.begin().await?;
        let n = B::execute(&mut tx, q).await?;
        B::commit(tx).await?;
        Ok(n)
    }

    async fn orders_for_address(
        &self,
        chain: &ChainId,
        address: &str,
    ) -> Result<Vec<Order>, StoreError> {
        let q = Query::new(SELECT_ORDERS_BY_ADDRESS)
            .text(chain.as_str())
            .text(address);
        rows(self.backend.fetch(q).await?, codec::order_from_row)
    }

    async fn open_payments(
        &self,
        chain: &ChainId,
        from_height: u64,
    ) -> Result<Vec<Payment>, StoreError> {
        let q = Query::new(SELECT_OPEN_PAYMENTS)
            .text(chain.as_str())
            .int(i64::try_from(from_height).unwrap_or(i64::MAX));
        rows(self.backend.fetch(q).await?, codec::payment_from_row)
    }

    async fn address_usage(
        &self,
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
        rows(self.backend.fetch(q).await?, |row| {
            let idx = u32::try_from(row.int("idx")?).map_err(|e| StoreError::Corrupt {
                column: "orders.derivation_index".into(),
                detail: e.to_string(),
            })?;
            Ok((idx, row.int("paid")? != 0))
        })
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let horizon = self.events_horizon().await?;
        let q = Query::new(SELECT_EVENTS)
            .opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
            .opt_text(query.kind.map(|k| k.as_str()))
            .opt_int(opt_ms(query.created_from))
            .opt_int(query.after_seq)
            .opt_int(horizon)
            .int(page_limit(query.limit));
        rows(self.backend.fetch(q).await?, codec::event_from_row)
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let q = Query::new(SELECT_PENDING_OUTBOX).int(page_limit(limit));
        rows(self.backend.fetch(q).await?, codec::event_from_row)
    }

    async fn insert_webhook(&self, endpoint: &WebhookEndpointRecord) -> Result<(), StoreError> {
        webhooks::insert_endpoint(&*self.backend, endpoint).await
    }

    async fn get_webhook(
        &self,
        merchant: Option<&MerchantId>,
        id: &WebhookId,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        webhooks::get_endpoint(&*self.backend, merchant, id).await
    }

    async fn list_webhooks(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<WebhookEndpointRecord>, StoreError> {
        webhooks::list_endpoints(&*self.backend, merchant).await
    }

    async fn update_webhook(&self, endpoint: &WebhookEndpointRecord) -> Result<bool, StoreError> {
        webhooks::update_endpoint(&*self.backend, endpoint).await
    }

    async fn delete_webhook(
        &self,
        merchant: &MerchantId,
        id: &WebhookId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        webhooks::delete_endpoint(&*self.backend, merchant, id, at).await
    }

    async fn set_webhook_failing(
        &self,
        id: &WebhookId,
        failing_since: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        webhooks::set_endpoint_failing(&*self.backend, id, failing_since).await
    }

    async fn dispatch_outbox(
        &self,
        batch: &[(EventId, Vec<NewDelivery>)],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        webhooks::dispatch_outbox(&*self.backend, batch, at).await
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        webhooks::claim_deliveries(&*self.backend, now, lease_until, limit).await
    }

    async fn release_deliveries(
        &self,
        ids: &[DeliveryId],
        due_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        webhooks::release_deliveries(&*self.backend, ids, due_at).await
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<usize, StoreError> {
        webhooks::record_attempts(&*self.backend, attempts).await
    }

    async fn get_delivery(
        &self,
        merchant: &MerchantId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        webhooks::get_delivery(&*self.backend, merchant, id).await
    }

    async fn list_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        webhooks::list_deliveries(&*self.backend, query).await
    }

    async fn redeliver(
        &self,
        merchant: &MerchantId,
        id: &DeliveryId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        webhooks::redeliver(&*self.backend, merchant, id, at).await
    }

    async fn insert_dialect_credential(
        &self,
        record: &crate::DialectCredentialRecord,
    ) -> Result<(), StoreError> {
        dialect::insert_credential(&*self.backend, record).await
    }

    async fn find_dialect_credential(
        &self,
        dialect_name: &str,
        by: crate::DialectIdentifier,
        hash: &str,
    ) -> Result<Option<crate::DialectCredentialRecord>, StoreError> {
        dialect::find_credential(&*self.backend, dialect_name, by, hash).await
    }

    async fn list_dialect_credentials(
        &self,
        merchant: &MerchantId,
        dialect_name: Option<&str>,
    ) -> Result<Vec<crate::DialectCredentialRecord>, StoreError> {
        dialect::list_credentials(&*self.backend, merchant, dialect_name).await
    }

    async fn revoke_dialect_credential(
        &self,
        merchant: &MerchantId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dialect::revoke_credential(&*self.backend, merchant, id, at).await
    }

    async fn set_merchant_login(
        &self,
        record: &crate::MerchantLoginRecord,
    ) -> Result<(), StoreError> {
        dialect::set_login(&*self.backend, record).await
    }

    async fn find_merchant_login(
        &self,
        username: &str,
    ) -> Result<Option<crate::MerchantLoginRecord>, StoreError> {
        dialect::find_login(&*self.backend, username).await
    }

    async fn get_payout(
        &self,
        merchant: &MerchantId,
        id: &coffer_core::PayoutId,
    ) -> Result<Option<coffer_core::PayoutRequest>, StoreError> {
        let q = Query::built(format!(
            "{PAYOUT_COLUMNS} WHERE merchant_id = $1 AND id = $2"
        ))
        .text(merchant.as_str())
        .text(id.as_str());
        first(self.backend.fetch(q).await?, codec::payout_from_row)
    }

    async fn get_payout_by_seq(
        &self,
        merchant: &MerchantId,
        seq: i64,
    ) -> Result<Option<coffer_core::PayoutRequest>, StoreError> {
        let q = Query::built(format!(
            "{PAYOUT_COLUMNS} WHERE merchant_id = $1 AND seq = $2"
        ))
        .text(merchant.as_str())
        .int(seq);
        first(self.backend.fetch(q).await?, codec::payout_from_row)
    }

    async fn get_payout_by_reference(
        &self,
        merchant: &MerchantId,
        kind: coffer_core::PayoutKind,
        dialect: &str,
        reference: &str,
    ) -> Result<Option<coffer_core::PayoutRequest>, StoreError> {
        let q = Query::built(format!(
            "{PAYOUT_COLUMNS} WHERE merchant_id = $1 AND kind = $2 AND dialect = $3 \
                 AND reference = $4"
        ))
        .text(merchant.as_str())
        .text(kind.as_str())
        .text(dialect)
        .text(reference);
        first(self.backend.fetch(q).await?, codec::payout_from_row)
    }

    async fn list_payouts(
        &self,
        query: &crate::PayoutQuery,
    ) -> Result<Vec<coffer_core::PayoutRequest>, StoreError> {
        let q = Query::built(format!(
            "{PAYOUT_COLUMNS}{PAYOUT_FILTER} ORDER BY seq DESC LIMIT $7 OFFSET $8"
        ));
        let q = payout_filter(q, query)
            .int(page_limit(query.limit))
            .int(i64::from(query.offset));
        rows(self.backend.fetch(q).await?, codec::payout_from_row)
    }

    async fn count_payouts(&self, query: &crate::PayoutQuery) -> Result<u64, StoreError> {
        let q = Query::built(format!(
            "SELECT count(*) AS n FROM payout_requests{PAYOUT_FILTER}"
        ));
        let found = first(self.backend.fetch(payout_filter(q, query)).await?, |r| {
            r.int("n")
        })?;
        Ok(u64::try_from(found.unwrap_or(0)).unwrap_or(0))
    }

    async fn seen_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.backend.begin().await?;
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

    async fn count_orders(&self, merchant: &MerchantId) -> Result<u64, StoreError> {
        let q = Query::new("SELECT COUNT(*) AS n FROM orders WHERE merchant_id = $1")
            .text(merchant.as_str());
        count_of(self.backend.fetch(q).await?)
    }

    async fn merchant_payments(
        &self,
        merchant: &MerchantId,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        let q = Query::new(SELECT_MERCHANT_PAYMENTS)
            .text(merchant.as_str())
            .int(page_limit(limit))
            .int(i64::try_from(offset).unwrap_or(i64::MAX));
        rows(self.backend.fetch(q).await?, codec::payment_from_row)
    }

    async fn count_merchant_payments(&self, merchant: &MerchantId) -> Result<u64, StoreError> {
        let q = Query::new("SELECT COUNT(*) AS n FROM payments WHERE merchant_id = $1")
            .text(merchant.as_str());
        count_of(self.backend.fetch(q).await?)
    }

    async fn get_branding(
        &self,
        merchant: &MerchantId,
    ) -> Result<Option<crate::BrandingRecord>, StoreError> {
        crate::branding::get(&*self.backend, merchant).await
    }

    async fn set_branding(&self, branding: &crate::BrandingRecord) -> Result<(), StoreError> {
        crate::branding::set(&*self.backend, branding).await
    }

    async fn list_deposit_accounts(
        &self,
        query: &crate::DepositAccountQuery,
    ) -> Result<Vec<crate::DepositAccountRecord>, StoreError> {
        crate::deposit::list(&*self.backend, query).await
    }

    async fn count_deposit_accounts(
        &self,
        query: &crate::DepositAccountQuery,
    ) -> Result<u64, StoreError> {
        crate::deposit::count(&*self.backend, query).await
    }

    async fn deposit_address_owner(
        &self,
        chain: &ChainId,
        address: &str,
    ) -> Result<Option<crate::DepositAddressOwner>, StoreError> {
        crate::deposit::address_owner(&*self.backend, chain, address).await
    }

    async fn deposit_for_transfer(
        &self,
        chain: &ChainId,
        txid: &str,
        output_index: u32,
        asset: &coffer_core::AssetId,
    ) -> Result<Option<coffer_core::Deposit>, StoreError> {
        crate::deposit::find_transfer(&*self.backend, chain, txid, output_index, asset).await
    }

    async fn open_deposits(
        &self,
        chain: &ChainId,
        from_height: u64,
    ) -> Result<Vec<coffer_core::Deposit>, StoreError> {
        crate::deposit::open_deposits(&*self.backend, chain, from_height).await
    }

    async fn get_deposit(
        &self,
        merchant: Option<&MerchantId>,
        id: Option<&coffer_core::DepositId>,
        seq: Option<i64>,
    ) -> Result<Option<coffer_core::Deposit>, StoreError> {
        crate::deposit::get_deposit(&*self.backend, merchant, id, seq).await
    }

    async fn list_deposits(
        &self,
        query: &crate::DepositQuery,
    ) -> Result<Vec<coffer_core::Deposit>, StoreError> {
        crate::deposit::list_deposits(&*self.backend, query).await
    }

    async fn count_deposits(&self, query: &crate::DepositQuery) -> Result<u64, StoreError> {
        crate::deposit::count_deposits(&*self.backend, query).await
    }

    async fn dialect_settings(
        &self,
        merchant: &MerchantId,
        dialect: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        crate::deposit::dialect_settings(&*self.backend, merchant, dialect).await
    }

    async fn set_dialect_settings(
        &self,
        merchant: &MerchantId,
        dialect: &str,
        settings: &[(&str, Option<&str>)],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        crate::deposit::set_dialect_settings(&*self.backend, merchant, dialect, settings, at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Value;

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
            MARK_WALLET_INDEX,
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

    /// The `$n` placeholders of `sql`, in order of appearance.
    fn placeholders(sql: &str) -> Vec<usize> {
        sql.split('$')
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn merged_statements_number_every_row_in_turn() {
        for kind in Kind::MERGED {
            let sql = kind.sql();
            let per_row = placeholders(sql).len();
            // multi_row relies on this: each placeholder once, in order, all in the VALUES row.
            assert_eq!(
                placeholders(sql),
                (1..=per_row).collect::<Vec<_>>(),
                "{sql}"
            );
            assert_eq!(multi_row(sql, 1, false), sql);
            let three = multi_row(sql, 3, false);
            assert_eq!(
                placeholders(&three),
                (1..=3 * per_row).collect::<Vec<_>>(),
                "{three}"
            );
            assert_eq!(three.matches("), ($").count(), 2, "{three}");
            let anonymous = multi_row(sql, 3, true);
            assert!(!anonymous.contains('$'), "{anonymous}");
            assert_eq!(anonymous.matches('?').count(), 3 * per_row, "{anonymous}");
        }
        assert_eq!(
            multi_row(INSERT_OUTBOX, 2, false),
            "INSERT INTO outbox (event_id, created_at) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(
            multi_row(INSERT_OUTBOX, 2, true),
            "INSERT INTO outbox (event_id, created_at) VALUES (?, ?), (?, ?)"
        );
        // The upsert's tail follows the last row.
        assert!(multi_row(UPSERT_PAYMENT, 2, false).contains("$38) ON CONFLICT (id) DO UPDATE"));
    }

    #[test]
    fn merge_splits_rows_into_power_of_two_statements_in_kind_order() {
        let outbox = |i: i64| Write {
            kind: Kind::Outbox,
            query: Query::new(INSERT_OUTBOX).text(format!("e{i}")).int(i),
        };
        let transition = |i: i64| Write {
            kind: Kind::Transition,
            query: Query::new(INSERT_TRANSITION)
                .text(format!("o{i}"))
                .int(i)
                .opt_text(None::<String>)
                .opt_text(None::<String>)
                .text("pending")
                .text("none")
                .text("created")
                .opt_text(None::<String>),
        };
        // Seven changesets, each writing an outbox row before its transition.
        let statements = merge((0..7).map(|i| vec![outbox(i), transition(i)]), false);
        let shape: Vec<(bool, usize)> = statements
            .iter()
            .map(|q| {
                (
                    q.sql.starts_with("INSERT INTO order_transitions"),
                    q.args.len(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (true, 4 * 8),
                (true, 2 * 8),
                (true, 8),
                (false, 4 * 2),
                (false, 2 * 2),
                (false, 2),
            ]
        );
        // Rows keep the changesets' order.
        let firsts: Vec<String> = statements[3..]
            .iter()
            .flat_map(|q| q.args.iter().step_by(2))
            .map(|v| format!("{v:?}"))
            .collect();
        assert_eq!(
            firsts,
            (0..7)
                .map(|i| format!("{:?}", Value::Text(format!("e{i}"))))
                .collect::<Vec<_>>()
        );
        // The bind limit caps a statement's rows below MAX_ROWS_PER_STATEMENT when rows are wide.
        let orders_cap = (MAX_BINDS_PER_STATEMENT / placeholders(INSERT_ORDER).len())
            .min(MAX_ROWS_PER_STATEMENT);
        assert!(orders_cap >= 128);
    }

    fn merchant(n: u8) -> Merchant {
        Merchant {
            id: MerchantId::from_random([n; 16]),
            name: format!("m{n}"),
            policy: coffer_core::SettlementPolicy::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn event(merchant: &Merchant, n: u8) -> coffer_core::Event {
        coffer_core::Event {
            id: coffer_core::EventId::from_random([n; 16]),
            merchant_id: merchant.id.clone(),
            kind: coffer_core::EventType::OrderCreated,
            subject: format!("s{n}"),
            data: serde_json::json!({}),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn changeset(merchants: &[&Merchant], events: Vec<coffer_core::Event>) -> Changeset {
        Changeset {
            new_merchants: merchants.iter().map(|m| (*m).clone()).collect(),
            events,
            ..Changeset::default()
        }
    }

    fn planned(changesets: &[Changeset]) -> Vec<Vec<Write>> {
        changesets.iter().map(|c| plan(c).unwrap()).collect()
    }

    /// Group commit called directly, so the grouping is certain (the conformance suite
    /// checks the same through concurrent `Store::commit` calls).
    #[tokio::test]
    async fn a_group_commits_what_it_can_and_reports_each_failure_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let backend = crate::SqliteBackend::open(&dir.path().join("coffer.db"))
            .await
            .unwrap();
        backend.migrate().await.unwrap();
        let (a, b, c) = (merchant(1), merchant(2), merchant(3));

        // All good: one pass of multi-row statements.
        let first = [
            changeset(&[&a], vec![event(&a, 1)]),
            changeset(&[&b], vec![event(&b, 2)]),
        ];
        let outcomes = commit_group(&backend, &first, planned(&first)).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

        // Failures in the middle and at the end, including a clash with a changeset of the
        // same group: each fails alone, the others still commit.
        let second = [
            changeset(&[&c], vec![event(&c, 3)]),
            changeset(&[&a], vec![event(&a, 4)]),
            changeset(&[], vec![event(&c, 5)]),
            changeset(&[], vec![event(&b, 5)]),
        ];
        let outcomes = commit_group(&backend, &second, planned(&second)).await;
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StoreError::Duplicate(Unique::Record))),
            "{outcomes:?}"
        );
        assert!(outcomes[2].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[3], Err(StoreError::Duplicate(Unique::Record))),
            "{outcomes:?}"
        );

        let store = SqlStore::new(backend);
        let mut merchants: Vec<String> = store
            .list_merchants()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        merchants.sort();
        assert_eq!(merchants, ["m1", "m2", "m3"]);
        let events: Vec<(String, String)> = store
            .list_events(&EventQuery {
                limit: 100,
                ..EventQuery::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.event.subject, e.event.merchant_id.to_string()))
            .collect();
        assert_eq!(
            events,
            [
                ("s1".to_owned(), a.id.to_string()),
                ("s2".to_owned(), b.id.to_string()),
                ("s3".to_owned(), c.id.to_string()),
                ("s5".to_owned(), c.id.to_string()),
            ]
        );
        assert_eq!(store.pending_outbox(100).await.unwrap().len(), 4);
    }

    async fn count<B: Backend>(backend: &B, sql: &'static str) -> i64 {
        backend.fetch(Query::new(sql)).await.unwrap()[0]
            .int("n")
            .unwrap()
    }

    #[tokio::test]
    async fn a_groups_wallet_marks_collapse_to_the_highest_and_a_stale_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let backend = crate::SqliteBackend::open(&dir.path().join("coffer.db"))
            .await
            .unwrap();
        backend.migrate().await.unwrap();
        let a = merchant(1);
        let setup = [changeset(&[&a], vec![])];
        let outcomes = commit_group(&backend, &setup, planned(&setup)).await;
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        let mut tx = backend.begin().await.unwrap();
        let wallet = Query::new(
            "INSERT INTO wallets (merchant_id, chain, descriptor, next_index, created_at, \
             updated_at) VALUES ($1, $2, $3, 0, 0, 0)",
        )
        .text(a.id.as_str())
        .text("bsc")
        .text("xpub-new");
        crate::SqliteBackend::execute(&mut tx, wallet)
            .await
            .unwrap();
        crate::SqliteBackend::commit(tx).await.unwrap();

        let with_mark = |n: u8, index: u32, descriptor: &str| Changeset {
            events: vec![event(&a, n)],
            wallet_marks: vec![WalletMark {
                merchant_id: a.id.clone(),
                chain: ChainId::parse("bsc").unwrap(),
                descriptor: descriptor.into(),
                index,
            }],
            ..Changeset::default()
        };
        let group = [
            with_mark(1, 3, "xpub-new"),
            with_mark(2, 7, "xpub-new"),
            with_mark(3, 5, "xpub-new"),
        ];
        let outcomes = commit_group(&backend, &group, planned(&group)).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let next = "SELECT next_index AS n FROM wallets";
        assert_eq!(count(&backend, next).await, 8);

        // A mark made with a key the merchant has replaced since fails alone.
        let group = [with_mark(4, 9, "xpub-new"), with_mark(5, 20, "xpub-old")];
        let outcomes = commit_group(&backend, &group, planned(&group)).await;
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StoreError::Conflict("wallet"))),
            "{outcomes:?}"
        );
        assert_eq!(count(&backend, next).await, 10);
        assert_eq!(
            count(&backend, "SELECT count(*) AS n FROM events").await,
            4,
            "the stale changeset's event is not written"
        );
    }
}
