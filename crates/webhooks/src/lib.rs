//! Coffer's durable signed webhooks.
//!
//! Every state change already wrote its events and outbox rows in the same transaction. Here:
//! - the **dispatcher** turns each outbox row into one delivery row per destination (the
//!   merchant's endpoints whose filter matches, plus the order's `callback_url`) and marks the
//!   outbox row dispatched, in one transaction;
//! - the **sender** claims due deliveries (a short claim transaction, no lock held during the
//!   HTTP call), builds each request with the delivery's dialect [`Formatter`], sends it
//!   through the SSRF-guarded client, and records the outcome: success, a retry at the next
//!   point of the schedule, or — after the last one — failure and a flag on the endpoint;
//! - [`service::WebhookService`] manages endpoints (sealed secrets, rotation) and the logs.
//!
//! Everything lives in the database, so a restart (or a crash) loses nothing: an attempt cut
//! short is retried when its claim lapses. Delivery is at least once; receivers deduplicate on
//! the event id, which is the same in every attempt.

pub mod crypto;
pub mod format;
pub mod service;
pub mod ssrf;

mod sender;

use std::sync::Arc;
use std::time::Duration;

use coffer_core::{DeliveryId, DepositId, Event, OrderId, PayoutId};
use coffer_engine::{Clock, random16};
use coffer_store::{NewDelivery, Store, StoreError};
use tokio::sync::{Notify, watch};

pub use crypto::MasterKey;
pub use format::{
    DeliveryRequest, DialectContext, FormatError, FormatInput, Formatter, Formatters,
    NativeFormatter, RetrySchedule, SuccessRule,
};
pub use service::{ServiceError, WebhookService};
pub use ssrf::{Guard, SsrfError};

/// Tuning of the delivery machinery (`[webhooks]` in the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    pub allow_private: bool,
    pub allow_hosts: Vec<String>,
    /// Deliveries in flight at once, over all destinations.
    pub concurrency: usize,
    /// Deliveries in flight at once to one destination, so a slow one cannot take every slot.
    pub per_destination: usize,
    pub retry: RetrySchedule,
    /// How often the outbox and the due deliveries are polled when idle.
    pub poll_interval: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// How long a claimed delivery stays claimed; must exceed `timeout`.
    pub lease: Duration,
    /// Response bytes read (the rest is dropped); the first 1 KiB goes to the log.
    pub max_response_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_hosts: Vec::new(),
            concurrency: 64,
            per_destination: 8,
            retry: RetrySchedule::default_three_days(),
            poll_interval: Duration::from_millis(20),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            lease: Duration::from_secs(60),
            max_response_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The running machinery: dispatcher and sender over one store.
#[derive(Clone)]
pub struct Webhooks {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub key: MasterKey,
    pub settings: Arc<Settings>,
    pub formatters: Formatters,
    /// Woken when deliveries were created, so the sender does not wait for its next poll.
    wake_sender: Arc<Notify>,
    /// Woken by [`Webhooks::poke`] after a commit in this process.
    wake_dispatcher: Arc<Notify>,
}

