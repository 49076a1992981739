//! Webhook endpoints, deliveries and the outbox dispatch: the storage half of durable webhooks.
//!
//! Deliveries are claimed by moving their `next_attempt_at` to the end of a lease, in a short
//! transaction of its own (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several instances never
//! claim the same row and never wait on each other); the HTTP call runs with no transaction
//! or row lock open, and its outcome is recorded afterwards. A sender that dies mid-attempt
//! leaves the row pending: it is due again when the lease ends, so nothing is lost.

use std::fmt;
use std::str::FromStr;

use coffer_core::{DeliveryId, Event, EventId, EventType, MerchantId, WebhookId};
use time::OffsetDateTime;

use crate::StoreError;
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{from_ms, ms, opt_ms, to_json};

/// A merchant's webhook endpoint as stored. `secret` and `previous_secret` are sealed
/// (encrypted) by the caller; the store never sees a signing secret in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    pub id: WebhookId,
    pub merchant_id: MerchantId,
    pub url: String,
    /// Event types delivered; empty means every event.
    pub events: Vec<EventType>,
    pub enabled: bool,
    pub secret: String,
    /// The secret replaced by the last rotation, still valid until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    /// Set when a delivery to this endpoint exhausted its retries; cleared on the next success.
    pub failing_since: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl WebhookEndpointRecord {
    /// Whether `kind` passes the endpoint's event filter.
    pub fn wants(&self, kind: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt (or being attempted right now).
    Pending,
    Succeeded,
    /// Every attempt of the retry schedule failed.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "succeeded" => Ok(DeliveryStatus::Succeeded),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(format!("unknown delivery status {other:?}")),
        }
    }
}

/// A delivery to create when an outbox row is dispatched. Its first attempt is due at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub merchant_id: MerchantId,
    pub event_id: EventId,
    /// `None` for the order's own callback URL.
    pub endpoint_id: Option<WebhookId>,
    pub url: String,
    /// Which formatter builds the request (`native` or a dialect's name).
    pub dialect: String,
    /// What the event is about (its subject: an order, payout or deposit id).
    pub subject: String,
    pub created_at: OffsetDateTime,
}

