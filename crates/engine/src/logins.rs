//! Merchants' console logins (username + password), for dialects that exchange them for a
//! key (Aurpay "Get API-Key"). Passwords are hashed with Argon2id (the crate's default
//! parameters, a random 128-bit salt) and stored only as PHC strings.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use coffer_core::MerchantId;
use coffer_store::{MerchantLoginRecord, StoreError, Unique};

use crate::{Engine, EngineError, random16};

/// Shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 12;

pub(crate) fn hash_password(password: &str) -> Result<String, EngineError> {
    let salt = SaltString::encode_b64(&random16())
        .map_err(|e| EngineError::Store(StoreError::Database(format!("password salt: {e}"))))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| EngineError::Store(StoreError::Database(format!("password hash: {e}"))))
}

pub(crate) fn password_matches(password: &str, phc: &str) -> bool {
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
            Err(StoreError::Duplicate(Unique::Username)) => Err(EngineError::Conflict {
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
        self.check_login(username, password, None).await
    }

    /// The check itself; `permit` is held by the hashing thread until the hash is done (a
    /// client that goes away does not free the slot early).
    async fn check_login(
        &self,
        username: &str,
        password: &str,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Option<MerchantId>, EngineError> {
        let record = self.store.find_merchant_login(username.trim()).await?;
        let (phc, merchant) = match record {
            Some(r) => (Some(r.password_hash), Some(r.merchant_id)),
            None => (None, None),
        };
        let ok = verify_hash(phc, password, permit).await;
        Ok(merchant.filter(|_| ok))
    }
}

/// Whether `password` matches `phc`, checked on a blocking thread that holds `permit` until
/// the hash is done. Without a stored hash a dummy one is checked, so an unknown user costs
/// as much as a wrong password.
pub(crate) async fn verify_hash(
    phc: Option<String>,
    password: &str,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> bool {
    let password = password.to_owned();
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(dummy_hash);
    tokio::task::spawn_blocking(move || {
        let _slot = permit;
        password_matches(&password, &phc)
    })
    .await
    .unwrap_or(false)
        && known
}

/// Guards a console login against guessing and against burning the CPU on password hashes:
/// after [`LoginThrottle::MAX_FAILURES`] failures for one username within
/// [`LoginThrottle::WINDOW`], that username is refused without hashing until the oldest
/// failure leaves the window; at most [`LoginThrottle::CONCURRENT`] hashes run at once and a
/// login beyond that is refused as busy. In memory, per instance.
#[derive(Debug)]
pub struct LoginThrottle {
    failures: std::sync::Mutex<std::collections::HashMap<String, Vec<std::time::Instant>>>,
    hashing: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Too many recent failures for this username: retry after this many seconds.
    Locked { retry_after_secs: u64 },
    /// Too many logins being checked right now.
    Busy,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            failures: std::sync::Mutex::default(),
            hashing: std::sync::Arc::new(tokio::sync::Semaphore::new(Self::CONCURRENT)),
        }
    }
}

impl LoginThrottle {
    pub const MAX_FAILURES: usize = 5;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    pub const CONCURRENT: usize = 2;
    /// Usernames tracked before expired entries are swept.
    const SWEEP_AT: usize = 10_000;
    /// Usernames tracked at most: when as many have recent failures, other usernames are
    /// refused as busy rather than tracked (the memory stays bounded and no lockout is lost).
    const MAX_TRACKED: usize = 100_000;

    fn key(username: &str) -> String {
        username.trim().to_lowercase()
    }

    /// Whether `username` may try now (`Err` with why not), given the time `now`.
    pub fn check(&self, username: &str, now: std::time::Instant) -> Result<(), LoginRefusal> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = Self::key(username);
        if !failures.contains_key(&key) && failures.len() >= Self::MAX_TRACKED {
            failures.retain(|_, l| {
                l.iter()
                    .any(|t| now.saturating_duration_since(*t) < Self::WINDOW)
            });
            if failures.len() >= Self::MAX_TRACKED {
                return Err(LoginRefusal::Busy);
            }
        }
        let Some(list) = failures.get_mut(&key) else {
            return Ok(());
        };
        list.retain(|t| now.saturating_duration_since(*t) < Self::WINDOW);
        if list.len() < Self::MAX_FAILURES {
            return Ok(());
        }
        let oldest = list.iter().min().copied().unwrap_or(now);
        let wait = Self::WINDOW.saturating_sub(now.saturating_duration_since(oldest));
        Err(LoginRefusal::Locked {
            retry_after_secs: wait.as_secs().max(1),
        })
    }

    /// Record the outcome of a checked attempt: a success forgets the username's failures.
    pub fn record(&self, username: &str, ok: bool, now: std::time::Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = Self::key(username);
        if ok {
            failures.remove(&key);
            return;
        }
        if failures.len() >= Self::SWEEP_AT {
            failures.retain(|_, l| {
                l.iter()
                    .any(|t| now.saturating_duration_since(*t) < Self::WINDOW)
            });
        }
        failures.entry(key).or_default().push(now);
    }
}

impl LoginThrottle {
    /// A login's checks in order: refuse a username locked by failures or a busy server before
    /// any hashing, then `check` (which gets the hashing slot and answers who signed in), then
    /// record the outcome for the username.
    pub(crate) async fn run<T, F>(
        &self,
        username: &str,
        password: &str,
        check: impl FnOnce(tokio::sync::OwnedSemaphorePermit) -> F,
    ) -> Result<Result<Option<T>, LoginRefusal>, EngineError>
    where
        F: std::future::Future<Output = Result<Option<T>, EngineError>>,
    {
        // Longer than any login that can be set: wrong, without hashing or tracking it.
        if username.len() > 254 || password.len() > 1024 {
            return Ok(Ok(None));
        }
        if let Err(refusal) = self.check(username, std::time::Instant::now()) {
            return Ok(Err(refusal));
        }
        let Ok(permit) = self.hashing.clone().try_acquire_owned() else {
            return Ok(Err(LoginRefusal::Busy));
        };
        let found = check(permit).await?;
        self.record(username, found.is_some(), std::time::Instant::now());
        Ok(Ok(found))
    }
}

impl Engine {
    /// [`Engine::verify_merchant_login`] behind `throttle`: a locked username or a busy server
    /// is refused before any hashing.
    pub async fn verify_merchant_login_throttled(
        &self,
        throttle: &LoginThrottle,
        username: &str,
        password: &str,
    ) -> Result<Result<Option<MerchantId>, LoginRefusal>, EngineError> {
        throttle
            .run(username, password, |permit| {
                self.check_login(username, password, Some(permit))
            })
            .await
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
    fn throttle_locks_a_username_after_five_failures_in_the_window() {
        let t = LoginThrottle::default();
        let start = std::time::Instant::now();
        let at = |secs: u64| start + std::time::Duration::from_secs(secs);
        for i in 0..4 {
            assert_eq!(t.check("Alice", at(i)), Ok(()));
            t.record("alice", false, at(i));
        }
        // A success forgets the failures.
        t.record(" ALICE ", true, at(5));
        for i in 0..5 {
            assert_eq!(t.check("alice", at(10 + i)), Ok(()));
            t.record("alice", false, at(10 + i));
        }
        // Fifth failure at 14 s: locked until the first (10 s) leaves the 15-minute window.
        assert_eq!(
            t.check("alice", at(20)),
            Err(LoginRefusal::Locked {
                retry_after_secs: 900 - 10
            })
        );
        assert_eq!(
            t.check("bob", at(20)),
            Ok(()),
            "other usernames are not affected"
        );
        assert_eq!(t.check("alice", at(910)), Ok(()));
    }

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
