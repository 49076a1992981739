//! Deposit accounts: a merchant's users, each with one static receiving address per chain
//! where the merchant has a wallet (a dialect's "recharge" users). Addresses come from the
//! same wallet index counter as orders, so an index is never handed out twice.

use coffer_core::MerchantId;
use coffer_store::{
    Changeset, DepositAccountQuery, DepositAccountRecord, DepositAddressRecord, NewDepositAccount,
    StoreError, Unique, WalletMark,
};

use crate::dialect_keys::{SettingKind, SettingSpec};
use crate::{ADDRESS_RETRIES, Engine, EngineError};

/// Longest `uuid` (the merchant's own id for its user) accepted.
pub const MAX_UUID_LEN: usize = 64;

fn check_uuid(uuid: &str) -> Result<&str, EngineError> {
    let uuid = uuid.trim();
    if uuid.is_empty() {
        return Err(EngineError::invalid(
            "invalid_uuid",
            "uuid",
            "uuid is required",
        ));
    }
    if uuid.chars().count() > MAX_UUID_LEN || uuid.chars().any(char::is_control) {
        return Err(EngineError::invalid(
            "invalid_uuid",
            "uuid",
            format!("uuid must be at most {MAX_UUID_LEN} characters without control characters"),
        ));
    }
    Ok(uuid)
}

impl Engine {
    /// Create the deposit account of a merchant's user, or return the existing one for this
    /// `uuid` (`false`: nothing was created). The account gets one address per chain where the
    /// merchant has a wallet that this server can derive addresses for.
    pub async fn create_deposit_account(
        &self,
        merchant: &MerchantId,
        dialect: &str,
        uuid: &str,
    ) -> Result<(DepositAccountRecord, bool), EngineError> {
        let uuid = check_uuid(uuid)?;
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(EngineError::NotFound("merchant"));
        }
        if let Some(existing) = self.deposit_account(merchant, None, Some(uuid)).await? {
            return Ok((existing, false));
        }
        let wallets = self.store.list_wallets(merchant).await?;
        let chains: Vec<_> = wallets
            .iter()
            .filter_map(|w| self.assets.chain(&w.chain).cloned())
            .filter(|c| self.methods.get(c).is_ok_and(|m| m.uses_wallet_index()))
            .collect();
        if chains.is_empty() {
            return Err(EngineError::invalid(
                "wallet_not_configured",
                "uuid",
                "no wallet is set on any chain: set one with PUT /api/v1/wallets/{chain} first",
            ));
        }
        let now = self.now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut addresses = Vec::with_capacity(chains.len());
            let mut marks = Vec::with_capacity(chains.len());
            for chain in &chains {
                let (address, mark) = match self.standing_address(merchant, chain).await {
                    Ok(x) => x,
                    Err(e) => {
                        self.forget_marks(&marks);
                        return Err(e);
                    }
                };
                addresses.push(DepositAddressRecord {
                    chain: chain.id.clone(),
                    address,
                    derivation_index: mark.index,
                });
                marks.push(mark);
            }
            let changes = Changeset {
                new_deposit_accounts: vec![NewDepositAccount {
                    merchant_id: merchant.clone(),
                    uuid: uuid.to_owned(),
                    dialect: dialect.to_owned(),
                    created_at: now,
                    addresses,
                }],
                wallet_marks: marks.clone(),
                ..Changeset::default()
            };
            match self.commit(changes).await {
                Ok(()) => {
                    let created = self
                        .deposit_account(merchant, None, Some(uuid))
                        .await?
                        .ok_or(EngineError::NotFound("deposit account"))?;
                    return Ok((created, true));
                }
                // Lost a race with the same request: answer like the replay it is.
                Err(StoreError::Duplicate(Unique::DepositAccount)) => {
                    self.forget_marks(&marks);
                    let existing = self
                        .deposit_account(merchant, None, Some(uuid))
                        .await?
                        .ok_or(EngineError::NotFound("deposit account"))?;
                    return Ok((existing, false));
                }
                Err(
                    e @ (StoreError::Duplicate(Unique::Address) | StoreError::Conflict("wallet")),
                ) => {
                    self.forget_marks(&marks);
                    if attempt >= ADDRESS_RETRIES {
                        return Err(crate::address_unavailable(e));
                    }
                }
                Err(e) => {
                    self.forget_marks(&marks);
                    return Err(e.into());
                }
            }
        }
    }

    /// A standing address for a deposit account: the wallet's next index, derived by the
    /// chain's method, and the mark that makes the index durable with the account.
    async fn standing_address(
        &self,
        merchant: &MerchantId,
        chain: &coffer_core::Chain,
    ) -> Result<(String, WalletMark), EngineError> {
        let mark = self.take_wallet_index(merchant, chain).await?;
        let prepared =
            self.methods
                .get(chain)?
                .standing_address(chain, &mark.descriptor, mark.index)?;
        Ok((prepared.address, mark))
    }

    /// A merchant's deposit account by its number or its `uuid` (both must match when both
    /// are given); another merchant's is `None`.
    pub async fn deposit_account(
        &self,
        merchant: &MerchantId,
        seq: Option<i64>,
        uuid: Option<&str>,
    ) -> Result<Option<DepositAccountRecord>, EngineError> {
        let query = DepositAccountQuery {
            merchant_id: Some(merchant.clone()),
            uuid: uuid.map(|u| u.trim().to_owned()),
            seq,
            limit: 1,
            ..DepositAccountQuery::default()
        };
        Ok(self
            .store
            .list_deposit_accounts(&query)
            .await?
            .into_iter()
            .next())
    }

    /// A page of a merchant's deposit accounts (newest first) and how many match in all. The
    /// query is always scoped to `merchant`.
    pub async fn list_deposit_accounts(
        &self,
        merchant: &MerchantId,
        mut query: DepositAccountQuery,
    ) -> Result<(Vec<DepositAccountRecord>, u64), EngineError> {
        query.merchant_id = Some(merchant.clone());
        let items = self.store.list_deposit_accounts(&query).await?;
        let count = self.store.count_deposit_accounts(&query).await?;
        Ok((items, count))
    }
}

