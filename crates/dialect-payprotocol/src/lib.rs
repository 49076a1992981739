//! The Pay Protocol dialect (payprotocol.network): its merchant API under `/api/mer/…` and its
//! callbacks, translated onto Coffer's engine. No business rule lives here; see
//! `docs/compat/payprotocol.md` for every mapping and every decision the vendor's docs leave
//! open. [`PayProtocolDialect`] plugs it into the server.

mod auth;
mod callback;
mod mapping;
mod payments;
mod recharge;
mod refunds;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use coffer_dialect::{
    Authenticate, Authenticated, BodyError, CredentialShape, Dialect, DialectDeps, LenientDecimal,
    LenientInt, Maybe, Query, RawRequest, SettingKind, SettingSpec,
};
use coffer_engine::{Engine, EngineError};
use coffer_secrets::MasterKey;
use coffer_webhooks::Formatter;
use serde::Deserialize;
use serde_json::{Value, json};

pub use auth::{MAX_SKEW_SECS, sign, verify};
pub use callback::{PayProtocolFormatter, RECHARGE_NOTIFY_URL};
pub use mapping::{chain_number, currency_number, payment_status, refund_status};

/// The dialect name stored on orders and credentials.
pub const DIALECT: &str = "payprotocol";

/// Where Pay Protocol's API lives: framework-level errors there take its envelope.
pub const PATH_PREFIXES: &[&str] = &["/api/mer/"];

/// Pay Protocol's credentials: `X-PAY-KEY` and the secret requests and callbacks are signed
/// with.
pub const CREDENTIAL: CredentialShape = CredentialShape {
    dialect: DIALECT,
    tag: "ppr",
    key: "X-PAY-KEY",
    key_chars: coffer_engine::dialect_keys::SHORT_KEY,
    secret: "secret",
    token: None,
    callback_token: None,
    callback_secret: None,
};

/// What the vendor keeps in its console and Coffer per merchant.
pub const SETTINGS: &[SettingSpec] = &[SettingSpec {
    name: RECHARGE_NOTIFY_URL,
    meaning: "where Pay Protocol recharge (deposit) callbacks go",
    kind: SettingKind::Url,
}];

/// The Pay Protocol dialect, for the server's registry.
pub struct PayProtocolDialect;

impl Dialect for PayProtocolDialect {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn path_prefixes(&self) -> &'static [&'static str] {
        PATH_PREFIXES
    }

    fn routes(&self, deps: &DialectDeps) -> Router {
        routes(Api {
            engine: deps.engine.clone(),
            master: deps.master.clone(),
        })
    }

    fn framework_error(&self, status: StatusCode, message: &str) -> Response {
        let msg = match status {
            StatusCode::NOT_FOUND => "not found",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload too large",
            _ => "bad request",
        };
        PpError::new(status, msg, message).into_response()
    }

    fn credential_shape(&self) -> CredentialShape {
        CREDENTIAL
    }

    fn settings(&self) -> &'static [SettingSpec] {
        SETTINGS
    }

    /// The vendor's own retry schedule, not the server's ([`callback::retry_schedule`]).
    fn formatter(&self, deps: &DialectDeps) -> Arc<dyn Formatter> {
        Arc::new(PayProtocolFormatter {
            assets: deps.engine.assets().clone(),
        })
    }
}

/// What the handlers share; it authenticates requests.
#[derive(Clone)]
struct Api {
    engine: Engine,
    master: Arc<MasterKey>,
}

/// An authenticated Pay Protocol request with payload `P`.
type Signed<P = ()> = coffer_dialect::Signed<Api, P>;

/// The Pay Protocol merchant API, at the vendor's paths (`/api/mer/…`).
fn routes(api: Api) -> Router {
    use {payments as p, recharge as r, refunds as f, users as u};
    Router::new()
        .route(
            "/api/mer/payment/createPaymentOrder",
            post(p::create_payment_order),
        )
        .route("/api/mer/payment/detail", get(p::payment_detail))
        .route("/api/mer/payment/list", get(p::payment_list))
        .route("/api/mer/payment/payInfo", get(p::pay_info))
        .route("/api/mer/payment/payInfo/update", post(p::pay_info_update))
        .route("/api/mer/payment/notify", get(p::payment_notify))
        .route("/api/mer/refund/createRefundOrder", post(f::create_refund))
        .route("/api/mer/refund/detail", get(f::refund_detail))
        .route("/api/mer/refund/list", get(f::refund_list))
        .route("/api/mer/refund/notify", get(f::refund_notify))
        .route("/api/mer/withdraw/apply", post(f::withdraw_apply))
        .route("/api/mer/user/create", post(u::create))
        .route("/api/mer/user/detail", get(u::detail))
        .route("/api/mer/user/list", get(u::list))
        .route("/api/mer/recharge/list", get(r::list))
        .route("/api/mer/recharge/detail", get(r::detail))
        .route("/api/mer/recharge/notify", get(r::notify))
        .route("/api/mer/conf/list/chain", get(chain_list))
        .route("/api/mer/conf/list/currency", get(currency_list))
        .with_state(api)
}

/// `X-PAY-KEY`, `X-PAY-TIMESTAMP` (±60 s) and `X-PAY-SIGN` over method, path (with or without
/// the query) and the raw body; refusals are the vendor's 401.
impl Authenticate for Api {
    type Mode = ();
    type Rejection = PpError;

