//! How the merchant's hosted checkout page looks.

use axum::Json;
use axum::extract::State;
use coffer_core::Scope;
use coffer_engine::branding::Branding;
use coffer_engine::view::rfc3339;
use coffer_store::BrandingRecord;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::docs::ErrorBody;
use super::error::ApiError;
use super::extract::{ApiJson, Auth};
use crate::AppState;

/// The checkout page's look. Replaces the whole branding: a field left out is cleared.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBranding {
    /// Name shown to buyers instead of the merchant's name, 1-100 characters.
    pub display_name: Option<String>,
    /// Brand colour, `#rrggbb` or `#rgb`.
    #[schema(example = "#1d4ed8")]
    pub color: Option<String>,
    /// Logo as a `data:image/(png|jpeg|webp|gif|svg+xml)` URL of at most 32 KiB; it is
    /// embedded in the page (the page loads nothing from elsewhere).
    pub logo: Option<String>,
}

fn branding_json(b: Option<&BrandingRecord>) -> Value {
    json!({
        "object": "branding",
        "display_name": b.and_then(|b| b.display_name.as_deref()),
        "color": b.and_then(|b| b.color.as_deref()),
        "logo": b.and_then(|b| b.logo.as_deref()),
        "updated_at": b.map(|b| rfc3339(b.updated_at)),
    })
}

/// The merchant's checkout branding (all fields `null` until set).
#[utoipa::path(get, path = "/api/v1/branding", tag = "checkout",
    responses((status = 200, description = "The branding")),
    security(("api_key" = ["orders:read"])))]
pub async fn get_branding(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let branding = state.engine.branding(merchant).await?;
    Ok(Json(branding_json(branding.as_ref())))
}

/// Set the merchant's checkout branding (name shown, colour, logo).
#[utoipa::path(put, path = "/api/v1/branding", tag = "checkout", request_body = SetBranding,
    responses((status = 200, description = "The branding"), (status = 400, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn put_branding(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<SetBranding>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::Admin)?;
    let branding = state
        .engine
        .set_branding(
            merchant,
            Branding {
                display_name: body.display_name,
                logo: body.logo,
                color: body.color,
            },
        )
        .await?;
    Ok(Json(branding_json(Some(&branding))))
}
