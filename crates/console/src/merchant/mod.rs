//! The merchant's pages, under `/console/m/{merchant}`: what its owners change and its staff
//! read. Operators see every merchant's.

pub mod audit;
pub mod dashboard;
pub mod deposits;
pub mod keys;
pub mod order;
pub mod orders;
pub mod payouts;
pub mod settings;
pub mod team;
pub mod wallets;
pub mod webhooks;

use axum::http::StatusCode;
use axum::response::Response;
use coffer_engine::EngineError;
use maud::Markup;

use crate::auth::{Ctx, Shop};
use crate::layout;

/// `/console/m/{id}`.
pub fn base(shop: &Shop) -> String {
    format!("/console/m/{}", shop.id)
}

/// An action the engine refused (bad input, a state that does not allow it) is shown on the
/// page again with its message; anything else is a server failure.
pub fn refused(ctx: &Ctx, e: &EngineError) -> Option<(StatusCode, Markup)> {
    match e {
        EngineError::Invalid { .. } => Some((
            StatusCode::BAD_REQUEST,
            layout::error(&ctx.t.engine_error(e)),
        )),
        EngineError::Conflict { .. } | EngineError::RateUnavailable { .. } => {
            Some((StatusCode::CONFLICT, layout::error(&ctx.t.engine_error(e))))
        }
        EngineError::NotFound(_) => {
            Some((StatusCode::NOT_FOUND, layout::error(&ctx.t.engine_error(e))))
        }
        _ => None,
    }
}

/// Re-render with the refusal, or the failure page.
pub async fn or_refused<F, Fut>(ctx: &Ctx, e: EngineError, render: F) -> Response
where
    F: FnOnce(StatusCode, Markup) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    match refused(ctx, &e) {
        Some((status, m)) => render(status, m).await,
        None => ctx.failed(&e),
    }
}

/// The webhook service's errors as the engine's, to show them the same way.
pub fn service_error(e: coffer_webhooks::ServiceError) -> EngineError {
    use coffer_webhooks::ServiceError as S;
    match e {
        S::Invalid {
            code,
            field,
            message,
        } => EngineError::Invalid {
            code,
            field: Some(field),
            message,
        },
        S::NotFound(what) => EngineError::NotFound(what),
        S::Store(e) => EngineError::Store(e),
        S::Key(e) => EngineError::Store(coffer_store::StoreError::Database(e.to_string())),
    }
}
