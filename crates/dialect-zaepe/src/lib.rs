//! The Zaepe dialect (zaepe.com): `POST /v1/payment` and `POST /v1/payment/info`, and its
//! callbacks, translated onto Coffer's engine. See `docs/compat/zaepe.md` for the mappings and
//! every decision the vendor's docs leave open (hash and encoding, nonce retention, callbacks).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_core::order::OrderLinks;
use coffer_core::{AssetId, Event, EventType, Order, OrderId, OrderStatus, Payment, PaymentStatus};
use coffer_dialect::{
    Authenticate, Authenticated, BodyError, CredentialShape, Dialect, DialectDeps, Json,
    LenientDecimal, LenientText, Maybe, RawRequest,
};
use coffer_engine::{AssetRegistry, Engine, EngineError, NewOrder};
use coffer_secrets::MasterKey;
use coffer_webhooks::format::{
    DeliveryRequest, FormatError, FormatInput, Formatter, RetrySchedule, SuccessRule,
};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The dialect name stored on orders and credentials.
pub const DIALECT: &str = "zaepe";

/// Where Zaepe's API lives: framework-level errors there take its envelope.
pub const PATH_PREFIXES: &[&str] = &["/v1/"];

/// Zaepe's credentials: `X-API-Key` and the secret requests and callbacks are signed with.
pub const CREDENTIAL: CredentialShape = CredentialShape {
    dialect: DIALECT,
    tag: "zae",
    key: "X-API-Key",
    key_chars: coffer_engine::dialect_keys::SHORT_KEY,
    secret: "secret",
    token: None,
    callback_token: None,
    callback_secret: None,
};

/// The Zaepe dialect, for the server's registry.
pub struct ZaepeDialect;

impl Dialect for ZaepeDialect {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn path_prefixes(&self) -> &'static [&'static str] {
        PATH_PREFIXES
    }

    fn routes(&self, deps: &DialectDeps) -> Router {
        Router::new()
            .route("/v1/payment", post(create))
            .route("/v1/payment/info", post(info))
            .with_state(Api {
                engine: deps.engine.clone(),
                master: deps.master.clone(),
            })
    }

    fn framework_error(&self, status: StatusCode, message: &str) -> Response {
        let code = match status {
            StatusCode::NOT_FOUND => codes::NOT_FOUND,
            StatusCode::UNAUTHORIZED => codes::UNAUTHORIZED,
            _ => codes::INVALID_PARAMETER,
        };
        ZaepeError::new(status, code, message).into_response()
    }

    fn credential_shape(&self) -> CredentialShape {
        CREDENTIAL
    }

    /// Retries: the server's default schedule (the vendor documents none).
    fn formatter(&self, deps: &DialectDeps) -> Arc<dyn Formatter> {
        Arc::new(ZaepeFormatter {
            engine: deps.engine.clone(),
            retry: deps.retry.clone(),
        })
    }
}

/// Allowed clock difference, both ways.
pub const MAX_SKEW_SECS: i64 = 300;

/// `X-Signature`: HMAC-SHA256 keyed with the secret over `body + "\n" + timestamp + "\n" +
/// nonce`, lower-case hex (what Coffer sends). Requests may use hex (any case) or base64.
pub fn sign(secret: &[u8], body: &[u8], timestamp: &str, nonce: &str) -> String {
    hex::encode(mac(secret, body, timestamp, nonce))
}

