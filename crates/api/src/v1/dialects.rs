//! Settings of the vendor-compatible dialects that each vendor keeps in its console (e.g. where
//! a dialect's deposit callbacks go): what a merchant would set on the vendor's dashboard. The
//! dialects declare their settings ([`coffer_engine::SettingSpec`]); the server passes them in
//! [`super::ApiSettings::dialect_settings`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use coffer_core::Scope;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::docs::ErrorBody;
use super::error::ApiError;
use super::extract::{ApiJson, Auth};
use crate::AppState;

/// The settings each dialect declares, by dialect name.
#[derive(Clone)]
pub struct KnownSettings(pub Arc<Vec<(&'static str, &'static [coffer_engine::SettingSpec])>>);

impl KnownSettings {
    fn of(&self, dialect: &str) -> &'static [coffer_engine::SettingSpec] {
        self.0
            .iter()
            .find(|(name, _)| *name == dialect)
            .map_or(&[], |(_, specs)| *specs)
    }
}

/// Settings to change: name → value (`null` or `""` clears). Known: each dialect's own (e.g.
/// `payprotocol` → `recharge_notify_url`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetDialectSettings {
    #[schema(example = json!({"recharge_notify_url": "https://shop.example/pp/recharge"}))]
    pub settings: BTreeMap<String, Option<String>>,
}

async fn settings_json(
    state: &AppState,
    merchant: &coffer_core::MerchantId,
    dialect: &str,
) -> Result<Value, ApiError> {
    let settings = state.engine.dialect_settings(merchant, dialect).await?;
    Ok(json!({
        "object": "dialect_settings",
        "dialect": dialect,
        "settings": settings,
    }))
}

/// The merchant's settings of a dialect (an empty object until set).
#[utoipa::path(get, path = "/api/v1/dialects/{dialect}/settings", tag = "dialects",
    params(("dialect" = String, Path, description = "a dialect's name, e.g. payprotocol")),
    responses((status = 200, description = "The settings")),
    security(("api_key" = ["admin"])))]
pub async fn get_dialect_settings(
    State(state): State<AppState>,
    auth: Auth,
    Path(dialect): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::Admin)?;
    Ok(Json(settings_json(&state, merchant, &dialect).await?))
}

/// Set or clear settings of a dialect; all are checked before any is written.
#[utoipa::path(put, path = "/api/v1/dialects/{dialect}/settings", tag = "dialects",
    request_body = SetDialectSettings,
    params(("dialect" = String, Path, description = "a dialect's name, e.g. payprotocol")),
    responses((status = 200, description = "The settings"), (status = 400, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn put_dialect_settings(
    State(state): State<AppState>,
    Extension(known): Extension<KnownSettings>,
    auth: Auth,
    Path(dialect): Path<String>,
    ApiJson(body): ApiJson<SetDialectSettings>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::Admin)?;
    let changes: Vec<(String, Option<String>)> = body.settings.into_iter().collect();
    state
        .engine
        .set_dialect_settings(merchant, &dialect, known.of(&dialect), &changes)
        .await?;
    Ok(Json(settings_json(&state, merchant, &dialect).await?))
}
