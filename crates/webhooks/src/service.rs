//! Managing endpoints and reading the delivery log and events: what the API handlers call.

use std::sync::Arc;

use coffer_core::{DeliveryId, EventType, MerchantId, WebhookId};
use coffer_engine::{Clock, random16};
use coffer_store::{
    DeliveryQuery, DeliveryRecord, EventQuery, Store, StoreError, StoredEvent,
    WebhookEndpointRecord,
};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::crypto::{self, KeyError, MasterKey};

/// How long the secret replaced by a rotation stays valid.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// How far back the events API reaches.
pub const EVENTS_RETENTION: Duration = Duration::days(30);
const MAX_URL_LEN: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl ServiceError {
    fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            code,
            field,
            message: message.into(),
        }
    }
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Clone)]
pub struct WebhookService {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub key: MasterKey,
    pub(crate) wake: Arc<Notify>,
}

/// An endpoint's URL: absolute http(s), no credentials, bounded length. Where it points is
/// checked by the SSRF guard at connect time, on the address actually dialled.
pub fn validate_url(raw: &str) -> Result<String, ServiceError> {
    let bad = |m: &str| ServiceError::invalid("invalid_url", "url", m);
    if raw.len() > MAX_URL_LEN {
        return Err(bad("url is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("url is not valid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("url must use http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("url must have a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("url must not contain credentials"));
    }
    Ok(url.to_string())
}

pub fn validate_events(raw: &[String]) -> Result<Vec<EventType>, ServiceError> {
    let mut out = Vec::new();
    for e in raw {
        let t: EventType = e.parse().map_err(|_| {
            ServiceError::invalid(
                "invalid_event_type",
                "events",
                format!(
                    "unknown event type {:?}",
                    e.chars().take(48).collect::<String>()
                ),
            )
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// The public view of an endpoint: never its secrets.
pub fn endpoint_json(e: &WebhookEndpointRecord) -> Value {
    json!({
        "id": e.id,
        "object": "webhook_endpoint",
        "url": e.url,
        "events": e.events,
        "enabled": e.enabled,
        "failing": e.failing_since.is_some(),
        "failing_since": e.failing_since.map(coffer_engine::view::rfc3339),
        "previous_secret_expires_at": e.previous_secret_expires_at.map(coffer_engine::view::rfc3339),
        "created_at": coffer_engine::view::rfc3339(e.created_at),
        "updated_at": coffer_engine::view::rfc3339(e.updated_at),
    })
}

pub fn delivery_json(d: &DeliveryRecord) -> Value {
    let headers = d
        .request_headers
        .as_deref()
        .and_then(|h| serde_json::from_str::<Value>(h).ok());
    json!({
        "id": d.id,
        "object": "webhook_delivery",
        "event_id": d.event_id,
        "endpoint_id": d.endpoint_id,
        "url": d.url,
        "dialect": d.dialect,
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.filter(|_| d.status == coffer_store::DeliveryStatus::Pending).map(coffer_engine::view::rfc3339),
        "response_status": d.last_status_code,
        "response_excerpt": d.response_excerpt,
        "duration_ms": d.duration_ms,
        "error": d.error,
        "request": {"headers": headers, "body": d.request_body},
        "created_at": coffer_engine::view::rfc3339(d.created_at),
        "updated_at": coffer_engine::view::rfc3339(d.updated_at),
    })
}

pub fn event_json(e: &StoredEvent) -> Value {
    json!({
        "id": e.event.id,
        "object": "event",
        "type": e.event.kind,
        "dedupe_key": e.event.dedupe_key(),
        "created_at": coffer_engine::view::rfc3339(e.event.created_at),
        "data": e.event.public_data(),
    })
}

impl WebhookService {
    /// Create an endpoint. The returned secret is the only time it is shown.
    pub async fn create(
        &self,
        merchant: &MerchantId,
        url: &str,
        events: &[String],
        enabled: bool,
    ) -> Result<(WebhookEndpointRecord, String), ServiceError> {
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(ServiceError::NotFound("merchant"));
        }
        let url = validate_url(url)?;
        let events = validate_events(events)?;
        let secret = crypto::new_secret();
        let now = self.clock.now();
        let record = WebhookEndpointRecord {
            id: WebhookId::from_random(random16()),
            merchant_id: merchant.clone(),
            url,
            events,
            enabled,
            secret: self.key.seal(&secret)?,
            previous_secret: None,
            previous_secret_expires_at: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook(&record).await?;
        Ok((record, secret))
    }

    pub async fn list(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<WebhookEndpointRecord>, ServiceError> {
        Ok(self.store.list_webhooks(merchant).await?)
    }

    pub async fn get(
        &self,
        merchant: &MerchantId,
        id: &WebhookId,
    ) -> Result<WebhookEndpointRecord, ServiceError> {
        self.store
            .get_webhook(Some(merchant), id)
            .await?
            .ok_or(ServiceError::NotFound("webhook"))
    }

    pub async fn update(
        &self,
        merchant: &MerchantId,
        id: &WebhookId,
        patch: EndpointPatch,
    ) -> Result<WebhookEndpointRecord, ServiceError> {
        let mut record = self.get(merchant, id).await?;
        if let Some(url) = &patch.url {
            record.url = validate_url(url)?;
        }
        if let Some(events) = &patch.events {
            record.events = validate_events(events)?;
        }
        if let Some(enabled) = patch.enabled {
            record.enabled = enabled;
            if enabled {
                // Re-enabling is the merchant's acknowledgement of the failure flag.
                record.failing_since = None;
            }
        }
        record.updated_at = self.clock.now();
        if !self.store.update_webhook(&record).await? {
            return Err(ServiceError::NotFound("webhook"));
        }
        Ok(record)
    }

    pub async fn delete(&self, merchant: &MerchantId, id: &WebhookId) -> Result<(), ServiceError> {
        if self
            .store
            .delete_webhook(merchant, id, self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound("webhook"))
        }
    }

    /// Replace the secret; the old one stays valid (both signatures are sent) for 24 h.
    pub async fn rotate(
        &self,
        merchant: &MerchantId,
        id: &WebhookId,
    ) -> Result<(WebhookEndpointRecord, String), ServiceError> {
        let mut record = self.get(merchant, id).await?;
        let now = self.clock.now();
        let secret = crypto::new_secret();
        record.previous_secret = Some(std::mem::replace(
            &mut record.secret,
            self.key.seal(&secret)?,
        ));
        record.previous_secret_expires_at = Some(now + ROTATION_OVERLAP);
        record.updated_at = now;
        if !self.store.update_webhook(&record).await? {
            return Err(ServiceError::NotFound("webhook"));
        }
        Ok((record, secret))
    }

    /// The secrets that sign a delivery now, and whether its endpoint is flagged failing.
    /// `None` when its endpoint was deleted or disabled. A callback URL is signed with the
    /// secrets of every endpoint of the merchant.
    pub async fn signing_secrets(
        &self,
        delivery: &DeliveryRecord,
        now: OffsetDateTime,
    ) -> Result<Option<(Vec<String>, bool)>, ServiceError> {
        let endpoints = match &delivery.endpoint_id {
            Some(id) => match self.store.get_webhook(None, id).await? {
                Some(e) if e.enabled => vec![e],
                _ => return Ok(None),
            },
            None => self.store.list_webhooks(&delivery.merchant_id).await?,
        };
        let mut secrets = Vec::new();
        let mut failing = false;
        for e in &endpoints {
            failing |= e.failing_since.is_some();
            secrets.push(self.key.open(&e.secret)?);
            if let (Some(prev), Some(until)) = (&e.previous_secret, e.previous_secret_expires_at)
                && until > now
            {
                secrets.push(self.key.open(prev)?);
            }
        }
        Ok(Some((secrets, failing && delivery.endpoint_id.is_some())))
    }

    pub async fn deliveries(
        &self,
        merchant: &MerchantId,
        endpoint: &WebhookId,
        after: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, ServiceError> {
        // 404 for another merchant's endpoint, exactly like a missing one.
        self.get(merchant, endpoint).await?;
        Ok(self
            .store
            .list_deliveries(&DeliveryQuery {
                merchant_id: Some(merchant.clone()),
                endpoint_id: Some(endpoint.clone()),
                after,
                limit,
            })
            .await?)
    }

    /// Attempt a delivery again now, whatever its state.
    pub async fn redeliver(
        &self,
        merchant: &MerchantId,
        endpoint: &WebhookId,
        id: &DeliveryId,
    ) -> Result<DeliveryRecord, ServiceError> {
        let found = self
            .store
            .get_delivery(merchant, id)
            .await?
            .filter(|d| d.endpoint_id.as_ref() == Some(endpoint))
            .ok_or(ServiceError::NotFound("delivery"))?;
        if !self
            .store
            .redeliver(merchant, &found.id, self.clock.now())
            .await?
        {
            return Err(ServiceError::NotFound("delivery"));
        }
        self.wake.notify_one();
        self.store
            .get_delivery(merchant, id)
            .await?
            .ok_or(ServiceError::NotFound("delivery"))
    }

    /// A merchant's events of the last 30 days, oldest first, after the cursor.
    pub async fn events(
        &self,
        merchant: &MerchantId,
        kind: Option<EventType>,
        created_from: Option<OffsetDateTime>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, ServiceError> {
        let floor = self.clock.now() - EVENTS_RETENTION;
        let from = created_from.map_or(floor, |f| f.max(floor));
        Ok(self
            .store
            .list_events(&EventQuery {
                merchant_id: Some(merchant.clone()),
                kind,
                created_from: Some(from),
                after_seq,
                limit,
            })
            .await?)
    }
}
