//! Coffer's HTTP surface: the axum application with health, readiness and metrics, request
//! ids, body limits, request logs, per-client limits and request timeouts. API routes (native
//! and dialects) mount onto [`router`]; [`edge`] serves it.

pub mod edge;
pub mod webhooks_routes;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use coffer_engine::Engine;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Instrument as _;

use crate::edge::client::{ClientAddr, ClientAddressing};
use crate::edge::limit::{ClientLimitSettings, ClientLimits};

pub mod v1;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub metrics: PrometheusHandle,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Serve `/metrics` on the main listener (off when a separate admin listener is used).
    pub metrics_on_main: bool,
    /// How long a handler may take to produce its response head (a stream's body then runs
    /// as long as the stream lives); `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// Who a request comes from (trusted proxies).
    pub addressing: ClientAddressing,
    /// Per-client request limits of the unauthenticated routes.
    pub client_limits: ClientLimitSettings,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            metrics_on_main: true,
            request_timeout: Some(Duration::from_secs(30)),
            addressing: ClientAddressing::default(),
            client_limits: ClientLimitSettings::default(),
        }
    }
}

/// The process-wide Prometheus recorder. Installed once; every app in the process shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already; then ours stays private
            // and /metrics shows only what it records.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// 128-bit random request ids, unless the client sent one (it is kept, for correlation).
