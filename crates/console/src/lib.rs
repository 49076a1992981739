//! Coffer's web console at `/console`: merchants run their shop from it (orders, refunds,
//! payouts, keys, webhooks, wallets, branding, team) and operators set up and watch the
//! server (merchants, chains, rates, webhook backlog, the first-run checklist).
//!
//! Built like the checkout: server-rendered HTML (maud), a small stylesheet and script inline
//! under a per-response CSP nonce, nothing loaded from elsewhere, readable without
//! JavaScript, the checkout's five languages. Every read and action goes through the engine;
//! accounts, sessions, TOTP and permissions are the engine's `console` module. This crate
//! renders, checks the CSRF token of every form and writes the audit log.

// Helpers answer `Err(the page to show)` (sign in, 403, a form's errors): it is built once per
// request and returned straight from the handler, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod account;
mod auth;
mod chart;
mod form;
pub mod i18n;
mod layout;
mod merchant;
mod operator;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use coffer_core::ChainId;
use coffer_engine::Engine;
use coffer_engine::logins::LoginThrottle;
use coffer_secrets::MasterKey;
use coffer_webhooks::service::WebhookService;
use time::OffsetDateTime;

pub use auth::{SESSION_COOKIE, SESSION_COOKIE_SECURE};

/// One `/readyz` check as the console shows it: name, whether it is fine, its facts.
pub type HealthCheck = (String, bool, serde_json::Value);

/// Facts about the running server shown to operators.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub version: String,
    pub started_at: OffsetDateTime,
    /// The address the server listens on.
    pub listen: String,
}

/// The console's options, from the configuration.
#[derive(Clone)]
pub struct ConsoleSettings {
    /// The server's public base URL: links (invitations) start with it, and session cookies
    /// are `Secure` when it is `https://`.
    pub public_url: String,
    /// Per chain: the explorer's transaction URL with `{txid}`.
    pub explorers: BTreeMap<ChainId, String>,
    /// The readiness checks of the server's background parts (chain watchers).
    pub health: fn() -> Vec<HealthCheck>,
    pub server: ServerFacts,
    /// The credential shape of every registered dialect (`Dialect::credential_shape`), in
    /// the registry's order: the kinds of vendor credentials a merchant can create here.
    pub credentials: Vec<coffer_engine::dialect_keys::CredentialShape>,
}

/// The console's shared state.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    master: MasterKey,
    webhooks: WebhookService,
    settings: ConsoleSettings,
    throttle: LoginThrottle,
}

impl Console {
    pub fn new(
        engine: Engine,
        master: MasterKey,
        webhooks: WebhookService,
        settings: ConsoleSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine,
                master,
                webhooks,
                settings,
                throttle: LoginThrottle::default(),
            }),
        }
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn settings(&self) -> &ConsoleSettings {
        &self.inner.settings
    }

    /// Cookies get `Secure` (and the `__Host-` prefix) when the console is served over HTTPS.
    fn secure(&self) -> bool {
        self.inner.settings.public_url.starts_with("https://")
    }

    /// `{public_url}{path}`.
    fn link(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.inner.settings.public_url.trim_end_matches('/')
        )
    }
}

/// The setup link printed at start-up and by `coffer console setup-link`: whoever opens it
/// first becomes the first operator.
pub fn setup_link(public_url: &str, token: &str) -> String {
    format!(
        "{}/console/join?token={token}",
        public_url.trim_end_matches('/')
    )
}

