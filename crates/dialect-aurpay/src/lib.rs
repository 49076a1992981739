//! The Aurpay dialect: Aurpay's merchant API at Aurpay's own paths, translated onto Coffer's
//! engine. A shop integrated with Aurpay switches by changing the base URL and credentials.
//!
//! Thin by design: requests are authenticated ([`auth`]), decoded into engine calls, and the
//! results encoded in Aurpay's envelope and field names ([`view`], [`mapping`]). Callbacks go
//! through Coffer's durable outbox with the [`callback::AurpayFormatter`].
//! Every decision where Aurpay's docs are silent is in `docs/compat/aurpay.md`.

pub mod auth;
pub mod callback;
pub mod envelope;
mod handlers;
pub mod mapping;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use coffer_engine::Engine;
use coffer_secrets::MasterKey;
use coffer_webhooks::{Formatter, RetrySchedule};

pub use callback::AurpayFormatter;

/// The dialect's name: `orders.dialect`, the credential kind and the formatter key.
pub const DIALECT: &str = "aurpay";

/// Where Aurpay's API lives: framework-level errors there take its envelope.
pub const PATH_PREFIXES: &[&str] = &["/api/order/", "/api/v2/", "/api/bln/", "/api/plugin/"];

/// A framework-level error (no route, wrong method, body too large, a request rejected before
/// a handler) in Aurpay's envelope.
pub fn framework_error(status: axum::http::StatusCode, message: &str) -> axum::response::Response {
    axum::response::IntoResponse::into_response(envelope::AurpayError::new(status, message))
}

/// What the handlers share.
#[derive(Clone)]
pub struct AurpayState {
    pub engine: Engine,
    /// Opens the sealed credentials.
    pub master: MasterKey,
    /// Guards "Get API-Key" (username + password) against guessing.
    pub logins: std::sync::Arc<coffer_engine::logins::LoginThrottle>,
}

impl AurpayState {
    pub fn new(engine: Engine, master: MasterKey) -> Self {
        Self {
            engine,
            master,
            logins: std::sync::Arc::default(),
        }
    }
}

/// Aurpay's endpoints, at Aurpay's paths, ready to merge next to the native API.
pub fn routes<S: Clone + Send + Sync + 'static>(state: AurpayState) -> Router<S> {
    use handlers as h;
    Router::new()
        .route("/api/order/pay-url", post(h::pay_url))
        .route("/api/order/pay-info", post(h::pay_info))
        .route("/api/v2/order/", get(h::list_orders))
        .route("/api/v2/order", get(h::list_orders))
        .route("/api/v2/order/detail/{order_id}", get(h::order_detail))
        .route("/api/v2/order/refund-info/{order_id}", get(h::refund_info))
        .route(
            "/api/v2/order/refund/{order_id}",
            post(h::refund).get(h::refund),
        )
        .route("/api/v2/tx", get(h::transactions))
        .route("/api/v2/tx/", get(h::transactions))
        .route("/api/order/pay/real-currency", get(h::real_currencies))
        .route("/api/order/pay/crypto-currency", get(h::crypto_currencies))
        .route("/api/v2/wallet", get(h::wallets))
        .route("/api/v2/wallet/", get(h::wallets))
        .route("/api/v2/wallet/withdraw", post(h::withdraw))
        .route("/api/v2/wallet/self-custody", get(h::self_custody_wallets))
        .route("/api/bln/order", post(h::lightning_disabled))
        .route("/api/bln/withdraw", post(h::lightning_disabled))
        .route("/api/bln/balance", get(h::lightning_disabled))
        .route("/api/plugin/key/aurpay", post(h::get_api_key))
        .route("/api/plugin/key/verify", get(h::verify_key))
        .route("/api/order/plugin", post(h::legacy_plugin_order))
        .route("/api/order/pay/token", post(h::legacy_pay_token))
        .with_state(state)
}

/// The formatter of Aurpay callbacks, to register as `formatters.with("aurpay", …)`.
pub fn formatter(engine: &Engine, retry: RetrySchedule) -> Arc<dyn Formatter> {
    Arc::new(AurpayFormatter {
        assets: engine.assets().clone(),
        retry,
    })
}
