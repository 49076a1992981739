//! The sender: claims due deliveries, sends them concurrently (bounded overall and per
//! destination), and records outcomes in batches.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_core::WebhookId;
use coffer_store::{AttemptRecord, ClaimedDelivery, DeliveryStatus};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::format::FormatInput;
use crate::ssrf::{Guard, GuardedResolver, SsrfError};
use crate::{Settings, WebhookError, Webhooks};

/// Bytes of the response body kept in the delivery log.
const EXCERPT_BYTES: usize = 1024;

pub(crate) fn client(settings: &Settings) -> Result<reqwest::Client, WebhookError> {
    // reqwest is built without a bundled crypto provider; use ring (already installed is fine).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let guard = Arc::new(Guard::new(
        settings.allow_private,
        settings.allow_hosts.iter().cloned(),
    ));
    reqwest::Client::builder()
        .dns_resolver(GuardedResolver { guard })
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .pool_max_idle_per_host(settings.per_destination.max(1))
        .build()
        .map_err(|e| WebhookError::Client(e.to_string()))
}

/// What the recorder writes for one finished attempt.
struct Finished {
    record: AttemptRecord,
    endpoint: Option<WebhookId>,
    /// `Some(true)`: flag the endpoint failing; `Some(false)`: clear the flag.
    flag: Option<bool>,
}

/// Claimed deliveries waiting for a slot, per destination, and the slots in use.
#[derive(Default)]
struct Queues {
    waiting: HashMap<String, VecDeque<ClaimedDelivery>>,
    in_flight: HashMap<String, usize>,
    queued: usize,
    running: usize,
}

pub(crate) struct Sender {
    hooks: Webhooks,
    client: reqwest::Client,
    guard: Guard,
    slots: Arc<Semaphore>,
    queues: Arc<Mutex<Queues>>,
}

type Done = mpsc::Sender<Finished>;