impl Webhooks {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        key: MasterKey,
        settings: Settings,
    ) -> Self {
        let formatters = Formatters::new(settings.retry.clone());
        Self {
            store,
            clock,
            key,
            settings: Arc::new(settings),
            formatters,
            wake_sender: Arc::new(Notify::new()),
            wake_dispatcher: Arc::new(Notify::new()),
        }
    }

    /// Replace the formatters (to register dialects).
    pub fn with_formatters(mut self, formatters: Formatters) -> Self {
        self.formatters = formatters;
        self
    }

    /// The management service over the same store and key.
    pub fn service(&self) -> WebhookService {
        WebhookService {
            store: self.store.clone(),
            clock: self.clock.clone(),
            key: self.key.clone(),
            wake: self.wake_sender.clone(),
        }
    }

    /// Tell the dispatcher new events may be waiting (optional: it also polls).
    pub fn poke(&self) {
        self.wake_dispatcher.notify_one();
    }

    /// Run dispatcher and sender until `stop` turns true; then stop claiming, let in-flight
    /// attempts finish (each is bounded by the request timeout) and return.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<(), WebhookError> {
        let client = sender::client(&self.settings)?;
        let dispatcher = {
            let this = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move { this.dispatch_loop(stop).await })
        };
        let sender = sender::Sender::new(self.clone(), client);
        sender.run(stop).await;
        let _ = dispatcher.await;
        Ok(())
    }

    async fn dispatch_loop(&self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let more = match self.dispatch_once(256).await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook dispatcher: cannot dispatch the outbox");
                    false
                }
            };
            if more {
                self.wake_sender.notify_one();
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = self.wake_dispatcher.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Turn up to `limit` outbox rows into deliveries. Returns how many rows were dispatched.
    pub async fn dispatch_once(&self, limit: u32) -> Result<usize, StoreError> {
        let pending = self.store.pending_outbox(limit).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let mut endpoints = std::collections::HashMap::new();
        let mut batch = Vec::with_capacity(pending.len());
        for stored in &pending {
            let event = &stored.event;
            if !endpoints.contains_key(&event.merchant_id) {
                let list = self.store.list_webhooks(&event.merchant_id).await?;
                endpoints.insert(event.merchant_id.clone(), list);
            }
            let mut deliveries = Vec::new();
            for endpoint in endpoints.get(&event.merchant_id).into_iter().flatten() {
                if endpoint.enabled && endpoint.wants(event.kind) {
                    deliveries.push(NewDelivery {
                        id: DeliveryId::from_random(random16()),
                        merchant_id: event.merchant_id.clone(),
                        event_id: event.id.clone(),
                        endpoint_id: Some(endpoint.id.clone()),
                        url: endpoint.url.clone(),
                        dialect: "native".into(),
                        subject: event.subject.clone(),
                        created_at: now,
                    });
                }
            }
            if let Some((url, dialect)) = self.callback_of(event).await? {
                deliveries.push(NewDelivery {
                    id: DeliveryId::from_random(random16()),
                    merchant_id: event.merchant_id.clone(),
                    event_id: event.id.clone(),
                    endpoint_id: None,
                    url,
                    dialect,
                    subject: event.subject.clone(),
                    created_at: now,
                });
            }
            batch.push((event.id.clone(), deliveries));
        }
        self.store.dispatch_outbox(&batch, now).await?;
        Ok(batch.len())
    }

    /// The callback URL and dialect of the object an event is about: an order's own
    /// callback, a payout request's (refund, withdrawal) or a deposit's, as the dialect that
    /// created the object decides.
    async fn callback_of(&self, event: &Event) -> Result<Option<(String, String)>, StoreError> {
        if let Ok(id) = event.subject.parse::<PayoutId>() {
            let Some(payout) = self.store.get_payout(&event.merchant_id, &id).await? else {
                return Ok(None);
            };
            let url = self
                .formatters
                .get(&payout.dialect)
                .payout_callback_url(event, &payout);
            return Ok(url.map(|u| (u, payout.dialect)));
        }
        if let Ok(id) = event.subject.parse::<DepositId>() {
            let merchant = Some(&event.merchant_id);
            let Some(deposit) = self.store.get_deposit(merchant, Some(&id), None).await? else {
                return Ok(None);
            };
            let settings = self
                .store
                .dialect_settings(&event.merchant_id, &deposit.dialect)
                .await?;
            let url = self
                .formatters
                .get(&deposit.dialect)
                .deposit_callback_url(event, &deposit, &settings);
            return Ok(url.map(|u| (u, deposit.dialect)));
        }
        let Ok(order_id) = event.subject.parse::<OrderId>() else {
            return Ok(None);
        };
        let Some(order) = self.store.find_order(&order_id).await? else {
            return Ok(None);
        };
        let url = self
            .formatters
            .get(&order.dialect)
            .callback_url(event, &order);
        Ok(url.map(|u| (u, order.dialect)))
    }
}
