//! The endpoint handlers: authenticate, decode, call the engine, encode.

use coffer_engine::logins::LoginRefusal;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use coffer_core::order::OrderLinks;
use coffer_core::{BaseUnits, MerchantId, OrderId, PayoutKind, PayoutRequest, PayoutStatus};
use coffer_engine::{EngineError, NewOrder, RefundInput, WithdrawalInput};
use coffer_store::PayoutQuery;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::auth::{self, SignedHeaders};
use crate::envelope::{AurpayError, ok};
use crate::mapping::{self, asset_for, chain_name, code_for_chain, currency_code, naive_time};
use crate::view::{self, number};
use crate::{AurpayState, DIALECT};

// ---- authentication ----------------------------------------------------------------------

/// How the request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    ApiKey,
    Signature,
}

impl AuthMode {
    fn as_str(self) -> &'static str {
        match self {
            AuthMode::ApiKey => "api_key",
            AuthMode::Signature => "signature",
        }
    }
}

pub struct Authed {
    pub merchant: MerchantId,
    pub mode: AuthMode,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// API-Key mode (`API-Key`, any case) or signature mode (`API-Token` + `Algorithm`, `Date`,
/// `Body-MD5`, `Signature`). Nothing is read or written before this succeeds.
async fn authenticate(
    state: &AurpayState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Authed, AurpayError> {
    let engine = &state.engine;
    if let Some(token) = header(headers, "api-token") {
        let credential = engine
            .find_dialect_credential_by_token(&state.master, DIALECT, token)
            .await?
            .ok_or_else(|| AurpayError::unauthorized("invalid API-Token"))?;
        let signed = SignedHeaders {
            algorithm: header(headers, "algorithm"),
            date: header(headers, "date"),
            body_md5: header(headers, "body-md5"),
            signature: header(headers, "signature"),
        };
        auth::verify_request(
            &credential.secret,
            signed,
            method.as_str(),
            uri.path(),
            uri.query(),
            body,
            engine.now(),
        )
        .map_err(|e| AurpayError::unauthorized(e.message()))?;
        return Ok(Authed {
            merchant: credential.merchant_id.clone(),
            mode: AuthMode::Signature,
        });
    }
    if let Some(key) = header(headers, "api-key") {
        let credential = engine
            .find_dialect_credential(&state.master, DIALECT, key)
            .await?
            .ok_or_else(|| AurpayError::unauthorized("invalid API-Key"))?;
        return Ok(Authed {
            merchant: credential.merchant_id.clone(),
            mode: AuthMode::ApiKey,
        });
    }
    Err(AurpayError::unauthorized(
        "missing API-Key header (or API-Token with a Signature)",
    ))
}

// ---- decoding helpers --------------------------------------------------------------------

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AurpayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AurpayError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| AurpayError::bad_request(format!("invalid JSON body: {e}")))
}

/// A JSON number or numeric string, as an exact decimal.
fn decimal(
    raw: Option<&RawValue>,
    field: &str,
    required: bool,
) -> Result<Option<Decimal>, AurpayError> {
    let text = raw.map(|r| r.get().trim()).filter(|t| *t != "null");
    let Some(text) = text else {
        return if required {
            Err(AurpayError::bad_request(format!("{field} is required")))
        } else {
            Ok(None)
        };
    };
    let unquoted: String = if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .map_err(|_| AurpayError::bad_request(format!("{field} must be a number")))?
    } else {
        text.to_owned()
    };
    Decimal::from_str(unquoted.trim())
        .map(Some)
        .map_err(|_| AurpayError::bad_request(format!("{field} must be a decimal number")))
}

/// A flag sent as a JSON bool (or `"true"`/`"false"`, `1`/`0`, as loose clients do).
fn flag(v: Option<&Value>, field: &str) -> Result<bool, AurpayError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s == "0" || s.is_empty() => {
            Ok(false)
        }
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(true),
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(false),
        Some(_) => Err(AurpayError::bad_request(format!(
            "{field} must be a boolean"
        ))),
    }
}

fn text(v: Option<&Value>, field: &str) -> Result<Option<String>, AurpayError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(AurpayError::bad_request(format!(
            "{field} must be a string"
        ))),
    }
}