impl Sender {
    /// The object of the event (order and payments, payout request with a refund's order, or
    /// deposit) and the credential of the delivery's dialect its callback uses
    /// ([`coffer_engine::dialect_keys::callback_credential`]).
    async fn dialect_context(
        &self,
        delivery: &coffer_store::DeliveryRecord,
        event: &coffer_core::Event,
    ) -> Result<crate::format::DialectContext, String> {
        let store = &self.hooks.store;
        let order = match event.subject.parse::<coffer_core::OrderId>() {
            Ok(id) => store.find_order(&id).await.map_err(|e| e.to_string())?,
            Err(_) => None,
        };
        let payments = match &order {
            Some(o) => store
                .payments_for_order(&o.id)
                .await
                .map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let payout = match event.subject.parse::<coffer_core::PayoutId>() {
            Ok(id) => store
                .get_payout(&event.merchant_id, &id)
                .await
                .map_err(|e| e.to_string())?,
            Err(_) => None,
        };
        // A refund's order (what a dialect's refund callback names).
        let order = match (order, payout.as_ref().and_then(|p| p.order_id.as_ref())) {
            (None, Some(id)) => store.find_order(id).await.map_err(|e| e.to_string())?,
            (order, _) => order,
        };
        let deposit = match event.subject.parse::<coffer_core::DepositId>() {
            Ok(id) => store
                .get_deposit(Some(&event.merchant_id), Some(&id), None)
                .await
                .map_err(|e| e.to_string())?,
            Err(_) => None,
        };
        // The credential that created the order (a refund's too), while it is active.
        let creator = order.as_ref().and_then(|o| o.credential_id.as_deref());
        let credential = coffer_engine::dialect_keys::callback_credential(
            &**store,
            &self.hooks.key,
            &delivery.merchant_id,
            &delivery.dialect,
            creator,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(crate::format::DialectContext {
            order,
            payments,
            payout,
            deposit,
            credential,
        })
    }

    pub(crate) fn new(hooks: Webhooks, client: reqwest::Client) -> Self {
        let settings = hooks.settings.clone();
        Self {
            guard: Guard::new(settings.allow_private, settings.allow_hosts.iter().cloned()),
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            queues: Arc::new(Mutex::new(Queues::default())),
            hooks,
            client,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start a worker for every destination with waiting deliveries and a free slot, while
    /// global slots last. A worker keeps its slot and works through its destination's queue.
    fn start_workers(self: &Arc<Self>, tasks: &mut JoinSet<()>, done: &Done) {
        let per_destination = self.hooks.settings.per_destination.max(1);
        loop {
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                return;
            };
            let next = {
                let mut q = self.lock();
                let q = &mut *q;
                let dest = q
                    .waiting
                    .iter()
                    .find(|(d, w)| {
                        !w.is_empty() && q.in_flight.get(*d).copied().unwrap_or(0) < per_destination
                    })
                    .map(|(d, _)| d.clone());
                dest.and_then(|d| {
                    let claim = q.waiting.get_mut(&d)?.pop_front()?;
                    q.queued -= 1;
                    q.running += 1;
                    *q.in_flight.entry(d.clone()).or_default() += 1;
                    Some((d, claim))
                })
            };
            let Some((dest, claim)) = next else {
                return;
            };
            let this = self.clone();
            let done = done.clone();
            tasks.spawn(async move {
                let mut claim = claim;
                loop {
                    let finished = this.attempt(claim).await;
                    let _ = done.send(finished).await;
                    let next = {
                        let mut q = this.lock();
                        let next = q.waiting.get_mut(&dest).and_then(VecDeque::pop_front);
                        if next.is_some() {
                            q.queued -= 1;
                        } else {
                            q.running -= 1;
                            if let Some(n) = q.in_flight.get_mut(&dest) {
                                *n = n.saturating_sub(1);
                                if *n == 0 {
                                    q.in_flight.remove(&dest);
                                    q.waiting.remove(&dest);
                                }
                            }
                        }
                        next
                    };
                    match next {
                        Some(n) => claim = n,
                        None => break,
                    }
                }
                drop(permit);
            });
        }
    }

    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let (done_tx, done_rx) = mpsc::channel::<Finished>(4096);
        let recorder = tokio::spawn(record_loop(this.hooks.clone(), done_rx));
        let mut tasks = JoinSet::new();
        let settings = this.hooks.settings.clone();
        let concurrency = settings.concurrency.max(1);
        // Claimed but not started yet, at most: bounds how long a claim waits in memory.
        let backlog = concurrency.saturating_mul(4);
        let per_queue = settings.per_destination.max(1).saturating_mul(16);
        let lease = time::Duration::try_from(settings.lease).unwrap_or(time::Duration::MINUTE);
        while !*stop.borrow() {
            while tasks.try_join_next().is_some() {}
            this.start_workers(&mut tasks, &done_tx);
            let held = {
                let q = this.lock();
                q.queued + q.running
            };
            let room = (backlog + concurrency).saturating_sub(held).min(256);
            if room == 0 {
                tokio::select! {
                    _ = tasks.join_next(), if !tasks.is_empty() => {}
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let now = this.hooks.clock.now();
            let limit = u32::try_from(room).unwrap_or(256);
            let claimed = match this
                .hooks
                .store
                .claim_deliveries(now, now + lease, limit)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook sender: cannot claim deliveries");
                    Vec::new()
                }
            };
            let got = claimed.len();
            let mut overflow = Vec::new();
            {
                let mut q = this.lock();
                for claim in claimed {
                    let waiting = q.waiting.entry(destination(&claim)).or_default();
                    if waiting.len() >= per_queue {
                        // A destination far behind: hand its rows back so they do not sit
                        // claimed in memory; others go ahead meanwhile.
                        overflow.push(claim.delivery.id);
                    } else {
                        waiting.push_back(claim);
                        q.queued += 1;
                    }
                }
            }
            this.start_workers(&mut tasks, &done_tx);
            if !overflow.is_empty() {
                let due = now + time::Duration::seconds(1);
                if let Err(e) = this.hooks.store.release_deliveries(&overflow, due).await {
                    tracing::warn!(error = %e, "webhook sender: cannot release deliveries");
                }
            }
            if got == 0 || got == overflow.len() {
                tokio::select! {
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                    _ = this.hooks.wake_sender.notified() => {}
                    _ = tasks.join_next(), if !tasks.is_empty() => {}
                    _ = stop.changed() => {}
                }
            }
        }
        // Stop: drop what is queued but not started (its claim lapses and it is retried),
        // let attempts in flight finish (each bounded by the request timeout).
        {
            let ids: Vec<_> = {
                let mut q = this.lock();
                q.queued = 0;
                q.waiting
                    .values_mut()
                    .flat_map(|w| w.drain(..))
                    .map(|c| c.delivery.id)
                    .collect()
            };
            let now = this.hooks.clock.now();
            if let Err(e) = this.hooks.store.release_deliveries(&ids, now).await {
                tracing::warn!(error = %e, "webhook sender: cannot hand back queued deliveries");
            }
        }
        while tasks.join_next().await.is_some() {}
        drop(done_tx);
        let _ = recorder.await;
    }

    async fn attempt(&self, claim: ClaimedDelivery) -> Finished {
        let ClaimedDelivery { delivery, event } = claim;
        let started = Instant::now();
        let now = self.hooks.clock.now();
        let fail_final = |error: &str| Finished {
            record: AttemptRecord {
                id: delivery.id.clone(),
                claimed_attempts: delivery.attempts,
                status: DeliveryStatus::Failed,
                next_attempt_at: None,
                status_code: None,
                response_excerpt: None,
                duration_ms: 0,
                error: Some(error.to_owned()),
                request_headers: None,
                request_body: None,
                at: now,
            },
            endpoint: None,
            flag: None,
        };
        let (secrets, was_failing) = match self
            .hooks
            .service()
            .signing_secrets(&delivery, now)
            .await
        {
            Ok(Some(s)) => s,
            Ok(None) => return fail_final("endpoint deleted or disabled"),
            Err(e) => {
                // Store trouble: hand the row back for a retry when its claim lapses.
                tracing::warn!(error = %e, delivery = %delivery.id, "cannot load signing secrets");
                return fail_final_retry(&delivery, now, &e.to_string());
            }
        };
        let formatter = self.hooks.formatters.get(&delivery.dialect);
        let context = if formatter.needs_context() {
            match self.dialect_context(&delivery, &event).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, delivery = %delivery.id, "cannot load the dialect context");
                    return fail_final_retry(&delivery, now, &e);
                }
            }
        } else {
            None
        };
        let request = match formatter.build(&FormatInput {
            event: &event,
            delivery: &delivery,
            secrets: &secrets,
            now,
            context: context.as_ref(),
        }) {
            Ok(r) => r,
            Err(e) => return fail_final(&e.to_string()),
        };
        let headers_json = serde_json::to_string(
            &request
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>(),
        )
        .ok();
        let body_text = String::from_utf8_lossy(&request.body).into_owned();
        let result = self.send(&request).await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status_code, excerpt, error, ok) = match result {
            Ok((status, body)) => {
                let ok = request.success.accepts(status, &body);
                let excerpt =
                    String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned();
                let error = (!ok).then(|| format!("HTTP {status} is not a success"));
                (Some(status), Some(excerpt), error, ok)
            }
            Err(e) => (None, None, Some(e), false),
        };
        let attempt_no = delivery.attempts.saturating_add(1);
        let (status, next, flag) = if ok {
            (
                DeliveryStatus::Succeeded,
                None,
                was_failing.then_some(false),
            )
        } else {
            match request.retry.next_delay(attempt_no, jitter()) {
                Some(delay) => (
                    DeliveryStatus::Pending,
                    Some(now + time::Duration::try_from(delay).unwrap_or(time::Duration::HOUR)),
                    None,
                ),
                None => (DeliveryStatus::Failed, None, Some(true)),
            }
        };
        if !ok {
            tracing::info!(delivery = %delivery.id, attempt = attempt_no, error = error.as_deref().unwrap_or_default(), "webhook attempt failed");
        }
        Finished {
            record: AttemptRecord {
                id: delivery.id.clone(),
                claimed_attempts: delivery.attempts,
                status,
                next_attempt_at: next,
                status_code,
                response_excerpt: excerpt,
                duration_ms,
                error,
                request_headers: headers_json,
                request_body: Some(body_text),
                at: self.hooks.clock.now(),
            },
            endpoint: delivery.endpoint_id.clone(),
            flag,
        }
    }

    /// Send one request; the status and up to `max_response_bytes` of the body, or why not.
    async fn send(&self, request: &crate::DeliveryRequest) -> Result<(u16, Vec<u8>), String> {
        self.guard
            .check_url(&request.url)
            .map_err(|e| e.to_string())?;
        let mut builder = self
            .client
            .request(request.method.clone(), &request.url)
            .body(request.body.clone());
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let mut response = builder.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let limit = self.hooks.settings.max_response_bytes;
        let mut body = Vec::new();
        while body.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(limit - body.len());
                    body.extend_from_slice(&chunk[..take]);
                }
                Ok(None) => break,
                // The status is known; a body cut short does not change the outcome.
                Err(_) => break,
            }
        }
        Ok((status, body))
    }
}

