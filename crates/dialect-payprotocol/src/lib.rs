//! The Pay Protocol dialect (payprotocol.network): its merchant API under `/api/mer/…` and its
//! callbacks, translated onto Coffer's engine. No business rule lives here; see
//! `docs/compat/payprotocol.md` for every mapping and every decision the vendor's docs leave
//! open.

mod auth;
mod callback;
mod mapping;
mod recharge;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use coffer_core::order::OrderLinks;
use coffer_core::{BaseUnits, MerchantId, Order, OrderId, PayoutKind, PayoutRequest};
use coffer_engine::{Engine, EngineError, NewOrder, RefundInput, WithdrawalInput};
use coffer_secrets::MasterKey;
use coffer_store::{DeliveryQuery, OrderQuery, PayoutQuery};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub use auth::{MAX_SKEW_SECS, sign, verify};
pub use callback::{PayProtocolFormatter, formatter};
pub use mapping::{chain_number, currency_number, payment_status, refund_status};

/// The dialect name stored on orders and credentials.
pub const DIALECT: &str = "payprotocol";

/// Where Pay Protocol's API lives: framework-level errors there take its envelope.
pub const PATH_PREFIXES: &[&str] = &["/api/mer/"];

/// A framework-level error (no route, wrong method, body too large, a request rejected before
/// a handler) in Pay Protocol's envelope.
pub fn framework_error(status: StatusCode, message: &str) -> Response {
    let msg = match status {
        StatusCode::NOT_FOUND => "not found",
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload too large",
        _ => "bad request",
    };
    PpError::new(status, msg, message).into_response()
}

#[derive(Clone)]
struct Api {
    engine: Engine,
    master: Arc<MasterKey>,
}

/// The Pay Protocol merchant API, at the vendor's paths (`/api/mer/…`).
pub fn routes<S: Clone + Send + Sync + 'static>(
    engine: Engine,
    master: Arc<MasterKey>,
) -> Router<S> {
    let api = Api { engine, master };
    Router::new()
        .route(
            "/api/mer/payment/createPaymentOrder",
            post(create_payment_order),
        )
        .route("/api/mer/payment/detail", get(payment_detail))
        .route("/api/mer/payment/list", get(payment_list))
        .route("/api/mer/payment/payInfo", get(pay_info))
        .route("/api/mer/payment/payInfo/update", post(pay_info_update))
        .route("/api/mer/payment/notify", get(payment_notify))
        .route("/api/mer/refund/createRefundOrder", post(create_refund))
        .route("/api/mer/refund/detail", get(refund_detail))
        .route("/api/mer/refund/list", get(refund_list))
        .route("/api/mer/refund/notify", get(refund_notify))
        .route("/api/mer/withdraw/apply", post(withdraw_apply))
        .route("/api/mer/user/create", post(users::create))
        .route("/api/mer/user/detail", get(users::detail))
        .route("/api/mer/user/list", get(users::list))
        .route("/api/mer/recharge/list", get(recharge::list))
        .route("/api/mer/recharge/detail", get(recharge::detail))
        .route("/api/mer/recharge/notify", get(recharge::notify))
        .route("/api/mer/conf/list/chain", get(chain_list))
        .route("/api/mer/conf/list/currency", get(currency_list))
        .with_state(api)
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

/// Verify the X-PAY-* headers and return the merchant, or the vendor's 401.
async fn merchant(
    api: &Api,
    method: &Method,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<MerchantId, PpError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(key), Some(ts), Some(signature)) = (
        header("x-pay-key"),
        header("x-pay-timestamp"),
        header("x-pay-sign"),
    ) else {
        return Err(PpError::unauthorized(
            "X-PAY-KEY, X-PAY-TIMESTAMP and X-PAY-SIGN are required",
        ));
    };
    let credential = api
        .engine
        .find_dialect_credential(&api.master, DIALECT, key)
        .await?
        .ok_or_else(|| PpError::unauthorized("invalid X-PAY-KEY or X-PAY-SIGN"))?;
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    auth::verify(
        credential.secret.as_bytes(),
        ts,
        method.as_str(),
        &path_and_query,
        uri.path(),
        body,
        signature,
        api.engine.now().unix_timestamp(),
    )
    .map_err(|e| PpError::unauthorized(e.to_string()))?;
    Ok(credential.merchant_id)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PpError> {
    serde_json::from_slice(body).map_err(|e| PpError::bad(format!("invalid request body: {e}")))
}

fn decimal_field(field: &str, raw: &str) -> Result<Decimal, PpError> {
    raw.trim()
        .parse::<Decimal>()
        .ok()
        .filter(|d| *d > Decimal::ZERO)
        .ok_or_else(|| PpError::bad(format!("{field} must be a positive decimal string")))
}

fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, PpError> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| PpError::bad(format!("{field} is required")))
}

