//! Deposit accounts (migration 0014): a merchant's users, each with one receiving address per
//! chain (Pay Protocol's "recharge" users), and the deposits received at those addresses.

use coffer_core::{ChainId, Deposit, MerchantId, PaymentStatus};

use super::{count_of, page_limit};
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{corrupt, from_ms, ms, opt_ms};
use crate::{
    DepositAccountQuery, DepositAccountRecord, DepositAddressOwner, DepositAddressRecord,
    DepositQuery, NewDepositAccount, StoreError,
};

pub(super) const INSERT_ACCOUNT: &str =
    "INSERT INTO deposit_accounts (merchant_id, uuid, dialect, created_at) VALUES ($1, $2, $3, $4)";

// An address an order already has is refused like a used one (0 rows: `Duplicate(Address)`):
// a transfer there would go to the order.
pub(super) const INSERT_ADDRESS: &str = "INSERT INTO deposit_addresses (chain, address, \
     merchant_id, uuid, derivation_index, created_at) SELECT $1, $2, $3, $4, $5, $6 \
     WHERE NOT EXISTS (SELECT 1 FROM order_addresses o WHERE o.chain = $1 AND o.address = $2)";

const FILTER: &str = " WHERE ($1 IS NULL OR a.merchant_id = $1) \
       AND ($2 IS NULL OR a.uuid = $2) \
       AND ($3 IS NULL OR a.seq = $3) \
       AND ($4 IS NULL OR EXISTS (SELECT 1 FROM deposit_addresses d \
            WHERE d.merchant_id = a.merchant_id AND d.uuid = a.uuid AND d.chain = $4)) \
       AND ($5 IS NULL OR a.seq < $5)";

pub(super) fn insert_account(account: &NewDepositAccount) -> Query {
    Query::new(INSERT_ACCOUNT)
        .text(account.merchant_id.as_str())
        .text(account.uuid.clone())
        .text(account.dialect.clone())
        .int(ms(account.created_at))
}

pub(super) fn insert_addresses(account: &NewDepositAccount) -> impl Iterator<Item = Query> + '_ {
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
    Query::built(sql)
        .opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
        .opt_text(query.uuid.clone())
        .opt_int(query.seq)
        .opt_text(query.chain.as_ref().map(|c| c.as_str().to_owned()))
        .opt_int(query.before_seq)
}