/// [`text`], but absent or blank is an error naming the field.
fn required_text(v: Option<&Value>, field: &str) -> Result<String, AurpayError> {
    text(v, field)?.ok_or_else(|| AurpayError::bad_request(format!("{field} is required")))
}

fn http_url(v: Option<String>, field: &str) -> Result<Option<String>, AurpayError> {
    match v {
        None => Ok(None),
        Some(u) => match url::Url::parse(&u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(Some(u)),
            _ => Err(AurpayError::bad_request(format!(
                "{field} must be an http(s) URL"
            ))),
        },
    }
}

/// Engine errors, with Coffer's field names renamed to this endpoint's request fields.
fn engine_err(err: EngineError, renames: &[(&str, &str)]) -> AurpayError {
    if let EngineError::Invalid {
        field: Some(f),
        message,
        ..
    } = &err
        && let Some((_, to)) = renames.iter().find(|(from, _)| from == f)
    {
        return AurpayError::bad_request(format!("{to}: {message}"));
    }
    err.into()
}

fn parse_order_id(raw: &str) -> Result<OrderId, AurpayError> {
    raw.parse().map_err(|_| AurpayError::not_found("order"))
}

/// `page` and `size` of a list (defaults 1 and 10; size at most 500).
fn paging(query: Option<&str>) -> Result<(u32, u32), AurpayError> {
    let mut page = 1u32;
    let mut size = 10u32;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let parse = |name: &str| {
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    AurpayError::bad_request(format!("{name} must be a positive integer"))
                })
        };
        match k.as_ref() {
            "page" => page = parse("page")?,
            "size" => size = parse("size")?.min(coffer_engine::pages::MAX_PAGE_SIZE),
            _ => {}
        }
    }
    Ok((page, size))
}

fn page_json(page: u32, size: u32, total: u64, data: Vec<Value>) -> Value {
    let max_page = total.div_ceil(u64::from(size.max(1)));
    json!({"page": page, "size": size, "total": total, "max_page": max_page, "data": data})
}

// ---- orders ------------------------------------------------------------------------------

/// The optional fields pay-url and pay-info share.
struct Common {
    links: OrderLinks,
    dialect_data: Map<String, Value>,
    fixed: bool,
    order_no: Option<String>,
}

fn common(
    body: &Map<String, Value>,
    mode: AuthMode,
    endpoint: &str,
) -> Result<Common, AurpayError> {
    // The docs spell it both ways (`succend_url` in the prose, `succeed_url` in the example).
    let succeed = match text(body.get("succeed_url"), "succeed_url")? {
        Some(u) => Some(u),
        None => text(body.get("succend_url"), "succend_url")?,
    };
    let links = OrderLinks {
        success_url: http_url(succeed, "succeed_url")?,
        expired_url: http_url(text(body.get("timeout_url"), "timeout_url")?, "timeout_url")?,
        callback_url: http_url(
            text(body.get("callback_url"), "callback_url")?,
            "callback_url",
        )?,
    };
    let timeout_callback = http_url(
        text(body.get("timeout_callback"), "timeout_callback")?,
        "timeout_callback",
    )?;
    let post = flag(body.get("enable_post_callback"), "enable_post_callback")?;
    let fixed = flag(body.get("fixed_encrypt_price"), "fixed_encrypt_price")?;
    let mut dialect_data = Map::new();
    dialect_data.insert("endpoint".into(), endpoint.into());
    dialect_data.insert("auth_mode".into(), mode.as_str().into());
    dialect_data.insert("enable_post_callback".into(), post.into());
    if let Some(t) = timeout_callback {
        dialect_data.insert("timeout_callback".into(), t.into());
    }
    // Undocumented but sent by some clients: the shop's own order id. Kept as Coffer's
    // `order_no`, so a repeated request returns the same order.
    let order_no = text(body.get("id"), "id")?;
    Ok(Common {
        links,
        dialect_data,
        fixed,
        order_no,
    })
}

