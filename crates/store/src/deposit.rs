//! Deposit accounts (migration 0014): a merchant's users, each with one receiving address per
//! chain (Pay Protocol's "recharge" users).

use coffer_core::{ChainId, MerchantId};

use crate::backend::{Backend, Query, RowExt};
use crate::codec::{from_ms, ms};
use crate::{
    DepositAccountQuery, DepositAccountRecord, DepositAddressRecord, NewDepositAccount, StoreError,
};

pub(crate) const INSERT_ACCOUNT: &str =
    "INSERT INTO deposit_accounts (merchant_id, uuid, created_at) VALUES ($1, $2, $3)";

pub(crate) const INSERT_ADDRESS: &str = "INSERT INTO deposit_addresses (chain, address, \
     merchant_id, uuid, derivation_index, created_at) VALUES ($1, $2, $3, $4, $5, $6)";

const FILTER: &str = " WHERE ($1 IS NULL OR a.merchant_id = $1) \
       AND ($2 IS NULL OR a.uuid = $2) \
       AND ($3 IS NULL OR a.seq = $3) \
       AND ($4 IS NULL OR EXISTS (SELECT 1 FROM deposit_addresses d \
            WHERE d.merchant_id = a.merchant_id AND d.uuid = a.uuid AND d.chain = $4))";

pub(crate) fn insert_account(account: &NewDepositAccount) -> Query {
    Query::new(INSERT_ACCOUNT)
        .text(account.merchant_id.as_str())
        .text(account.uuid.clone())
        .int(ms(account.created_at))
}

pub(crate) fn insert_addresses(account: &NewDepositAccount) -> impl Iterator<Item = Query> + '_ {
    account.addresses.iter().map(move |a| {
        Query::new(INSERT_ADDRESS)
            .text(a.chain.as_str())
            .text(a.address.clone())
            .text(account.merchant_id.as_str())
            .text(account.uuid.clone())
            .int(i64::from(a.derivation_index))
            .int(ms(account.created_at))
    })
}

fn filtered(sql: String, query: &DepositAccountQuery) -> Query {
    Query {
        sql: std::borrow::Cow::Owned(sql),
        args: Vec::new(),
    }
    .opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
    .opt_text(query.uuid.clone())
    .opt_int(query.seq)
    .opt_text(query.chain.as_ref().map(|c| c.as_str().to_owned()))
}

fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        column: column.to_owned(),
        detail: detail.to_string(),
    }
}

pub(crate) async fn list<B: Backend>(
    backend: &B,
    query: &DepositAccountQuery,
) -> Result<Vec<DepositAccountRecord>, StoreError> {
    let sql = format!(
        "SELECT a.seq, a.merchant_id, a.uuid, a.created_at FROM deposit_accounts a{FILTER} \
         ORDER BY a.seq DESC LIMIT $5 OFFSET $6"
    );
    let q = filtered(sql, query)
        .int(i64::from(query.limit.clamp(1, crate::sql_store::MAX_PAGE)))
        .int(i64::from(query.offset));
    let mut accounts = Vec::new();
    for row in backend.fetch(q).await? {
        let merchant_id: MerchantId = row
            .text("merchant_id")?
            .parse()
            .map_err(|e| corrupt("deposit_accounts.merchant_id", e))?;
        let uuid = row.text("uuid")?;
        let q = Query::new(
            "SELECT chain, address, derivation_index FROM deposit_addresses \
             WHERE merchant_id = $1 AND uuid = $2 ORDER BY chain",
        )
        .text(merchant_id.as_str())
        .text(uuid.clone());
        let mut addresses = Vec::new();
        for a in backend.fetch(q).await? {
            addresses.push(DepositAddressRecord {
                chain: ChainId::parse(&a.text("chain")?)
                    .map_err(|e| corrupt("deposit_addresses.chain", e))?,
                address: a.text("address")?,
                derivation_index: u32::try_from(a.int("derivation_index")?)
                    .map_err(|e| corrupt("deposit_addresses.derivation_index", e))?,
            });
        }
        accounts.push(DepositAccountRecord {
            seq: row.int("seq")?,
            merchant_id,
            uuid,
            created_at: from_ms("deposit_accounts.created_at", row.int("created_at")?)?,
            addresses,
        });
    }
    Ok(accounts)
}

pub(crate) async fn count<B: Backend>(
    backend: &B,
    query: &DepositAccountQuery,
) -> Result<u64, StoreError> {
    let sql = format!("SELECT COUNT(*) AS n FROM deposit_accounts a{FILTER}");
    let rows = backend.fetch(filtered(sql, query)).await?;
    match rows.first() {
        Some(r) => Ok(u64::try_from(r.int("n")?).unwrap_or(0)),
        None => Ok(0),
    }
}
