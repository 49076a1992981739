//! What a merchant can be paid in, fiat currencies, and receiving wallets.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use coffer_core::fiat::FIAT_CURRENCIES;
use coffer_core::{AssetKind, Scope};
use coffer_engine::view::rfc3339;
use coffer_store::WalletRecord;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::docs::{ErrorBody, ListBody};
use super::error::ApiError;
use super::extract::{ApiJson, Auth};
use crate::AppState;

/// The merchant's receiving wallet for a chain.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWallet {
    /// Extended public key or output descriptor. Only public keys: Coffer never holds keys
    /// that can spend.
    pub xpub: String,
}

/// How many confirmations the merchant's new orders on a chain need.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetConfirmations {
    /// Bitcoin: 0, 1, 2 or 6 (0 = zero-conf, only for transactions that do not signal RBF;
    /// those wait for one confirmation). Other chains: 1 to 1000. `null` goes back to the
    /// chain's configured default.
    pub confirmations: Option<u32>,
}

fn wallet_json(w: &WalletRecord) -> Value {
    json!({
        "object": "wallet",
        "chain": w.chain.as_str(),
        "xpub": w.descriptor,
        "next_index": w.next_index,
        "created_at": rfc3339(w.created_at),
        "updated_at": rfc3339(w.updated_at),
    })
}

/// The assets this server accepts, and whether the merchant has a wallet on each one's chain
/// (an order can only be paid in an asset whose chain has a wallet).
#[utoipa::path(get, path = "/api/v1/assets", tag = "catalog",
    responses((status = 200, body = ListBody)), security(("api_key" = ["orders:read"])))]
pub async fn list_assets(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let wallets: BTreeSet<String> = state
        .engine
        .list_wallets(merchant)
        .await?
        .into_iter()
        .map(|w| w.chain.as_str().to_owned())
        .collect();
    let assets = state.engine.assets();
    let data: Vec<Value> = assets
        .assets()
        .map(|a| {
            let chain = assets.chain(a.chain());
            let (kind, contract) = match &a.kind {
                AssetKind::Native => ("native", None),
                AssetKind::Token { contract } => ("token", Some(contract.clone())),
            };
            json!({
                "object": "asset",
                "id": a.id.to_string(),
                "symbol": a.symbol().as_str(),
                "chain": a.chain().as_str(),
                "chain_name": chain.map(|c| c.name.clone()),
                "chain_kind": chain.map(|c| c.kind.as_str()),
                "network": chain.map(|c| c.network.as_str()),
                "kind": kind,
                "contract": contract,
                "decimals": a.decimals.get(),
                "display_decimals": a.display_decimals,
                "usd_stablecoin": a.usd_stablecoin,
                "wallet_configured": wallets.contains(a.chain().as_str()),
            })
        })
        .collect();
    Ok(Json(super::paging::whole(data)))
}

/// The fiat currencies orders can be priced in.
/// `GET /api/v1/rates` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RatesParams {
    /// Comma-separated asset ids or symbols, e.g. `bsc:USDT,BTC`; default: every enabled asset.
    #[serde(default)]
    pub assets: String,
    /// Comma-separated fiat codes, e.g. `USD,EUR`; default: `USD`.
    #[serde(default)]
    pub fiat: String,
}

/// Current exchange rates and the sources each comes from. A pair with no fresh rate is
/// listed with `price: null` and the `rate_unavailable` error, never a stale value.
#[utoipa::path(get, path = "/api/v1/rates", tag = "catalog", params(RatesParams),
    responses((status = 200, body = ListBody), (status = 400, body = ErrorBody)),
    security(("api_key" = ["orders:read"])))]
pub async fn list_rates(
    State(state): State<AppState>,
    auth: Auth,
    query: Result<Query<RatesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Scope::OrdersRead)?;
    let Query(params) = query.map_err(|rejection| {
        ApiError::from(coffer_engine::EngineError::Invalid {
            code: "invalid_query",
            field: None,
            message: rejection.body_text(),
        })
    })?;
    let current = state.engine.current_rates(&params.assets, &params.fiat)?;
    let rates = current["rates"].as_array().cloned().unwrap_or_default();
    let mut list = super::paging::whole(rates);
    list["at"] = current["at"].clone();
    Ok(Json(list))
}