#[derive(Deserialize)]
struct PayUrlBody {
    price: Option<Box<RawValue>>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

pub async fn pay_url(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let req: PayUrlBody = parse_json(&body)?;
    let price = decimal(req.price.as_deref(), "price", true)?.unwrap_or_default();
    let currency = required_text(req.rest.get("currency"), "currency")?;
    let c = common(&req.rest, authed.mode, "pay-url")?;
    let created = state
        .engine
        .create_order(
            &authed.merchant,
            NewOrder {
                amount: price,
                currency: currency.to_ascii_uppercase(),
                order_no: c.order_no,
                links: c.links,
                fixed_stablecoin_rate: c.fixed,
                dialect: DIALECT.into(),
                dialect_data: c.dialect_data,
                ..NewOrder::default()
            },
        )
        .await
        .map_err(|e| engine_err(e, &[("amount", "price")]))?;
    let pay_url = coffer_engine::view::checkout_url(&created.order, state.engine.settings());
    Ok(ok(json!({ "pay_url": pay_url })))
}

#[derive(Deserialize)]
struct PayInfoBody {
    vs_price: Option<Box<RawValue>>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(serde::Serialize)]
struct PayInfo {
    order_id: String,
    status: &'static str,
    amount: Box<RawValue>,
    create_time: String,
    vs_currency: String,
    vs_price: Box<RawValue>,
    address: String,
    contract_addr: String,
    pay_url: String,
}

pub async fn pay_info(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let req: PayInfoBody = parse_json(&body)?;
    let chain = required_text(req.rest.get("chain"), "chain")?;
    let currency = required_text(req.rest.get("currency"), "currency")?;
    let vs_currency = required_text(req.rest.get("vs_currency"), "vs_currency")?;
    let vs_price = decimal(req.vs_price.as_deref(), "vs_price", true)?.unwrap_or_default();
    let assets = state.engine.assets();
    let asset = asset_for(&chain, &currency, assets).ok_or_else(|| {
        AurpayError::bad_request(format!(
            "currency: {currency} on chain {chain} is not supported (see /api/order/pay/crypto-currency)"
        ))
    })?;
    let c = common(&req.rest, authed.mode, "pay-info")?;
    let created = state
        .engine
        .create_order(
            &authed.merchant,
            NewOrder {
                amount: vs_price,
                currency: vs_currency.to_ascii_uppercase(),
                asset: Some(asset),
                order_no: c.order_no,
                links: c.links,
                fixed_stablecoin_rate: c.fixed,
                dialect: DIALECT.into(),
                dialect_data: c.dialect_data,
                ..NewOrder::default()
            },
        )
        .await
        .map_err(|e| {
            engine_err(
                e,
                &[
                    ("amount", "vs_price"),
                    ("currency", "vs_currency"),
                    ("asset", "currency"),
                ],
            )
        })?;
    let order = created.order;
    let address = order
        .target
        .as_ref()
        .map(|t| t.address.clone())
        .unwrap_or_default();
    let data = PayInfo {
        order_id: order.id.to_string(),
        status: mapping::aurpay_status(order.state),
        amount: number(&view::amount_due(&order, assets).unwrap_or_else(|| "0".into())),
        create_time: naive_time(order.created_at),
        vs_currency: order.currency.clone(),
        vs_price: number(&order.amount.normalize().to_string()),
        address,
        contract_addr: view::contract_addr(&order, assets).unwrap_or_default(),
        pay_url: coffer_engine::view::checkout_url(&order, state.engine.settings()),
    };
    Ok(ok(data))
}

pub async fn list_orders(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let (page, size) = paging(uri.query())?;
    let result = state
        .engine
        .orders_page(&authed.merchant, page, size)
        .await?;
    let mut data = Vec::with_capacity(result.items.len());
    for order in &result.items {
        let payments = state.engine.payments_of(order).await?;
        data.push(view::order_json(order, &payments, state.engine.assets()));
    }
    Ok(ok(page_json(page, size, result.total, data)))
}

pub async fn order_detail(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let id = parse_order_id(&order_id)?;
    let order = state.engine.get_order(&authed.merchant, &id).await?;
    let payments = state.engine.order_payments(&authed.merchant, &id).await?;
    Ok(ok(view::order_json(
        &order,
        &payments,
        state.engine.assets(),
    )))
}

// ---- refunds -----------------------------------------------------------------------------

/// Payout status → Aurpay refund/withdraw status (Aurpay publishes none; see the docs).
pub fn payout_status(status: PayoutStatus) -> &'static str {
    match status {
        PayoutStatus::Requested => "PENDING",
        PayoutStatus::Approved => "APPROVED",
        PayoutStatus::Rejected => "REJECTED",
        PayoutStatus::Sent => "PROCESSING",
        PayoutStatus::Completed => "REFUNDED",
        PayoutStatus::Failed => "FAILED",
    }
}

