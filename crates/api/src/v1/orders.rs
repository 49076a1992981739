//! Order endpoints. Each handler: extract → one engine call → the order object.

use std::str::FromStr;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_core::order::OrderLinks;
use coffer_core::{AssetId, Cause, OrderStatus, Scope};
use coffer_engine::NewOrder;
use coffer_engine::idempotency::{Answer, is_key_taken};
use coffer_engine::view::{order_json, payment_json};
use coffer_store::{OrderCursor, OrderQuery, StoredResponse};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::docs::{ErrorBody, ListBody, OrderBody};
use super::error::ApiError;
use super::extract::{ApiJson, Auth, OrderPath};
use super::middleware::{IdempotencyClaim, KeyOutcome};
use crate::AppState;

/// Largest page of `GET /orders`.
pub const MAX_LIMIT: u32 = 100;
pub const DEFAULT_LIMIT: u32 = 20;

/// A new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// Price as a decimal string, e.g. `"10.50"`: positive, at most the currency's minor units.
    #[schema(example = "10.50")]
    pub amount: String,
    /// ISO 4217 fiat code (`USD`) or the symbol of an enabled asset (`USDT`).
    #[schema(example = "USD")]
    pub currency: String,
    /// Asset to pay in (`bsc:USDT`); when absent the buyer chooses on the checkout page.
    pub asset: Option<String>,
    /// The merchant's own order number, unique per merchant. Creating again with the same
    /// number and fields returns the existing order; with other fields: 409.
    pub order_no: Option<String>,
    pub description: Option<String>,
    /// Free-form JSON object, at most 4 KiB serialised.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    pub success_url: Option<String>,
    pub expired_url: Option<String>,
    pub callback_url: Option<String>,
    /// Rate-lock window in seconds (60 – 604800); default 1800.
    pub expires_in: Option<i64>,
    /// Price USD stablecoins 1:1 with USD.
    pub fixed_stablecoin_rate: Option<bool>,
}

/// Choose or change the asset of a pending, unpaid order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseAsset {
    #[schema(example = "bsc:USDT")]
    pub asset: String,
}

/// Settle or invalidate an order by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// `settled` or `invalid`.
    pub status: String,
    /// Why (kept in the order's timeline), 1-500 characters.
    pub reason: String,
}

/// An optional note for cancel and resolve.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub reason: Option<String>,
}

/// Repair an order whose payment fell outside the auto-match window (0.5×–1.2×).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Repair {
    /// Accept the payments of this transaction (default: every payment outside the window).
    pub txid: Option<String>,
    /// Also settle the order with what it received, even if short. Default false.
    pub accept_amount: Option<bool>,
    /// Why (kept in the order's timeline), at most 500 characters.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// pending, processing, settled, expired, invalid or refunded.
    pub status: Option<String>,
    /// RFC 3339 time: orders created at or after it.
    pub created_from: Option<String>,
    /// RFC 3339 time: orders created before it.
    pub created_to: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-100, default 20.
    pub limit: Option<String>,
}

pub const MAX_REASON: usize = 500;

fn order_response(state: &AppState, order: &coffer_core::Order) -> Value {
    order_json(order, &state.engine)
}

fn parse_asset(raw: &str) -> Result<AssetId, ApiError> {
    AssetId::from_str(raw.trim())
        .map_err(|e| ApiError::bad_request("unknown_asset", "asset", format!("asset {raw:?}: {e}")))
}

fn reason(raw: Option<String>, required: bool) -> Result<Option<String>, ApiError> {
    match raw.map(|r| r.trim().to_owned()) {
        None if required => Err(ApiError::bad_request(
            "missing_field",
            "reason",
            "a reason is required",
        )),
        Some(r) if r.is_empty() && required => Err(ApiError::bad_request(
            "invalid_reason",
            "reason",
            "reason must not be empty",
        )),
        Some(r) if r.chars().count() > MAX_REASON || r.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                "invalid_reason",
                "reason",
                "reason must be at most 500 printable characters",
            ))
        }
        Some(r) if r.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Create an order.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = CreateOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the first response is stored for 24 h and replayed.")),
    responses(
        (status = 201, description = "Created", body = OrderBody),
        (status = 200, description = "An order with this order_no and the same fields exists", body = OrderBody),
        (status = 400, description = "Invalid input; nothing was written", body = ErrorBody),
        (status = 409, description = "order_no reused with other fields", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another request", body = ErrorBody),
    ),
    security(("api_key" = ["orders:write"])))]