/// A retryable failure before any request was made (store trouble).
fn fail_final_retry(
    delivery: &coffer_store::DeliveryRecord,
    now: time::OffsetDateTime,
    error: &str,
) -> Finished {
    Finished {
        record: AttemptRecord {
            id: delivery.id.clone(),
            claimed_attempts: delivery.attempts,
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now + time::Duration::seconds(30)),
            status_code: None,
            response_excerpt: None,
            duration_ms: 0,
            error: Some(error.to_owned()),
            request_headers: None,
            request_body: None,
            at: now,
        },
        endpoint: None,
        flag: None,
    }
}

fn destination(claim: &ClaimedDelivery) -> String {
    match &claim.delivery.endpoint_id {
        Some(e) => e.to_string(),
        None => claim.delivery.url.clone(),
    }
}

fn jitter() -> u64 {
    let b = coffer_engine::random16();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The error chain of a failed request, naming the SSRF guard when it refused.
fn describe(err: reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(ssrf) = e.downcast_ref::<SsrfError>() {
            return ssrf.to_string();
        }
        source = e.source();
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Write finished attempts in batches: one transaction for whatever has queued up.
async fn record_loop(hooks: Webhooks, mut done: mpsc::Receiver<Finished>) {
    let mut batch = Vec::with_capacity(256);
    while done.recv_many(&mut batch, 256).await > 0 {
        let records: Vec<AttemptRecord> = batch.iter().map(|f| f.record.clone()).collect();
        let mut tries = 0u32;
        loop {
            match hooks.store.record_attempts(&records).await {
                Ok(_) => break,
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(error = %e, "cannot record webhook attempts; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                }
                Err(e) => {
                    // The rows stay pending and are attempted again when their claim lapses.
                    tracing::error!(error = %e, "cannot record webhook attempts; they will be retried");
                    break;
                }
            }
        }
        for f in batch.drain(..) {
            if let (Some(endpoint), Some(flag)) = (&f.endpoint, f.flag) {
                let at = flag.then(|| hooks.clock.now());
                if let Err(e) = hooks.store.set_webhook_failing(endpoint, at).await {
                    tracing::warn!(error = %e, "cannot update the endpoint's failing flag");
                }
                if flag {
                    tracing::warn!(endpoint = %endpoint, "webhook endpoint flagged failing: a delivery exhausted its retries");
                }
            }
        }
    }
}
