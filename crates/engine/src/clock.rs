use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// Source of the current time. Timestamps are kept to whole milliseconds everywhere, which is
/// what both databases store, so a value read back equals the value written.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub fn truncate_to_ms(t: OffsetDateTime) -> OffsetDateTime {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap_or(t)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate_to_ms(OffsetDateTime::now_utc())
    }
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        let ms = i64::try_from(start.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
        Self {
            ms: AtomicI64::new(ms),
        }
    }

    pub fn advance(&self, by: time::Duration) {
        let delta = i64::try_from(by.whole_milliseconds()).unwrap_or_default();
        self.ms.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let ms = i128::from(self.ms.load(Ordering::SeqCst));
        OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// 128 random bits for ids.
pub fn random16() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    bytes
}

/// 256 random bits for secrets and checkout tokens.
pub fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    fill(&mut bytes);
    bytes
}

fn fill(bytes: &mut [u8]) {
    // The OS random source failing is unrecoverable: issuing predictable ids or secrets would
    // be worse than stopping.
    #[allow(clippy::expect_used)]
    getrandom::fill(bytes).expect("the operating system's random source failed");
}
