//! The Aurpay dialect: Aurpay's merchant API at Aurpay's own paths, translated onto Coffer's
//! engine. A shop integrated with Aurpay switches by changing the base URL and credentials.
//!
//! Thin by design: requests are authenticated ([`auth`], through the shared extractor of
//! `coffer-dialect`), decoded into typed bodies, turned into engine calls, and the results
//! encoded in Aurpay's envelope and field names ([`view`], [`mapping`]). Callbacks go through
//! Coffer's durable outbox with the [`callback::AurpayFormatter`]. [`AurpayDialect`] plugs it
//! into the server.
//! Every decision where Aurpay's docs are silent is in `docs/compat/aurpay.md`.

pub mod auth;
pub mod callback;
mod cashier;
pub mod envelope;
mod handlers;
pub mod mapping;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use coffer_dialect::{CredentialShape, Dialect, DialectDeps, OpenPath};
use coffer_engine::Engine;
use coffer_secrets::MasterKey;
use coffer_webhooks::Formatter;

pub use callback::AurpayFormatter;

/// The dialect's name: `orders.dialect`, the credential kind and the formatter key.
pub const DIALECT: &str = "aurpay";

/// Where Aurpay's API lives: framework-level errors there take its envelope.
pub const PATH_PREFIXES: &[&str] = &["/api/order/", "/api/v2/", "/api/bln/", "/api/plugin/"];

/// Aurpay's credentials: `API-Key` (API-Key mode; the plugins' "Public Key"), `API-Token` and
/// `API-Secret` (signature mode), and the `Callback-Token` and callback secret its callbacks
/// carry and are signed with.
pub const CREDENTIAL: CredentialShape = CredentialShape {
    dialect: DIALECT,
    tag: "aur",
    key: "API-Key",
    key_chars: coffer_engine::dialect_keys::LONG_KEY,
    secret: "API-Secret",
    token: Some("API-Token"),
    callback_token: Some("Callback-Token"),
    callback_secret: Some("callback secret"),
};

/// The Aurpay dialect, for the server's registry.
pub struct AurpayDialect;

impl Dialect for AurpayDialect {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn path_prefixes(&self) -> &'static [&'static str] {
        PATH_PREFIXES
    }

    fn routes(&self, deps: &DialectDeps) -> Router {
        routes(AurpayState::new(deps.engine.clone(), deps.master.clone()))
    }

    fn framework_error(&self, status: StatusCode, message: &str) -> Response {
        envelope::AurpayError::new(status, message).into_response()
    }

    fn credential_shape(&self) -> CredentialShape {
        CREDENTIAL
    }

    fn formatter(&self, deps: &DialectDeps) -> Arc<dyn Formatter> {
        Arc::new(AurpayFormatter {
            assets: deps.engine.assets().clone(),
            retry: deps.retry.clone(),
        })
    }

    /// The legacy plugins' key check and "Get API-Key" (the console login).
    fn open_paths(&self) -> &'static [(&'static str, OpenPath)] {
        &[
            ("/api/plugin/key/verify", OpenPath::Lookup),
            ("/api/plugin/key/aurpay", OpenPath::Login),
        ]
    }
}

/// What the handlers share; it authenticates requests ([`coffer_dialect::Authenticate`]).
#[derive(Clone)]
pub(crate) struct AurpayState {
    pub engine: Engine,
    /// Opens the sealed credentials.
    pub master: Arc<MasterKey>,
    /// Guards "Get API-Key" (username + password) against guessing.
    pub logins: Arc<coffer_engine::logins::LoginThrottle>,
}

impl AurpayState {
    pub(crate) fn new(engine: Engine, master: Arc<MasterKey>) -> Self {
        Self {
            engine,
            master,
            logins: Arc::default(),
        }
    }
}

/// Aurpay's endpoints, at Aurpay's paths.
fn routes(state: AurpayState) -> Router {
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
        .route("/api/v2/wallet/self-custody", get(h::wallets))
        .route("/api/bln/order", post(h::lightning_disabled))
        .route("/api/bln/withdraw", post(h::lightning_disabled))
        .route("/api/bln/balance", get(h::lightning_disabled))
        .route("/api/plugin/key/aurpay", post(h::get_api_key))
        .route("/api/plugin/key/verify", get(h::verify_key))
        .route("/api/order/plugin", post(h::legacy_plugin_order))
        .route("/api/order/pay/token", post(h::legacy_pay_token))
        // Where the pay/token plugins send the buyer: `BASE/#/cashier/choose?token=…`.
        .route("/", get(cashier::entry))
        .with_state(state)
}
