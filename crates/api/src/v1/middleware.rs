//! Authentication, per-key rate limiting and idempotency, as layers around the v1 routes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coffer_core::{ApiCredential, KeyId, MerchantId};
use coffer_engine::idempotency::{Begin, fingerprint};
use coffer_store::StoredResponse;

use super::error::ApiError;
use crate::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Shared state of the v1 layers.
#[derive(Clone)]
pub struct Layers {
    pub app: AppState,
    pub limiter: Arc<RateLimiter>,
    pub idempotency_wait: Duration,
    /// Keys of [`ANSWERING`] requests running in this process.
    pub in_flight: Arc<InFlight>,
    pub body_limit: usize,
}

/// The idempotency keys of [`ANSWERING`] requests running in this process. Such a request
/// reserves nothing in the database, so a concurrent duplicate here waits for it instead of
/// running too (which would also take, and waste, a derivation index). Duplicates sent to two
/// instances both run; the database lets one commit and the other replays it.
#[derive(Debug, Default)]
pub struct InFlight(std::sync::Mutex<std::collections::HashSet<(MerchantId, String)>>);

impl InFlight {
    /// Take `key` for this request, unless another request here holds it.
    fn take(self: &Arc<Self>, merchant: &MerchantId, key: &str) -> Option<Running> {
        let entry = (merchant.clone(), key.to_owned());
        let mut keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.insert(entry.clone()).then(|| Running {
            keys: self.clone(),
            entry,
        })
    }
}

/// A key taken in [`InFlight`], given back when the request ends (or is dropped).
struct Running {
    keys: Arc<InFlight>,
    entry: (MerchantId, String),
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut keys = self
            .keys
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.remove(&self.entry);
    }
}

/// Per-key rate limit (a token bucket per API key; see [`crate::edge::limit::RateLimiter`]).
pub type RateLimiter = crate::edge::limit::RateLimiter<KeyId>;

/// API keys remembered by the per-key limiter at most.
pub const LIMITED_KEYS: usize = 100_000;

/// `Authorization: Bearer ck_…` → the key, checked by the engine; then the rate limit.
pub async fn authenticate(State(layers): State<Layers>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing API key: send Authorization: Bearer <key>",
        )
        .into_response();
    };
    let credential = match layers.app.engine.authenticate(token).await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Err(wait) = layers.limiter.check(&credential.id) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this API key; retry after the time in Retry-After",
        );
        e.retry_after = Some(wait);
        return e.into_response();
    }
    req.extensions_mut().insert(credential);
    let response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = response.headers().get(header::ALLOW).cloned();
        let mut replaced = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
        .into_response();
        if let Some(allow) = allow {
            replaced.headers_mut().insert(header::ALLOW, allow);
        }
        return replaced;
    }
    response
}

/// Stripe-style idempotency for POST requests that carry an `Idempotency-Key`.
pub async fn idempotency(State(layers): State<Layers>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(req).await;
    };
    let Ok(key) = raw_key.to_str().map(str::to_owned) else {
        return ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key",
            "Idempotency-Key must be printable ASCII",
        )
        .into_response();
    };
    let Some(merchant) = req
        .extensions()
        .get::<ApiCredential>()
        .map(|c| c.merchant_id.clone())
    else {
        return ApiError::from(coffer_engine::EngineError::Unauthorized).into_response();
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, layers.body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body is larger than the server accepts",
            )
            .into_response();
        }
    };
    let print = fingerprint(parts.method.as_str(), parts.uri.path(), &bytes);
    let engine = &layers.app.engine;
    let wait = layers.idempotency_wait;
    if ANSWERING.contains(&parts.uri.path()) {
        return answering(&layers, parts, bytes, merchant, key, print, next).await;
    }
    match engine
        .idempotency_begin(&merchant, &key, &print, wait)
        .await
    {
        Ok(Begin::Proceed) => {}
        Ok(Begin::Replay(stored)) => return replay(stored),
        Err(e) => return ApiError::from(e).into_response(),
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let Some((head, body)) = buffer(response).await else {
        let _ = engine.idempotency_finish(&merchant, &key, None).await;
        return internal_error();
    };
    // Server-side failures are not stored: the retry runs the request again.
    let stored = stored(&head, &body);
    if let Err(e) = engine.idempotency_finish(&merchant, &key, stored).await {
        tracing::warn!(error = %e, "cannot store the response of an idempotent request");
    }
    Response::from_parts(head, Body::from(body))
}

