//! Idempotency keys with Stripe's semantics, for any API that takes them.
//!
//! The first request with a key reserves it (a row with a unique key, committed before the
//! request runs); its response — success or error — is then stored with it and replayed to
//! every retry. A retry with another request body is refused; a retry that arrives while the
//! first is still running waits briefly, then is told to try again later. Concurrent
//! duplicates therefore run the operation exactly once.

use std::time::Duration as StdDuration;

use coffer_core::MerchantId;
use coffer_store::{
    Changeset, IdempotencyRecord, IdempotencyResponse, StoreError, StoredResponse, Unique,
};
use sha2::{Digest, Sha256};
use time::Duration;

use crate::{Engine, EngineError};

/// Keys are kept at least this long.
pub const RETENTION: Duration = Duration::hours(24);
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;
/// How often a retry polls for the first request's response while it runs.
const POLL: StdDuration = StdDuration::from_millis(20);

/// What to do with a request carrying an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is reserved for this request: run it, then [`Engine::idempotency_finish`].
    Proceed,
    /// A request with this key was answered already: send this response again.
    Replay(StoredResponse),
}

/// `METHOD path sha256(body)`: what makes two requests "the same".
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    format!("{method} {path} {}", hex::encode(Sha256::digest(body)))
}

pub fn validate_key(key: &str) -> Result<(), EngineError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EngineError::invalid(
            "invalid_idempotency_key",
            "Idempotency-Key",
            "Idempotency-Key must be 1-255 printable ASCII characters without spaces",
        ));
    }
    Ok(())
}

impl Engine {
    /// Reserve `key` for a request, or find the response to replay. `wait` bounds how long a
    /// duplicate waits for a first request still in progress before `idempotency_in_progress`.
    pub async fn idempotency_begin(
        &self,
        merchant: &MerchantId,
        key: &str,
        fingerprint: &str,
        wait: StdDuration,
    ) -> Result<Begin, EngineError> {
        validate_key(key)?;
        let reservation = IdempotencyRecord {
            merchant_id: merchant.clone(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            response: None,
            created_at: self.now(),
        };
        match self
            .commit(Changeset {
                idempotency_reservations: vec![reservation],
                ..Changeset::default()
            })
            .await
        {
            Ok(()) => return Ok(Begin::Proceed),
            Err(StoreError::Duplicate(Unique::IdempotencyKey)) => {}
            Err(e) => return Err(e.into()),
        }
        let started = std::time::Instant::now();
        loop {
            let Some(existing) = self.store.get_idempotency(merchant, key).await? else {
                // The first request failed and released the key: this one may take it.
                return Box::pin(self.idempotency_begin(merchant, key, fingerprint, wait)).await;
            };
            if existing.fingerprint != fingerprint {
                return Err(EngineError::invalid(
                    "idempotency_key_reused",
                    "Idempotency-Key",
                    "this Idempotency-Key was used with a different request (method, path or body)",
                ));
            }
            if let Some(response) = existing.response {
                return Ok(Begin::Replay(response));
            }
            if started.elapsed() >= wait {
                return Err(EngineError::Conflict {
                    code: "idempotency_in_progress",
                    message:
                        "a request with this Idempotency-Key is still in progress; retry later"
                            .into(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Store the response of a reserved key, or release the key (`None`) when the request
    /// could not be answered (a server-side failure), so that a retry runs it again.
    pub async fn idempotency_finish(
        &self,
        merchant: &MerchantId,
        key: &str,
        response: Option<StoredResponse>,
    ) -> Result<(), EngineError> {
        let changes = match response {
            Some(response) => Changeset {
                idempotency_responses: vec![IdempotencyResponse {
                    merchant_id: merchant.clone(),
                    key: key.to_owned(),
                    response,
                    at: self.now(),
                }],
                ..Changeset::default()
            },
            None => Changeset {
                idempotency_releases: vec![(merchant.clone(), key.to_owned())],
                ..Changeset::default()
            },
        };
        Ok(self.commit(changes).await?)
    }

    /// Forget idempotency keys older than [`RETENTION`].
    pub async fn purge_idempotency(&self) -> Result<u64, EngineError> {
        Ok(self.store.purge_idempotency(self.now() - RETENTION).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_method_path_and_body() {
        let a = fingerprint("POST", "/api/v1/orders", b"{}");
        assert_eq!(a, fingerprint("POST", "/api/v1/orders", b"{}"));
        assert_ne!(a, fingerprint("PUT", "/api/v1/orders", b"{}"));
        assert_ne!(a, fingerprint("POST", "/api/v1/orders/x", b"{}"));
        assert_ne!(a, fingerprint("POST", "/api/v1/orders", b"{ }"));
    }

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(validate_key("order-123_abc").is_ok());
        assert!(validate_key(&"k".repeat(255)).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(256)] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }
}
