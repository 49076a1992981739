//! Recharges (`/api/mer/recharge/…`): deposits to recharge users' standing addresses under Pay
//! Protocol's names, and the recharge callback's body. `rechargeId` is the deposit's number,
//! `userId` its account's, `walletId` the address's derivation index.
//!
//! `rechargeStatus`: `0` success (confirmed), `1` pending (seen, not yet confirmed), `2`
//! failure (reversed: orphaned by a reorg, or dropped from the mempool).

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, Method};
use coffer_core::{Deposit, PaymentStatus};
use coffer_engine::AssetRegistry;
use coffer_store::DepositQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Api, PpError, Res, mapping, merchant, ok, opt_int, page_params};

/// Pay Protocol's `rechargeStatus` of a deposit.
pub fn recharge_status(status: PaymentStatus) -> u8 {
    match status {
        PaymentStatus::Confirmed => 0,
        PaymentStatus::Unconfirmed => 1,
        PaymentStatus::Reversed => 2,
    }
}

/// The recharge object of detail, list and the recharge callback. The two time keys the
/// vendor's page names only in prose ("order creation time", "confirmation time") are
/// `createTime` and `confirmTime` (empty until confirmed), like the dialect's other times.
pub fn recharge_json(d: &Deposit, assets: &AssetRegistry) -> Value {
    json!({
        "chainId": mapping::chain_number_of(assets, d.asset.chain()).unwrap_or(0),
        "rechargeId": d.seq,
        "userId": d.account_seq,
        "uuid": d.account_uuid,
        "currencyId": mapping::currency_number(assets, &d.asset),
        "rechargeAmount": d.amount.to_string(),
        "rechargeStatus": recharge_status(d.status),
        "transferHash": d.txid,
        "walletId": d.derivation_index,
        "walletAddress": d.to_address,
        "fromAddress": d.from_address.clone().unwrap_or_default(),
        "createTime": mapping::time_text(d.detected_at),
        "confirmTime": d.confirmed_at.map(mapping::time_text).unwrap_or_default(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RechargeQuery {
    recharge_id: Option<String>,
    user_id: Option<String>,
    #[serde(rename = "UUID", alias = "uuid")]
    uuid: Option<String>,
    chain_id: Option<String>,
    recharge_status: Option<String>,
    page: Option<String>,
    size: Option<String>,
}

async fn by_number(
    api: &Api,
    q: &RechargeQuery,
    m: &coffer_core::MerchantId,
) -> Result<Deposit, PpError> {
    let seq = opt_int("rechargeId", q.recharge_id.as_deref())?
        .ok_or_else(|| PpError::bad("rechargeId is required"))?;
    api.engine
        .deposit_by_number(m, seq)
        .await?
        .ok_or_else(|| PpError::not_found("recharge"))
}

pub(crate) async fn detail(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<RechargeQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let d = by_number(&api, &q, &m).await?;
    Ok(ok(recharge_json(&d, api.engine.assets())))
}

pub(crate) async fn list(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<RechargeQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let (page, size) = page_params(q.page.as_deref(), q.size.as_deref())?;
    let chain = crate::users::chain_param(api.engine.assets(), q.chain_id.as_deref())?;
    let status = match opt_int("rechargeStatus", q.recharge_status.as_deref())? {
        None => None,
        Some(0) => Some(PaymentStatus::Confirmed),
        Some(1) => Some(PaymentStatus::Unconfirmed),
        Some(2) => Some(PaymentStatus::Reversed),
        Some(_) => return Err(PpError::bad("rechargeStatus must be 0, 1 or 2")),
    };
    let (items, count) = api
        .engine
        .list_deposits(
            &m,
            DepositQuery {
                account_seq: opt_int("userId", q.user_id.as_deref())?,
                account_uuid: q
                    .uuid
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
                chain,
                status,
                offset: u32::try_from((page - 1) * size).unwrap_or(u32::MAX),
                limit: u32::try_from(size).unwrap_or(500),
                ..DepositQuery::default()
            },
        )
        .await?;
    let list: Vec<Value> = items
        .iter()
        .map(|d| recharge_json(d, api.engine.assets()))
        .collect();
    Ok(ok(
        json!({"count": count, "page": page, "size": size, "list": list}),
    ))
}

/// Manual re-trigger: the recharge's last callback delivery is made due again (a new attempt
/// through the delivery log, same rules). A recharge that never had a callback (not yet
/// confirmed, or no recharge URL set) is the vendor's 404.
pub(crate) async fn notify(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<RechargeQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let d = by_number(&api, &q, &m).await?;
    // Keys are serialised in order, so `rechargeId` is followed by `rechargeStatus`.
    let needle = format!("\"rechargeId\":{},\"rechargeStatus\"", d.seq);
    crate::redeliver_last(&api, &m, &[&needle]).await?;
    Ok(ok(Value::Null))
}
