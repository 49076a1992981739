//! The native merchant API v1 (`/api/v1/…`): orders, payouts, assets, fiat currencies and wallets,
//! behind API-key authentication, per-key rate limits and idempotency keys; its OpenAPI 3.1
//! document is generated from the handlers and served with a browsable page at `/docs`.

pub mod branding;
pub mod catalog;
pub mod deposits;
pub mod dialects;
pub mod docs;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod orders;
pub(crate) mod paging;
pub mod payouts;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Requests per minute per API key; 0 turns rate limiting off.
    pub rate_limit_per_minute: u32,
    /// How long a duplicate request waits for the first one with the same idempotency key.
    pub idempotency_wait: Duration,
    /// Largest request body (the same as the server's body limit).
    pub body_limit: usize,
    /// The settings each dialect keeps per merchant, by dialect name (from the dialect
    /// registry): what `/api/v1/dialects/{dialect}/settings` accepts.
    pub dialect_settings: Vec<(&'static str, &'static [coffer_engine::SettingSpec])>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            idempotency_wait: Duration::from_secs(2),
            body_limit: 64 * 1024,
            dialect_settings: Vec::new(),
        }
    }
}

/// The v1 routes and their OpenAPI document, before any layer.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut doc = docs::ApiDoc::openapi();
    // The webhook and events routes carry their own state; their description joins here.
    doc.merge(crate::webhooks_routes::WebhooksDoc::openapi());
    OpenApiRouter::with_openapi(doc)
        .routes(routes!(orders::create_order, orders::list_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::choose_asset))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(orders::mark_order))
        .routes(routes!(orders::resolve_order))
        .routes(routes!(orders::repair_order))
        .routes(routes!(orders::order_payments))
        .routes(routes!(payouts::list_payouts))
        .routes(routes!(payouts::get_payout))
        .routes(routes!(payouts::set_payout_status))
        .routes(routes!(catalog::list_assets))
        .routes(routes!(catalog::list_fiat))
        .routes(routes!(catalog::list_rates))
        .routes(routes!(catalog::list_wallets))
        .routes(routes!(catalog::put_wallet))
        .routes(routes!(catalog::put_confirmations))
        .routes(routes!(branding::get_branding, branding::put_branding))
        .routes(routes!(
            deposits::create_deposit_account,
            deposits::list_deposit_accounts
        ))
        .routes(routes!(deposits::get_deposit_account))
        .routes(routes!(deposits::list_deposits))
        .routes(routes!(deposits::get_deposit))
        .routes(routes!(
            dialects::get_dialect_settings,
            dialects::put_dialect_settings
        ))
        .split_for_parts()
}

/// The OpenAPI document of API v1 (3.1).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// API v1 with its layers, plus `/api/v1/openapi.json` and `/docs`, ready to pass to
/// [`crate::router`].
pub fn router(state: &AppState, settings: &ApiSettings) -> Router<AppState> {
    let (api, doc) = routes();
    let layers = middleware::Layers {
        app: state.clone(),
        limiter: Arc::new(middleware::RateLimiter::new(
            settings.rate_limit_per_minute,
            middleware::LIMITED_KEYS,
        )),
        idempotency_wait: settings.idempotency_wait,
        in_flight: Arc::default(),
        body_limit: settings.body_limit,
    };
    let spec = doc.to_json().unwrap_or_else(|_| "{}".into());
    let api = api
        .layer(axum::Extension(dialects::KnownSettings(Arc::new(
            settings.dialect_settings.clone(),
        ))))
        .layer(axum::middleware::from_fn_with_state(
            layers.clone(),
            middleware::idempotency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            layers,
            middleware::authenticate,
        ));
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let spec = spec.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], spec).into_response() }
        }),
    )
    .route("/docs", get(|| async { Html(docs::DOCS_HTML) }))
}