    async fn authenticate(&self, req: &RawRequest) -> Result<Authenticated, PpError> {
        let (Some(key), Some(ts), Some(signature)) = (
            req.header("x-pay-key"),
            req.header("x-pay-timestamp"),
            req.header("x-pay-sign"),
        ) else {
            return Err(PpError::unauthorized(
                "X-PAY-KEY, X-PAY-TIMESTAMP and X-PAY-SIGN are required",
            ));
        };
        let credential = self
            .engine
            .find_dialect_credential(&self.master, DIALECT, key)
            .await?
            .ok_or_else(|| PpError::unauthorized("invalid X-PAY-KEY or X-PAY-SIGN"))?;
        auth::verify(
            credential.secret.as_bytes(),
            ts,
            req.method.as_str(),
            req.path_and_query(),
            req.path(),
            &req.body,
            signature,
            self.engine.now().unix_timestamp(),
        )
        .map_err(|e| PpError::unauthorized(e.to_string()))?;
        Ok(Authenticated {
            credential,
            mode: (),
        })
    }

    fn reject(&self, error: BodyError) -> PpError {
        PpError::bad(error.to_string())
    }
}

// ---- envelope and errors ------------------------------------------------------------------

/// An error in Pay Protocol's envelope: `{code, msg, description, data: null}`, with the same
/// number as HTTP status (the vendor documents 401/403/404 per endpoint and no business table).
#[derive(Debug)]
pub struct PpError {
    status: StatusCode,
    msg: &'static str,
    description: String,
}

impl PpError {
    fn new(status: StatusCode, msg: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            msg,
            description: description.into(),
        }
    }

    fn bad(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad request", description)
    }

    fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", description)
    }

    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not found",
            format!("{what} not found"),
        )
    }
}

impl From<EngineError> for PpError {
    fn from(err: EngineError) -> Self {
        match &err {
            EngineError::Invalid { field, .. } => {
                let field = field.map(mapping::field_name).unwrap_or("request");
                PpError::bad(format!("{field}: {err}"))
            }
            EngineError::NotFound(what) => PpError::not_found(what),
            EngineError::Conflict { .. } => {
                PpError::new(StatusCode::CONFLICT, "conflict", err.to_string())
            }
            EngineError::RateUnavailable { .. } => PpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "rate unavailable",
                err.to_string(),
            ),
            EngineError::Unauthorized | EngineError::Forbidden(_) => {
                PpError::unauthorized(err.to_string())
            }
            EngineError::Store(_) => {
                tracing::error!(error = %err, "pay protocol request failed");
                PpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for PpError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.status.as_u16(),
            "msg": self.msg,
            "description": self.description,
            "data": Value::Null,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"code": 200, "msg": "success", "data": data})).into_response()
}

type Res = Result<Response, PpError>;

// ---- shared field rules ---------------------------------------------------------------------

/// An amount, which must be positive.
fn positive(field: &str, amount: &LenientDecimal) -> Result<rust_decimal::Decimal, PpError> {
    Some(amount.value())
        .filter(|d| *d > rust_decimal::Decimal::ZERO)
        .ok_or_else(|| PpError::bad(format!("{field} must be a positive decimal string")))
}

/// `page` (1 to 1,000,000, default 1) and `size` (1 to 500, default 10).
fn page_params(page: &Maybe<LenientInt>, size: &Maybe<LenientInt>) -> Result<(u64, u64), PpError> {
    let within = |v: &Maybe<LenientInt>, default: u64, max: u64, message: &str| match v.as_ref() {
        None => Ok(default),
        Some(n) => u64::try_from(n.0)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| PpError::bad(message)),
    };
    Ok((
        within(page, 1, 1_000_000, "page must be between 1 and 1000000")?,
        within(size, 10, 500, "size must be between 1 and 500")?,
    ))
}

/// A page's offset and limit for the store.
fn offset_limit(page: u64, size: u64) -> (u32, u32) {
    (
        u32::try_from((page - 1) * size).unwrap_or(u32::MAX),
        u32::try_from(size).unwrap_or(500),
    )
}

fn list_json(count: u64, page: u64, size: u64, list: Vec<Value>) -> Response {
    ok(json!({"count": count, "page": page, "size": size, "list": list}))
}

/// Make the newest Pay Protocol callback delivery about `subject` (an order, payout or
/// deposit id) due again: a new attempt through the outbox's delivery log, same signed body
/// rules. 404 while none was sent.
async fn redeliver_last(
    api: &Api,
    m: &coffer_core::MerchantId,
    subject: &str,
) -> Result<(), PpError> {
    let last = api
        .engine
        .last_callback(m, DIALECT, subject)
        .await?
        .ok_or_else(|| PpError::not_found("callback notification"))?;
    api.engine.redeliver(m, &last.id).await?;
    Ok(())
}

// ---- configuration --------------------------------------------------------------------------

async fn chain_list(State(api): State<Api>, _: Signed) -> Res {
    Ok(ok(mapping::chains_json(api.engine.assets())))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrencyQuery {
    chain_id: Maybe<LenientInt>,
}

async fn currency_list(State(api): State<Api>, signed: Signed<Query<CurrencyQuery>>) -> Res {
    let chain = signed.payload.0.chain_id.as_ref().map(|c| c.0);
    Ok(ok(mapping::currencies_json(&api.engine, chain)))
}
