//! In-memory copies of what every order reads before it is written: the API key presented
//! (its record and secret hash), whether its merchant is suspended, the merchant (its
//! settlement policy, snapshotted by each order) and the merchant's wallets (which chains an
//! order without an asset can be paid on). Creating an order then reads nothing from the
//! database but what only the database knows (an `order_no` or Idempotency-Key already used).
//!
//! Coherence: the engine's own writes forget the entry they change at once, and every entry
//! lives at most [`HOT_TTL`], so a change made elsewhere — another instance on the same
//! PostgreSQL, or the `coffer` CLI beside a running server — is seen within that bound: a
//! revoked API key or a suspended merchant stops working within 5 s everywhere (at once on
//! the instance that made the change). A key's expiry is checked against the clock on every
//! request, never cached. Unknown keys and merchants are not remembered, so guessing costs
//! the guesser a read each time, as before, and no memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use coffer_core::{KeyId, Merchant, MerchantId};
use coffer_store::{CredentialRecord, WalletRecord};
use time::OffsetDateTime;

/// How long a remembered entry is trusted: the bound on how stale a change made by another
/// process can be seen here.
pub const HOT_TTL: Duration = Duration::from_secs(5);

/// Entries a map holds at most; past that it starts again empty (a flood of distinct keys
/// costs reads, never memory).
const MAX_ENTRIES: usize = 100_000;

/// The engine's hot caches (one set per engine, shared by its clones).
#[derive(Default)]
pub(crate) struct Hot {
    pub credentials: Remembered<KeyId, CredentialRecord>,
    pub suspended: Remembered<MerchantId, Option<OffsetDateTime>>,
    pub merchants: Remembered<MerchantId, Merchant>,
    pub wallets: Remembered<MerchantId, Arc<Vec<WalletRecord>>>,
}

/// One map of remembered values with a time-to-live.
pub(crate) struct Remembered<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Advanced by every [`forget`](Self::forget): a value read from the database before a
    /// change is not remembered after it.
    epoch: AtomicU64,
    ttl: Duration,
}

impl<K, V> Default for Remembered<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            epoch: AtomicU64::new(0),
            ttl: HOT_TTL,
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Remembered<K, V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // A poisoned lock only means another task panicked around a plain map operation.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The remembered value, if it is younger than the time-to-live.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.lock();
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Where the map stands before a read from the database (for [`put`](Self::put)).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remember `value`, read from the database after [`epoch`](Self::epoch) gave `epoch`,
    /// unless something was forgotten since (the read may predate that change).
    pub fn put(&self, epoch: u64, key: K, value: V) {
        let mut entries = self.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forget `key` (called after the write that changed it has committed).
    pub fn forget(&self, key: &K) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_older_than_a_change_is_not_remembered() {
        let map: Remembered<u32, &str> = Remembered::default();
        let before = map.epoch();
        map.forget(&1); // a write committed while the read was in flight
        map.put(before, 1, "old");
        assert_eq!(map.get(&1), None);
        map.put(map.epoch(), 1, "new");
        assert_eq!(map.get(&1), Some("new"));
        map.forget(&1);
        assert_eq!(map.get(&1), None);
    }

    #[test]
    fn entries_expire() {
        let map: Remembered<u32, u32> = Remembered {
            ttl: Duration::ZERO,
            ..Remembered::default()
        };
        map.put(map.epoch(), 1, 1);
        assert_eq!(map.get(&1), None);
    }
}