pub async fn create_order(
    State(state): State<AppState>,
    auth: Auth,
    claim: Option<axum::Extension<IdempotencyClaim>>,
    ApiJson(body): ApiJson<CreateOrder>,
) -> Result<Response, ApiError> {
    let merchant = auth.require(Scope::OrdersWrite)?;
    let trimmed = body.amount.trim();
    let amount = Decimal::from_str_exact(trimmed)
        .ok()
        .filter(|_| {
            !trimmed.is_empty()
                && trimmed
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_amount",
                "amount",
                "amount must be a decimal string such as \"10.50\"",
            )
        })?;
    let asset = body.asset.as_deref().map(parse_asset).transpose()?;
    let expires_in = body.expires_in.map(time::Duration::seconds);
    let input = NewOrder {
        amount,
        currency: body.currency,
        asset,
        order_no: body.order_no,
        description: body.description,
        metadata: body.metadata.unwrap_or_default(),
        links: OrderLinks {
            success_url: body.success_url,
            expired_url: body.expired_url,
            callback_url: body.callback_url,
        },
        expires_in,
        fixed_stablecoin_rate: body.fixed_stablecoin_rate.unwrap_or(false),
        dialect: "native".into(),
        dialect_data: Default::default(),
        credential_id: None,
    };
    let Some(axum::Extension(claim)) = claim else {
        let created = state.engine.create_order(merchant, input).await?;
        let status = if created.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        return Ok((status, Json(order_response(&state, &created.order))).into_response());
    };
    // The key and this response commit with the order (see `middleware::answering`); the
    // last one rendered is the one committed, and exactly what this request answers.
    let rendered = std::sync::Mutex::new(None);
    let respond = |order: &coffer_core::Order| {
        let response = StoredResponse {
            status: StatusCode::CREATED.as_u16(),
            body: order_response(&state, order).to_string(),
        };
        if let Ok(mut last) = rendered.lock() {
            *last = Some(response.clone());
        }
        response
    };
    let answer = Answer {
        key: &claim.key,
        fingerprint: &claim.fingerprint,
        respond: &respond,
    };
    let (created, stored) = match state
        .engine
        .create_order_answering(merchant, input, Some(answer))
        .await
    {
        Ok(done) => done,
        Err(e) if is_key_taken(&e) => {
            let mut taken = StatusCode::CONFLICT.into_response();
            taken.extensions_mut().insert(KeyOutcome::Taken);
            return Ok(taken);
        }
        Err(e) => return Err(e.into()),
    };
    if !stored {
        return Ok((StatusCode::OK, Json(order_response(&state, &created.order))).into_response());
    }
    let last = rendered.lock().ok().and_then(|mut last| last.take());
    let StoredResponse { status, body } = last.unwrap_or_else(|| respond(&created.order));
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    response.extensions_mut().insert(KeyOutcome::Stored);
    Ok(response)
}

/// Retrieve an order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id (ord_…)")),
    responses((status = 200, body = OrderBody), (status = 404, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn get_order(
    State(state): State<AppState>,
    auth: Auth,
    OrderPath(id): OrderPath,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let order = state.engine.get_order(merchant, &id).await?;
    Ok(Json(order_response(&state, &order)))
}

fn encode_cursor(order: &coffer_core::Order) -> String {
    let ms = order.created_at.unix_timestamp_nanos() / 1_000_000;
    URL_SAFE_NO_PAD.encode(format!("{ms}.{}", order.id))
}

fn decode_cursor(raw: &str) -> Result<OrderCursor, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            "cursor",
            "cursor is not a next_cursor returned by this API",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (ms, id) = text.split_once('.').ok_or_else(bad)?;
    let ms: i128 = ms.parse().map_err(|_| bad())?;
    let created_at =
        OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).map_err(|_| bad())?;
    Ok(OrderCursor {
        created_at,
        id: id.parse().map_err(|_| bad())?,
    })
}

fn parse_time(field: &str, raw: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(raw.trim(), &Rfc3339).map_err(|_| {
        ApiError::bad_request(
            "invalid_time",
            field,
            format!("{field} must be an RFC 3339 time such as 2026-05-01T10:00:00Z"),
        )
    })
}

/// A list's query string that does not deserialise: `400 invalid_query`, naming an unknown
/// parameter.
pub(crate) fn query_error(rejection: axum::extract::rejection::QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text)
        .to_owned();
    let field = detail
        .split_once("unknown field `")
        .and_then(|(_, r)| r.split('`').next())
        .map(str::to_owned);
    let mut e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", detail);
    e.field = field;
    e
}

/// A list's `limit`: 1-100, default 20.
pub(crate) fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit", "limit must be 1-100")),
    }
}

/// List orders, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(ListParams),
    responses((status = 200, body = ListBody), (status = 400, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn list_orders(
    State(state): State<AppState>,
    auth: Auth,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let Query(params) = query.map_err(query_error)?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            OrderStatus::from_str(s.trim()).map_err(|_| {
                ApiError::bad_request(
                    "invalid_status",
                    "status",
                    "status must be one of pending, processing, settled, expired, invalid, refunded",
                )
            })
        })
        .transpose()?;
    let limit = parse_limit(params.limit.as_deref())?;
    let query = OrderQuery {
        merchant_id: Some(merchant.clone()),
        status,
        created_from: params
            .created_from
            .as_deref()
            .map(|r| parse_time("created_from", r))
            .transpose()?,
        created_to: params
            .created_to
            .as_deref()
            .map(|r| parse_time("created_to", r))
            .transpose()?,
        after: params.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: limit + 1,
    };
    let orders = state.engine.list_orders(&query).await?;
    Ok(Json(super::paging::page(
        orders,
        limit,
        encode_cursor,
        |o| order_response(&state, o),
    )))
}