impl Engine {
    /// Set or clear several of a merchant's settings of one dialect, whose settings are
    /// `known` (the dialect's own list): all are checked before any is written.
    pub async fn set_dialect_settings(
        &self,
        merchant: &MerchantId,
        dialect: &str,
        known: &[SettingSpec],
        settings: &[(String, Option<String>)],
    ) -> Result<(), EngineError> {
        let mut checked = Vec::with_capacity(settings.len());
        for (name, value) in settings {
            let Some(spec) = known.iter().find(|s| s.name == name) else {
                let names: Vec<String> = known
                    .iter()
                    .map(|s| format!("{dialect}.{}", s.name))
                    .collect();
                return Err(EngineError::invalid(
                    "unknown_setting",
                    "name",
                    format!(
                        "{dialect}.{} is not a dialect setting (known: {})",
                        name.chars().take(64).collect::<String>(),
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            };
            let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
            if let Some(v) = value
                && spec.kind == SettingKind::Url
            {
                crate::validate::url("value", v)?;
            }
            checked.push((name.as_str(), value));
        }
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(EngineError::NotFound("merchant"));
        }
        self.store
            .set_dialect_settings(merchant, dialect, &checked, self.now())
            .await?;
        Ok(())
    }

    /// A merchant's settings of one dialect (name → value).
    pub async fn dialect_settings(
        &self,
        merchant: &MerchantId,
        dialect: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, EngineError> {
        Ok(self.store.dialect_settings(merchant, dialect).await?)
    }
}

impl Engine {
    /// A page of a merchant's deposits (newest first) and how many match in all; always
    /// scoped to `merchant`.
    pub async fn list_deposits(
        &self,
        merchant: &MerchantId,
        mut query: coffer_store::DepositQuery,
    ) -> Result<(Vec<coffer_core::Deposit>, u64), EngineError> {
        query.merchant_id = Some(merchant.clone());
        let items = self.store.list_deposits(&query).await?;
        let count = self.store.count_deposits(&query).await?;
        Ok((items, count))
    }

    /// A merchant's deposit by its number; another merchant's is `None`.
    pub async fn deposit_by_number(
        &self,
        merchant: &MerchantId,
        seq: i64,
    ) -> Result<Option<coffer_core::Deposit>, EngineError> {
        Ok(self
            .store
            .get_deposit(Some(merchant), None, Some(seq))
            .await?)
    }
}

impl Engine {
    /// A merchant's deposit by id; another merchant's is `NotFound`.
    pub async fn deposit(
        &self,
        merchant: &MerchantId,
        id: &coffer_core::DepositId,
    ) -> Result<coffer_core::Deposit, EngineError> {
        self.store
            .get_deposit(Some(merchant), Some(id), None)
            .await?
            .ok_or(EngineError::NotFound("deposit"))
    }
}