fn payout_amount(p: &PayoutRequest, assets: &coffer_engine::AssetRegistry) -> Option<String> {
    let asset = assets.asset(p.asset.as_ref()?)?;
    Some(p.amount?.format(asset.decimals))
}

fn refund_json(
    order_id: &OrderId,
    refund: Option<&PayoutRequest>,
    assets: &coffer_engine::AssetRegistry,
) -> Value {
    json!({
        "order_id": order_id.to_string(),
        "refund_id": refund.map(|r| r.id.to_string()),
        "refund_status": refund.map(|r| payout_status(r.status)),
        "refund_amount": refund.and_then(|r| payout_amount(r, assets)),
        "refund_address": refund.and_then(|r| r.destination.clone()),
        "refund_date": refund.map(|r| naive_time(r.created_at)),
    })
}

async fn latest_refund(
    state: &AurpayState,
    merchant: &MerchantId,
    order: &OrderId,
) -> Result<Option<PayoutRequest>, AurpayError> {
    let (items, _) = state
        .engine
        .list_payouts(
            merchant,
            PayoutQuery {
                kind: Some(PayoutKind::Refund),
                order_id: Some(order.clone()),
                limit: 1,
                ..PayoutQuery::default()
            },
        )
        .await?;
    Ok(items.into_iter().next())
}

pub async fn refund_info(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let id = parse_order_id(&order_id)?;
    let order = state.engine.get_order(&authed.merchant, &id).await?;
    let payments = state.engine.order_payments(&authed.merchant, &id).await?;
    let assets = state.engine.assets();
    let refund = latest_refund(&state, &authed.merchant, &id).await?;
    let mut data = refund_json(&id, refund.as_ref(), assets);
    let base = view::order_json(&order, &payments, assets);
    if let (Value::Object(d), Value::Object(b)) = (&mut data, base) {
        for key in [
            "chain",
            "chain_name",
            "currency",
            "amount",
            "obtained",
            "status",
            "from_addr",
        ] {
            d.insert(key.into(), b.get(key).cloned().unwrap_or(Value::Null));
        }
        d.insert("refund".into(), refund.is_some().into());
        let refundable = coffer_core::payout::order_is_refundable(order.state);
        d.insert("refundable".into(), refundable.into());
    }
    Ok(ok(data))
}

pub async fn refund(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let id = parse_order_id(&order_id)?;
    // "This request does not require a request body": everything is optional.
    let req: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        parse_json(&body)?
    };
    let order = state.engine.get_order(&authed.merchant, &id).await?;
    let address = match text(req.get("address"), "address")? {
        Some(a) => Some(a),
        None => match text(req.get("refund_address"), "refund_address")? {
            Some(a) => Some(a),
            None => text(req.get("wallet_address"), "wallet_address")?,
        },
    };
    let amount = match decimal(
        req.get("amount")
            .and_then(|v| RawValue::from_string(v.to_string()).ok())
            .as_deref(),
        "amount",
        false,
    )? {
        None => None,
        Some(a) => {
            let asset = order
                .target
                .as_ref()
                .and_then(|t| state.engine.assets().asset(&t.asset))
                .ok_or_else(|| AurpayError::bad_request("the order has no coin to refund"))?;
            Some(BaseUnits::from_decimal(a, asset.decimals).map_err(|_| {
                AurpayError::bad_request(format!(
                    "amount must have at most {} decimal places",
                    asset.decimals.get()
                ))
            })?)
        }
    };
    let memo = text(req.get("remark"), "remark")?;
    let payout = state
        .engine
        .request_refund(
            &authed.merchant,
            &id,
            RefundInput {
                amount,
                destination: address,
                memo,
                dialect: DIALECT.into(),
                reference: None,
                dialect_data: Map::new(),
            },
        )
        .await
        .map_err(|e| engine_err(e, &[("destination", "address")]))?;
    Ok(ok(refund_json(&id, Some(&payout), state.engine.assets())))
}

