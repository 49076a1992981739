//! Authentication, per-key rate limiting and idempotency, as layers around the v1 routes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coffer_core::{ApiCredential, KeyId};
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
    pub body_limit: usize,
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
    match engine
        .idempotency_begin(&merchant, &key, &print, layers.idempotency_wait)
        .await
    {
        Ok(Begin::Proceed) => {}
        Ok(Begin::Replay(stored)) => return replay(stored),
        Err(e) => return ApiError::from(e).into_response(),
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (mut head, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot buffer a response body");
            let _ = engine.idempotency_finish(&merchant, &key, None).await;
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            )
            .into_response();
        }
    };
    // Server-side failures are not stored: the retry runs the request again.
    let stored = (!head.status.is_server_error()).then(|| StoredResponse {
        status: head.status.as_u16(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if let Err(e) = engine.idempotency_finish(&merchant, &key, stored).await {
        tracing::warn!(error = %e, "cannot store the response of an idempotent request");
    }
    head.headers.remove(IDEMPOTENT_REPLAYED);
    Response::from_parts(head, Body::from(body))
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
