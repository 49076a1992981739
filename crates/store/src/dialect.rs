//! Credentials of the vendor-compatible API dialects, and merchants' console logins.

use std::collections::BTreeMap;

use coffer_core::MerchantId;
use time::OffsetDateTime;

use crate::StoreError;
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{from_ms, ms, opt_ms};
use crate::unique::Unique;

/// A stored dialect credential. The public identifiers are kept only as SHA-256 hashes; every
/// secret value is in `sealed` (sealed with the server master key by the engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialectCredentialRecord {
    /// `dcr_…`.
    pub id: String,
    pub merchant_id: MerchantId,
    /// `aurpay`, `payprotocol`, `zaepe`.
    pub dialect: String,
    /// SHA-256 (hex) of the public key (Aurpay API-Key, Pay Protocol X-PAY-KEY, Zaepe X-API-Key).
    pub key_hash: String,
    /// SHA-256 (hex) of a second public identifier (Aurpay API-Token), if the dialect has one.
    pub token_hash: Option<String>,
    /// The first characters of the key, to recognise it in lists.
    pub key_prefix: String,
    /// Sealed JSON object of the credential's secret values.
    pub sealed: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Which public identifier a lookup presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectIdentifier {
    Key,
    Token,
}

/// A merchant's console login (username and password hash), e.g. for Aurpay "Get API-Key".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantLoginRecord {
    pub merchant_id: MerchantId,
    pub username: String,
    /// A PHC string of a password KDF; never the password.
    pub password_hash: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

fn credential_from_row(row: &impl RowExt) -> Result<DialectCredentialRecord, StoreError> {
    Ok(DialectCredentialRecord {
        id: row.text("id")?,
        merchant_id: row
            .text("merchant_id")?
            .parse()
            .map_err(|e: coffer_core::ids::IdError| StoreError::Corrupt {
                column: "dialect_credentials.merchant_id".into(),
                detail: e.to_string(),
            })?,
        dialect: row.text("dialect")?,
        key_hash: row.text("key_hash")?,
        token_hash: row.opt_text("token_hash")?,
        key_prefix: row.text("key_prefix")?,
        sealed: row.text("sealed")?,
        created_at: from_ms("dialect_credentials.created_at", row.int("created_at")?)?,
        revoked_at: row
            .opt_int("revoked_at")?
            .map(|v| from_ms("dialect_credentials.revoked_at", v))
            .transpose()?,
    })
}

fn login_from_row(row: &impl RowExt) -> Result<MerchantLoginRecord, StoreError> {
    Ok(MerchantLoginRecord {
        merchant_id: row
            .text("merchant_id")?
            .parse()
            .map_err(|e: coffer_core::ids::IdError| StoreError::Corrupt {
                column: "merchant_logins.merchant_id".into(),
                detail: e.to_string(),
            })?,
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        created_at: from_ms("merchant_logins.created_at", row.int("created_at")?)?,
        updated_at: from_ms("merchant_logins.updated_at", row.int("updated_at")?)?,
    })
}

pub(crate) async fn insert_credential<B: Backend>(
    backend: &B,
    r: &DialectCredentialRecord,
) -> Result<(), StoreError> {
    let q = Query::new(
        "INSERT INTO dialect_credentials (id, merchant_id, dialect, key_hash, token_hash, \
         key_prefix, sealed, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .text(r.id.clone())
    .text(r.merchant_id.as_str())
    .text(r.dialect.clone())
    .text(r.key_hash.clone())
    .opt_text(r.token_hash.clone())
    .text(r.key_prefix.clone())
    .text(r.sealed.clone())
    .int(ms(r.created_at))
    .opt_int(opt_ms(r.revoked_at))
    .on_duplicate(Unique::DialectCredential);
    let mut tx = backend.begin().await?;
    B::execute(&mut tx, q).await?;
    B::commit(tx).await
}

pub(crate) async fn find_credential<B: Backend>(
    backend: &B,
    dialect: &str,
    by: DialectIdentifier,
    hash: &str,
) -> Result<Option<DialectCredentialRecord>, StoreError> {
    let sql: &'static str = match by {
        DialectIdentifier::Key => {
            "SELECT id, merchant_id, dialect, key_hash, token_hash, key_prefix, sealed, \
             created_at, revoked_at FROM dialect_credentials WHERE dialect = $1 AND key_hash = $2"
        }
        DialectIdentifier::Token => {
            "SELECT id, merchant_id, dialect, key_hash, token_hash, key_prefix, sealed, \
             created_at, revoked_at FROM dialect_credentials WHERE dialect = $1 AND token_hash = $2"
        }
    };
    let q = Query::new(sql).text(dialect).text(hash);
    backend
        .fetch(q)
        .await?
        .first()
        .map(credential_from_row)
        .transpose()
}