// ---- transactions, currencies, wallets -----------------------------------------------------

pub async fn transactions(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let (page, size) = paging(uri.query())?;
    let result = state
        .engine
        .payments_page(&authed.merchant, page, size)
        .await?;
    let data = result
        .items
        .iter()
        .map(|p| view::tx_json(p, state.engine.assets()))
        .collect();
    Ok(ok(page_json(page, size, result.total, data)))
}

pub async fn real_currencies(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    authenticate(&state, &method, &uri, &headers, &body).await?;
    let data: Vec<Value> = coffer_core::fiat::FIAT_CURRENCIES
        .iter()
        .map(|c| json!({"currency": c.code, "name": c.name, "precision": c.minor_units}))
        .collect();
    Ok(ok(data))
}

pub async fn crypto_currencies(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    authenticate(&state, &method, &uri, &headers, &body).await?;
    let assets = state.engine.assets();
    let data: Vec<Value> = assets
        .assets()
        .map(|a| {
            let contract = match &a.kind {
                coffer_core::AssetKind::Token { contract } => Some(contract.clone()),
                coffer_core::AssetKind::Native => None,
            };
            json!({
                "chain": code_for_chain(a.chain()),
                "chain_name": chain_name(a.chain(), assets),
                "currency": currency_code(&a.id, assets),
                "symbol": a.symbol().as_str(),
                "contract_addr": contract,
                "decimals": a.decimals.get(),
                "stable": a.usd_stablecoin,
            })
        })
        .collect();
    Ok(ok(data))
}

async fn wallet_list(
    state: &AurpayState,
    merchant: &MerchantId,
) -> Result<Vec<Value>, AurpayError> {
    let assets = state.engine.assets();
    let wallets = state.engine.list_wallets(merchant).await?;
    Ok(wallets
        .iter()
        .map(|w| {
            let currencies: Vec<String> = assets
                .assets()
                .filter(|a| a.chain() == &w.chain)
                .map(|a| currency_code(&a.id, assets))
                .collect();
            json!({
                "chain": code_for_chain(&w.chain),
                "chain_name": chain_name(&w.chain, assets),
                "wallet_type": "SELF_CUSTODY",
                "xpub": w.descriptor,
                "currencies": currencies,
                "address_count": w.next_index,
                "create_time": naive_time(w.created_at),
                "update_time": naive_time(w.updated_at),
            })
        })
        .collect())
}

pub async fn wallets(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    Ok(ok(wallet_list(&state, &authed.merchant).await?))
}

pub async fn self_custody_wallets(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    Ok(ok(wallet_list(&state, &authed.merchant).await?))
}

