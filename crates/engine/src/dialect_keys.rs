//! Credentials and settings of the vendor-compatible API dialects, dialect-neutral: each
//! dialect describes its own with a [`CredentialShape`] and [`SettingSpec`]s, and the engine
//! names none.
//!
//! Per merchant and dialect the operator creates a credential, shown once:
//! - `key`: the public key the shop sends, looked up by its SHA-256;
//! - `secret`: the HMAC secret;
//! - where the shape has them: `token` (a second public identifier, looked up by its SHA-256)
//!   and `callback_token` / `callback_secret` (what the dialect's callbacks carry and are
//!   signed with).
//!
//! The dialect verifies request signatures itself, so every value must be recoverable: all of
//! them are stored as one JSON object sealed with the server master key; only the hashes of
//! the public identifiers (and a display prefix) are stored in clear.

use coffer_core::MerchantId;
use coffer_core::ids::base32;
use coffer_secrets::MasterKey;
use coffer_store::{DialectCredentialRecord, DialectIdentifier, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::{Engine, EngineError, random16, random32};

/// What a dialect's credential consists of and how its vendor labels each part: given by the
/// dialect (`Dialect::credential_shape`), the engine creates and stores credentials of that
/// shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialShape {
    /// The dialect's name, stored with the credential and on its orders.
    pub dialect: &'static str,
    /// Short prefix of every generated value (`xyz` → `xyzk_…`, `xyzs_…`): tells a shop's
    /// values apart at a glance.
    pub tag: &'static str,
    /// The vendor's label of the public key (e.g. `X-API-Key`).
    pub key: &'static str,
    /// How many random characters (base32: 5 bits each) follow `{tag}k_` in the key:
    /// [`LONG_KEY`] where the key alone authenticates a request (a bearer secret), or
    /// [`SHORT_KEY`] where it only names the credential and a signature with the secret proves
    /// the sender — short like the vendor's own keys, because shop plugins embed it (the Pay
    /// Protocol plugin builds `WP-ORDER-{key}-{order}` order numbers).
    pub key_chars: usize,
    /// The vendor's label of the secret.
    pub secret: &'static str,
    /// The label of a second public identifier, if the vendor has one.
    pub token: Option<&'static str>,
    /// The label of the token the vendor's callbacks carry, if they carry their own.
    pub callback_token: Option<&'static str>,
    /// The label of the secret callbacks are signed with, if not the request secret.
    pub callback_secret: Option<&'static str>,
}

impl CredentialShape {
    /// The parts of a new credential under the vendor's labels, in the order a vendor's
    /// console lists them: key, token, secret, callback token, callback secret.
    pub fn labelled(&self, c: &NewDialectCredential) -> Vec<(&'static str, String)> {
        [
            (Some(self.key), Some(&c.key)),
            (self.token, c.token.as_ref()),
            (Some(self.secret), Some(&c.secret)),
            (self.callback_token, c.callback_token.as_ref()),
            (self.callback_secret, c.callback_secret.as_ref()),
        ]
        .into_iter()
        .filter_map(|(label, value)| Some((label?, value?.clone())))
        .collect()
    }
}

/// A setting a dialect keeps per merchant (what its vendor keeps in a console), given by the
/// dialect (`Dialect::settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSpec {
    pub name: &'static str,
    /// What it is for, in a sentence (shown by the CLI and the API docs).
    pub meaning: &'static str,
    pub kind: SettingKind,
}

/// How a setting's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// Free text.
    Text,
    /// An absolute http(s) URL that callbacks may go to.
    Url,
}

/// Random characters of a key that is a bearer secret: 52 base32 characters, 256 bits.
pub const LONG_KEY: usize = 52;
/// Random characters of a key that only names a credential: 16 base32 characters, 80 bits
/// (enough that two credentials never share a key; a key is looked up by its SHA-256).
pub const SHORT_KEY: usize = 16;

/// Prefix of dialect credential ids.
pub const CREDENTIAL_ID_PREFIX: &str = "dcr_";
/// How many leading characters of the key are stored in clear for lists.
const DISPLAY_PREFIX_LEN: usize = 12;

/// A credential as created: the only moment its values are shown.
#[derive(Clone)]
pub struct NewDialectCredential {
    pub id: String,
    pub merchant_id: MerchantId,
    pub dialect: String,
    pub key: String,
    pub secret: String,
    pub token: Option<String>,
    pub callback_token: Option<String>,
    pub callback_secret: Option<String>,
    pub created_at: OffsetDateTime,
}

