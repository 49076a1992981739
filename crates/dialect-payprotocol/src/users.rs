//! Recharge users (`/api/mer/user/…`): Coffer's deposit accounts under Pay Protocol's names.
//! `userId` is the account's number, `walletId` the address's derivation index on the
//! merchant's wallet for that chain.

use axum::extract::State;
use coffer_core::ChainId;
use coffer_dialect::{Json, LenientInt, LenientText, Maybe, Query};
use coffer_engine::AssetRegistry;
use coffer_store::{DepositAccountQuery, DepositAccountRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Api, PpError, Res, Signed, list_json, mapping, offset_limit, ok, page_params};

#[derive(Debug, Deserialize)]
pub(crate) struct CreateBody {
    uuid: LenientText,
}

pub(crate) async fn create(State(api): State<Api>, signed: Signed<Json<CreateBody>>) -> Res {
    let Json(b) = signed.payload;
    let (account, _) = api
        .engine
        .create_deposit_account(&signed.merchant, crate::DIALECT, b.uuid.as_str())
        .await?;
    Ok(ok(json!(account.seq)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserQuery {
    user_id: Maybe<LenientInt>,
    #[serde(rename = "UUID", alias = "uuid")]
    uuid: Maybe<LenientText>,
    chain_id: Maybe<LenientInt>,
    user_type: Maybe<LenientInt>,
    page: Maybe<LenientInt>,
    size: Maybe<LenientInt>,
}

/// The Coffer chain of a `chainId` parameter, or the vendor's 400.
pub(crate) fn chain_param(
    assets: &AssetRegistry,
    number: &Maybe<LenientInt>,
) -> Result<Option<ChainId>, PpError> {
    match number.as_ref() {
        None => Ok(None),
        Some(n) => mapping::chain_by_number(assets, n.0)
            .map(|c| Some(c.id))
            .ok_or_else(|| PpError::bad(format!("chainId: unknown chain {}", n.0))),
    }
}

/// The user object of detail and list; `chain` keeps only that chain's wallet.
pub(crate) fn user_json(
    assets: &AssetRegistry,
    account: &DepositAccountRecord,
    chain: Option<&ChainId>,
) -> Value {
    let wallets: Vec<Value> = account
        .addresses
        .iter()
        .filter(|a| chain.is_none_or(|c| &a.chain == c))
        .map(|a| {
            json!({
                "chainId": mapping::chain_number_of(assets, &a.chain).unwrap_or(0),
                "walletId": a.derivation_index,
                "walletAddress": a.address,
            })
        })
        .collect();
    json!({
        "userId": account.seq,
        "uuid": account.uuid,
        "createTime": mapping::time_text(account.created_at),
        "userWallet": wallets,
        "userType": 0,
    })
}

pub(crate) async fn detail(State(api): State<Api>, signed: Signed<Query<UserQuery>>) -> Res {
    let q = signed.payload.0;
    let seq = q.user_id.as_ref().map(|n| n.0);
    let uuid = q.uuid.text();
    if seq.is_none() && uuid.is_none() {
        return Err(PpError::bad("userId or UUID is required"));
    }
    let chain = chain_param(api.engine.assets(), &q.chain_id)?;
    let account = api
        .engine
        .deposit_account(&signed.merchant, seq, uuid.as_deref())
        .await?
        .ok_or_else(|| PpError::not_found("user"))?;
    Ok(ok(user_json(api.engine.assets(), &account, chain.as_ref())))
}

pub(crate) async fn list(State(api): State<Api>, signed: Signed<Query<UserQuery>>) -> Res {
    let q = signed.payload.0;
    let (page, size) = page_params(&q.page, &q.size)?;
    let chain = chain_param(api.engine.assets(), &q.chain_id)?;
    // Every Coffer user is a recharge user (0); payment users (1) are never created.
    match q.user_type.as_ref().map(|t| t.0) {
        None | Some(0) => {}
        Some(1) => return Ok(list_json(0, page, size, Vec::new())),
        Some(_) => return Err(PpError::bad("userType must be 0 or 1")),
    }
    let (offset, limit) = offset_limit(page, size);
    let (items, count) = api
        .engine
        .list_deposit_accounts(
            &signed.merchant,
            DepositAccountQuery {
                uuid: q.uuid.text(),
                seq: q.user_id.as_ref().map(|n| n.0),
                chain: chain.clone(),
                offset,
                limit,
                ..DepositAccountQuery::default()
            },
        )
        .await?;
    let list: Vec<Value> = items
        .iter()
        .map(|a| user_json(api.engine.assets(), a, chain.as_ref()))
        .collect();
    Ok(list_json(count, page, size, list))
}