fn mac(secret: &[u8], body: &[u8], timestamp: &str, nonce: &str) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Vec::new();
    };
    mac.update(body);
    mac.update(b"\n");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(nonce.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Decode a presented signature: 64 hex digits (either case) or standard base64 of 32 bytes.
fn decode_signature(presented: &str) -> Option<Vec<u8>> {
    let p = presented.trim();
    if p.len() == 64 {
        return hex::decode(p).ok();
    }
    STANDARD.decode(p).ok().filter(|b| b.len() == 32)
}

/// Check a signature (constant-time); the timestamp window is checked by the caller.
pub fn verify(secret: &[u8], body: &[u8], timestamp: &str, nonce: &str, presented: &str) -> bool {
    match decode_signature(presented) {
        Some(bytes) => bool::from(mac(secret, body, timestamp, nonce).ct_eq(&bytes)),
        None => false,
    }
}

#[derive(Clone)]
struct Api {
    engine: Engine,
    master: Arc<MasterKey>,
}

/// An authenticated Zaepe request with payload `P`.
type Signed<P = ()> = coffer_dialect::Signed<Api, P>;

/// Zaepe's error: a non-200 status and `{"code": …, "message": …}`.
#[derive(Debug)]
pub struct ZaepeError {
    status: StatusCode,
    code: u32,
    message: String,
}

/// Error codes (only 10003 is documented; the others are Coffer's, in the same range).
pub mod codes {
    pub const OK: u32 = 10000;
    pub const UNAUTHORIZED: u32 = 10001;
    pub const REPLAYED: u32 = 10002;
    pub const INVALID_PARAMETER: u32 = 10003;
    pub const NOT_FOUND: u32 = 10004;
    pub const CONFLICT: u32 = 10005;
    pub const UNAVAILABLE: u32 = 10006;
    pub const INTERNAL: u32 = 10500;
}

impl ZaepeError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn param(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_PARAMETER,
            format!("Invalid parameter `{field}`: {why}"),
        )
    }

    fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
    }
}

impl From<EngineError> for ZaepeError {
    fn from(err: EngineError) -> Self {
        match &err {
            EngineError::Invalid { field, .. } => {
                let field = match field.unwrap_or("request") {
                    "order_no" => "order_no",
                    "currency" | "asset" => "currency",
                    "description" => "product_name",
                    "callback_url" => "notify_url",
                    "success_url" => "redirect_url",
                    other => other,
                };
                ZaepeError::param(field, &err)
            }
            EngineError::NotFound(what) => ZaepeError::new(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                format!("{what} not found"),
            ),
            EngineError::Conflict { .. } => {
                ZaepeError::new(StatusCode::CONFLICT, codes::CONFLICT, err.to_string())
            }
            EngineError::RateUnavailable { .. } => ZaepeError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::UNAVAILABLE,
                err.to_string(),
            ),
            EngineError::Unauthorized | EngineError::Forbidden(_) => {
                ZaepeError::unauthorized("invalid API key")
            }
            EngineError::Store(_) => {
                tracing::error!(error = %err, "zaepe request failed");
                ZaepeError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL,
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ZaepeError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"code": codes::OK, "message": "OK", "data": data})).into_response()
}

/// X-API-Key, X-Timestamp (±5 min), X-Nonce (single use, remembered 10 minutes) and
/// X-Signature over the raw body. The nonce is spent only once the signature is valid, so a
/// forged request cannot burn a merchant's nonce.
impl Authenticate for Api {
    type Mode = ();
    type Rejection = ZaepeError;

