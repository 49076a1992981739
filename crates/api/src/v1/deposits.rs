//! Deposit accounts: a merchant's users, each with one standing receiving address per chain
//! (paid at any time, watched for good), and the deposits received there. The same accounts
//! Pay Protocol calls recharge users; created here they call back through the native webhooks
//! (`deposit.detected`, `deposit.confirmed`, `deposit.reversed`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::{PaymentStatus, Scope};
use coffer_engine::view::{deposit_account_json, deposit_json};
use coffer_store::{DepositAccountQuery, DepositQuery};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::docs::{ErrorBody, ListBody};
use super::error::ApiError;
use super::extract::{ApiJson, Auth};
use super::orders::{parse_limit, query_error};
use super::paging::{decode_seq_cursor, encode_seq_cursor, page};
use crate::AppState;

fn cursor(kind: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|c| decode_seq_cursor(kind, c)).transpose()
}

/// Create (or find) the deposit account of one of the merchant's users.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDepositAccount {
    /// The merchant's own id for its user, 1-64 characters; the same reference returns the
    /// same account.
    #[schema(example = "user-10001")]
    pub reference: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccountListParams {
    /// Only the account with this reference.
    pub reference: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-100, default 20.
    pub limit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DepositListParams {
    /// Only this account's deposits (its `number`).
    pub account: Option<String>,
    /// unconfirmed, confirmed or reversed.
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-100, default 20.
    pub limit: Option<String>,
}

/// Create the deposit account of one of your users (201), or answer the existing one for the
/// same reference (200). It gets one address on every chain where you have a wallet.
#[utoipa::path(post, path = "/api/v1/deposit-accounts", tag = "deposits",
    request_body = CreateDepositAccount,
    responses((status = 201, description = "Created"), (status = 200, description = "The existing account"),
        (status = 400, body = ErrorBody)),
    security(("api_key" = ["orders:write"])))]
pub async fn create_deposit_account(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateDepositAccount>,
) -> Result<Response, ApiError> {
    let merchant = auth.require(Scope::OrdersWrite)?;
    let (account, created) = state
        .engine
        .create_deposit_account(merchant, "native", &body.reference)
        .await
        .map_err(|e| ApiError::from(e).rename_field("uuid", "reference"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(deposit_account_json(&account))).into_response())
}

/// Your deposit accounts, newest first.
#[utoipa::path(get, path = "/api/v1/deposit-accounts", tag = "deposits", params(AccountListParams),
    responses((status = 200, body = ListBody, description = "A page of deposit accounts"), (status = 400, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn list_deposit_accounts(
    State(state): State<AppState>,
    auth: Auth,
    query: Result<Query<AccountListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let Query(params) = query.map_err(query_error)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let (items, _) = state
        .engine
        .list_deposit_accounts(
            merchant,
            DepositAccountQuery {
                uuid: params.reference.map(|r| r.trim().to_owned()),
                before_seq: cursor("acct", params.cursor.as_deref())?,
                limit: limit + 1,
                ..DepositAccountQuery::default()
            },
        )
        .await?;
    Ok(Json(page(
        items,
        limit,
        |a| encode_seq_cursor("acct", a.seq),
        deposit_account_json,
    )))
}

/// One deposit account by its number.
#[utoipa::path(get, path = "/api/v1/deposit-accounts/{number}", tag = "deposits",
    params(("number" = i64, Path, description = "The account's number")),
    responses((status = 200, description = "The account"), (status = 404, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn get_deposit_account(
    State(state): State<AppState>,
    auth: Auth,
    Path(number): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let seq: i64 = number
        .parse()
        .map_err(|_| ApiError::not_found("deposit account"))?;
    let account = state
        .engine
        .deposit_account(merchant, Some(seq), None)
        .await?
        .ok_or_else(|| ApiError::not_found("deposit account"))?;
    Ok(Json(deposit_account_json(&account)))
}

/// Deposits to your accounts' addresses, newest first.
#[utoipa::path(get, path = "/api/v1/deposits", tag = "deposits", params(DepositListParams),
    responses((status = 200, body = ListBody, description = "A page of deposits"), (status = 400, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn list_deposits(
    State(state): State<AppState>,
    auth: Auth,
    query: Result<Query<DepositListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let Query(params) = query.map_err(query_error)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let account = params
        .account
        .as_deref()
        .map(|a| {
            a.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request("invalid_account", "account", "account must be a number")
            })
        })
        .transpose()?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            PaymentStatus::parse(s.trim()).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_status",
                    "status",
                    "status must be one of unconfirmed, confirmed, reversed",
                )
            })
        })
        .transpose()?;
    let (items, _) = state
        .engine
        .list_deposits(
            merchant,
            DepositQuery {
                account_seq: account,
                status,
                before_seq: cursor("dep", params.cursor.as_deref())?,
                limit: limit + 1,
                ..DepositQuery::default()
            },
        )
        .await?;
    let assets = state.engine.assets().clone();
    Ok(Json(page(
        items,
        limit,
        |d| encode_seq_cursor("dep", d.seq),
        |d| deposit_json(d, &assets),
    )))
}

/// One deposit by id.
#[utoipa::path(get, path = "/api/v1/deposits/{id}", tag = "deposits",
    params(("id" = String, Path, description = "Deposit id (dep_…)")),
    responses((status = 200, description = "The deposit"), (status = 404, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn get_deposit(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let id = id.parse().map_err(|_| ApiError::not_found("deposit"))?;
    let deposit = state.engine.deposit(merchant, &id).await?;
    Ok(Json(deposit_json(&deposit, state.engine.assets())))
}
