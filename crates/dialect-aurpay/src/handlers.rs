//! The endpoint handlers: authenticated and decoded by the extractor, then one engine call,
//! then Aurpay's envelope.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::order::OrderLinks;
use coffer_core::{
    AssetId, BaseUnits, MerchantId, OrderId, PayoutKind, PayoutRequest, PayoutStatus,
};
use coffer_dialect::lenient::Scalar;
use coffer_dialect::{
    Authenticate, Authenticated, BodyError, FromScalar, Json, JsonOrEmpty, JsonOrForm, JsonPair,
    LenientDecimal, LenientFlag, LenientInt, LenientText, Maybe, Payload, Query, RawRequest,
    decode_pairs,
};
use coffer_engine::logins::LoginRefusal;
use coffer_engine::{DialectCredential, EngineError, NewOrder, RefundInput, WithdrawalInput};
use coffer_store::PayoutQuery;
use serde::Deserialize;
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

/// An authenticated Aurpay request with payload `P`.
type Signed<P = ()> = coffer_dialect::Signed<AurpayState, P>;

/// API-Key mode (`API-Key`, any case) or signature mode (`API-Token` + `Algorithm`, `Date`,
/// `Body-MD5`, `Signature` over the raw body).
impl Authenticate for AurpayState {
    type Mode = AuthMode;
    type Rejection = AurpayError;

    async fn authenticate(&self, req: &RawRequest) -> Result<Authenticated<AuthMode>, AurpayError> {
        let engine = &self.engine;
        if let Some(token) = req.header("api-token") {
            let credential = engine
                .find_dialect_credential_by_token(&self.master, DIALECT, token)
                .await?
                .ok_or_else(|| AurpayError::unauthorized("invalid API-Token"))?;
            let signed = SignedHeaders {
                algorithm: req.header("algorithm"),
                date: req.header("date"),
                body_md5: req.header("body-md5"),
                signature: req.header("signature"),
            };
            auth::verify_request(
                &credential.secret,
                signed,
                req.method.as_str(),
                req.path(),
                req.query(),
                &req.body,
                engine.now(),
            )
            .map_err(|e| AurpayError::unauthorized(e.message()))?;
            return Ok(Authenticated {
                credential,
                mode: AuthMode::Signature,
            });
        }
        if let Some(key) = req.header("api-key") {
            let credential = engine
                .find_dialect_credential(&self.master, DIALECT, key)
                .await?
                .ok_or_else(|| AurpayError::unauthorized("invalid API-Key"))?;
            return Ok(Authenticated {
                credential,
                mode: AuthMode::ApiKey,
            });
        }
        Err(AurpayError::unauthorized(
            "missing API-Key header (or API-Token with a Signature)",
        ))
    }

    fn reject(&self, error: BodyError) -> AurpayError {
        AurpayError::bad_request(error.to_string())
    }
}

// ---- field types and helpers ---------------------------------------------------------------

/// An http(s) URL (Aurpay's callback and redirect fields).
#[derive(Debug, Clone)]
pub(crate) struct HttpUrl(String);

impl FromScalar for HttpUrl {
    fn from_scalar(scalar: &Scalar) -> Result<Self, String> {
        let text = scalar.text().unwrap_or_default();
        match url::Url::parse(text) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(HttpUrl(text.into())),
            _ => Err("must be an http(s) URL".into()),
        }
    }
}

fn url(field: Maybe<HttpUrl>) -> Option<String> {
    field.0.map(|u| u.0)
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

/// The asset an Aurpay (`chain`, `currency`) pair names, or a 400 naming both.
fn asset_of(state: &AurpayState, chain: &str, currency: &str) -> Result<AssetId, AurpayError> {
    asset_for(chain, currency, state.engine.assets()).ok_or_else(|| {
        AurpayError::bad_request(format!(
            "currency: {currency} on chain {chain} is not supported (see /api/order/pay/crypto-currency)"
        ))
    })
}

/// `page` and `size` of a list (defaults 1 and 10; size at most 500).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Paging {
    page: Maybe<LenientInt>,
    size: Maybe<LenientInt>,
}