/// Choose or change the asset of a pending, unpaid order: new address and amount, the rate
/// re-locked for the order's window.
#[utoipa::path(post, path = "/api/v1/orders/{id}/asset", tag = "orders", request_body = ChooseAsset,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = OrderBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = ["orders:write"])))]
pub async fn choose_asset(
    State(state): State<AppState>,
    auth: Auth,
    OrderPath(id): OrderPath,
    ApiJson(body): ApiJson<ChooseAsset>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersWrite)?;
    let asset = parse_asset(&body.asset)?;
    let order = state.engine.choose_asset(merchant, &id, &asset).await?;
    Ok(Json(order_response(&state, &order)))
}

async fn manual(
    state: &AppState,
    auth: &Auth,
    id: &coffer_core::OrderId,
    cause: Cause,
    note: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersWrite)?;
    let order = state
        .engine
        .manual_action(merchant, id, cause, note)
        .await?;
    Ok(Json(order_response(state, &order)))
}

/// Cancel an unpaid order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", request_body = Option<Note>,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = OrderBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = ["orders:write"])))]
pub async fn cancel_order(
    State(state): State<AppState>,
    auth: Auth,
    OrderPath(id): OrderPath,
    ApiJson(body): ApiJson<Note>,
) -> Result<Json<Value>, ApiError> {
    let note = reason(body.reason, false)?;
    manual(&state, &auth, &id, Cause::Cancel, note).await
}

/// Settle (`settled`) or invalidate (`invalid`) an order by hand, with a reason.
#[utoipa::path(post, path = "/api/v1/orders/{id}/mark", tag = "orders", request_body = Mark,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = OrderBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = ["orders:write"])))]
pub async fn mark_order(
    State(state): State<AppState>,
    auth: Auth,
    OrderPath(id): OrderPath,
    ApiJson(body): ApiJson<Mark>,
) -> Result<Json<Value>, ApiError> {
    let cause = match body.status.as_str() {
        "settled" => Cause::MarkSettled,
        "invalid" => Cause::MarkInvalid,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status",
                "status must be \"settled\" or \"invalid\"",
            ));
        }
    };
    let note = reason(Some(body.reason), true)?;
    manual(&state, &auth, &id, cause, note).await
}

/// Accept an underpayment: the order settles with what was paid.
#[utoipa::path(post, path = "/api/v1/orders/{id}/resolve", tag = "orders", request_body = Option<Note>,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = OrderBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = ["orders:write"])))]
pub async fn resolve_order(
    State(state): State<AppState>,
    auth: Auth,
    OrderPath(id): OrderPath,
    ApiJson(body): ApiJson<Note>,
) -> Result<Json<Value>, ApiError> {
    let note = reason(body.reason, false)?;
    manual(&state, &auth, &id, Cause::Resolve, note).await
}

/// Repair an order: accept payments recorded outside the auto-match window (by `txid`, or all
/// of them), and with `accept_amount` settle it with what it received.
#[utoipa::path(post, path = "/api/v1/orders/{id}/repair", tag = "orders", request_body = Repair,
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = OrderBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = ["orders:write"])))]
pub async fn repair_order(
    State(state): State<AppState>,
    auth: Auth,
    OrderPath(id): OrderPath,
    ApiJson(body): ApiJson<Repair>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersWrite)?;
    let note = reason(body.reason, false)?;
    let order = state
        .engine
        .repair_order(
            merchant,
            &id,
            coffer_engine::RepairInput {
                txid: body.txid,
                accept_amount: body.accept_amount.unwrap_or(false),
                note,
            },
        )
        .await?;
    Ok(Json(order_response(&state, &order)))
}

/// The on-chain payments seen for an order.
#[utoipa::path(get, path = "/api/v1/orders/{id}/payments", tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, body = ListBody, description = "The payments (`data`: Payment objects)"), (status = 404, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn order_payments(
    State(state): State<AppState>,
    auth: Auth,
    OrderPath(id): OrderPath,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let payments = state.engine.order_payments(merchant, &id).await?;
    let data: Vec<Value> = payments
        .iter()
        .map(|p| payment_json(p, state.engine.assets()))
        .collect();
    Ok(Json(super::paging::whole(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_garbage() {
        let raw = URL_SAFE_NO_PAD.encode(format!(
            "1777629600123.{}",
            coffer_core::OrderId::from_random([7; 16])
        ));
        let c = decode_cursor(&raw).unwrap();
        assert_eq!(
            c.created_at.unix_timestamp_nanos(),
            1_777_629_600_123_000_000
        );
        for bad in [
            "",
            "!!",
            "bm9wZQ",
            &URL_SAFE_NO_PAD.encode("12.ord_x"),
            &URL_SAFE_NO_PAD.encode("x.y"),
        ] {
            assert_eq!(
                decode_cursor(bad).unwrap_err().code,
                "invalid_cursor",
                "{bad}"
            );
        }
    }
}