    async fn authenticate(&self, req: &RawRequest) -> Result<Authenticated, ZaepeError> {
        let (Some(key), Some(ts), Some(nonce), Some(signature)) = (
            req.header("x-api-key"),
            req.header("x-timestamp"),
            req.header("x-nonce"),
            req.header("x-signature"),
        ) else {
            return Err(ZaepeError::unauthorized(
                "X-API-Key, X-Timestamp, X-Nonce and X-Signature are required",
            ));
        };
        if nonce.len() > 128 {
            return Err(ZaepeError::unauthorized(
                "X-Nonce is longer than 128 characters",
            ));
        }
        let t: i64 = ts.parse().map_err(|_| {
            ZaepeError::unauthorized("X-Timestamp must be a Unix timestamp in seconds")
        })?;
        let now = self.engine.now();
        if (now.unix_timestamp() - t).abs() > MAX_SKEW_SECS {
            return Err(ZaepeError::unauthorized(
                "X-Timestamp is more than 5 minutes from the server's time",
            ));
        }
        let credential = self
            .engine
            .find_dialect_credential(&self.master, DIALECT, key)
            .await?
            .ok_or_else(|| ZaepeError::unauthorized("invalid X-API-Key or X-Signature"))?;
        if !verify(
            credential.secret.as_bytes(),
            &req.body,
            ts,
            nonce,
            signature,
        ) {
            return Err(ZaepeError::unauthorized("invalid X-API-Key or X-Signature"));
        }
        // Remembered for twice the window: any timestamp still accepted is covered.
        let scope = format!("{DIALECT}:{}", credential.id);
        let until = now + time::Duration::seconds(2 * MAX_SKEW_SECS);
        match self.engine.use_nonce(&scope, nonce, until).await {
            Ok(()) => Ok(Authenticated {
                credential,
                mode: (),
            }),
            Err(EngineError::Conflict { .. }) => Err(ZaepeError::new(
                StatusCode::UNAUTHORIZED,
                codes::REPLAYED,
                "X-Nonce was already used",
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn reject(&self, error: BodyError) -> ZaepeError {
        ZaepeError::param(error.field().unwrap_or("body"), error.problem())
    }
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    order_no: LenientText,
    currency: LenientText,
    amount: LenientDecimal,
    chain_type: LenientText,
    product_name: Option<String>,
    notify_url: LenientText,
    redirect_url: Maybe<LenientText>,
    meta: Option<String>,
}

/// Zaepe's chain names and the EVM chain ids each stands for, mainnet first ("Currently only
/// bsc is supported"; its example sends `BSC`).
pub const VENDOR_CHAINS: &[(&str, &[u64])] = &[("bsc", &[56, 97])];

/// The configured chain `chain_type` names, in any letter case: a Zaepe name is the
/// configured chain with its EVM chain id, whatever the operator called it (`bsc`, `bnb`,
/// `binance`); any other name must be a Coffer chain id (a development chain such as `anvil`).
fn chain_for<'a>(assets: &'a AssetRegistry, chain_type: &str) -> Option<&'a coffer_core::Chain> {
    let by_vendor_name = VENDOR_CHAINS
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(chain_type))
        .flat_map(|(_, ids)| ids.iter())
        .find_map(|id| assets.chains().find(|c| c.evm_chain_id == Some(*id)));
    by_vendor_name.or_else(|| {
        assets
            .chains()
            .find(|c| c.id.as_str().eq_ignore_ascii_case(chain_type))
    })
}

/// The USDT asset of the chain named by `chain_type` ([`chain_for`]).
fn usdt_on(assets: &AssetRegistry, chain_type: &str) -> Option<AssetId> {
    let chain = chain_for(assets, chain_type)?;
    assets
        .assets()
        .find(|a| a.chain() == &chain.id && a.symbol().as_str().eq_ignore_ascii_case("USDT"))
        .map(|a| a.id.clone())
}

async fn create(
    State(api): State<Api>,
    signed: Signed<Json<CreateBody>>,
) -> Result<Response, ZaepeError> {
    let Json(b) = signed.payload;
    let order_no = b.order_no.as_str();
    if !(8..=32).contains(&order_no.len()) || !order_no.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ZaepeError::param(
            "order_no",
            "must be 8 to 32 letters or digits",
        ));
    }
    let amount = b.amount.value();
    if !amount.is_sign_positive() || amount.is_zero() {
        return Err(ZaepeError::param(
            "amount",
            "must be a positive decimal string",
        ));
    }
    let chain_type = b.chain_type.as_str();
    let notify_url = b.notify_url.as_str();
    if let Some(name) = &b.product_name
        && name.chars().count() > 32
    {
        return Err(ZaepeError::param(
            "product_name",
            "must be at most 32 characters",
        ));
    }
    let asset = usdt_on(api.engine.assets(), chain_type)
        .ok_or_else(|| ZaepeError::param("chain_type", "chain is not supported"))?;
    let mut data = Map::new();
    data.insert("chain_type".into(), chain_type.to_ascii_lowercase().into());
    data.insert("notify_url".into(), notify_url.into());
    if let Some(meta) = &b.meta {
        data.insert("meta".into(), meta.clone().into());
    }
    // Echoed as sent.
    data.insert("amount".into(), b.amount.as_sent().into());
    let created = api
        .engine
        .create_order(
            &signed.merchant,
            NewOrder {
                amount,
                currency: b.currency.as_str().to_ascii_uppercase(),
                asset: Some(asset),
                order_no: Some(order_no.to_owned()),
                description: b.product_name.clone().filter(|p| !p.is_empty()),
                links: OrderLinks {
                    success_url: b.redirect_url.text(),
                    expired_url: None,
                    callback_url: Some(notify_url.to_owned()),
                },
                dialect: DIALECT.into(),
                dialect_data: data,
                credential_id: Some(signed.credential.id.clone()),
                ..NewOrder::default()
            },
        )
        .await?;
    let o = &created.order;
    Ok(ok(json!({
        "id": o.id.as_str(),
        "order_no": o.order_no,
        "currency": o.currency,
        "amount": original_amount(o),
        "order_amount": order_amount(o, api.engine.assets()),
        "cancel_time": o.expires_at.unix_timestamp(),
        "state": state(o),
        "pay_url": coffer_engine::view::checkout_url(o, api.engine.settings()),
    })))
}