#[derive(Deserialize)]
struct WithdrawBody {
    amount: Option<Box<RawValue>>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

pub async fn withdraw(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let req: WithdrawBody = parse_json(&body)?;
    let chain = required_text(req.rest.get("chain"), "chain")?;
    let currency = required_text(req.rest.get("currency"), "currency")?;
    let address = required_text(req.rest.get("address"), "address")?;
    let amount = decimal(req.amount.as_deref(), "amount", true)?.unwrap_or_default();
    let assets = state.engine.assets();
    let asset_id = asset_for(&chain, &currency, assets).ok_or_else(|| {
        AurpayError::bad_request(format!(
            "currency: {currency} on chain {chain} is not supported"
        ))
    })?;
    let decimals = assets
        .asset(&asset_id)
        .map(|a| a.decimals)
        .ok_or_else(|| AurpayError::bad_request("currency is not supported"))?;
    let units = BaseUnits::from_decimal(amount, decimals).map_err(|_| {
        AurpayError::bad_request(format!(
            "amount must have at most {} decimal places",
            decimals.get()
        ))
    })?;
    let memo = text(req.rest.get("remark"), "remark")?;
    let payout = state
        .engine
        .request_withdrawal(
            &authed.merchant,
            WithdrawalInput {
                asset: asset_id.clone(),
                amount: units,
                destination: address,
                memo,
                dialect: DIALECT.into(),
                reference: None,
                dialect_data: Map::new(),
            },
        )
        .await
        .map_err(|e| engine_err(e, &[("destination", "address")]))?;
    Ok(ok(json!({
        "withdraw_id": payout.id.to_string(),
        "status": payout_status(payout.status),
        "chain": code_for_chain(asset_id.chain()),
        "currency": currency_code(&asset_id, assets),
        "amount": payout_amount(&payout, assets),
        "address": payout.destination,
        "create_time": naive_time(payout.created_at),
    })))
}

// ---- legacy plugin order endpoints ---------------------------------------------------------

/// Create an order from a legacy plugin's `origin` object (`id`, `price`, `currency`,
/// `callback_url`, `succeed_url`, `url`), optionally for a coin.
async fn legacy_order(
    state: &AurpayState,
    merchant: &MerchantId,
    body: &Map<String, Value>,
    asset: Option<coffer_core::AssetId>,
) -> Result<coffer_core::Order, AurpayError> {
    let origin = match body.get("origin") {
        Some(Value::Object(o)) => o.clone(),
        _ => return Err(AurpayError::bad_request("origin is required (an object)")),
    };
    let price_raw = origin
        .get("price")
        .and_then(|v| RawValue::from_string(v.to_string()).ok());
    let price = decimal(price_raw.as_deref(), "origin.price", true)?.unwrap_or_default();
    let currency = required_text(origin.get("currency"), "origin.currency")?;
    let callback = match text(origin.get("callback_url"), "origin.callback_url")? {
        Some(u) => Some(u),
        None => text(body.get("callback"), "callback")?,
    };
    let links = OrderLinks {
        success_url: http_url(
            text(origin.get("succeed_url"), "origin.succeed_url")?,
            "origin.succeed_url",
        )?,
        expired_url: None,
        callback_url: http_url(callback, "origin.callback_url")?,
    };
    let mut dialect_data = Map::new();
    dialect_data.insert("endpoint".into(), "legacy-plugin".into());
    dialect_data.insert("auth_mode".into(), AuthMode::ApiKey.as_str().into());
    if let Some(p) = text(body.get("platform"), "platform")? {
        dialect_data.insert("platform".into(), p.into());
    }
    let created = state
        .engine
        .create_order(
            merchant,
            NewOrder {
                amount: price,
                currency: currency.to_ascii_uppercase(),
                asset,
                order_no: text(origin.get("id"), "origin.id")?,
                links,
                dialect: DIALECT.into(),
                dialect_data,
                ..NewOrder::default()
            },
        )
        .await
        .map_err(|e| {
            engine_err(
                e,
                &[
                    ("amount", "origin.price"),
                    ("currency", "origin.currency"),
                    ("order_no", "origin.id"),
                ],
            )
        })?;
    Ok(created.order)
}

/// Legacy WooCommerce plugin: `POST /api/order/plugin` → `data.pay_url`.
pub async fn legacy_plugin_order(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let authed = authenticate(&state, &method, &uri, &headers, &body).await?;
    let req: Map<String, Value> = parse_json(&body)?;
    let asset = match (
        text(req.get("chain"), "chain")?,
        text(req.get("currency"), "currency")?,
    ) {
        (Some(chain), Some(currency)) => Some(
            asset_for(&chain, &currency, state.engine.assets()).ok_or_else(|| {
                AurpayError::bad_request(format!(
                    "currency: {currency} on chain {chain} is not supported"
                ))
            })?,
        ),
        _ => None,
    };
    let order = legacy_order(&state, &authed.merchant, &req, asset).await?;
    let pay_url = coffer_engine::view::checkout_url(&order, state.engine.settings());
    Ok(ok(json!({ "pay_url": pay_url })))
}

/// Legacy EDD plugin: `POST /api/order/pay/token` (the key in the body or the header) →
/// `data.token`, the order's checkout token (Coffer's page is `/pay/{token}`).
pub async fn legacy_pay_token(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let req: Map<String, Value> = parse_json(&body)?;
    let merchant =
        if header(&headers, "api-key").is_some() || header(&headers, "api-token").is_some() {
            authenticate(&state, &method, &uri, &headers, &body)
                .await?
                .merchant
        } else {
            let key = text(req.get("key"), "key")?
                .ok_or_else(|| AurpayError::unauthorized("missing API-Key header (or key)"))?;
            state
                .engine
                .find_dialect_credential(&state.master, DIALECT, &key)
                .await?
                .ok_or_else(|| AurpayError::unauthorized("invalid API-Key"))?
                .merchant_id
        };
    let order = legacy_order(&state, &merchant, &req, None).await?;
    Ok(ok(json!({
        "token": order.checkout_token.to_string(),
        "pay_url": coffer_engine::view::checkout_url(&order, state.engine.settings()),
    })))
}

// ---- Lightning, API-Key login, legacy plugin endpoints -------------------------------------

pub async fn lightning_disabled(
    State(state): State<AurpayState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    authenticate(&state, &method, &uri, &headers, &body).await?;
    Err(AurpayError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Lightning is not enabled on this server (BLN endpoints are unavailable)",
    ))
}