impl Paging {
    fn get(&self) -> Result<(u32, u32), AurpayError> {
        let positive = |v: &Maybe<LenientInt>, name: &str, default: u32| match v.as_ref() {
            None => Ok(default),
            Some(n) => u32::try_from(n.0).ok().filter(|n| *n >= 1).ok_or_else(|| {
                AurpayError::bad_request(format!("{name} must be a positive integer"))
            }),
        };
        let page = positive(&self.page, "page", 1)?;
        let size = positive(&self.size, "size", 10)?.min(coffer_engine::pages::MAX_PAGE_SIZE);
        Ok((page, size))
    }
}

fn page_json(page: u32, size: u32, total: u64, data: Vec<Value>) -> Value {
    let max_page = total.div_ceil(u64::from(size.max(1)));
    json!({"page": page, "size": size, "total": total, "max_page": max_page, "data": data})
}

// ---- orders ------------------------------------------------------------------------------

/// The optional fields pay-url and pay-info share.
#[derive(Debug, Deserialize)]
pub(crate) struct OrderOptions {
    succeed_url: Maybe<HttpUrl>,
    /// The docs spell it both ways (`succend_url` in the prose, `succeed_url` in the example).
    succend_url: Maybe<HttpUrl>,
    timeout_url: Maybe<HttpUrl>,
    callback_url: Maybe<HttpUrl>,
    timeout_callback: Maybe<HttpUrl>,
    enable_post_callback: LenientFlag,
    fixed_encrypt_price: LenientFlag,
    /// Undocumented but sent by some clients: the shop's own order id. Kept as Coffer's
    /// `order_no`, so a repeated request returns the same order.
    id: Maybe<LenientText>,
}