#[derive(Debug, Deserialize)]
struct InfoBody {
    order_no: LenientText,
}

async fn info(
    State(api): State<Api>,
    signed: Signed<Json<InfoBody>>,
) -> Result<Response, ZaepeError> {
    let no = signed.payload.0.order_no;
    let m = &signed.merchant;
    // The merchant's order number, or Coffer's order id (Zaepe's "system order number").
    let order = match no.as_str().parse::<OrderId>() {
        Ok(id) => api.engine.find_merchant_order(m, &id).await,
        Err(_) => api.engine.order_by_no(m, no.as_str()).await,
    }?
    .ok_or_else(|| ZaepeError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "order not found"))?;
    let payments = api.engine.payments_of(&order).await?;
    Ok(ok(order_json(&order, &payments, &api.engine)))
}

fn original_amount(o: &Order) -> String {
    coffer_dialect::amount_as_sent(o, "amount")
}

fn order_amount(o: &Order, assets: &AssetRegistry) -> String {
    o.target
        .as_ref()
        .and_then(|t| {
            assets
                .asset(&t.asset)
                .map(|a| t.amount_due.format(a.decimals))
        })
        .unwrap_or_default()
}

/// `state`: 1 unpaid (pending, incl. partially paid, or seen but unconfirmed), 2 paid,
/// 3 expired/cancelled (Coffer's choice: the vendor documents only 1 and 2), 4 refunded.
pub fn state(o: &Order) -> u8 {
    match o.state.status {
        OrderStatus::Pending | OrderStatus::Processing => 1,
        OrderStatus::Settled => 2,
        OrderStatus::Expired | OrderStatus::Invalid => 3,
        OrderStatus::Refunded => 4,
    }
}

/// The info object (also the callback body).
pub fn order_json_parts(
    o: &Order,
    payments: &[Payment],
    assets: &AssetRegistry,
    pay_url: String,
) -> Value {
    let mut v = json!({
        "id": o.id.as_str(),
        "order_no": o.order_no,
        "currency": o.currency,
        "amount": original_amount(o),
        "chain_type": o.dialect_data.get("chain_type").cloned().unwrap_or(Value::from("bsc")),
        "order_amount": order_amount(o, assets),
        "product_name": o.description.clone().unwrap_or_default(),
        "cancel_time": o.expires_at.unix_timestamp(),
        "meta": o.dialect_data.get("meta").cloned().unwrap_or(Value::from("")),
        "state": state(o),
    });
    if let Value::Object(map) = &mut v {
        if state(o) == 2 {
            let counted: Vec<&Payment> = payments
                .iter()
                .filter(|p| p.match_status.counts() && p.status != PaymentStatus::Reversed)
                .collect();
            let decimals = o
                .target
                .as_ref()
                .and_then(|t| assets.asset(&t.asset))
                .map(|a| a.decimals);
            map.insert(
                "pay_amount".into(),
                decimals
                    .map(|d| o.totals.confirmed.format(d))
                    .unwrap_or_default()
                    .into(),
            );
            map.insert("fee".into(), "0".into());
            map.insert(
                "txid".into(),
                counted
                    .last()
                    .map(|p| p.txid.clone())
                    .unwrap_or_default()
                    .into(),
            );
            map.insert(
                "pay_time".into(),
                counted
                    .last()
                    .map_or(0, |p| p.occurred_at.unix_timestamp())
                    .into(),
            );
        } else {
            map.insert("pay_url".into(), pay_url.into());
        }
    }
    v
}

