//! Payout endpoints: the merchant lists its payout requests (refunds and withdrawals asked
//! through the dialects) and moves them along their lifecycle — approve, reject, and, paying
//! from its own wallet until Coffer executes payouts, mark them sent, completed or failed with
//! the transaction hash. Each handler: extract → one engine call → the payout object.

use std::str::FromStr;

use axum::Json;
use axum::extract::{Query, State};
use coffer_core::{PayoutKind, PayoutRequest, PayoutStatus, Scope};
use coffer_engine::payouts::payout_json;
use coffer_store::PayoutQuery;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::docs::{ErrorBody, ListBody, PayoutBody};
use super::error::ApiError;
use super::extract::{ApiJson, Auth, PayoutPath};
use super::orders::{parse_limit, query_error};
use super::paging::{decode_seq_cursor, encode_seq_cursor, page};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayoutListParams {
    /// `refund` or `withdrawal`.
    pub kind: Option<String>,
    /// requested, approved, rejected, sent, completed or failed.
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-100, default 20.
    pub limit: Option<String>,
}

/// Move a payout request along its lifecycle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPayoutStatus {
    /// `approved` or `rejected` (from `requested`), `sent` or `rejected` (from `approved`),
    /// `completed` or `failed` (from `sent`).
    #[schema(example = "sent")]
    pub status: String,
    /// The transaction that paid it out (1-128 printable characters); only with `sent` or
    /// `completed`. Without it an earlier hash is kept.
    #[schema(example = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060")]
    pub txid: Option<String>,
}

fn payout_response(p: &PayoutRequest) -> Value {
    let mut v = payout_json(p);
    if let Value::Object(map) = &mut v {
        map.insert("object".into(), "payout".into());
    }
    v
}

/// List the merchant's payout requests (refunds and withdrawals), newest first, with cursor
/// pagination.
#[utoipa::path(get, path = "/api/v1/payouts", tag = "payouts", params(PayoutListParams),
    responses((status = 200, body = ListBody), (status = 400, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn list_payouts(
    State(state): State<AppState>,
    auth: Auth,
    query: Result<Query<PayoutListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let Query(params) = query.map_err(query_error)?;
    let kind = params
        .kind
        .as_deref()
        .map(|k| {
            PayoutKind::from_str(k.trim()).map_err(|_| {
                ApiError::bad_request("invalid_kind", "kind", "kind must be refund or withdrawal")
            })
        })
        .transpose()?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            PayoutStatus::from_str(s.trim()).map_err(|_| {
                ApiError::bad_request(
                    "invalid_status",
                    "status",
                    "status must be one of requested, approved, rejected, sent, completed, failed",
                )
            })
        })
        .transpose()?;
    let limit = parse_limit(params.limit.as_deref())?;
    let query = PayoutQuery {
        kind,
        status,
        before_seq: params
            .cursor
            .as_deref()
            .map(|c| decode_seq_cursor("pout", c))
            .transpose()?,
        limit: limit + 1,
        ..PayoutQuery::default()
    };
    let (payouts, _) = state.engine.list_payouts(merchant, query).await?;
    Ok(Json(page(
        payouts,
        limit,
        |p| encode_seq_cursor("pout", p.seq),
        payout_response,
    )))
}

/// Retrieve a payout request.
#[utoipa::path(get, path = "/api/v1/payouts/{id}", tag = "payouts",
    params(("id" = String, Path, description = "Payout id (pout_…)")),
    responses((status = 200, body = PayoutBody), (status = 404, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn get_payout(
    State(state): State<AppState>,
    auth: Auth,
    PayoutPath(id): PayoutPath,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let payout = state.engine.get_payout(merchant, &id).await?;
    Ok(Json(payout_response(&payout)))
}

/// Approve or reject a payout request, or record that it was sent, completed or failed (with
/// the transaction hash). Writes `refund.updated` / `withdrawal.updated`.
#[utoipa::path(post, path = "/api/v1/payouts/{id}/status", tag = "payouts",
    request_body = SetPayoutStatus,
    params(("id" = String, Path, description = "Payout id (pout_…)")),
    responses(
        (status = 200, body = PayoutBody),
        (status = 400, description = "Unknown status or bad txid; nothing was written", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "invalid_state: the payout's status does not allow the move", body = ErrorBody),
    ),
    security(("api_key" = ["refunds:write"])))]
pub async fn set_payout_status(
    State(state): State<AppState>,
    auth: Auth,
    PayoutPath(id): PayoutPath,
    ApiJson(body): ApiJson<SetPayoutStatus>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::RefundsWrite)?;
    let to = PayoutStatus::from_str(body.status.trim())
        .ok()
        .filter(|s| *s != PayoutStatus::Requested)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_status",
                "status",
                "status must be one of approved, rejected, sent, completed, failed",
            )
        })?;
    let payout = state
        .engine
        .set_payout_status(merchant, &id, to, body.txid)
        .await?;
    Ok(Json(payout_response(&payout)))
}
