//! The seam of Coffer's vendor-compatible APIs ("dialects"): a shop integrated with another
//! gateway switches by changing the base URL and credentials.
//!
//! A dialect is one crate implementing [`Dialect`]: its routes at the vendor's paths, its
//! envelope for errors the framework answers, the shape of its credentials, the settings it
//! keeps per merchant and the formatter of its callbacks. The server lists the dialects once
//! (`crates/coffer/src/registry.rs`) and wires each from the trait; nothing else names them.
//!
//! What every dialect handler needs lives here too:
//! - [`extract`]: the authenticating extractor. A dialect implements [`Authenticate`] (its
//!   headers, HMAC, timestamp and nonce rules) and its handlers take
//!   [`Signed<Scheme, Json<Body>>`](Signed): the request read once, authenticated, and the
//!   body decoded only then, with errors naming the field in the dialect's envelope.
//! - [`lenient`]: field types for what vendors send either way (a number or a numeric string,
//!   `true` or `"1"`), exact and keeping the text as sent.

pub mod extract;
pub mod lenient;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use coffer_engine::Engine;
use coffer_secrets::MasterKey;
use coffer_webhooks::{Formatter, RetrySchedule};

pub use coffer_engine::{CredentialShape, SettingKind, SettingSpec};
pub use extract::{
    Authenticate, Authenticated, BodyError, Json, JsonOrEmpty, JsonOrForm, JsonPair, Payload,
    Query, RawRequest, Signed, decode_json, decode_pairs,
};
pub use lenient::{
    FromScalar, LenientDecimal, LenientFlag, LenientInt, LenientText, Maybe, Scalar,
};

/// The order's amount as the shop sent it (kept in its dialect data under `key`, see
/// [`LenientDecimal::as_sent`]): vendors echo `"18.00"` as `"18.00"`. Orders created before the
/// text was kept show the exact decimal.
pub fn amount_as_sent(order: &coffer_core::Order, key: &str) -> String {
    order
        .dialect_data
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| order.amount.to_string(), str::to_owned)
}

/// What a dialect is built from: the engine it translates onto, the master key that opens its
/// sealed credentials, and the server's default callback retry schedule (a dialect whose
/// vendor documents its own uses that instead).
#[derive(Clone)]
pub struct DialectDeps {
    pub engine: Engine,
    pub master: Arc<MasterKey>,
    pub retry: RetrySchedule,
}

impl DialectDeps {
    /// Deps with the default retry schedule (about three days).
    pub fn new(engine: Engine, master: Arc<MasterKey>) -> Self {
        Self {
            engine,
            master,
            retry: RetrySchedule::default_three_days(),
        }
    }
}

/// One vendor-compatible API.
pub trait Dialect: Send + Sync {
    /// The name stored on orders, payouts, deposit accounts and credentials (`aurpay`); also
    /// what `coffer key create --dialect` and `coffer merchant dialect` take.
    fn name(&self) -> &'static str;

    /// Where the vendor's API lives: framework-level errors (no route, wrong method, body too
    /// large) under these path prefixes take the dialect's envelope.
    fn path_prefixes(&self) -> &'static [&'static str];

    /// The vendor's endpoints at the vendor's paths, ready to merge next to the native API.
    fn routes(&self, deps: &DialectDeps) -> axum::Router;

    /// A framework-level error (`status`, a human `message`) in the dialect's envelope.
    fn framework_error(&self, status: StatusCode, message: &str) -> Response;

    /// What the dialect's credentials consist of, under the vendor's labels.
    fn credential_shape(&self) -> CredentialShape;

    /// The settings the dialect keeps per merchant (what its vendor keeps in a console).
    fn settings(&self) -> &'static [SettingSpec] {
        &[]
    }

    /// The formatter of the dialect's callbacks (orders, payouts and deposits it created).
    fn formatter(&self, deps: &DialectDeps) -> Arc<dyn Formatter>;

    /// Path prefixes the dialect serves without a credential, for the server's per-client
    /// limits: lookups, and password logins (each try costs a password hash).
    fn open_paths(&self) -> &'static [(&'static str, OpenPath)] {
        &[]
    }
}

/// What an unauthenticated path of a dialect does, for the per-client limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenPath {
    /// A lookup (e.g. whether a key is valid).
    Lookup,
    /// A password login.
    Login,
}

/// A dialect name that is not in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownDialect {
    pub name: String,
    pub known: Vec<&'static str>,
}

impl std::fmt::Display for UnknownDialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown dialect {:?}: expected one of {}",
            self.name,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownDialect {}

/// The dialect called `name` among `dialects`.
pub fn by_name<'a>(
    dialects: &'a [Arc<dyn Dialect>],
    name: &str,
) -> Result<&'a Arc<dyn Dialect>, UnknownDialect> {
    dialects
        .iter()
        .find(|d| d.name() == name)
        .ok_or_else(|| UnknownDialect {
            name: name.chars().take(64).collect(),
            known: dialects.iter().map(|d| d.name()).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    impl Dialect for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn path_prefixes(&self) -> &'static [&'static str] {
            &[]
        }
        fn routes(&self, _deps: &DialectDeps) -> axum::Router {
            axum::Router::new()
        }
        fn framework_error(&self, status: StatusCode, _message: &str) -> Response {
            axum::response::IntoResponse::into_response(status)
        }
        fn credential_shape(&self) -> CredentialShape {
            CredentialShape {
                dialect: self.0,
                tag: "tst",
                key: "Key",
                key_chars: coffer_engine::dialect_keys::LONG_KEY,
                secret: "Secret",
                token: None,
                callback_token: None,
                callback_secret: None,
            }
        }
        fn formatter(&self, deps: &DialectDeps) -> Arc<dyn Formatter> {
            Arc::new(coffer_webhooks::NativeFormatter {
                retry: deps.retry.clone(),
            })
        }
    }

    #[test]
    fn found_by_name_or_a_clear_error() {
        let dialects: Vec<Arc<dyn Dialect>> = vec![Arc::new(Named("one")), Arc::new(Named("two"))];
        assert!(by_name(&dialects, "two").is_ok_and(|d| d.name() == "two"));
        let err = by_name(&dialects, "stripe").err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(r#"unknown dialect "stripe": expected one of one, two"#)
        );
        assert!(Named("one").settings().is_empty());
        assert!(Named("one").open_paths().is_empty());
    }
}