#[derive(Clone, Copy, Default)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = format!(
            "req_{}",
            coffer_core::ids::base32(&coffer_engine::random16())
        );
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Builds a framework-level error (no such route, wrong method, body too large, a request
/// rejected before its handler ran) in one API's envelope: `(status, message)`.
pub type FrameworkError = std::sync::Arc<dyn Fn(StatusCode, &str) -> Response + Send + Sync>;

/// Which envelope framework-level errors take, by path prefix: a vendor dialect answers in
/// its vendor's shape even for requests that never reach its handlers; every other path gets
/// the native shape.
#[derive(Clone, Default)]
pub struct ErrorShapes {
    by_prefix: Vec<(&'static str, FrameworkError)>,
}

impl ErrorShapes {
    /// Requests whose path starts with one of `prefixes` get `shape`.
    pub fn with(
        mut self,
        prefixes: &[&'static str],
        shape: impl Fn(StatusCode, &str) -> Response + Send + Sync + 'static,
    ) -> Self {
        let shape: FrameworkError = std::sync::Arc::new(shape);
        for prefix in prefixes {
            self.by_prefix.push((prefix, shape.clone()));
        }
        self
    }

    fn for_path(&self, path: &str) -> Option<&FrameworkError> {
        self.by_prefix
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map(|(_, shape)| shape)
    }
}

/// The application router: health, readiness, metrics, and (in later layers) the APIs.
pub fn router(state: AppState, settings: &HttpSettings, api: Router<AppState>) -> Router {
    router_with(state, settings, api, ErrorShapes::default())
}

/// [`router`] with the dialects' envelopes for framework-level errors under their paths.
pub fn router_with(
    state: AppState,
    settings: &HttpSettings,
    api: Router<AppState>,
    shapes: ErrorShapes,
) -> Router {
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(api);
    if settings.metrics_on_main {
        app = app.route("/metrics", get(metrics_text));
    }
    let limits = Arc::new(ClientLimits::new(&settings.client_limits));
    let timeout = RequestTimeout {
        after: settings.request_timeout,
        shapes: shapes.clone(),
    };
    app.fallback(not_found)
        .layer(RequestBodyLimitLayer::new(settings.body_limit))
        .layer(middleware::from_fn_with_state(timeout, limit_duration))
        .layer(middleware::from_fn_with_state(
            limits,
            edge::limit::limit_clients,
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(middleware::from_fn_with_state(shapes, shape_framework_errors))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                let request_id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let client = req
                    .extensions()
                    .get::<ClientAddr>()
                    .map(|c| c.0.to_string())
                    .unwrap_or_default();
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id, client)
            }),
        )
        .layer(middleware::from_fn_with_state(
            Arc::new(settings.addressing.clone()),
            resolve_client,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
        .with_state(state)
}

/// A router with only `/metrics`, for a separate admin listener.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// A readiness check registered by a background component (a chain watcher): `(ok, detail)`.
pub type ReadinessCheck = std::sync::Arc<dyn Fn() -> (bool, serde_json::Value) + Send + Sync>;

fn readiness_checks() -> &'static std::sync::RwLock<Vec<(String, ReadinessCheck)>> {
    static CHECKS: OnceLock<std::sync::RwLock<Vec<(String, ReadinessCheck)>>> = OnceLock::new();
    CHECKS.get_or_init(Default::default)
}

/// Add a named check to `/readyz` (process-wide; replaces a check of the same name).
pub fn register_readiness(name: &str, check: ReadinessCheck) {
    if let Ok(mut checks) = readiness_checks().write() {
        checks.retain(|(n, _)| n != name);
        checks.push((name.to_owned(), check));
    }
}

/// Every registered readiness check as it stands now: `(name, ok, detail)` (the console's
/// chain page shows them).
pub fn readiness_snapshot() -> Vec<(String, bool, serde_json::Value)> {
    readiness_checks()
        .read()
        .map(|checks| {
            checks
                .iter()
                .map(|(name, check)| {
                    let (ok, detail) = check();
                    (name.clone(), ok, detail)
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let database = tokio::time::timeout(Duration::from_secs(2), state.engine.ping()).await;
    let (ok, detail) = match database {
        Ok(Ok(())) => (
            true,
            json!({"status": "ok", "backend": state.engine.database_kind(), "latency_ms": started.elapsed().as_millis()}),
        ),
        Ok(Err(e)) => (
            false,
            json!({"status": "error", "backend": state.engine.database_kind(), "error": e.to_string()}),
        ),
        Err(_) => (
            false,
            json!({"status": "error", "backend": state.engine.database_kind(), "error": "timed out after 2 s"}),
        ),
    };
    let mut ok = ok;
    let mut checks = serde_json::Map::new();
    checks.insert("database".into(), detail);
    if let Ok(extra) = readiness_checks().read() {
        for (name, check) in extra.iter() {
            let (fine, detail) = check();
            ok &= fine;
            checks.insert(name.clone(), detail);
        }
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // Market rate freshness is reported, not required: an outage only stops pricing new
    // orders (they fail with rate_unavailable); checkouts, payments and webhooks go on.
    if let Some(rates) = state.engine.rates().health(state.engine.now()) {
        checks.insert(
            "rates".into(),
            json!({
                "status": if rates.ready { "ok" } else { "degraded" },
                "sources": rates.sources,
            }),
        );
    }
    let body = json!({"status": if ok { "ready" } else { "not_ready" }, "checks": checks});
    (status, Json(body)).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// No route: a bare 404 that [`shape_framework_errors`] puts in the path's envelope.
async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// The one JSON error shape: `{"error": {"code", "message", "field"}}`.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    field: Option<&str>,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    (status, Json(json!({"error": error}))).into_response()
}

async fn record_metrics(req: Request<Body>, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("coffer_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!("coffer_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Give framework-level errors (bare or plain-text 4xx) the path's error shape.
async fn shape_framework_errors(
    State(shapes): State<ErrorShapes>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    if !status.is_client_error() {
        return response;
    }
    // Handlers answer JSON (or the checkout's HTML); a response without a type or in plain
    // text comes from the framework: no route, wrong method, body limit, extractor rejection.
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec());
    if content_type
        .as_deref()
        .is_some_and(|t| !t.starts_with(b"text/plain"))
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let (code, default) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "request body is larger than the server accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "unsupported media type"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        _ => ("invalid_request", "the request is not valid"),
    };
    let detail = match axum::body::to_bytes(response.into_body(), 1024).await {
        Ok(bytes) if !bytes.is_empty() && status != StatusCode::PAYLOAD_TOO_LARGE => {
            String::from_utf8_lossy(&bytes).trim().to_owned()
        }
        _ => String::new(),
    };
    let message = if detail.is_empty() { default } else { &detail };
    let mut shaped = match shapes.for_path(&path) {
        Some(shape) => shape(status, message),
        None => error_response(status, code, message, None),
    };
    if let Some(allow) = allow {
        shaped.headers_mut().insert(header::ALLOW, allow);
    }
    if let Some(retry_after) = retry_after {
        shaped
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
    }
    shaped
}

/// Attribute the request to its client ([`ClientAddr`]): the socket peer, or the address
/// trusted proxies vouch for.
async fn resolve_client(
    State(addressing): State<Arc<ClientAddressing>>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = addressing.client_of(peer.ip(), req.headers());
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}

#[derive(Clone)]
struct RequestTimeout {
    after: Option<Duration>,
    shapes: ErrorShapes,
}

/// The per-request timeout. The handler runs as its own task: past the timeout the client
/// gets a 503 and its connection is free, while the handler finishes what it started (a
/// write is never cut between its commit and what follows it, such as storing the response
/// of an idempotency key); the same holds when the client goes away.
async fn limit_duration(
    State(timeout): State<RequestTimeout>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let Some(after) = timeout.after else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    let task = tokio::spawn(next.run(req).in_current_span());
    match tokio::time::timeout(after, task).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "request handler failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
                None,
            )
        }
        Err(_) => {
            metrics::counter!("coffer_http_request_timeouts_total").increment(1);
            tracing::warn!(timeout_ms = after.as_millis(), "request timed out");
            let message = "the request took longer than the server allows; retry later";
            match timeout.shapes.for_path(&path) {
                Some(shape) => shape(StatusCode::SERVICE_UNAVAILABLE, message),
                None => error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "request_timeout",
                    message,
                    None,
                ),
            }
        }
    }
}

/// Serve `app` on `listener` with the default connection settings until `shutdown`
/// resolves, then finish in-flight requests (see [`edge::server::serve_with`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    edge::server::serve_with(
        listener,
        app,
        edge::server::ServerSettings::default(),
        shutdown,
    )
    .await
}