impl OrderOptions {
    /// The order to create for `merchant`: `amount` in `currency`, these options, made
    /// through `endpoint` in `mode` with the credential `credential_id`.
    fn order(
        self,
        credential_id: &str,
        mode: AuthMode,
        endpoint: &str,
        amount: &LenientDecimal,
        currency: &str,
    ) -> NewOrder {
        let mut dialect_data = Map::new();
        dialect_data.insert("endpoint".into(), endpoint.into());
        dialect_data.insert("auth_mode".into(), mode.as_str().into());
        dialect_data.insert(
            "enable_post_callback".into(),
            self.enable_post_callback.0.into(),
        );
        if let Some(t) = url(self.timeout_callback) {
            dialect_data.insert("timeout_callback".into(), t.into());
        }
        NewOrder {
            amount: amount.value(),
            currency: currency.to_ascii_uppercase(),
            order_no: self.id.text(),
            links: OrderLinks {
                success_url: url(self.succeed_url).or(url(self.succend_url)),
                expired_url: url(self.timeout_url),
                callback_url: url(self.callback_url),
            },
            fixed_stablecoin_rate: self.fixed_encrypt_price.0,
            dialect: DIALECT.into(),
            dialect_data,
            credential_id: Some(credential_id.to_owned()),
            ..NewOrder::default()
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PayUrlBody {
    price: LenientDecimal,
    currency: LenientText,
}

pub async fn pay_url(
    State(state): State<AurpayState>,
    signed: Signed<JsonPair<PayUrlBody, OrderOptions>>,
) -> Result<Response, AurpayError> {
    let JsonPair(body, options) = signed.payload;
    let order = options.order(
        &signed.credential.id,
        signed.mode,
        "pay-url",
        &body.price,
        body.currency.as_str(),
    );
    let created = state
        .engine
        .create_order(&signed.merchant, order)
        .await
        .map_err(|e| engine_err(e, &[("amount", "price")]))?;
    let pay_url = coffer_engine::view::checkout_url(&created.order, state.engine.settings());
    Ok(ok(json!({ "pay_url": pay_url })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PayInfoBody {
    chain: LenientText,
    currency: LenientText,
    vs_currency: LenientText,
    vs_price: LenientDecimal,
}

#[derive(serde::Serialize)]
struct PayInfo {
    order_id: String,
    status: &'static str,
    amount: Box<serde_json::value::RawValue>,
    create_time: String,
    vs_currency: String,
    vs_price: Box<serde_json::value::RawValue>,
    address: String,
    contract_addr: String,
    pay_url: String,
}

pub async fn pay_info(
    State(state): State<AurpayState>,
    signed: Signed<JsonPair<PayInfoBody, OrderOptions>>,
) -> Result<Response, AurpayError> {
    let JsonPair(body, options) = signed.payload;
    let asset = asset_of(&state, body.chain.as_str(), body.currency.as_str())?;
    let order = NewOrder {
        asset: Some(asset),
        ..options.order(
            &signed.credential.id,
            signed.mode,
            "pay-info",
            &body.vs_price,
            body.vs_currency.as_str(),
        )
    };
    let created = state
        .engine
        .create_order(&signed.merchant, order)
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
    let assets = state.engine.assets();
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
    signed: Signed<Query<Paging>>,
) -> Result<Response, AurpayError> {
    let (page, size) = signed.payload.0.get()?;
    let result = state
        .engine
        .orders_page(&signed.merchant, page, size)
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
    Path(order_id): Path<String>,
    signed: Signed,
) -> Result<Response, AurpayError> {
    let id = parse_order_id(&order_id)?;
    let order = state.engine.get_order(&signed.merchant, &id).await?;
    let payments = state.engine.order_payments(&signed.merchant, &id).await?;
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
    Path(order_id): Path<String>,
    signed: Signed,
) -> Result<Response, AurpayError> {
    let merchant = &signed.merchant;
    let id = parse_order_id(&order_id)?;
    let order = state.engine.get_order(merchant, &id).await?;
    let payments = state.engine.order_payments(merchant, &id).await?;
    let assets = state.engine.assets();
    let refund = latest_refund(&state, merchant, &id).await?;
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

/// "This request does not require a request body": everything is optional.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RefundBody {
    address: Maybe<LenientText>,
    refund_address: Maybe<LenientText>,
    wallet_address: Maybe<LenientText>,
    amount: Option<LenientDecimal>,
    remark: Maybe<LenientText>,
}

/// `amount` in the base units of `asset`, or a 400 naming the field.
fn base_units(
    amount: &LenientDecimal,
    decimals: coffer_core::Decimals,
) -> Result<BaseUnits, AurpayError> {
    BaseUnits::from_decimal(amount.value(), decimals).map_err(|_| {
        AurpayError::bad_request(format!(
            "amount must have at most {} decimal places",
            decimals.get()
        ))
    })
}

pub async fn refund(
    State(state): State<AurpayState>,
    Path(order_id): Path<String>,
    signed: Signed<JsonOrEmpty<RefundBody>>,
) -> Result<Response, AurpayError> {
    let JsonOrEmpty(body) = signed.payload;
    let id = parse_order_id(&order_id)?;
    let order = state.engine.get_order(&signed.merchant, &id).await?;
    let address = body
        .address
        .text()
        .or(body.refund_address.text())
        .or(body.wallet_address.text());
    let amount = match &body.amount {
        None => None,
        Some(a) => {
            let asset = order
                .target
                .as_ref()
                .and_then(|t| state.engine.assets().asset(&t.asset))
                .ok_or_else(|| AurpayError::bad_request("the order has no coin to refund"))?;
            Some(base_units(a, asset.decimals)?)
        }
    };
    let payout = state
        .engine
        .request_refund(
            &signed.merchant,
            &id,
            RefundInput {
                amount,
                destination: address,
                memo: body.remark.text(),
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
    signed: Signed<Query<Paging>>,
) -> Result<Response, AurpayError> {
    let (page, size) = signed.payload.0.get()?;
    let result = state
        .engine
        .payments_page(&signed.merchant, page, size)
        .await?;
    let data = result
        .items
        .iter()
        .map(|p| view::tx_json(p, state.engine.assets()))
        .collect();
    Ok(ok(page_json(page, size, result.total, data)))
}

pub async fn real_currencies(_: Signed) -> Result<Response, AurpayError> {
    let data: Vec<Value> = coffer_core::fiat::FIAT_CURRENCIES
        .iter()
        .map(|c| json!({"currency": c.code, "name": c.name, "precision": c.minor_units}))
        .collect();
    Ok(ok(data))
}

pub async fn crypto_currencies(
    State(state): State<AurpayState>,
    _: Signed,
) -> Result<Response, AurpayError> {
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

/// `GET /api/v2/wallet` and `/api/v2/wallet/self-custody`: every Coffer wallet is
/// self-custody.
pub async fn wallets(
    State(state): State<AurpayState>,
    signed: Signed,
) -> Result<Response, AurpayError> {
    let assets = state.engine.assets();
    let wallets = state.engine.list_wallets(&signed.merchant).await?;
    let data: Vec<Value> = wallets
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
        .collect();
    Ok(ok(data))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WithdrawBody {
    chain: LenientText,
    currency: LenientText,
    address: LenientText,
    amount: LenientDecimal,
    remark: Maybe<LenientText>,
}

pub async fn withdraw(
    State(state): State<AurpayState>,
    signed: Signed<Json<WithdrawBody>>,
) -> Result<Response, AurpayError> {
    let Json(body) = signed.payload;
    let assets = state.engine.assets();
    let asset_id = asset_of(&state, body.chain.as_str(), body.currency.as_str())?;
    let decimals = assets
        .asset(&asset_id)
        .map(|a| a.decimals)
        .ok_or_else(|| AurpayError::bad_request("currency is not supported"))?;
    let payout = state
        .engine
        .request_withdrawal(
            &signed.merchant,
            WithdrawalInput {
                asset: asset_id.clone(),
                amount: base_units(&body.amount, decimals)?,
                destination: body.address.0,
                memo: body.remark.text(),
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

/// A legacy plugin's order: `origin` (`id`, `price`, `currency`, `callback_url`,
/// `succeed_url`), `callback`, `platform`; optionally a coin (`chain`, `currency`); the EDD
/// plugin may send its key as `key`.
#[derive(Debug, Deserialize)]
pub(crate) struct LegacyBody {
    origin: LegacyOrigin,
    callback: Maybe<HttpUrl>,
    platform: Maybe<LenientText>,
    chain: Maybe<LenientText>,
    currency: Maybe<LenientText>,
    key: Maybe<LenientText>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LegacyOrigin {
    id: Maybe<LenientText>,
    price: LenientDecimal,
    currency: LenientText,
    callback_url: Maybe<HttpUrl>,
    succeed_url: Maybe<HttpUrl>,
}

/// Create a legacy plugin's order through `endpoint` with `credential`, optionally for a coin.
async fn legacy_order(
    state: &AurpayState,
    credential: &DialectCredential,
    endpoint: &str,
    body: LegacyBody,
    asset: Option<AssetId>,
) -> Result<coffer_core::Order, AurpayError> {
    let origin = body.origin;
    let mut dialect_data = Map::new();
    dialect_data.insert("endpoint".into(), endpoint.into());
    dialect_data.insert("auth_mode".into(), AuthMode::ApiKey.as_str().into());
    if let Some(p) = body.platform.text() {
        dialect_data.insert("platform".into(), p.into());
    }
    let created = state
        .engine
        .create_order(
            &credential.merchant_id,
            NewOrder {
                amount: origin.price.value(),
                currency: origin.currency.as_str().to_ascii_uppercase(),
                asset,
                order_no: origin.id.text(),
                links: OrderLinks {
                    success_url: url(origin.succeed_url),
                    expired_url: None,
                    callback_url: url(origin.callback_url).or(url(body.callback)),
                },
                dialect: DIALECT.into(),
                dialect_data,
                credential_id: Some(credential.id.clone()),
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

/// `endpoint` of orders made by the old WooCommerce plugin (`POST /api/order/plugin`).
const LEGACY_PLUGIN: &str = "legacy-plugin";
/// `endpoint` of orders made through `POST /api/order/pay/token`: their callback URLs get
/// `public_key=` (see [`crate::callback`]).
pub(crate) const PAY_TOKEN: &str = "pay-token";

/// Legacy WooCommerce plugin: `POST /api/order/plugin` → `data.pay_url`.
pub async fn legacy_plugin_order(
    State(state): State<AurpayState>,
    signed: Signed<Json<LegacyBody>>,
) -> Result<Response, AurpayError> {
    let Json(body) = signed.payload;
    let asset = match (body.chain.as_ref(), body.currency.as_ref()) {
        (Some(chain), Some(currency)) => Some(asset_of(&state, chain.as_str(), currency.as_str())?),
        _ => None,
    };
    let order = legacy_order(&state, &signed.credential, LEGACY_PLUGIN, body, asset).await?;
    let pay_url = coffer_engine::view::checkout_url(&order, state.engine.settings());
    Ok(ok(json!({ "pay_url": pay_url })))
}

/// Legacy EDD plugin: `POST /api/order/pay/token` (the key in the header or the body) →
/// `data.token`, the order's checkout token (Coffer's page is `/pay/{token}`).
pub async fn legacy_pay_token(
    State(state): State<AurpayState>,
    req: RawRequest,
) -> Result<Response, AurpayError> {
    let by_header = req.header("api-key").is_some() || req.header("api-token").is_some();
    let header_credential = if by_header {
        Some(state.authenticate(&req).await?.credential)
    } else {
        None
    };
    let Json(body) = Json::<LegacyBody>::decode(&req).map_err(|e| state.reject(e))?;
    let credential = match header_credential {
        Some(c) => c,
        None => {
            let key = body
                .key
                .as_ref()
                .ok_or_else(|| AurpayError::unauthorized("missing API-Key header (or key)"))?;
            state
                .engine
                .find_dialect_credential(&state.master, DIALECT, key.as_str())
                .await?
                .ok_or_else(|| AurpayError::unauthorized("invalid API-Key"))?
        }
    };
    let order = legacy_order(&state, &credential, PAY_TOKEN, body, None).await?;
    Ok(ok(json!({
        "token": order.checkout_token.to_string(),
        "pay_url": coffer_engine::view::checkout_url(&order, state.engine.settings()),
    })))
}

// ---- Lightning, API-Key login, key check ----------------------------------------------------

pub async fn lightning_disabled(_: Signed) -> Result<Response, AurpayError> {
    Err(AurpayError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Lightning is not enabled on this server (BLN endpoints are unavailable)",
    ))
}

/// The console login, as JSON or a form.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginBody {
    username: LenientText,
    /// Not trimmed: a password is exactly what was typed.
    password: Option<String>,
}

/// "Get API-Key": the merchant's console login → its Aurpay API-Key as `access_token`.
pub async fn get_api_key(
    State(state): State<AurpayState>,
    req: RawRequest,
) -> Result<Response, AurpayError> {
    let JsonOrForm(body) = JsonOrForm::<LoginBody>::decode(&req).map_err(|e| state.reject(e))?;
    let password = body
        .password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AurpayError::bad_request("password is required"))?;
    let checked = state
        .engine
        .verify_merchant_login_throttled(&state.logins, body.username.as_str(), &password)
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
                .create_dialect_credential(&state.master, &merchant, &crate::CREDENTIAL)
                .await?
                .key
        }
    };
    Ok(ok(json!({ "access_token": key })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyQuery {
    key: Option<String>,
}

/// Legacy plugin check `GET /api/plugin/key/verify?key=…`: `data` is whether the key is valid.
pub async fn verify_key(
    State(state): State<AurpayState>,
    req: RawRequest,
) -> Result<Response, AurpayError> {
    let q: KeyQuery =
        decode_pairs(req.query().unwrap_or_default().as_bytes()).map_err(|e| state.reject(e))?;
    let valid = state
        .engine
        .find_dialect_credential(&state.master, DIALECT, q.key.as_deref().unwrap_or_default())
        .await?
        .is_some();
    Ok(ok(valid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::fiat_text;
    use rust_decimal::Decimal;

    #[test]
    fn decimals_are_exact() {
        let body: PayUrlBody =
            coffer_dialect::decode_json(br#"{"price":18.000000000000000001,"currency":"USD"}"#)
                .unwrap();
        assert_eq!(body.price.value().to_string(), "18.000000000000000001");
        let body: PayUrlBody =
            coffer_dialect::decode_json(br#"{"price":"19.5","currency":"USD"}"#).unwrap();
        assert_eq!(body.price.value().to_string(), "19.5");
        for bad in [
            r#"{"price":true,"currency":"USD"}"#,
            r#"{"currency":"USD"}"#,
        ] {
            let err = coffer_dialect::decode_json::<PayUrlBody>(bad.as_bytes()).err();
            assert_eq!(
                err.as_ref().and_then(BodyError::field),
                Some("price"),
                "{bad}"
            );
        }
        let refund: RefundBody = coffer_dialect::decode_json(b"{}").unwrap();
        assert!(refund.amount.is_none());
        assert_eq!(fiat_text(Decimal::from(18)), "18.0");
    }

    #[test]
    fn paging_defaults_and_errors() {
        let paging = |q: &str| decode_pairs::<Paging>(q.as_bytes()).unwrap().get();
        assert_eq!(paging("").unwrap(), (1, 10));
        assert_eq!(paging("page=2&size=5").unwrap(), (2, 5));
        assert_eq!(paging("size=100000").unwrap(), (1, 500));
        assert!(paging("page=0").is_err());
        assert!(decode_pairs::<Paging>(b"size=x").is_err());
    }
}