/// A required integer field, as a JSON number or a numeric string.
fn required_num(field: &str, value: Option<&Num>) -> Result<i64, PpError> {
    value
        .ok_or_else(|| PpError::bad(format!("{field} is required")))?
        .get(field)
}

/// A number sent as a JSON number or a numeric string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Num {
    Int(i64),
    Text(String),
}

impl Num {
    fn get(&self, field: &str) -> Result<i64, PpError> {
        match self {
            Num::Int(v) => Ok(*v),
            Num::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| PpError::bad(format!("{field} must be an integer"))),
        }
    }
}

/// An amount as a JSON string (documented) or number (accepted, read exactly from its text).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Number(serde_json::Number),
}

impl Amount {
    fn get(&self, field: &str) -> Result<Decimal, PpError> {
        match self {
            Amount::Text(s) => decimal_field(field, s),
            Amount::Number(n) => decimal_field(field, &n.to_string()),
        }
    }
}

// ---- payments -----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    chain_id: Option<Num>,
    description: Option<String>,
    out_trade_no: Option<String>,
    is_legal_tender: Option<Num>,
    quote_currency_symbol: Option<String>,
    quote_amount: Option<Amount>,
    notify_url: Option<String>,
    redirection_url: Option<String>,
}

async fn create_payment_order(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, &body).await?;
    let b: CreateBody = parse_json(&body)?;
    let chain_id = required_num("chainId", b.chain_id.as_ref())?;
    let description = required("description", b.description.as_deref())?;
    let out_trade_no = required("outTradeNo", b.out_trade_no.as_deref())?;
    let legal = required_num("isLegalTender", b.is_legal_tender.as_ref())?;
    if legal != 0 && legal != 1 {
        return Err(PpError::bad("isLegalTender must be 0 or 1"));
    }
    let symbol = required("quoteCurrencySymbol", b.quote_currency_symbol.as_deref())?;
    if symbol != symbol.to_ascii_uppercase() {
        return Err(PpError::bad("quoteCurrencySymbol must be upper case"));
    }
    let amount = b
        .quote_amount
        .as_ref()
        .ok_or_else(|| PpError::bad("quoteAmount is required"))?
        .get("quoteAmount")?;
    let notify_url = required("notifyUrl", b.notify_url.as_deref())?;
    let chain = mapping::chain_by_number(api.engine.assets(), chain_id)
        .ok_or_else(|| PpError::bad(format!("chainId {chain_id} is not enabled")))?;
    let asset = mapping::asset_for_quote(api.engine.assets(), &chain, symbol, legal == 1)
        .ok_or_else(|| {
            PpError::bad(format!(
                "quoteCurrencySymbol {symbol} cannot be paid on chainId {chain_id}"
            ))
        })?;
    let now = api.engine.now();
    let mut data = Map::new();
    data.insert(
        "outPaymentNo".into(),
        mapping::out_payment_no(now, coffer_engine::random16()).into(),
    );
    data.insert("notifyUrl".into(), notify_url.into());
    data.insert("isLegalTender".into(), legal.into());
    data.insert("quoteCurrencySymbol".into(), symbol.into());
    let created = api
        .engine
        .create_order(
            &m,
            NewOrder {
                amount,
                currency: symbol.to_owned(),
                asset: Some(asset),
                order_no: Some(out_trade_no.to_owned()),
                description: Some(description.to_owned()),
                links: OrderLinks {
                    success_url: b.redirection_url.clone().filter(|u| !u.is_empty()),
                    expired_url: None,
                    callback_url: Some(notify_url.to_owned()),
                },
                dialect: DIALECT.into(),
                dialect_data: data,
                ..NewOrder::default()
            },
        )
        .await?;
    let o = created.order;
    let target = o.target.as_ref();
    Ok(ok(json!({
        "outPaymentNo": mapping::out_payment_no_of(&o),
        "paymentUrl": format!("/pay/{}", o.checkout_token),
        "userWalletAddress": target.map(|t| t.address.clone()).unwrap_or_default(),
        "saltHash": mapping::salt_hash(&o),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailQuery {
    out_trade_no: Option<String>,
    out_payment_no: Option<String>,
}

async fn order_by_trade_no(
    api: &Api,
    m: &MerchantId,
    out_trade_no: Option<&str>,
    out_payment_no: Option<&str>,
) -> Result<Order, PpError> {
    let no = required("outTradeNo", out_trade_no)?;
    let order = api
        .engine
        .order_by_no(m, no)
        .await?
        .ok_or_else(|| PpError::not_found("payment order"))?;
    if let Some(p) = out_payment_no.filter(|p| !p.is_empty())
        && mapping::out_payment_no_of(&order) != p
    {
        return Err(PpError::not_found("payment order"));
    }
    Ok(order)
}

async fn payment_detail(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<DetailQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let order = order_by_trade_no(
        &api,
        &m,
        q.out_trade_no.as_deref(),
        q.out_payment_no.as_deref(),
    )
    .await?;
    let payments = api.engine.payments_of(&order).await?;
    Ok(ok(mapping::payment_json(
        &order,
        &payments,
        api.engine.assets(),
    )))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    page: Option<String>,
    size: Option<String>,
    chain_id: Option<String>,
    payment_status: Option<String>,
    transfer_hash: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
}

/// How many of a merchant's orders the list endpoint scans at most (newest first).
const LIST_SCAN_LIMIT: usize = 10_000;

fn page_params(page: Option<&str>, size: Option<&str>) -> Result<(u64, u64), PpError> {
    let page = match page.filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => p
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| PpError::bad("page must be between 1 and 1000000"))?,
    };
    let size = match size.filter(|s| !s.is_empty()) {
        None => 10,
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=500).contains(s))
            .ok_or_else(|| PpError::bad("size must be between 1 and 500"))?,
    };
    Ok((page, size))
}