fn order_json(o: &Order, payments: &[Payment], engine: &Engine) -> Value {
    order_json_parts(
        o,
        payments,
        engine.assets(),
        coffer_engine::view::checkout_url(o, engine.settings()),
    )
}

// ---- callbacks ------------------------------------------------------------------------------

/// Zaepe callbacks: POST the info object to `notify_url` when the order is paid or expires,
/// with `X-API-Key`, `X-Timestamp`, `X-Nonce` and `X-Signature` computed like a request's.
/// Success: HTTP 200. Retries: Coffer's default schedule (about three days).
pub struct ZaepeFormatter {
    engine: Engine,
    retry: RetrySchedule,
}

impl Formatter for ZaepeFormatter {
    fn build(&self, input: &FormatInput<'_>) -> Result<DeliveryRequest, FormatError> {
        let context = input
            .context
            .ok_or_else(|| FormatError("no order context".into()))?;
        let order = context
            .order
            .as_ref()
            .ok_or_else(|| FormatError("the order of the event is gone".into()))?;
        let credential = context
            .credential
            .as_ref()
            .ok_or_else(|| FormatError("the merchant has no active Zaepe credential".into()))?;
        let body = serde_json::to_vec(&order_json(order, &context.payments, &self.engine))
            .map_err(|e| FormatError(e.to_string()))?;
        let ts = input.now.unix_timestamp().to_string();
        // Unique per attempt: the delivery id and the attempt time.
        let nonce = format!(
            "{}{}",
            input.delivery.id.as_str().trim_start_matches("dlv_"),
            input.now.unix_timestamp_nanos() % 1_000_000_000
        );
        let signature = sign(credential.secret.as_bytes(), &body, &ts, &nonce);
        Ok(DeliveryRequest {
            method: http::Method::POST,
            url: input.delivery.url.clone(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-api-key".into(), credential.key.clone()),
                ("x-timestamp".into(), ts),
                ("x-nonce".into(), nonce),
                ("x-signature".into(), signature),
            ],
            body,
            success: SuccessRule::Exactly200,
            retry: self.retry.clone(),
        })
    }

    fn callback_url(&self, event: &Event, order: &Order) -> Option<String> {
        let fires = matches!(
            event.kind,
            EventType::OrderSettled
                | EventType::OrderPaidOver
                | EventType::OrderPaidLate
                | EventType::OrderExpired
                | EventType::OrderInvalid
        );
        // No reversal message exists in the protocol: a state a reorg undid and the chain
        // redid (`restored`) was called back already and is not again.
        if !fires || event.restored() {
            return None;
        }
        order
            .dialect_data
            .get("notify_url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| order.links.callback_url.clone())
            .filter(|u| !u.is_empty())
    }

    fn needs_context(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_signatures() {
        let hex_sig = sign(b"k", b"{}", "1700000000", "n1");
        assert_eq!(hex_sig.len(), 64);
        assert!(verify(b"k", b"{}", "1700000000", "n1", &hex_sig));
        assert!(verify(
            b"k",
            b"{}",
            "1700000000",
            "n1",
            &hex_sig.to_uppercase()
        ));
        let b64 = STANDARD.encode(hex::decode(&hex_sig).unwrap());
        assert!(verify(b"k", b"{}", "1700000000", "n1", &b64));
        assert!(!verify(b"k", b"{}", "1700000000", "n2", &hex_sig));
        assert!(!verify(b"k", b"{} ", "1700000000", "n1", &hex_sig));
        assert!(!verify(b"k", b"{}", "1700000000", "n1", "nonsense"));
    }
}