pub(super) async fn list<B: Backend>(
    backend: &B,
    query: &DepositAccountQuery,
) -> Result<Vec<DepositAccountRecord>, StoreError> {
    let sql = format!(
        "SELECT a.seq, a.merchant_id, a.uuid, a.dialect, a.created_at FROM deposit_accounts a{FILTER} \
         ORDER BY a.seq DESC LIMIT $6 OFFSET $7"
    );
    let q = filtered(sql, query)
        .int(page_limit(query.limit))
        .int(i64::from(query.offset));
    let rows = backend.fetch(q).await?;
    let mut accounts = rows
        .iter()
        .map(account_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for account in &mut accounts {
        load_addresses(backend, account).await?;
    }
    Ok(accounts)
}

/// A `deposit_accounts` row (`seq, merchant_id, uuid, dialect, created_at`), without its
/// addresses yet ([`load_addresses`]).
pub(super) fn account_from_row(row: &impl RowExt) -> Result<DepositAccountRecord, StoreError> {
    Ok(DepositAccountRecord {
        seq: row.int("seq")?,
        merchant_id: row
            .text("merchant_id")?
            .parse()
            .map_err(|e| corrupt("deposit_accounts.merchant_id", e))?,
        uuid: row.text("uuid")?,
        dialect: row.text("dialect")?,
        created_at: from_ms("deposit_accounts.created_at", row.int("created_at")?)?,
        addresses: Vec::new(),
    })
}

/// Read an account's addresses, by chain.
pub(super) async fn load_addresses<B: Backend>(
    backend: &B,
    account: &mut DepositAccountRecord,
) -> Result<(), StoreError> {
    let q = Query::new(
        "SELECT chain, address, derivation_index FROM deposit_addresses \
         WHERE merchant_id = $1 AND uuid = $2 ORDER BY chain",
    )
    .text(account.merchant_id.as_str())
    .text(account.uuid.clone());
    for a in backend.fetch(q).await? {
        account.addresses.push(DepositAddressRecord {
            chain: ChainId::parse(&a.text("chain")?)
                .map_err(|e| corrupt("deposit_addresses.chain", e))?,
            address: a.text("address")?,
            derivation_index: u32::try_from(a.int("derivation_index")?)
                .map_err(|e| corrupt("deposit_addresses.derivation_index", e))?,
        });
    }
    Ok(())
}

pub(super) async fn count<B: Backend>(
    backend: &B,
    query: &DepositAccountQuery,
) -> Result<u64, StoreError> {
    let sql = format!("SELECT COUNT(*) AS n FROM deposit_accounts a{FILTER}");
    count_of(backend.fetch(filtered(sql, query)).await?)
}

// ---- deposits ------------------------------------------------------------------------------

pub(super) const INSERT_DEPOSIT: &str = "INSERT INTO deposits (id, merchant_id, account_uuid, \
     account_seq, dialect, chain, asset, amount, txid, output_index, from_address, to_address, \
     derivation_index, block_height, block_hash, confirmations, status, occurred_at, \
     detected_at, confirmed_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
     $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";

// Identity columns never change; a rescan or reorg updates where and how confirmed it is. (A
// separate UPDATE rather than an upsert: on PostgreSQL an upsert takes a number each time,
// which would leave gaps in the deposits' numbers, Pay Protocol's `rechargeId`.)
pub(super) const UPDATE_DEPOSIT: &str = "UPDATE deposits SET block_height = $1, block_hash = $2, \
     confirmations = $3, status = $4, confirmed_at = $5, updated_at = $6 WHERE id = $7";

pub(super) const DEPOSIT_COLUMNS: &str = "SELECT seq, id, merchant_id, account_uuid, account_seq, dialect, \
     asset, amount, txid, output_index, from_address, to_address, derivation_index, \
     block_height, block_hash, confirmations, status, occurred_at, detected_at, confirmed_at, \
     updated_at FROM deposits";

const DEPOSIT_FILTER: &str = " WHERE ($1 IS NULL OR merchant_id = $1) \
       AND ($2 IS NULL OR account_seq = $2) \
       AND ($3 IS NULL OR account_uuid = $3) \
       AND ($4 IS NULL OR chain = $4) \
       AND ($5 IS NULL OR status = $5) \
       AND ($6 IS NULL OR seq < $6)";

fn opt_u64(v: Option<u64>) -> Option<i64> {
    v.map(|h| i64::try_from(h).unwrap_or(i64::MAX))
}

/// A new deposit (`seq` 0: numbered by the database).
pub(super) fn insert(d: &Deposit) -> Query {
    Query::new(INSERT_DEPOSIT)
        .text(d.id.as_str())
        .text(d.merchant_id.as_str())
        .text(d.account_uuid.clone())
        .int(d.account_seq)
        .text(d.dialect.clone())
        .text(d.asset.chain().as_str())
        .text(d.asset.to_string())
        .text(d.amount.to_string())
        .text(d.txid.clone())
        .int(i64::from(d.output_index))
        .opt_text(d.from_address.clone())
        .text(d.to_address.clone())
        .int(i64::from(d.derivation_index))
        .opt_int(opt_u64(d.block_height))
        .opt_text(d.block_hash.clone())
        .int(i64::from(d.confirmations))
        .text(d.status.as_str())
        .int(ms(d.occurred_at))
        .int(ms(d.detected_at))
        .opt_int(opt_ms(d.confirmed_at))
        .int(ms(d.updated_at))
}

/// A stored deposit's new position and status.
pub(super) fn update(d: &Deposit) -> Query {
    Query::new(UPDATE_DEPOSIT)
        .opt_int(opt_u64(d.block_height))
        .opt_text(d.block_hash.clone())
        .int(i64::from(d.confirmations))
        .text(d.status.as_str())
        .opt_int(opt_ms(d.confirmed_at))
        .int(ms(d.updated_at))
        .text(d.id.as_str())
}

pub(super) fn deposit_from_row(row: &impl RowExt) -> Result<Deposit, StoreError> {
    let to_u32 = |col: &str, v: i64| u32::try_from(v).map_err(|e| corrupt(col, e));
    let status = row.text("status")?;
    let opt_time = |col: &str| -> Result<Option<time::OffsetDateTime>, StoreError> {
        row.opt_int(col)?.map(|v| from_ms(col, v)).transpose()
    };
    Ok(Deposit {
        id: row
            .text("id")?
            .parse()
            .map_err(|e| corrupt("deposits.id", e))?,
        seq: row.int("seq")?,
        merchant_id: row
            .text("merchant_id")?
            .parse()
            .map_err(|e| corrupt("deposits.merchant_id", e))?,
        account_uuid: row.text("account_uuid")?,
        account_seq: row.int("account_seq")?,
        dialect: row.text("dialect")?,
        asset: row
            .text("asset")?
            .parse()
            .map_err(|e| corrupt("deposits.asset", e))?,
        amount: row
            .text("amount")?
            .parse()
            .map_err(|e| corrupt("deposits.amount", e))?,
        txid: row.text("txid")?,
        output_index: to_u32("deposits.output_index", row.int("output_index")?)?,
        from_address: row.opt_text("from_address")?,
        to_address: row.text("to_address")?,
        derivation_index: to_u32("deposits.derivation_index", row.int("derivation_index")?)?,
        block_height: row
            .opt_int("block_height")?
            .map(u64::try_from)
            .transpose()
            .map_err(|e| corrupt("deposits.block_height", e))?,
        block_hash: row.opt_text("block_hash")?,
        confirmations: to_u32("deposits.confirmations", row.int("confirmations")?)?,
        status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("deposits.status", status))?,
        occurred_at: from_ms("deposits.occurred_at", row.int("occurred_at")?)?,
        detected_at: from_ms("deposits.detected_at", row.int("detected_at")?)?,
        confirmed_at: opt_time("confirmed_at")?,
        updated_at: from_ms("deposits.updated_at", row.int("updated_at")?)?,
    })
}