/// `username`/`password` from a JSON or form-urlencoded body.
fn credentials_of(headers: &HeaderMap, body: &[u8]) -> Result<(String, String), AurpayError> {
    let form = header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let (mut user, mut pass) = (None, None);
    if form {
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "username" => user = Some(v.into_owned()),
                "password" => pass = Some(v.into_owned()),
                _ => {}
            }
        }
    } else {
        let map: Map<String, Value> = parse_json(body)?;
        user = text(map.get("username"), "username")?;
        pass = match map.get("password") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
    }
    let user = user
        .filter(|u| !u.is_empty())
        .ok_or_else(|| AurpayError::bad_request("username is required"))?;
    let pass = pass
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AurpayError::bad_request("password is required"))?;
    Ok((user, pass))
}

/// "Get API-Key": the merchant's console login → its Aurpay API-Key as `access_token`.
pub async fn get_api_key(
    State(state): State<AurpayState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AurpayError> {
    let (username, password) = credentials_of(&headers, &body)?;
    let checked = state
        .engine
        .verify_merchant_login_throttled(&state.logins, &username, &password)
        .await?;
    let merchant = match checked {
        Ok(found) => {
            found.ok_or_else(|| AurpayError::unauthorized("invalid username or password"))?
        }
        Err(LoginRefusal::Locked { retry_after_secs }) => {
            return Err(AurpayError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many failed logins for this username; try again in {retry_after_secs} s"
                ),
            ));
        }
        Err(LoginRefusal::Busy) => {
            return Err(AurpayError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many logins are being checked; try again shortly",
            ));
        }
    };
    let key = match state
        .engine
        .active_dialect_credential(&state.master, &merchant, DIALECT)
        .await?
    {
        Some(c) => c.key,
        None => {
            state
                .engine
                .create_dialect_credential(&state.master, &merchant, DIALECT)
                .await?
                .key
        }
    };
    Ok(ok(json!({ "access_token": key })))
}

/// Legacy plugin check `GET /api/plugin/key/verify?key=…`: `data` is whether the key is valid.
pub async fn verify_key(
    State(state): State<AurpayState>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, AurpayError> {
    let key = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let valid = state
        .engine
        .find_dialect_credential(&state.master, DIALECT, &key)
        .await?
        .is_some();
    Ok(ok(valid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::fiat_text;

    #[test]
    fn decimals_are_exact() {
        let raw = RawValue::from_string("18.000000000000000001".into()).unwrap();
        assert_eq!(
            decimal(Some(&raw), "p", true).unwrap().unwrap().to_string(),
            "18.000000000000000001"
        );
        let raw = RawValue::from_string("\"19.5\"".into()).unwrap();
        assert_eq!(
            decimal(Some(&raw), "p", true).unwrap().unwrap().to_string(),
            "19.5"
        );
        let raw = RawValue::from_string("true".into()).unwrap();
        assert!(decimal(Some(&raw), "p", true).is_err());
        assert!(decimal(None, "p", true).is_err());
        assert_eq!(decimal(None, "p", false).unwrap(), None);
        assert_eq!(fiat_text(Decimal::from(18)), "18.0");
    }

    #[test]
    fn paging_defaults_and_errors() {
        assert_eq!(paging(None).unwrap(), (1, 10));
        assert_eq!(paging(Some("page=2&size=5")).unwrap(), (2, 5));
        assert!(paging(Some("page=0")).is_err());
        assert!(paging(Some("size=x")).is_err());
    }
}
