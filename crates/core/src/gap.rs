//! Gap-limit awareness. HD wallets discover their addresses by scanning indexes in order and
//! stop after `gap limit` consecutive unused ones (20 by default in most wallets). Coffer hands
//! out one fresh index per order, so a run of unpaid orders opens a gap, and a payment after a
//! gap longer than the merchant wallet's limit stays invisible to that wallet (the coins are
//! safe, but the wallet does not show them until its gap limit is raised or it rescans).

use std::collections::BTreeSet;

/// Most wallets' default gap limit (BIP-44); warn when a run of unpaid addresses exceeds it.
pub const GAP_LIMIT_WARNING: u32 = 20;

/// The longest run of consecutive unused indexes among the issued ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct GapReport {
    /// Length of the longest run of consecutive unpaid indexes in `0..=highest issued`
    /// (indexes never issued count as unused too: the wallet cannot tell them apart).
    pub longest_run: u32,
    /// First index of that run (meaningless when `longest_run` is 0).
    pub run_start: u32,
    /// Whether a paid index lies after a run longer than the threshold: a wallet with that
    /// gap limit already misses a payment.
    pub payment_beyond_gap: bool,
    /// `longest_run > threshold`.
    pub warn: bool,
}

/// Report on the issued indexes (`issued`) given which of them were paid (`paid`), against a
/// wallet gap limit of `threshold` (use [`GAP_LIMIT_WARNING`]). Paid indexes that were never
/// issued are ignored.
pub fn gap_report(issued: &BTreeSet<u32>, paid: &BTreeSet<u32>, threshold: u32) -> GapReport {
    let Some(&highest) = issued.last() else {
        return GapReport::default();
    };
    let mut report = GapReport::default();
    // Walk the paid indexes (the run boundaries) instead of every index: O(paid · log).
    let mut run_start: u64 = 0;
    let mut close = |start: u64, end_exclusive: u64, followed_by_payment: bool| {
        let len = end_exclusive.saturating_sub(start);
        let len32 = u32::try_from(len).unwrap_or(u32::MAX);
        if len32 > report.longest_run {
            report.longest_run = len32;
            report.run_start = u32::try_from(start).unwrap_or(u32::MAX);
        }
        if followed_by_payment && len32 > threshold {
            report.payment_beyond_gap = true;
        }
    };
    for &p in paid.iter().filter(|p| issued.contains(p) && **p <= highest) {
        close(run_start, u64::from(p), true);
        run_start = u64::from(p) + 1;
    }
    close(run_start, u64::from(highest) + 1, false);
    report.warn = report.longest_run > threshold;
    report
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn naive(issued: &BTreeSet<u32>, paid: &BTreeSet<u32>, threshold: u32) -> GapReport {
        let Some(&highest) = issued.last() else {
            return GapReport::default();
        };
        let mut r = GapReport::default();
        let mut run = 0u32;
        let mut start = 0u32;
        for i in 0..=highest {
            if paid.contains(&i) && issued.contains(&i) {
                if run > threshold {
                    r.payment_beyond_gap = true;
                }
                run = 0;
            } else {
                if run == 0 {
                    start = i;
                }
                run += 1;
                if run > r.longest_run {
                    r.longest_run = run;
                    r.run_start = start;
                }
            }
        }
        r.warn = r.longest_run > threshold;
        r
    }

    fn set(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    #[test]
    fn nothing_issued_is_no_gap() {
        assert_eq!(gap_report(&set(&[]), &set(&[]), 20), GapReport::default());
    }

    #[test]
    fn twenty_unpaid_is_fine_twenty_one_warns() {
        let issued: BTreeSet<u32> = (0..20).collect();
        let r = gap_report(&issued, &set(&[]), 20);
        assert_eq!((r.longest_run, r.warn), (20, false));
        let issued: BTreeSet<u32> = (0..21).collect();
        let r = gap_report(&issued, &set(&[]), 20);
        assert_eq!((r.longest_run, r.run_start, r.warn), (21, 0, true));
        assert!(!r.payment_beyond_gap);
    }

    #[test]
    fn payment_after_a_long_gap_is_flagged() {
        let issued: BTreeSet<u32> = (0..30).collect();
        let r = gap_report(&issued, &set(&[0, 25]), 20);
        assert_eq!((r.longest_run, r.run_start), (24, 1));
        assert!(r.warn && r.payment_beyond_gap);
        let r = gap_report(&issued, &set(&[0, 10, 20]), 20);
        assert_eq!((r.longest_run, r.run_start, r.warn), (9, 1, false)); // the first of equal runs
    }

    #[test]
    fn never_issued_indexes_count_as_unused() {
        // 0 and 30 issued and paid, 1..30 never issued (e.g. orders that failed).
        let r = gap_report(&set(&[0, 30]), &set(&[0, 30]), 20);
        assert_eq!((r.longest_run, r.run_start), (29, 1));
        assert!(r.payment_beyond_gap);
    }

    proptest! {
        #[test]
        fn agrees_with_the_naive_scan(
            issued in proptest::collection::btree_set(0u32..200, 0..80),
            paid in proptest::collection::btree_set(0u32..220, 0..40),
            threshold in 0u32..30,
        ) {
            prop_assert_eq!(gap_report(&issued, &paid, threshold), naive(&issued, &paid, threshold));
        }
    }
}