fn deposit_filtered(sql: String, q: &DepositQuery) -> Query {
    Query::built(sql)
        .opt_text(q.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
        .opt_int(q.account_seq)
        .opt_text(q.account_uuid.clone())
        .opt_text(q.chain.as_ref().map(|c| c.as_str().to_owned()))
        .opt_text(q.status.map(|s| s.as_str().to_owned()))
        .opt_int(q.before_seq)
}

pub(super) async fn list_deposits<B: Backend>(
    backend: &B,
    q: &DepositQuery,
) -> Result<Vec<Deposit>, StoreError> {
    let sql = format!("{DEPOSIT_COLUMNS}{DEPOSIT_FILTER} ORDER BY seq DESC LIMIT $7 OFFSET $8");
    let query = deposit_filtered(sql, q)
        .int(page_limit(q.limit))
        .int(i64::from(q.offset));
    backend
        .fetch(query)
        .await?
        .iter()
        .map(deposit_from_row)
        .collect()
}

pub(super) async fn count_deposits<B: Backend>(
    backend: &B,
    q: &DepositQuery,
) -> Result<u64, StoreError> {
    let sql = format!("SELECT COUNT(*) AS n FROM deposits{DEPOSIT_FILTER}");
    count_of(backend.fetch(deposit_filtered(sql, q)).await?)
}

/// One deposit by id or number, optionally scoped to a merchant.
pub(super) async fn get_deposit<B: Backend>(
    backend: &B,
    merchant: Option<&MerchantId>,
    id: Option<&coffer_core::DepositId>,
    seq: Option<i64>,
) -> Result<Option<Deposit>, StoreError> {
    let sql = format!(
        "{DEPOSIT_COLUMNS} WHERE ($1 IS NULL OR merchant_id = $1) AND ($2 IS NULL OR id = $2) \
         AND ($3 IS NULL OR seq = $3) AND ($2 IS NOT NULL OR $3 IS NOT NULL)"
    );
    let query = Query::built(sql)
        .opt_text(merchant.map(|m| m.as_str().to_owned()))
        .opt_text(id.map(|i| i.as_str().to_owned()))
        .opt_int(seq);
    backend
        .fetch(query)
        .await?
        .first()
        .map(deposit_from_row)
        .transpose()
}

pub(super) fn transfer_query(
    chain: &ChainId,
    txid: &str,
    output_index: u32,
    asset: &coffer_core::AssetId,
) -> Query {
    let sql = format!(
        "{DEPOSIT_COLUMNS} WHERE chain = $1 AND txid = $2 AND output_index = $3 AND asset = $4"
    );
    Query::built(sql)
        .text(chain.as_str())
        .text(txid)
        .int(i64::from(output_index))
        .text(asset.to_string())
}

/// The deposit of one transfer (chain + txid + output index + asset), if recorded.
pub(super) async fn find_transfer<B: Backend>(
    backend: &B,
    chain: &ChainId,
    txid: &str,
    output_index: u32,
    asset: &coffer_core::AssetId,
) -> Result<Option<Deposit>, StoreError> {
    let query = transfer_query(chain, txid, output_index, asset);
    backend
        .fetch(query)
        .await?
        .first()
        .map(deposit_from_row)
        .transpose()
}

/// Deposits whose confirmations can still change: unconfirmed, confirmed without a block
/// (zero-conf), or confirmed at or above `$2`; each branch a range of index `deposits_open`
/// (chain, status, block_height), so the confirmed history below the height is never read.
pub(super) fn open_deposits_query(chain: &ChainId, from_height: u64) -> Query {
    let sql = format!(
        "{DEPOSIT_COLUMNS} WHERE chain = $1 AND status = 'unconfirmed' \
         UNION ALL {DEPOSIT_COLUMNS} WHERE chain = $1 AND status = 'confirmed' AND block_height IS NULL \
         UNION ALL {DEPOSIT_COLUMNS} WHERE chain = $1 AND status = 'confirmed' AND block_height >= $2 \
         ORDER BY seq"
    );
    Query::built(sql)
        .text(chain.as_str())
        .int(i64::try_from(from_height).unwrap_or(i64::MAX))
}

/// Deposits whose confirmations may still change or that a reorg from `from_height` removes.
pub(super) async fn open_deposits<B: Backend>(
    backend: &B,
    chain: &ChainId,
    from_height: u64,
) -> Result<Vec<Deposit>, StoreError> {
    let query = open_deposits_query(chain, from_height);
    backend
        .fetch(query)
        .await?
        .iter()
        .map(deposit_from_row)
        .collect()
}

pub(super) fn owner_query(chain: &ChainId, address: &str) -> Query {
    Query::new(
        "SELECT a.seq, a.merchant_id, a.uuid, a.dialect, d.derivation_index \
         FROM deposit_addresses d JOIN deposit_accounts a \
         ON a.merchant_id = d.merchant_id AND a.uuid = d.uuid \
         WHERE d.chain = $1 AND d.address = $2",
    )
    .text(chain.as_str())
    .text(address)
}

/// The account a deposit address belongs to.
pub(super) async fn address_owner<B: Backend>(
    backend: &B,
    chain: &ChainId,
    address: &str,
) -> Result<Option<DepositAddressOwner>, StoreError> {
    let rows = backend.fetch(owner_query(chain, address)).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(DepositAddressOwner {
        merchant_id: row
            .text("merchant_id")?
            .parse()
            .map_err(|e| corrupt("deposit_accounts.merchant_id", e))?,
        account_uuid: row.text("uuid")?,
        account_seq: row.int("seq")?,
        dialect: row.text("dialect")?,
        derivation_index: u32::try_from(row.int("derivation_index")?)
            .map_err(|e| corrupt("deposit_addresses.derivation_index", e))?,
    }))
}
