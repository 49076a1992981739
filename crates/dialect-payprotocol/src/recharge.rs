//! Recharges (`/api/mer/recharge/…`): deposits to recharge users' standing addresses under Pay
//! Protocol's names, and the recharge callback's body. `rechargeId` is the deposit's number,
//! `userId` its account's, `walletId` the address's derivation index.
//!
//! `rechargeStatus`: `0` success (confirmed), `1` pending (seen, not yet confirmed), `2`
//! failure (reversed: orphaned by a reorg, or dropped from the mempool).

use axum::extract::State;
use coffer_core::{Deposit, MerchantId, PaymentStatus};
use coffer_dialect::{LenientInt, LenientText, Maybe, Query};
use coffer_engine::AssetRegistry;
use coffer_store::DepositQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Api, PpError, Res, Signed, list_json, mapping, offset_limit, ok, page_params};

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
    recharge_id: Maybe<LenientInt>,
    user_id: Maybe<LenientInt>,
    #[serde(rename = "UUID", alias = "uuid")]
    uuid: Maybe<LenientText>,
    chain_id: Maybe<LenientInt>,
    recharge_status: Maybe<LenientInt>,
    page: Maybe<LenientInt>,
    size: Maybe<LenientInt>,
}

/// The recharge `rechargeId` names.
async fn by_number(api: &Api, q: &RechargeQuery, m: &MerchantId) -> Result<Deposit, PpError> {
    let seq = q
        .recharge_id
        .as_ref()
        .ok_or_else(|| PpError::bad("rechargeId is required"))?;
    api.engine
        .deposit_by_number(m, seq.0)
        .await?
        .ok_or_else(|| PpError::not_found("recharge"))
}

pub(crate) async fn detail(State(api): State<Api>, signed: Signed<Query<RechargeQuery>>) -> Res {
    let d = by_number(&api, &signed.payload.0, &signed.merchant).await?;
    Ok(ok(recharge_json(&d, api.engine.assets())))
}

pub(crate) async fn list(State(api): State<Api>, signed: Signed<Query<RechargeQuery>>) -> Res {
    let q = signed.payload.0;
    let (page, size) = page_params(&q.page, &q.size)?;
    let chain = crate::users::chain_param(api.engine.assets(), &q.chain_id)?;
    let status = match q.recharge_status.as_ref().map(|s| s.0) {
        None => None,
        Some(0) => Some(PaymentStatus::Confirmed),
        Some(1) => Some(PaymentStatus::Unconfirmed),
        Some(2) => Some(PaymentStatus::Reversed),
        Some(_) => return Err(PpError::bad("rechargeStatus must be 0, 1 or 2")),
    };
    let (offset, limit) = offset_limit(page, size);
    let (items, count) = api
        .engine
        .list_deposits(
            &signed.merchant,
            DepositQuery {
                account_seq: q.user_id.as_ref().map(|n| n.0),
                account_uuid: q.uuid.text(),
                chain,
                status,
                offset,
                limit,
                ..DepositQuery::default()
            },
        )
        .await?;
    let list: Vec<Value> = items
        .iter()
        .map(|d| recharge_json(d, api.engine.assets()))
        .collect();
    Ok(list_json(count, page, size, list))
}

/// Manual re-trigger: the recharge's last callback delivery is made due again (a new attempt
/// through the delivery log, same rules). A recharge that never had a callback (not yet
/// confirmed, or no recharge URL set) is the vendor's 404.
pub(crate) async fn notify(State(api): State<Api>, signed: Signed<Query<RechargeQuery>>) -> Res {
    let d = by_number(&api, &signed.payload.0, &signed.merchant).await?;
    crate::redeliver_last(&api, &signed.merchant, d.id.as_str()).await?;
    Ok(ok(Value::Null))
}
