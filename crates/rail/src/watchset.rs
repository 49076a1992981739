//! The addresses a watcher looks for, in memory between steps: keyed by the source's parsed
//! form (EVM `Address`, Bitcoin `ScriptBuf`), each with the exact string it was handed out as
//! (what the engine routes a transfer by) and the end of its monitoring window.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use time::OffsetDateTime;

#[derive(Debug, Clone)]
struct Entry {
    original: String,
    until: OffsetDateTime,
}

/// Watched addresses. Lookups are one hash probe, whatever the size; an address leaves when
/// its monitoring window closes ([`WatchSet::expire`]) and comes back only if the store hands
/// it out again with a later `monitor_until`.
#[derive(Debug, Clone)]
pub struct WatchSet<K> {
    entries: HashMap<K, Entry>,
    /// Keys by the whole second their monitoring ends (rounded up): one bucket for all the
    /// orders of a busy second, so the index costs little more than the keys themselves.
    expiry: BTreeMap<i64, Vec<K>>,
}

impl<K> Default for WatchSet<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            expiry: BTreeMap::new(),
        }
    }
}

/// The whole second at or after `t`.
fn bucket(t: OffsetDateTime) -> i64 {
    let secs = t.unix_timestamp();
    if t.nanosecond() > 0 { secs + 1 } else { secs }
}

impl<K: Eq + Hash + Clone> WatchSet<K> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            entries: HashMap::with_capacity(n),
            expiry: BTreeMap::new(),
        }
    }

    /// Watch `key`, handed out as `original`, until `until`. An address seen again keeps the
    /// later of its ends of monitoring (an address is never reused across orders, but a
    /// changed order may come back with a new window).
    pub fn insert(&mut self, key: K, original: String, until: OffsetDateTime) {
        match self.entries.get_mut(&key) {
            Some(entry) => {
                entry.original = original;
                if until > entry.until {
                    entry.until = until;
                    self.expiry.entry(bucket(until)).or_default().push(key);
                }
            }
            None => {
                self.expiry
                    .entry(bucket(until))
                    .or_default()
                    .push(key.clone());
                self.entries.insert(key, Entry { original, until });
            }
        }
    }

    /// Drop the addresses whose monitoring window closed at or before `now`; how many left.
    pub fn expire(&mut self, now: OffsetDateTime) -> usize {
        let mut removed = 0;
        while let Some(first) = self.expiry.first_entry() {
            if *first.key() > now.unix_timestamp() {
                break;
            }
            for key in first.remove() {
                // A key whose window was extended has a later bucket too.
                if self.entries.get(&key).is_some_and(|e| e.until <= now) {
                    self.entries.remove(&key);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// The address as it was handed out, if `key` is watched.
    pub fn get<Q>(&self, key: &Q) -> Option<&str>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|e| e.original.as_str())
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.contains_key(key)
    }

    /// When monitoring of `key` ends.
    pub fn until<Q>(&self, key: &Q) -> Option<OffsetDateTime>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|e| e.until)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.expiry.clear();
    }

    /// Every watched key with the address it was handed out as.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &str)> {
        self.entries.iter().map(|(k, e)| (k, e.original.as_str()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::Duration;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn addresses_leave_when_their_window_closes_and_only_then() {
        let mut set = WatchSet::new();
        set.insert(1u32, "a".into(), at(10));
        set.insert(2, "b".into(), at(10) + Duration::milliseconds(1));
        set.insert(3, "c".into(), at(20));
        assert_eq!((set.len(), set.get(&1), set.get(&9)), (3, Some("a"), None));
        assert_eq!(set.expire(at(9)), 0);
        // 2 ends a millisecond after 10 s: it stays at 10 s and goes at 11 s (its bucket).
        assert_eq!(set.expire(at(10)), 1);
        assert!(!set.contains(&1) && set.contains(&2));
        assert_eq!(set.expire(at(11)), 1);
        assert_eq!(set.expire(at(30)), 1);
        assert!(set.is_empty());
        // gone for good: expiring again finds nothing to resurrect
        assert_eq!(set.expire(at(40)), 0);
        assert!(set.get(&3).is_none());
    }

    #[test]
    fn an_address_seen_again_keeps_the_later_window() {
        let mut set = WatchSet::new();
        set.insert(1u32, "a".into(), at(10));
        set.insert(1, "A".into(), at(30));
        set.insert(1, "A".into(), at(20));
        assert_eq!(set.until(&1), Some(at(30)));
        assert_eq!(set.expire(at(25)), 0, "the earlier buckets do not drop it");
        assert_eq!(set.get(&1), Some("A"));
        assert_eq!(set.expire(at(30)), 1);
    }

    #[test]
    fn lookups_by_borrowed_form() {
        let mut set: WatchSet<String> = WatchSet::new();
        set.insert("k".to_owned(), "K".into(), at(1));
        assert_eq!(set.get("k"), Some("K"));
        assert_eq!(set.iter().count(), 1);
        set.clear();
        assert!(set.is_empty() && set.expire(at(2)) == 0);
    }
}