/// Routes whose handler stores the key and its response in its own changeset
/// ([`coffer_engine::idempotency::Answer`]): nothing is reserved before they run.
const ANSWERING: &[&str] = &["/api/v1/orders"];

/// The idempotency key of a request to an [`ANSWERING`] route, for its handler.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub key: String,
    pub fingerprint: String,
}

/// What the handler of an [`ANSWERING`] route did with the key (a response extension; absent:
/// it wrote nothing with it, so the layer stores the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Stored with the handler's write, together with this response.
    Stored,
    /// Another request stored the key first; nothing was written: replay its response.
    Taken,
}

async fn answering(
    layers: &Layers,
    mut parts: axum::http::request::Parts,
    bytes: axum::body::Bytes,
    merchant: MerchantId,
    key: String,
    print: String,
    next: Next,
) -> Response {
    let engine = &layers.app.engine;
    let wait = layers.idempotency_wait;
    let started = std::time::Instant::now();
    let _running = loop {
        if let Some(running) = layers.in_flight.take(&merchant, &key) {
            break running;
        }
        if started.elapsed() >= wait {
            return in_progress();
        }
        tokio::time::sleep(IN_FLIGHT_POLL).await;
    };
    // Taken only now: a duplicate that ran here before has stored its answer by this point.
    match engine
        .idempotency_lookup(&merchant, &key, &print, wait)
        .await
    {
        Ok(Begin::Proceed) => {}
        Ok(Begin::Replay(stored)) => return replay(stored),
        Err(e) => return ApiError::from(e).into_response(),
    }
    parts.extensions.insert(IdempotencyClaim {
        key: key.clone(),
        fingerprint: print.clone(),
    });
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match response.extensions_mut().remove::<KeyOutcome>() {
        Some(KeyOutcome::Stored) => return response,
        Some(KeyOutcome::Taken) => {
            return match engine
                .idempotency_lookup(&merchant, &key, &print, wait)
                .await
            {
                Ok(Begin::Replay(stored)) => replay(stored),
                // Purged already: the other request's answer is gone, and so is its key.
                Ok(Begin::Proceed) => in_progress(),
                Err(e) => ApiError::from(e).into_response(),
            };
        }
        None => {}
    }
    let Some((head, body)) = buffer(response).await else {
        return internal_error();
    };
    let Some(stored) = stored(&head, &body) else {
        return Response::from_parts(head, Body::from(body));
    };
    match engine
        .idempotency_record(&merchant, &key, &print, stored, wait)
        .await
    {
        Ok(Begin::Proceed) => Response::from_parts(head, Body::from(body)),
        Ok(Begin::Replay(theirs)) => replay(theirs),
        Err(e) => {
            tracing::warn!(error = %e, "cannot store the response of an idempotent request");
            Response::from_parts(head, Body::from(body))
        }
    }
}

/// A response with its body read, and the replay marker a handler might have set removed.
async fn buffer(response: Response) -> Option<(axum::http::response::Parts, axum::body::Bytes)> {
    let (mut head, body) = response.into_parts();
    match to_bytes(body, usize::MAX).await {
        Ok(body) => {
            head.headers.remove(IDEMPOTENT_REPLAYED);
            Some((head, body))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot buffer a response body");
            None
        }
    }
}

/// What to store for a response: nothing for a server-side failure (a retry runs again).
fn stored(head: &axum::http::response::Parts, body: &[u8]) -> Option<StoredResponse> {
    (!head.status.is_server_error()).then(|| StoredResponse {
        status: head.status.as_u16(),
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

/// How often a duplicate checks whether the request running its key here has finished.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(20);

fn in_progress() -> Response {
    ApiError::from(coffer_engine::EngineError::Conflict {
        code: "idempotency_in_progress",
        message: "a request with this Idempotency-Key is still in progress; retry later".into(),
    })
    .into_response()
}

fn internal_error() -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error",
    )
    .into_response()
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")),
        ],
        stored.body,
    )
        .into_response()
}
