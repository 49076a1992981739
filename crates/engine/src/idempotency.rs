//! Idempotency keys with Stripe's semantics, for any API that takes them.
//!
//! The first request with a key reserves it (a row with a unique key, committed before the
//! request runs); its response — success or error — is then stored with it and replayed to
//! every retry. A retry with another request body is refused; a retry that arrives while the
//! first is still running waits briefly, then is told to try again later. Concurrent
//! duplicates therefore run the operation exactly once.
//!
//! Order creation goes further ([`Answer`]): no reservation, the key and its response commit
//! in the order's own changeset, so a crash can never leave an order whose key is stuck "in
//! progress", and the key costs no commit of its own.

use std::time::Duration as StdDuration;

use coffer_core::{MerchantId, Order};
use coffer_store::{
    Changeset, IdempotencyRecord, IdempotencyResponse, StoreError, StoredResponse, Unique,
};
use sha2::{Digest, Sha256};
use time::Duration;
use time::OffsetDateTime;

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

/// The key of a request whose own write stores its response (order creation): nothing is
/// reserved beforehand, and the key with its response commits in the write's changeset, so a
/// crash leaves both or neither. Concurrent duplicates all run; the first to commit wins and
/// the others, having written nothing, replay its response.
pub struct Answer<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
    /// The response the request gives for the order it creates, rendered before the commit.
    pub respond: &'a (dyn Fn(&Order) -> StoredResponse + Send + Sync),
}

impl Answer<'_> {
    pub(crate) fn record(
        &self,
        merchant: &MerchantId,
        order: &Order,
        now: OffsetDateTime,
    ) -> IdempotencyRecord {
        IdempotencyRecord {
            merchant_id: merchant.clone(),
            key: self.key.to_owned(),
            fingerprint: self.fingerprint.to_owned(),
            response: Some((self.respond)(order)),
            created_at: now,
        }
    }
}

/// Whether a store error means another request stored this idempotency key first.
pub fn is_key_taken(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::Store(StoreError::Duplicate(Unique::IdempotencyKey))
    )
}

/// `METHOD path sha256(body)`: what makes two requests "the same".
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    format!("{method} {path} {}", hex::encode(Sha256::digest(body)))
}

fn key_reused() -> EngineError {
    EngineError::invalid(
        "idempotency_key_reused",
        "Idempotency-Key",
        "this Idempotency-Key was used with a different request (method, path or body)",
    )
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
        self.idempotency_check(merchant, key, fingerprint, wait, true)
            .await
    }

    /// Find the response to replay for `key`, reserving nothing: for a request that stores
    /// its key with its own write ([`Answer`]). `Proceed` means no request has stored it yet.
    pub async fn idempotency_lookup(
        &self,
        merchant: &MerchantId,
        key: &str,
        fingerprint: &str,
        wait: StdDuration,
    ) -> Result<Begin, EngineError> {
        self.idempotency_check(merchant, key, fingerprint, wait, false)
            .await
    }

    async fn idempotency_check(
        &self,
        merchant: &MerchantId,
        key: &str,
        fingerprint: &str,
        wait: StdDuration,
        reserve: bool,
    ) -> Result<Begin, EngineError> {
        validate_key(key)?;
        if reserve {
            match self
                .commit(Changeset {
                    idempotency_reservations: vec![self.key_record(
                        merchant,
                        key,
                        fingerprint,
                        None,
                    )],
                    ..Changeset::default()
                })
                .await
            {
                Ok(()) => return Ok(Begin::Proceed),
                Err(StoreError::Duplicate(Unique::IdempotencyKey)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let started = std::time::Instant::now();
        loop {
            let Some(existing) = self.store.get_idempotency(merchant, key).await? else {
                if !reserve {
                    return Ok(Begin::Proceed);
                }
                // The first request failed and released the key: this one may take it.
                return Box::pin(self.idempotency_check(merchant, key, fingerprint, wait, true))
                    .await;
            };
            if existing.fingerprint != fingerprint {
                return Err(key_reused());
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

    /// Store the response of a request that ran without a reservation and whose own write did
    /// not store it (it wrote nothing: an error, or an existing order answered). If another
    /// request stored the key meanwhile, its response comes back: replay that one.
    pub async fn idempotency_record(
        &self,
        merchant: &MerchantId,
        key: &str,
        fingerprint: &str,
        response: StoredResponse,
        wait: StdDuration,
    ) -> Result<Begin, EngineError> {
        let record = self.key_record(merchant, key, fingerprint, Some(response));
        match self
            .commit(Changeset {
                idempotency_reservations: vec![record],
                ..Changeset::default()
            })
            .await
        {
            Ok(()) => Ok(Begin::Proceed),
            Err(StoreError::Duplicate(Unique::IdempotencyKey)) => {
                self.idempotency_lookup(merchant, key, fingerprint, wait)
                    .await
            }
            Err(e) => Err(e.into()),
        }
    }

    fn key_record(
        &self,
        merchant: &MerchantId,
        key: &str,
        fingerprint: &str,
        response: Option<StoredResponse>,
    ) -> IdempotencyRecord {
        IdempotencyRecord {
            merchant_id: merchant.clone(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            response,
            created_at: self.now(),
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