/// An active credential found by its key or token, with its secret values opened.
#[derive(Clone)]
pub struct DialectCredential {
    pub id: String,
    pub merchant_id: MerchantId,
    pub dialect: String,
    pub key: String,
    pub secret: String,
    pub token: Option<String>,
    pub callback_token: Option<String>,
    pub callback_secret: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A credential as listed: no secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialectCredentialInfo {
    pub id: String,
    pub merchant_id: MerchantId,
    pub dialect: String,
    pub key_prefix: String,
    pub has_token: bool,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

macro_rules! redacted_debug {
    ($name:ident) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("id", &self.id)
                    .field("merchant_id", &self.merchant_id)
                    .field("dialect", &self.dialect)
                    .field("key", &"[redacted]")
                    .field("secret", &"[redacted]")
                    .finish_non_exhaustive()
            }
        }
    };
}
redacted_debug!(NewDialectCredential);
redacted_debug!(DialectCredential);

/// SHA-256 (hex) of a public identifier: how keys and tokens are stored and looked up.
pub fn identifier_hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn fresh(tag: &str, kind: &str) -> String {
    format!("{tag}{kind}_{}", base32(&random32()))
}

/// A key of `chars` random characters (at most [`LONG_KEY`]).
fn fresh_key(tag: &str, chars: usize) -> String {
    let random: String = base32(&random32()).chars().take(chars).collect();
    format!("{tag}k_{random}")
}

fn corrupt(detail: impl Into<String>) -> EngineError {
    EngineError::Store(StoreError::Corrupt {
        column: "dialect_credentials.sealed".into(),
        detail: detail.into(),
    })
}

fn seal(master: &MasterKey, c: &NewDialectCredential) -> Result<String, EngineError> {
    let value = serde_json::json!({
        "key": c.key,
        "secret": c.secret,
        "token": c.token,
        "callback_token": c.callback_token,
        "callback_secret": c.callback_secret,
    });
    master
        .seal(&value.to_string())
        .map_err(|e| corrupt(format!("cannot seal: {e}")))
}

