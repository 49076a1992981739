//! Recharge users (`/api/mer/user/…`): Coffer's deposit accounts under Pay Protocol's names.
//! `userId` is the account's number, `walletId` the address's derivation index on the
//! merchant's wallet for that chain.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, Method};
use coffer_core::ChainId;
use coffer_engine::AssetRegistry;
use coffer_store::{DepositAccountQuery, DepositAccountRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Api, PpError, Res, mapping, merchant, ok, opt_int, page_params, parse_json};

#[derive(Debug, Deserialize)]
struct CreateBody {
    uuid: Option<String>,
}

pub(crate) async fn create(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, &body).await?;
    let b: CreateBody = parse_json(&body)?;
    let uuid = b
        .uuid
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| PpError::bad("uuid is required"))?;
    let (account, _) = api
        .engine
        .create_deposit_account(&m, crate::DIALECT, uuid)
        .await?;
    Ok(ok(json!(account.seq)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserQuery {
    user_id: Option<String>,
    #[serde(rename = "UUID", alias = "uuid")]
    uuid: Option<String>,
    chain_id: Option<String>,
    user_type: Option<String>,
    page: Option<String>,
    size: Option<String>,
}

/// The Coffer chain of a `chainId` parameter, or the vendor's 400.
pub(crate) fn chain_param(
    assets: &AssetRegistry,
    raw: Option<&str>,
) -> Result<Option<ChainId>, PpError> {
    match opt_int("chainId", raw)? {
        None => Ok(None),
        Some(n) => mapping::chain_by_number(assets, n)
            .map(|c| Some(c.id))
            .ok_or_else(|| PpError::bad(format!("chainId: unknown chain {n}"))),
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

pub(crate) async fn detail(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<UserQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let seq = opt_int("userId", q.user_id.as_deref())?;
    let uuid = q.uuid.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if seq.is_none() && uuid.is_none() {
        return Err(PpError::bad("userId or UUID is required"));
    }
    let chain = chain_param(api.engine.assets(), q.chain_id.as_deref())?;
    let account = api
        .engine
        .deposit_account(&m, seq, uuid)
        .await?
        .ok_or_else(|| PpError::not_found("user"))?;
    Ok(ok(user_json(api.engine.assets(), &account, chain.as_ref())))
}

pub(crate) async fn list(
    State(api): State<Api>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(q): Query<UserQuery>,
) -> Res {
    let m = merchant(&api, &method, &uri, &headers, b"").await?;
    let (page, size) = page_params(q.page.as_deref(), q.size.as_deref())?;
    let seq = opt_int("userId", q.user_id.as_deref())?;
    let uuid = q
        .uuid
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    let chain = chain_param(api.engine.assets(), q.chain_id.as_deref())?;
    // Every Coffer user is a recharge user (0); payment users (1) are never created.
    match opt_int("userType", q.user_type.as_deref())? {
        None | Some(0) => {}
        Some(1) => {
            return Ok(ok(
                json!({"count": 0, "page": page, "size": size, "list": []}),
            ));
        }
        Some(_) => return Err(PpError::bad("userType must be 0 or 1")),
    }
    let (items, count) = api
        .engine
        .list_deposit_accounts(
            &m,
            DepositAccountQuery {
                uuid,
                seq,
                chain: chain.clone(),
                offset: u32::try_from((page - 1) * size).unwrap_or(u32::MAX),
                limit: u32::try_from(size).unwrap_or(500),
                ..DepositAccountQuery::default()
            },
        )
        .await?;
    let list: Vec<Value> = items
        .iter()
        .map(|a| user_json(api.engine.assets(), a, chain.as_ref()))
        .collect();
    Ok(ok(
        json!({"count": count, "page": page, "size": size, "list": list}),
    ))
}