fn opt_int(field: &str, raw: Option<&str>) -> Result<Option<i64>, PpError> {
    raw.filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| PpError::bad(format!("{field} must be an integer")))
        })
        .transpose()
}

async fn payment_list(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let (page, size) = page_params(q.page.as_deref(), q.size.as_deref())?;
    let chain = opt_int("chainId", q.chain_id.as_deref())?;
    let status = opt_int("paymentStatus", q.payment_status.as_deref())?;
    let from = opt_int("startTime", q.start_time.as_deref())?
        .map(time::OffsetDateTime::from_unix_timestamp)
        .transpose()
        .map_err(|_| PpError::bad("startTime is out of range"))?;
    let to = opt_int("endTime", q.end_time.as_deref())?
        .map(time::OffsetDateTime::from_unix_timestamp)
        .transpose()
        .map_err(|_| PpError::bad("endTime is out of range"))?;
    let mut matched = Vec::new();
    let mut query = OrderQuery {
        merchant_id: Some(m.clone()),
        created_from: from,
        created_to: to,
        limit: 500,
        ..OrderQuery::default()
    };
    let mut scanned = 0usize;
    loop {
        let batch = api.engine.list_orders(&query).await?;
        let done = batch.len() < 500;
        scanned += batch.len();
        for order in &batch {
            if chain.is_some()
                && order
                    .target
                    .as_ref()
                    .and_then(|t| mapping::chain_number_of(api.engine.assets(), t.asset.chain()))
                    != chain
            {
                continue;
            }
            if status.is_some_and(|s| i64::from(mapping::payment_status(order.state)) != s) {
                continue;
            }
            matched.push(order.clone());
        }
        match batch.last() {
            Some(last) if !done && scanned < LIST_SCAN_LIMIT => {
                query.after = Some(coffer_store::OrderCursor {
                    created_at: last.created_at,
                    id: last.id.clone(),
                });
            }
            _ => break,
        }
    }
    let mut list = Vec::new();
    let mut count = 0u64;
    for order in &matched {
        let payments = if q.transfer_hash.is_some() || count >= (page - 1) * size {
            api.engine.payments_of(order).await?
        } else {
            Vec::new()
        };
        if let Some(hash) = q.transfer_hash.as_deref().filter(|h| !h.is_empty())
            && !payments.iter().any(|p| p.txid.eq_ignore_ascii_case(hash))
        {
            continue;
        }
        if count >= (page - 1) * size && count < page * size {
            list.push(mapping::payment_json(order, &payments, api.engine.assets()));
        }
        count += 1;
    }
    Ok(ok(
        json!({"count": count, "page": page, "size": size, "list": list}),
    ))
}