#[utoipa::path(get, path = "/api/v1/fiat-currencies", tag = "catalog",
    responses((status = 200, body = ListBody)), security(("api_key" = ["orders:read"])))]
pub async fn list_fiat(auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.require(Scope::OrdersRead)?;
    let data: Vec<Value> = FIAT_CURRENCIES
        .iter()
        .map(|c| json!({"code": c.code, "name": c.name, "minor_units": c.minor_units}))
        .collect();
    Ok(Json(super::paging::whole(data)))
}

/// Set (or replace) the merchant's receiving wallet for a chain. Replacing it with another
/// key starts address derivation at index 0 of the new key.
#[utoipa::path(put, path = "/api/v1/wallets/{chain}", tag = "wallets", request_body = SetWallet,
    params(("chain" = String, Path, description = "Configured chain id, e.g. bsc")),
    responses((status = 200, description = "The wallet"), (status = 400, body = ErrorBody)),
    security(("api_key" = ["wallets:write"])))]
pub async fn put_wallet(
    State(state): State<AppState>,
    auth: Auth,
    Path(chain): Path<String>,
    ApiJson(body): ApiJson<SetWallet>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::WalletsWrite)?;
    let wallet = state
        .engine
        .set_wallet(merchant, &chain, &body.xpub)
        .await?;
    Ok(Json(wallet_json(&wallet)))
}

/// The merchant's receiving wallets.
#[utoipa::path(get, path = "/api/v1/wallets", tag = "wallets",
    responses((status = 200, body = ListBody)), security(("api_key" = ["orders:read"])))]
pub async fn list_wallets(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::OrdersRead)?;
    let policy = state
        .engine
        .merchant(merchant)
        .await?
        .map(|m| m.policy)
        .unwrap_or_default();
    let mut data = Vec::new();
    for w in state.engine.list_wallets(merchant).await? {
        let mut json = wallet_json(&w);
        // Confirmations new orders on this chain need (the merchant's setting, else the
        // chain's default).
        json["confirmations"] = json!(policy.confirmations_for(w.chain.as_str()).or_else(|| {
            state
                .engine
                .assets()
                .chain(&w.chain)
                .map(|c| c.confirmations)
        }));
        // Bitcoin wallets: a run of more than 20 unpaid addresses may hide later payments
        // from the merchant's wallet (its gap limit); null when there is nothing to warn about.
        if let Some(report) = state.engine.wallet_gap(merchant, &w.chain).await? {
            json["gap_warning"] = if report.warn {
                json!({
                    "longest_unpaid_run": report.longest_run,
                    "run_start_index": report.run_start,
                    "threshold": coffer_core::gap::GAP_LIMIT_WARNING,
                    "payment_beyond_gap": report.payment_beyond_gap,
                    "message": format!(
                        "{} consecutive addresses from index {} are unpaid: wallets with a gap limit of {} may not show later payments; raise the wallet's gap limit",
                        report.longest_run, report.run_start, coffer_core::gap::GAP_LIMIT_WARNING
                    ),
                })
            } else {
                Value::Null
            };
        }
        data.push(json);
    }
    Ok(Json(super::paging::whole(data)))
}

/// Set how many confirmations the merchant's new orders on a chain need (orders already created
/// keep theirs). Answers the stored setting and the effective value.
#[utoipa::path(put, path = "/api/v1/wallets/{chain}/confirmations", tag = "wallets",
    request_body = SetConfirmations,
    params(("chain" = String, Path, description = "Configured chain id, e.g. bitcoin")),
    responses((status = 200, description = "The confirmation policy"), (status = 400, body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn put_confirmations(
    State(state): State<AppState>,
    auth: Auth,
    Path(chain): Path<String>,
    ApiJson(body): ApiJson<SetConfirmations>,
) -> Result<Json<Value>, ApiError> {
    let merchant = auth.require(Scope::Admin)?;
    let m = state
        .engine
        .set_chain_confirmations(merchant, &chain, body.confirmations)
        .await?;
    let default = state
        .engine
        .assets()
        .chains()
        .find(|c| c.id.as_str() == chain)
        .map(|c| c.confirmations);
    Ok(Json(json!({
        "object": "confirmation_policy",
        "chain": chain,
        "confirmations": m.policy.chain_confirmations.get(&chain),
        "effective": m.policy.confirmations_for(&chain).or(default),
    })))
}