pub(crate) async fn list_credentials<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    dialect: Option<&str>,
) -> Result<Vec<DialectCredentialRecord>, StoreError> {
    let q = Query::new(
        "SELECT id, merchant_id, dialect, key_hash, token_hash, key_prefix, sealed, created_at, \
         revoked_at FROM dialect_credentials WHERE merchant_id = $1 \
         AND ($2 IS NULL OR dialect = $2) ORDER BY created_at, id",
    )
    .text(merchant.as_str())
    .opt_text(dialect.map(str::to_owned));
    backend
        .fetch(q)
        .await?
        .iter()
        .map(credential_from_row)
        .collect()
}

pub(crate) async fn revoke_credential<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    id: &str,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let q = Query::new(
        "UPDATE dialect_credentials SET revoked_at = $1 \
         WHERE merchant_id = $2 AND id = $3 AND revoked_at IS NULL",
    )
    .int(ms(at))
    .text(merchant.as_str())
    .text(id);
    let mut tx = backend.begin().await?;
    let n = B::execute(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(n == 1)
}

pub(crate) async fn set_login<B: Backend>(
    backend: &B,
    r: &MerchantLoginRecord,
) -> Result<(), StoreError> {
    let q = Query::new(
        "INSERT INTO merchant_logins (merchant_id, username, password_hash, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_id) DO UPDATE SET \
         username = excluded.username, password_hash = excluded.password_hash, \
         updated_at = excluded.updated_at",
    )
    .text(r.merchant_id.as_str())
    .text(r.username.clone())
    .text(r.password_hash.clone())
    .int(ms(r.created_at))
    .int(ms(r.updated_at))
    .on_duplicate(Unique::Username);
    let mut tx = backend.begin().await?;
    B::execute(&mut tx, q).await?;
    B::commit(tx).await
}

pub(crate) async fn find_login<B: Backend>(
    backend: &B,
    username: &str,
) -> Result<Option<MerchantLoginRecord>, StoreError> {
    let q = Query::new(
        "SELECT merchant_id, username, password_hash, created_at, updated_at \
         FROM merchant_logins WHERE username = $1",
    )
    .text(username);
    backend
        .fetch(q)
        .await?
        .first()
        .map(login_from_row)
        .transpose()
}

/// A merchant's settings of one dialect (name → value).
pub(crate) async fn settings<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    dialect: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    let query = Query::new(
        "SELECT name, value FROM dialect_settings WHERE merchant_id = $1 AND dialect = $2",
    )
    .text(merchant.as_str())
    .text(dialect);
    let mut out = BTreeMap::new();
    for row in backend.fetch(query).await? {
        out.insert(row.text("name")?, row.text("value")?);
    }
    Ok(out)
}

pub(crate) async fn set_settings<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    dialect: &str,
    settings: &[(&str, Option<&str>)],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut tx = backend.begin().await?;
    for (name, value) in settings {
        let query = match value {
            Some(v) => Query::new(
                "INSERT INTO dialect_settings (merchant_id, dialect, name, value, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_id, dialect, name) \
                 DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .text(merchant.as_str())
            .text(dialect)
            .text(*name)
            .text(*v)
            .int(ms(at)),
            None => Query::new(
                "DELETE FROM dialect_settings WHERE merchant_id = $1 AND dialect = $2 \
                 AND name = $3",
            )
            .text(merchant.as_str())
            .text(dialect)
            .text(*name),
        };
        B::execute(&mut tx, query).await?;
    }
    B::commit(tx).await?;
    Ok(())
}
