//! Merchants' console logins (username + password), for dialects that exchange them for a
//! key (Aurpay "Get API-Key"). Passwords are hashed with Argon2id (the crate's default
//! parameters, a random 128-bit salt) and stored only as PHC strings.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use coffer_core::MerchantId;
use coffer_store::{MerchantLoginRecord, StoreError};

use crate::{Engine, EngineError, random16};

/// Shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 12;

fn hash_password(password: &str) -> Result<String, EngineError> {
    let salt = SaltString::encode_b64(&random16())
        .map_err(|e| EngineError::Store(StoreError::Database(format!("password salt: {e}"))))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| EngineError::Store(StoreError::Database(format!("password hash: {e}"))))
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Engine {
    /// Set (or replace) a merchant's console login.
    pub async fn set_merchant_login(
        &self,
        merchant: &MerchantId,
        username: &str,
        password: &str,
    ) -> Result<(), EngineError> {
        let username = username.trim();
        if username.is_empty() || username.len() > 254 || username.chars().any(char::is_control) {
            return Err(EngineError::invalid(
                "invalid_username",
                "username",
                "the username must be 1 to 254 printable characters",
            ));
        }
        if password.chars().count() < MIN_PASSWORD_LEN || password.len() > 1024 {
            return Err(EngineError::invalid(
                "invalid_password",
                "password",
                format!("the password must be {MIN_PASSWORD_LEN} to 1024 characters"),
            ));
        }
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(EngineError::NotFound("merchant"));
        }
        let now = self.now();
        let record = MerchantLoginRecord {
            merchant_id: merchant.clone(),
            username: username.to_owned(),
            password_hash: hash_password(password)?,
            created_at: now,
            updated_at: now,
        };
        match self.store.set_merchant_login(&record).await {
            Err(StoreError::Duplicate(_)) => Err(EngineError::Conflict {
                code: "username_taken",
                message: "another merchant uses this username".into(),
            }),
            other => Ok(other?),
        }
    }

    /// The merchant whose login this is, or `None` (unknown user and wrong password look the
    /// same, and take the same time).
    pub async fn verify_merchant_login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<MerchantId>, EngineError> {
        let record = self.store.find_merchant_login(username.trim()).await?;
        let password = password.to_owned();
        let (phc, merchant) = match record {
            Some(r) => (r.password_hash, Some(r.merchant_id)),
            // Hash anyway so an unknown user costs as much as a wrong password.
            None => (dummy_hash(), None),
        };
        let ok = tokio::task::spawn_blocking(move || password_matches(&password, &phc))
            .await
            .unwrap_or(false);
        Ok(merchant.filter(|_| ok))
    }
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("coffer-dummy-password").unwrap_or_default())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(password_matches("correct horse battery", &a));
        assert!(!password_matches("wrong horse battery", &a));
        assert!(!password_matches("x", "not a hash"));
    }
}