async fn pay_info(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<DetailQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let order = order_by_trade_no(&api, &m, q.out_trade_no.as_deref(), None).await?;
    let merchant = api
        .engine
        .merchant(&m)
        .await?
        .ok_or_else(|| PpError::not_found("merchant"))?;
    let left = (order.expires_at - api.engine.now()).whole_seconds().max(0);
    Ok(ok(json!({
        "countDown": left,
        "orgName": merchant.name,
        "userWalletAddress": order.target.as_ref().map(|t| t.address.clone()).unwrap_or_default(),
        "saltHash": mapping::salt_hash(&order),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    chain_id: Option<Num>,
    currency_id: Option<Num>,
    out_trade_no: Option<String>,
}

async fn pay_info_update(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, &body).await?;
    let b: UpdateBody = parse_json(&body)?;
    let chain_id = required_num("chainId", b.chain_id.as_ref())?;
    let currency_id = required_num("currencyId", b.currency_id.as_ref())?;
    let asset = mapping::asset_by_numbers(api.engine.assets(), chain_id, currency_id)
        .ok_or_else(|| PpError::bad("chainId/currencyId is not an enabled currency"))?;
    let order = order_by_trade_no(&api, &m, b.out_trade_no.as_deref(), None).await?;
    let order = api.engine.choose_asset(&m, &order.id, &asset).await?;
    let target = order.target.as_ref();
    Ok(ok(json!({
        "expectedAmount": target.map(|t| t.amount_due.to_string()).unwrap_or_default(),
        "userWalletAddress": target.map(|t| t.address.clone()).unwrap_or_default(),
        "saltHash": mapping::salt_hash(&order),
    })))
}

/// Manual re-trigger: the order's last callback delivery is made due again, through the
/// outbox's delivery log (a new attempt, same signed body rules).
async fn payment_notify(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<DetailQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let order = order_by_trade_no(&api, &m, q.out_trade_no.as_deref(), None).await?;
    // The order's payment callbacks: `"outTradeNo":"…"` with a `paymentStatus` (refund
    // callbacks carry the order's `outTradeNo` too).
    let needle = format!(
        "\"outTradeNo\":{}",
        serde_json::to_string(order.order_no.as_deref().unwrap_or_default()).unwrap_or_default()
    );
    redeliver_last(&api, &m, &["\"paymentStatus\":", &needle]).await?;
    Ok(ok(Value::Null))
}

/// Make the merchant's newest Pay Protocol callback delivery whose body contains every one of
/// `needles` due again (a new attempt through the outbox), or 404 if there is none. The
/// delivery log has no subject column: callbacks are recognised by the body they sent.
pub(crate) async fn redeliver_last(
    api: &Api,
    m: &MerchantId,
    needles: &[&str],
) -> Result<(), PpError> {
    let deliveries = api
        .engine
        .list_deliveries(
            m,
            DeliveryQuery {
                limit: 500,
                ..DeliveryQuery::default()
            },
        )
        .await?;
    let last = deliveries
        .into_iter()
        .find(|d| {
            d.endpoint_id.is_none()
                && d.dialect == DIALECT
                && d.request_body
                    .as_deref()
                    .is_some_and(|b| needles.iter().all(|n| b.contains(n)))
        })
        .ok_or_else(|| PpError::not_found("callback notification"))?;
    api.engine.redeliver(m, &last.id).await?;
    Ok(())
}

// ---- refunds and withdrawals ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundBody {
    out_trade_no: Option<String>,
    out_payment_no: Option<String>,
    amount: Option<Amount>,
    transfer_address: Option<String>,
    notify_url: Option<String>,
}

async fn create_refund(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, &body).await?;
    let b: RefundBody = parse_json(&body)?;
    let order = order_by_trade_no(
        &api,
        &m,
        b.out_trade_no.as_deref(),
        b.out_payment_no.as_deref(),
    )
    .await?;
    let amount = match &b.amount {
        None => None,
        Some(a) => {
            let value = a.get("amount")?;
            let asset = order
                .target
                .as_ref()
                .and_then(|t| api.engine.assets().asset(&t.asset))
                .ok_or_else(|| PpError::bad("the order has no currency to refund in"))?;
            Some(
                BaseUnits::from_decimal(value, asset.decimals)
                    .map_err(|e| PpError::bad(format!("amount: {e}")))?,
            )
        }
    };
    let mut data = Map::new();
    if let Some(url) = b.notify_url.filter(|u| !u.is_empty()) {
        // Callbacks go there: refuse what can never be called.
        coffer_engine::validate::url("notifyUrl", url.trim())?;
        data.insert("notifyUrl".into(), url.trim().into());
    }
    let refund = api
        .engine
        .request_refund(
            &m,
            &order.id,
            RefundInput {
                amount,
                destination: b.transfer_address.filter(|a| !a.is_empty()),
                dialect: DIALECT.into(),
                dialect_data: data,
                ..RefundInput::default()
            },
        )
        .await?;
    Ok(ok(json!({"refundId": refund.seq})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundQuery {
    out_trade_no: Option<String>,
    refund_id: Option<String>,
    page: Option<String>,
    size: Option<String>,
}

async fn refund_json(api: &Api, m: &MerchantId, r: &PayoutRequest) -> Result<Value, PpError> {
    let order = match &r.order_id {
        Some(id) => Some(api.engine.get_order(m, id).await?),
        None => None,
    };
    Ok(mapping::refund_json(r, order.as_ref(), api.engine.assets()))
}

/// The refund named by `refundId` and/or `outTradeNo` (the order's newest refund), or 404.
async fn find_refund(api: &Api, m: &MerchantId, q: &RefundQuery) -> Result<PayoutRequest, PpError> {
    let by_id = opt_int("refundId", q.refund_id.as_deref())?;
    let by_order = match q.out_trade_no.as_deref().filter(|n| !n.is_empty()) {
        Some(no) => Some(order_by_trade_no(api, m, Some(no), None).await?),
        None => None,
    };
    Ok(match (by_id, &by_order) {
        (None, None) => return Err(PpError::bad("outTradeNo or refundId is required")),
        (Some(seq), _) => {
            let r = api.engine.get_payout_by_seq(m, seq).await?;
            let fits = r.kind == PayoutKind::Refund
                && by_order
                    .as_ref()
                    .is_none_or(|o| r.order_id.as_ref() == Some(&o.id));
            if !fits {
                return Err(PpError::not_found("refund"));
            }
            r
        }
        (None, Some(order)) => api
            .engine
            .list_payouts(
                m,
                PayoutQuery {
                    kind: Some(PayoutKind::Refund),
                    order_id: Some(order.id.clone()),
                    limit: 1,
                    ..PayoutQuery::default()
                },
            )
            .await?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| PpError::not_found("refund"))?,
    })
}

async fn refund_detail(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<RefundQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let refund = find_refund(&api, &m, &q).await?;
    Ok(ok(refund_json(&api, &m, &refund).await?))
}

/// Manual re-trigger of a refund callback (query `refundId` and/or `outTradeNo`, like
/// `refund/detail`): the refund's last callback delivery is made due again, like
/// `payment/notify`. 404 while none was sent (refunds call back on a final status only).
async fn refund_notify(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<RefundQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let refund = find_refund(&api, &m, &q).await?;
    // Recognised by the body it sent, as in `payment_notify`. `refundId` is never the last
    // key, so the comma makes refund 1 not match refund 12.
    let needle = format!("\"refundId\":{},", refund.seq);
    redeliver_last(&api, &m, &[&needle]).await?;
    Ok(ok(Value::Null))
}

async fn refund_list(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<RefundQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let (page, size) = page_params(q.page.as_deref(), q.size.as_deref())?;
    let order_id: Option<OrderId> = match q.out_trade_no.as_deref().filter(|n| !n.is_empty()) {
        Some(no) => Some(order_by_trade_no(&api, &m, Some(no), None).await?.id),
        None => None,
    };
    let (items, count) = api
        .engine
        .list_payouts(
            &m,
            PayoutQuery {
                kind: Some(PayoutKind::Refund),
                order_id,
                offset: u32::try_from((page - 1) * size).unwrap_or(u32::MAX),
                limit: u32::try_from(size).unwrap_or(500),
                ..PayoutQuery::default()
            },
        )
        .await?;
    let mut list = Vec::with_capacity(items.len());
    for r in &items {
        list.push(refund_json(&api, &m, r).await?);
    }
    Ok(ok(
        json!({"count": count, "page": page, "size": size, "list": list}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithdrawBody {
    chain_id: Option<Num>,
    currency_id: Option<Num>,
    withdraw_address: Option<String>,
    withdraw_amount: Option<Amount>,
    out_trade_no: Option<String>,
    notify_url: Option<String>,
}

async fn withdraw_apply(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, &body).await?;
    let b: WithdrawBody = parse_json(&body)?;
    let chain_id = required_num("chainId", b.chain_id.as_ref())?;
    let currency_id = required_num("currencyId", b.currency_id.as_ref())?;
    let address = required("withdrawAddress", b.withdraw_address.as_deref())?;
    if address.contains(',') {
        return Err(PpError::bad(
            "withdrawAddress: comma-separated batch withdrawals (Merchant Pro) are not supported",
        ));
    }
    let amount = b
        .withdraw_amount
        .as_ref()
        .ok_or_else(|| PpError::bad("withdrawAmount is required"))?
        .get("withdrawAmount")?;
    if let Some(no) = &b.out_trade_no
        && no.trim().is_empty()
    {
        return Err(PpError::bad("outTradeNo must not be blank"));
    }
    let asset = mapping::asset_by_numbers(api.engine.assets(), chain_id, currency_id)
        .ok_or_else(|| PpError::bad("chainId/currencyId is not an enabled currency"))?;
    let decimals = api
        .engine
        .assets()
        .asset(&asset)
        .map(|a| a.decimals)
        .ok_or_else(|| PpError::bad("currencyId is not enabled"))?;
    let amount = BaseUnits::from_decimal(amount, decimals)
        .map_err(|e| PpError::bad(format!("withdrawAmount: {e}")))?;
    let mut data = Map::new();
    if let Some(url) = b.notify_url.filter(|u| !u.is_empty()) {
        // Callbacks go there: refuse what can never be called.
        coffer_engine::validate::url("notifyUrl", url.trim())?;
        data.insert("notifyUrl".into(), url.trim().into());
    }
    let w = api
        .engine
        .request_withdrawal(
            &m,
            WithdrawalInput {
                asset,
                amount,
                destination: address.to_owned(),
                memo: None,
                dialect: DIALECT.into(),
                reference: b.out_trade_no,
                dialect_data: data,
            },
        )
        .await?;
    Ok(ok(json!({"withdrawId": w.seq})))
}

// ---- configuration --------------------------------------------------------------------------

async fn chain_list(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Res {
    merchant(&api, &method, &uri, &headers, b"").await?;
    Ok(ok(mapping::chains_json(api.engine.assets())))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrencyQuery {
    chain_id: Option<String>,
}

async fn currency_list(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<CurrencyQuery>,
) -> Res {
    merchant(&api, &method, &uri, &headers, b"").await?;
    let chain = opt_int("chainId", q.chain_id.as_deref())?;
    Ok(ok(mapping::currencies_json(&api.engine, chain)))
}