fn open(
    master: &MasterKey,
    record: &DialectCredentialRecord,
) -> Result<DialectCredential, EngineError> {
    let plain = master
        .open(&record.sealed)
        .map_err(|e| corrupt(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&plain).map_err(|e| corrupt(e.to_string()))?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(DialectCredential {
        id: record.id.clone(),
        merchant_id: record.merchant_id.clone(),
        dialect: record.dialect.clone(),
        key: text("key").ok_or_else(|| corrupt("no key"))?,
        secret: text("secret").ok_or_else(|| corrupt("no secret"))?,
        token: text("token"),
        callback_token: text("callback_token"),
        callback_secret: text("callback_secret"),
        created_at: record.created_at,
    })
}

fn info(record: &DialectCredentialRecord) -> DialectCredentialInfo {
    DialectCredentialInfo {
        id: record.id.clone(),
        merchant_id: record.merchant_id.clone(),
        dialect: record.dialect.clone(),
        key_prefix: record.key_prefix.clone(),
        has_token: record.token_hash.is_some(),
        created_at: record.created_at,
        revoked_at: record.revoked_at,
    }
}

/// The merchant's newest active credential of `dialect`, opened. The same as
/// [`Engine::active_dialect_credential`], for code that holds only a store (the webhook sender).
pub async fn active_credential(
    store: &dyn coffer_store::Store,
    master: &MasterKey,
    merchant: &MerchantId,
    dialect: &str,
) -> Result<Option<DialectCredential>, EngineError> {
    callback_credential(store, master, merchant, dialect, None).await
}

/// The credential a callback of the merchant's `dialect` carries and is signed with: the one
/// that created its order (`preferred`, `Order::credential_id`) while it is active — a shop
/// verifies with the values it was configured with, whatever newer credentials exist. Without
/// one (native or older orders, deposits, withdrawals), or once it is revoked (a revoked
/// secret signs nothing more), the merchant's newest active credential of the dialect;
/// `None` when no credential of the dialect is active.
pub async fn callback_credential(
    store: &dyn coffer_store::Store,
    master: &MasterKey,
    merchant: &MerchantId,
    dialect: &str,
    preferred: Option<&str>,
) -> Result<Option<DialectCredential>, EngineError> {
    let records = store
        .list_dialect_credentials(merchant, Some(dialect))
        .await?;
    let active = |r: &&DialectCredentialRecord| r.revoked_at.is_none();
    let creator = preferred.and_then(|id| records.iter().filter(active).find(|r| r.id == id));
    match creator.or_else(|| records.iter().rev().find(active)) {
        Some(record) => open(master, record).map(Some),
        None => Ok(None),
    }
}

impl Engine {
    /// Create a credential of the dialect whose `shape` it is, for a merchant. The values
    /// are returned once; only hashes of the identifiers and the sealed values are stored.
    pub async fn create_dialect_credential(
        &self,
        master: &MasterKey,
        merchant: &MerchantId,
        shape: &CredentialShape,
    ) -> Result<NewDialectCredential, EngineError> {
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(EngineError::NotFound("merchant"));
        }
        let tag = shape.tag;
        let created = NewDialectCredential {
            id: format!("{CREDENTIAL_ID_PREFIX}{}", base32(&random16())),
            merchant_id: merchant.clone(),
            dialect: shape.dialect.to_owned(),
            key: fresh_key(tag, shape.key_chars),
            secret: fresh(tag, "s"),
            token: shape.token.map(|_| fresh(tag, "t")),
            callback_token: shape.callback_token.map(|_| fresh(tag, "ct")),
            callback_secret: shape.callback_secret.map(|_| fresh(tag, "cs")),
            created_at: self.now(),
        };
        let record = DialectCredentialRecord {
            id: created.id.clone(),
            merchant_id: merchant.clone(),
            dialect: shape.dialect.to_owned(),
            key_hash: identifier_hash(&created.key),
            token_hash: created.token.as_deref().map(identifier_hash),
            key_prefix: created.key.chars().take(DISPLAY_PREFIX_LEN).collect(),
            sealed: seal(master, &created)?,
            created_at: created.created_at,
            revoked_at: None,
        };
        self.store.insert_dialect_credential(&record).await?;
        Ok(created)
    }

    /// A new merchant with one credential of `shape` (tests and demos of the dialects).
    pub async fn create_merchant_with_dialect_credential(
        &self,
        master: &MasterKey,
        name: &str,
        shape: &CredentialShape,
    ) -> Result<(coffer_core::Merchant, NewDialectCredential), EngineError> {
        let (merchant, _) = self.create_merchant(name).await?;
        let credential = self
            .create_dialect_credential(master, &merchant.id, shape)
            .await?;
        Ok((merchant, credential))
    }

    /// The active credential of `dialect` whose key is `presented` (e.g. the `API-Key`
    /// header). Unknown, revoked or another dialect's key: `None`.
    pub async fn find_dialect_credential(
        &self,
        master: &MasterKey,
        dialect: &str,
        presented: &str,
    ) -> Result<Option<DialectCredential>, EngineError> {
        self.find_by(master, dialect, DialectIdentifier::Key, presented)
            .await
    }

    /// Like [`Engine::find_dialect_credential`], by the second identifier (the shape's token).
    pub async fn find_dialect_credential_by_token(
        &self,
        master: &MasterKey,
        dialect: &str,
        presented: &str,
    ) -> Result<Option<DialectCredential>, EngineError> {
        self.find_by(master, dialect, DialectIdentifier::Token, presented)
            .await
    }

    async fn find_by(
        &self,
        master: &MasterKey,
        dialect: &str,
        by: DialectIdentifier,
        presented: &str,
    ) -> Result<Option<DialectCredential>, EngineError> {
        if presented.is_empty() || presented.len() > 256 {
            return Ok(None);
        }
        let hash = identifier_hash(presented);
        let Some(record) = self
            .store
            .find_dialect_credential(dialect, by, &hash)
            .await?
        else {
            return Ok(None);
        };
        let stored = match by {
            DialectIdentifier::Key => Some(record.key_hash.as_str()),
            DialectIdentifier::Token => record.token_hash.as_deref(),
        };
        let matches = stored.is_some_and(|s| bool::from(s.as_bytes().ct_eq(hash.as_bytes())));
        if !matches || record.revoked_at.is_some() {
            return Ok(None);
        }
        // A suspended merchant's credentials are refused like revoked ones (console).
        if self
            .merchant_suspended_since(&record.merchant_id)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        open(master, &record).map(Some)
    }

    /// The merchant's newest active credential of `dialect`, opened (e.g. to sign the
    /// callbacks of an order created through that dialect).
    pub async fn active_dialect_credential(
        &self,
        master: &MasterKey,
        merchant: &MerchantId,
        dialect: &str,
    ) -> Result<Option<DialectCredential>, EngineError> {
        active_credential(&*self.store, master, merchant, dialect).await
    }

    /// A merchant's dialect credentials (no secret values), oldest first.
    pub async fn list_dialect_credentials(
        &self,
        merchant: &MerchantId,
        dialect: Option<&str>,
    ) -> Result<Vec<DialectCredentialInfo>, EngineError> {
        let records = self
            .store
            .list_dialect_credentials(merchant, dialect)
            .await?;
        Ok(records.iter().map(info).collect())
    }

    pub async fn revoke_dialect_credential(
        &self,
        merchant: &MerchantId,
        id: &str,
    ) -> Result<(), EngineError> {
        if self
            .store
            .revoke_dialect_credential(merchant, id, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(EngineError::NotFound("credential"))
        }
    }
}
