//! `/api/v1/webhooks…` and `/api/v1/events`: webhook endpoints, their delivery logs, and the
//! events feed a shop reconciles from.
//!
//! Authentication is a minimal local bearer check ([`authorize`]) over
//! `Engine::authenticate` plus a scope check, until the shared native-API extractor lands; the
//! router carries its own state, so mounting it needs no change to [`crate::AppState`].

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_core::{DeliveryId, EventType, MerchantId, Scope, WebhookId};
use coffer_engine::{Engine, EngineError};
use coffer_store::StoreError;
use coffer_webhooks::WebhookService;
use coffer_webhooks::service::{
    EndpointPatch, ServiceError, delivery_json, endpoint_json, event_json,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::v1::docs::{ErrorBody, ListBody};
use crate::v1::paging::{page, whole};
use crate::{AppState, error_response};

/// The OpenAPI description of these routes, merged into API v1's document.
#[derive(OpenApi)]
#[openapi(paths(
    create, list, show, update, remove, rotate, deliveries, redeliver, events
))]
pub struct WebhooksDoc;

#[derive(Clone)]
pub struct WebhooksApi {
    pub engine: Engine,
    pub service: WebhookService,
}

/// The routes, ready to merge into the application router.
pub fn router(api: WebhooksApi) -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks", post(create).get(list))
        .route(
            "/api/v1/webhooks/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/api/v1/webhooks/{id}/rotate", post(rotate))
        .route("/api/v1/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(redeliver),
        )
        .route("/api/v1/events", get(events))
        .with_state(api)
}

/// An API error in the one JSON error shape.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            field: Some(field),
        }
    }

    fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("{what} not found"),
            field: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.code, &self.message, self.field)
    }
}

fn store_error(e: &StoreError) -> ApiError {
    tracing::error!(error = %e, "store error in the webhooks API");
    match e {
        StoreError::Unavailable(_) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "database_unavailable",
            message: "the database is unavailable; retry later".into(),
            field: None,
        },
        _ => ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: "internal error".into(),
            field: None,
        },
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid {
                code,
                field,
                message,
            } => ApiError::invalid(code, field, message),
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Store(e) => store_error(&e),
            ServiceError::Key(e) => {
                tracing::error!(error = %e, "master key error in the webhooks API");
                ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "internal_error",
                    message: "internal error".into(),
                    field: None,
                }
            }
        }
    }
}

/// The merchant behind the bearer key, if the key has `scope` (or `admin`).
pub async fn authorize(
    engine: &Engine,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<MerchantId, ApiError> {
    let unauthorized = || ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthorized",
        message: "missing, invalid or revoked API key (Authorization: Bearer ck_…)".into(),
        field: None,
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    let credential = match engine.authenticate(token.trim()).await {
        Ok(c) => c,
        Err(EngineError::Store(e)) => return Err(store_error(&e)),
        Err(_) => return Err(unauthorized()),
    };
    if credential.scopes.contains(&scope) || credential.scopes.contains(&Scope::Admin) {
        Ok(credential.merchant_id)
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!("the API key lacks the {scope} scope"),
            field: None,
        })
    }
}

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload.map(|Json(v)| v).map_err(|e| {
        ApiError::invalid(
            "invalid_json",
            "body",
            format!(
                "the request body is not valid JSON for this endpoint: {}",
                e.body_text()
            ),
        )
    })
}

fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("webhook"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// Create an endpoint; the answer carries its signing `secret`, shown this once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateBody,
    responses((status = 201, description = "The endpoint and its secret"), (status = 400, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
async fn create(
    State(api): State<WebhooksApi>,
    headers: HeaderMap,
    payload: Result<Json<CreateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::Admin).await?;
    let input = body(payload)?;
    let (endpoint, secret) = api
        .service
        .create(&merchant, &input.url, &input.events, input.enabled)
        .await?;
    let mut view = endpoint_json(&endpoint);
    // Shown once: only its sealed form is stored.
    view["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The merchant's endpoints, oldest first (never paged).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = ListBody)), security(("api_key" = ["admin"])))]
async fn list(State(api): State<WebhooksApi>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::Admin).await?;
    let list = api.service.list(&merchant).await?;
    Ok(Json(whole(list.iter().map(endpoint_json).collect())))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id (whk_…)")),
    responses((status = 200, description = "The endpoint (never its secret)"), (status = 404, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
async fn show(
    State(api): State<WebhooksApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::Admin).await?;
    let endpoint = api.service.get(&merchant, &webhook_id(&id)?).await?;
    Ok(Json(endpoint_json(&endpoint)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// Change an endpoint's `url`, `events` or `enabled`.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id (whk_…)")),
    request_body = PatchBody,
    responses((status = 200, description = "The endpoint (never its secret)"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
async fn update(
    State(api): State<WebhooksApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    payload: Result<Json<PatchBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::Admin).await?;
    let input = body(payload)?;
    let endpoint = api
        .service
        .update(
            &merchant,
            &webhook_id(&id)?,
            EndpointPatch {
                url: input.url,
                events: input.events,
                enabled: input.enabled,
            },
        )
        .await?;
    Ok(Json(endpoint_json(&endpoint)))
}

/// Delete an endpoint; its pending deliveries are given up.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id (whk_…)")),
    responses((status = 200, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
async fn remove(
    State(api): State<WebhooksApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::Admin).await?;
    let id = webhook_id(&id)?;
    api.service.delete(&merchant, &id).await?;
    Ok(Json(
        json!({"id": id, "object": "webhook_endpoint", "deleted": true}),
    ))
}

/// A new signing secret (shown once); the old one stays valid 24 h.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id (whk_…)")),
    responses((status = 200, description = "The endpoint and its new secret"), (status = 404, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
async fn rotate(
    State(api): State<WebhooksApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::Admin).await?;
    let (endpoint, secret) = api.service.rotate(&merchant, &webhook_id(&id)?).await?;
    let mut view = endpoint_json(&endpoint);
    view["secret"] = json!(secret);
    Ok(Json(view))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageParams {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1-500, default 100.
    limit: Option<u32>,
}

/// An endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (whk_…)"), PageParams),
    responses((status = 200, body = ListBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
async fn deliveries(
    State(api): State<WebhooksApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<PageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::Admin).await?;
    let Query(params) =
        params.map_err(|e| ApiError::invalid("invalid_query", "query", e.body_text()))?;
    let after = params
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<DeliveryId>().map_err(|_| {
                ApiError::invalid("invalid_cursor", "cursor", "cursor is not a delivery id")
            })
        })
        .transpose()?;
    let limit = page_limit(params.limit)?;
    // One more than asked tells whether another page follows.
    let list = api
        .service
        .deliveries(&merchant, &webhook_id(&id)?, after, limit + 1)
        .await?;
    Ok(Json(page(list, limit, |d| d.id.to_string(), delivery_json)))
}

/// Attempt a delivery again now.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (whk_…)"), ("delivery" = String, Path, description = "Delivery id (dlv_…)")),
    responses((status = 200, description = "The delivery"), (status = 404, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
async fn redeliver(
    State(api): State<WebhooksApi>,
    headers: HeaderMap,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::Admin).await?;
    let delivery: DeliveryId = delivery
        .parse()
        .map_err(|_| ApiError::not_found("delivery"))?;
    let d = api
        .service
        .redeliver(&merchant, &webhook_id(&id)?, &delivery)
        .await?;
    Ok(Json(delivery_json(&d)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventParams {
    /// Only events of this type, e.g. `order.settled`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// RFC 3339; clamped to the last 30 days.
    created_from: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1-500, default 100.
    limit: Option<u32>,
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(100),
        Some(n @ 1..=500) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "invalid_limit",
            "limit",
            "limit must be between 1 and 500",
        )),
    }
}

/// Your events of the last 30 days, oldest first: what you reconcile webhooks against.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventParams),
    responses((status = 200, body = ListBody), (status = 400, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
async fn events(
    State(api): State<WebhooksApi>,
    headers: HeaderMap,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let merchant = authorize(&api.engine, &headers, Scope::OrdersRead).await?;
    let Query(params) =
        params.map_err(|e| ApiError::invalid("invalid_query", "query", e.body_text()))?;
    let kind = params
        .kind
        .as_deref()
        .map(|t| {
            t.parse::<EventType>().map_err(|_| {
                ApiError::invalid(
                    "invalid_event_type",
                    "type",
                    format!("unknown event type {t:?}"),
                )
            })
        })
        .transpose()?;
    let created_from = params
        .created_from
        .as_deref()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(
                |_| {
                    ApiError::invalid(
                        "invalid_timestamp",
                        "created_from",
                        "created_from must be an RFC 3339 timestamp",
                    )
                },
            )
        })
        .transpose()?;
    let after = params
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid(
                    "invalid_cursor",
                    "cursor",
                    "cursor is not a value returned by this API",
                )
            })
        })
        .transpose()?;
    let limit = page_limit(params.limit)?;
    // One more than asked tells whether another page follows.
    let list = api
        .service
        .events(&merchant, kind, created_from, after, limit + 1)
        .await?;
    Ok(Json(page(list, limit, |e| e.seq.to_string(), event_json)))
}