impl NewDelivery {
    /// One delivery per (event, destination): the endpoint, or the order's callback.
    pub fn destination(&self) -> String {
        self.endpoint_id
            .as_ref()
            .map_or_else(|| "callback".to_owned(), |e| e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub merchant_id: MerchantId,
    pub event_id: EventId,
    pub endpoint_id: Option<WebhookId>,
    pub url: String,
    pub dialect: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_status_code: Option<u16>,
    pub response_excerpt: Option<String>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    /// JSON object of the headers of the last request, as sent.
    pub request_headers: Option<String>,
    pub request_body: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A claimed delivery with the event it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery: DeliveryRecord,
    pub event: Event,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: DeliveryId,
    /// `attempts` as claimed; the record is ignored if the row moved on meanwhile.
    pub claimed_attempts: u32,
    /// `Pending` with a `next_attempt_at` to retry, or final.
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub status_code: Option<u16>,
    pub response_excerpt: Option<String>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub request_headers: Option<String>,
    pub request_body: Option<String>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub merchant_id: Option<MerchantId>,
    pub endpoint_id: Option<WebhookId>,
    /// Continue after this delivery (newest first).
    pub after: Option<DeliveryId>,
    pub limit: u32,
}

const ENDPOINT_COLUMNS_SELECT: &str = "SELECT id, merchant_id, url, events, enabled, secret, previous_secret, \
     previous_secret_expires_at, failing_since, created_at, updated_at FROM webhook_endpoints";

pub(crate) const DELIVERY_COLUMNS: &str = "d.id AS id, d.merchant_id AS merchant_id, d.event_id AS event_id, \
     d.endpoint_id AS endpoint_id, d.url AS url, d.dialect AS dialect, d.status AS status, \
     d.attempts AS attempts, d.next_attempt_at AS next_attempt_at, \
     d.last_status_code AS last_status_code, d.response_excerpt AS response_excerpt, \
     d.duration_ms AS duration_ms, d.error AS error, d.request_headers AS request_headers, \
     d.request_body AS request_body, d.created_at AS created_at, d.updated_at AS updated_at";

fn corrupt(column: &str, detail: impl fmt::Display) -> StoreError {
    StoreError::Corrupt {
        column: column.to_owned(),
        detail: detail.to_string(),
    }
}

fn parse<T: FromStr>(column: &str, raw: &str) -> Result<T, StoreError>
where
    T::Err: fmt::Display,
{
    raw.parse::<T>().map_err(|e| corrupt(column, e))
}

fn opt_time(row: &impl RowExt, col: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    row.opt_int(col)?.map(|v| from_ms(col, v)).transpose()
}

fn endpoint_from_row(row: &impl RowExt) -> Result<WebhookEndpointRecord, StoreError> {
    let events: Vec<String> = serde_json::from_str(&row.text("events")?)
        .map_err(|e| corrupt("webhook_endpoints.events", e))?;
    Ok(WebhookEndpointRecord {
        id: parse("webhook_endpoints.id", &row.text("id")?)?,
        merchant_id: parse("webhook_endpoints.merchant_id", &row.text("merchant_id")?)?,
        url: row.text("url")?,
        events: events
            .iter()
            .map(|e| parse("webhook_endpoints.events", e))
            .collect::<Result<_, _>>()?,
        enabled: row.boolean("enabled")?,
        secret: row.text("secret")?,
        previous_secret: row.opt_text("previous_secret")?,
        previous_secret_expires_at: opt_time(row, "previous_secret_expires_at")?,
        failing_since: opt_time(row, "failing_since")?,
        created_at: from_ms("created_at", row.int("created_at")?)?,
        updated_at: from_ms("updated_at", row.int("updated_at")?)?,
    })
}

pub(crate) fn delivery_from_row(row: &impl RowExt) -> Result<DeliveryRecord, StoreError> {
    Ok(DeliveryRecord {
        id: parse("webhook_deliveries.id", &row.text("id")?)?,
        merchant_id: parse("webhook_deliveries.merchant_id", &row.text("merchant_id")?)?,
        event_id: parse("webhook_deliveries.event_id", &row.text("event_id")?)?,
        endpoint_id: row
            .opt_text("endpoint_id")?
            .map(|e| parse("webhook_deliveries.endpoint_id", &e))
            .transpose()?,
        url: row.text("url")?,
        dialect: row.text("dialect")?,
        status: parse("webhook_deliveries.status", &row.text("status")?)?,
        attempts: u32::try_from(row.int("attempts")?)
            .map_err(|e| corrupt("webhook_deliveries.attempts", e))?,
        next_attempt_at: opt_time(row, "next_attempt_at")?,
        last_status_code: row
            .opt_int("last_status_code")?
            .map(|c| {
                u16::try_from(c).map_err(|e| corrupt("webhook_deliveries.last_status_code", e))
            })
            .transpose()?,
        response_excerpt: row.opt_text("response_excerpt")?,
        duration_ms: row.opt_int("duration_ms")?,
        error: row.opt_text("error")?,
        request_headers: row.opt_text("request_headers")?,
        request_body: row.opt_text("request_body")?,
        created_at: from_ms("created_at", row.int("created_at")?)?,
        updated_at: from_ms("updated_at", row.int("updated_at")?)?,
    })
}

fn claimed_from_row(row: &impl RowExt) -> Result<ClaimedDelivery, StoreError> {
    let delivery = delivery_from_row(row)?;
    let event = Event {
        id: delivery.event_id.clone(),
        merchant_id: delivery.merchant_id.clone(),
        kind: parse("events.type", &row.text("event_type")?)?,
        subject: row.text("event_subject")?,
        data: serde_json::from_str(&row.text("event_data")?)
            .map_err(|e| corrupt("events.data", e))?,
        created_at: from_ms("events.created_at", row.int("event_created_at")?)?,
    };
    Ok(ClaimedDelivery { delivery, event })
}

fn events_json(events: &[EventType]) -> String {
    to_json(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>())
}

fn rows<R, T>(rows: Vec<R>, f: impl Fn(&R) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

/// `$first, $first+1, …` (or `?, ?, …`) for an `IN (…)` list of `n` values.
fn placeholders(first: usize, n: usize, anonymous: bool) -> String {
    (0..n)
        .map(|i| {
            if anonymous {
                "?".to_owned()
            } else {
                format!("${}", first + i)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn insert_endpoint<B: Backend>(
    backend: &B,
    e: &WebhookEndpointRecord,
) -> Result<(), StoreError> {
    let q = Query::new(
        "INSERT INTO webhook_endpoints (id, merchant_id, url, events, enabled, secret, \
         previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .text(e.id.as_str())
    .text(e.merchant_id.as_str())
    .text(e.url.clone())
    .text(events_json(&e.events))
    .boolean(e.enabled)
    .text(e.secret.clone())
    .opt_text(e.previous_secret.clone())
    .opt_int(opt_ms(e.previous_secret_expires_at))
    .opt_int(opt_ms(e.failing_since))
    .int(ms(e.created_at))
    .int(ms(e.updated_at));
    let mut tx = backend.begin().await?;
    B::execute(&mut tx, q).await?;
    B::commit(tx).await
}

pub(crate) async fn get_endpoint<B: Backend>(
    backend: &B,
    merchant: Option<&MerchantId>,
    id: &WebhookId,
) -> Result<Option<WebhookEndpointRecord>, StoreError> {
    let sql = format!(
        "{ENDPOINT_COLUMNS_SELECT} WHERE id = $1 AND ($2 IS NULL OR merchant_id = $2) \
         AND deleted_at IS NULL"
    );
    let q = Query::built(sql)
        .text(id.as_str())
        .opt_text(merchant.map(|m| m.as_str().to_owned()));
    backend
        .fetch(q)
        .await?
        .first()
        .map(endpoint_from_row)
        .transpose()
}

pub(crate) async fn list_endpoints<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
) -> Result<Vec<WebhookEndpointRecord>, StoreError> {
    let sql = format!(
        "{ENDPOINT_COLUMNS_SELECT} WHERE merchant_id = $1 AND deleted_at IS NULL \
         ORDER BY created_at, id"
    );
    let q = Query::built(sql).text(merchant.as_str());
    rows(backend.fetch(q).await?, endpoint_from_row)
}

pub(crate) async fn update_endpoint<B: Backend>(
    backend: &B,
    e: &WebhookEndpointRecord,
) -> Result<bool, StoreError> {
    let q = Query::new(
        "UPDATE webhook_endpoints SET url = $1, events = $2, enabled = $3, secret = $4, \
         previous_secret = $5, previous_secret_expires_at = $6, failing_since = $7, \
         updated_at = $8 WHERE id = $9 AND merchant_id = $10 AND deleted_at IS NULL",
    )
    .text(e.url.clone())
    .text(events_json(&e.events))
    .boolean(e.enabled)
    .text(e.secret.clone())
    .opt_text(e.previous_secret.clone())
    .opt_int(opt_ms(e.previous_secret_expires_at))
    .opt_int(opt_ms(e.failing_since))
    .int(ms(e.updated_at))
    .text(e.id.as_str())
    .text(e.merchant_id.as_str());
    let mut tx = backend.begin().await?;
    let n = B::execute(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(n == 1)
}

pub(crate) async fn delete_endpoint<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    id: &WebhookId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut tx = backend.begin().await?;
    let q = Query::new(
        "UPDATE webhook_endpoints SET deleted_at = $1, enabled = $2, updated_at = $1 \
         WHERE id = $3 AND merchant_id = $4 AND deleted_at IS NULL",
    )
    .int(ms(at))
    .boolean(false)
    .text(id.as_str())
    .text(merchant.as_str());
    let n = B::execute(&mut tx, q).await?;
    // Pending deliveries to a deleted endpoint are given up, with a reason in the log.
    let q = Query::new(
        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, \
         error = $1, updated_at = $2 WHERE endpoint_id = $3 AND status = 'pending'",
    )
    .text("endpoint deleted")
    .int(ms(at))
    .text(id.as_str());
    B::execute(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(n == 1)
}

pub(crate) async fn set_endpoint_failing<B: Backend>(
    backend: &B,
    id: &WebhookId,
    failing_since: Option<OffsetDateTime>,
) -> Result<(), StoreError> {
    // Flagging keeps the first failure time; clearing always clears.
    let q = Query::new(
        "UPDATE webhook_endpoints SET failing_since = \
         CASE WHEN $1 IS NULL THEN NULL ELSE COALESCE(failing_since, $1) END \
         WHERE id = $2",
    )
    .opt_int(opt_ms(failing_since))
    .text(id.as_str());
    let mut tx = backend.begin().await?;
    B::execute(&mut tx, q).await?;
    B::commit(tx).await
}

const INSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries (id, merchant_id, event_id, endpoint_id, \
     destination, url, dialect, status, attempts, next_attempt_at, created_at, updated_at, subject) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $10, $11) \
     ON CONFLICT (event_id, destination) DO NOTHING";

pub(crate) async fn dispatch_outbox<B: Backend>(
    backend: &B,
    batch: &[(EventId, Vec<NewDelivery>)],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut tx = backend.begin().await?;
    for (event_id, deliveries) in batch {
        for d in deliveries {
            let q = Query::new(INSERT_DELIVERY)
                .text(d.id.as_str())
                .text(d.merchant_id.as_str())
                .text(d.event_id.as_str())
                .opt_text(d.endpoint_id.as_ref().map(|e| e.to_string()))
                .text(d.destination())
                .text(d.url.clone())
                .text(d.dialect.clone())
                .int(ms(d.created_at))
                .int(ms(d.created_at))
                .int(ms(d.created_at))
                .text(d.subject.clone());
            B::execute(&mut tx, q).await?;
        }
        let q = Query::new(
            "UPDATE outbox SET dispatched_at = $1 WHERE event_id = $2 AND dispatched_at IS NULL",
        )
        .int(ms(at))
        .text(event_id.as_str());
        B::execute(&mut tx, q).await?;
    }
    B::commit(tx).await
}

pub(crate) async fn claim_deliveries<B: Backend>(
    backend: &B,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    // A cheap read first: an idle sender polling often must not take the write lock (the
    // single SQLite writer) for nothing.
    let due = Query::new(
        "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
         LIMIT 1",
    )
    .int(ms(now));
    if backend.fetch(due).await?.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = backend.begin().await?;
    let sql = format!(
        "UPDATE webhook_deliveries SET next_attempt_at = $1, updated_at = $2 WHERE id IN \
         (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $2 \
          ORDER BY next_attempt_at LIMIT $3{}) RETURNING id",
        B::SKIP_LOCKED
    );
    let q = Query::built(sql)
        .int(ms(lease_until))
        .int(ms(now))
        .int(i64::from(limit.clamp(1, 1000)));
    let ids: Vec<String> = rows(B::fetch_in(&mut tx, q).await?, |r| r.text("id"))?;
    if ids.is_empty() {
        B::commit(tx).await?;
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS}, e.type AS event_type, e.subject AS event_subject, \
         e.data AS event_data, e.created_at AS event_created_at \
         FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE d.id IN ({}) \
         ORDER BY d.created_at, d.id",
        placeholders(1, ids.len(), B::ANONYMOUS_PLACEHOLDERS)
    );
    let mut q = Query::built(sql);
    for id in ids {
        q = q.text(id);
    }
    let claimed = rows(B::fetch_in(&mut tx, q).await?, claimed_from_row)?;
    B::commit(tx).await?;
    Ok(claimed)
}

pub(crate) async fn release_deliveries<B: Backend>(
    backend: &B,
    ids: &[DeliveryId],
    due_at: OffsetDateTime,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut tx = backend.begin().await?;
    for id in ids {
        let q = Query::new(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .int(ms(due_at))
        .text(id.as_str());
        B::execute(&mut tx, q).await?;
    }
    B::commit(tx).await
}

pub(crate) async fn record_attempts<B: Backend>(
    backend: &B,
    attempts: &[AttemptRecord],
) -> Result<usize, StoreError> {
    if attempts.is_empty() {
        return Ok(0);
    }
    let mut tx = backend.begin().await?;
    let mut recorded = 0;
    for a in attempts {
        let q = Query::new(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, \
             next_attempt_at = $2, last_status_code = $3, response_excerpt = $4, \
             duration_ms = $5, error = $6, request_headers = $7, request_body = $8, \
             updated_at = $9 WHERE id = $10 AND attempts = $11 AND status = 'pending'",
        )
        .text(a.status.as_str())
        .opt_int(opt_ms(a.next_attempt_at))
        .opt_int(a.status_code.map(i64::from))
        .opt_text(a.response_excerpt.clone())
        .int(a.duration_ms)
        .opt_text(a.error.clone())
        .opt_text(a.request_headers.clone())
        .opt_text(a.request_body.clone())
        .int(ms(a.at))
        .text(a.id.as_str())
        .int(i64::from(a.claimed_attempts));
        if B::execute(&mut tx, q).await? == 1 {
            recorded += 1;
        }
    }
    B::commit(tx).await?;
    Ok(recorded)
}

pub(crate) async fn get_delivery<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    id: &DeliveryId,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = $1 AND d.merchant_id = $2"
    );
    let q = Query::built(sql).text(id.as_str()).text(merchant.as_str());
    backend
        .fetch(q)
        .await?
        .first()
        .map(delivery_from_row)
        .transpose()
}

pub(crate) async fn list_deliveries<B: Backend>(
    backend: &B,
    query: &DeliveryQuery,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
         WHERE ($1 IS NULL OR d.merchant_id = $1) AND ($2 IS NULL OR d.endpoint_id = $2) \
         AND ($3 IS NULL OR d.created_at < (SELECT c.created_at FROM webhook_deliveries c WHERE c.id = $3) \
              OR (d.created_at = (SELECT c.created_at FROM webhook_deliveries c WHERE c.id = $3) \
                  AND d.id < $3)) \
         ORDER BY d.created_at DESC, d.id DESC LIMIT $4"
    );
    let q = Query::built(sql)
        .opt_text(query.merchant_id.as_ref().map(|m| m.to_string()))
        .opt_text(query.endpoint_id.as_ref().map(|e| e.to_string()))
        .opt_text(query.after.as_ref().map(|d| d.to_string()))
        .int(i64::from(query.limit.clamp(1, crate::sql_store::MAX_PAGE)));
    rows(backend.fetch(q).await?, delivery_from_row)
}

pub(crate) async fn redeliver<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    id: &DeliveryId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let q = Query::new(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1 \
         WHERE id = $2 AND merchant_id = $3",
    )
    .int(ms(at))
    .text(id.as_str())
    .text(merchant.as_str());
    let mut tx = backend.begin().await?;
    let n = B::execute(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(n == 1)
}

pub(crate) async fn last_callback<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    dialect: &str,
    subject: &str,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM webhook_deliveries d \
         WHERE d.merchant_id = $1 AND d.subject = $2 AND d.endpoint_id IS NULL \
         AND d.dialect = $3 ORDER BY d.created_at DESC, d.id DESC LIMIT 1",
        DELIVERY_COLUMNS
    );
    let q = Query::built(sql)
        .text(merchant.as_str())
        .text(subject)
        .text(dialect);
    backend
        .fetch(q)
        .await?
        .first()
        .map(delivery_from_row)
        .transpose()
}