/// The console's routes, to merge next to the APIs.
pub fn router<S: Clone + Send + Sync + 'static>(console: Console) -> Router<S> {
    use merchant::{
        audit as m_audit, dashboard, deposits, keys, order, orders, payouts, settings, team,
        wallets, webhooks,
    };
    Router::new()
        .route("/console", get(auth::home))
        .route("/console/", get(auth::home))
        .route("/console/login", get(auth::login_page).post(auth::login))
        .route("/console/login/code", get(auth::code_page).post(auth::code))
        .route("/console/join", get(auth::join_page).post(auth::join))
        .route("/console/logout", post(auth::logout))
        .route("/console/logout-everywhere", post(auth::logout_everywhere))
        .route("/console/account", get(account::page))
        .route("/console/account/password", post(account::password))
        .route("/console/account/totp/new", post(account::totp_new))
        .route("/console/account/totp/enable", post(account::totp_enable))
        .route("/console/account/totp/disable", post(account::totp_disable))
        .route("/console/m/{m}", get(dashboard::page))
        .route("/console/m/{m}/orders", get(orders::page))
        .route("/console/m/{m}/orders.csv", get(orders::csv))
        .route("/console/m/{m}/orders/{id}", get(order::page))
        .route("/console/m/{m}/orders/{id}/action", post(order::action))
        .route("/console/m/{m}/orders/{id}/refund", post(order::refund))
        .route("/console/m/{m}/orders/{id}/repair", post(order::repair))
        .route(
            "/console/m/{m}/orders/{id}/redeliver",
            post(order::redeliver),
        )
        .route("/console/m/{m}/payouts", get(payouts::page))
        .route("/console/m/{m}/payouts/{id}/status", post(payouts::status))
        .route("/console/m/{m}/deposits", get(deposits::page))
        .route("/console/m/{m}/keys", get(keys::page).post(keys::create))
        .route("/console/m/{m}/keys/{id}/revoke", post(keys::revoke))
        .route("/console/m/{m}/credentials", post(keys::create_credential))
        .route(
            "/console/m/{m}/credentials/{id}/revoke",
            post(keys::revoke_credential),
        )
        .route(
            "/console/m/{m}/webhooks",
            get(webhooks::page).post(webhooks::create),
        )
        .route("/console/m/{m}/webhooks/{id}", get(webhooks::endpoint))
        .route(
            "/console/m/{m}/webhooks/{id}/rotate",
            post(webhooks::rotate),
        )
        .route(
            "/console/m/{m}/webhooks/{id}/enabled",
            post(webhooks::enabled),
        )
        .route(
            "/console/m/{m}/webhooks/{id}/delete",
            post(webhooks::delete),
        )
        .route(
            "/console/m/{m}/webhooks/{id}/redeliver",
            post(webhooks::redeliver),
        )
        .route(
            "/console/m/{m}/wallets",
            get(wallets::page).post(wallets::save),
        )
        .route("/console/m/{m}/wallets/preview", post(wallets::preview))
        .route("/console/m/{m}/settings", get(settings::page))
        .route("/console/m/{m}/settings/branding", post(settings::branding))
        .route(
            "/console/m/{m}/settings/confirmations",
            post(settings::confirmations),
        )
        .route(
            "/console/m/{m}/settings/tolerance",
            post(settings::tolerance),
        )
        .route("/console/m/{m}/team", get(team::page))
        .route("/console/m/{m}/team/invite", post(team::invite))
        .route(
            "/console/m/{m}/team/invites/{hash}/withdraw",
            post(team::withdraw),
        )
        .route("/console/m/{m}/team/{user}/disabled", post(team::disabled))
        .route("/console/m/{m}/audit", get(m_audit::page))
        .route("/console/op", get(operator::overview::page))
        .route(
            "/console/op/merchants",
            get(operator::merchants::page).post(operator::merchants::create),
        )
        .route(
            "/console/op/merchants/{m}/suspended",
            post(operator::merchants::suspended),
        )
        .route(
            "/console/op/merchants/{m}/invite",
            post(operator::merchants::invite),
        )
        .route("/console/op/chains", get(operator::chains::page))
        .route("/console/op/rates", get(operator::rates::page))
        .route("/console/op/webhooks", get(operator::overview::webhooks))
        .route("/console/op/users", get(operator::users::page))
        .route("/console/op/users/invite", post(operator::users::invite))
        .route(
            "/console/op/users/invites/{hash}/withdraw",
            post(operator::users::withdraw),
        )
        .route(
            "/console/op/users/{user}/disabled",
            post(operator::users::disabled),
        )
        .route("/console/op/audit", get(operator::overview::audit))
        .route(
            "/console/{*rest}",
            get(auth::not_found).post(auth::not_found),
        )
        .with_state(console)
}
