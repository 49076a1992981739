//! One chain watcher's health: what `/readyz` reports and decides readiness by. The same
//! facts and rules for every chain kind; a source adds its own facts.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// A watcher's health, updated as it steps and read by `/readyz`. Lag is evaluated when it
/// is read, so a step that hangs shows up while it hangs.
#[derive(Debug, Clone, Default)]
pub struct WatchHealth {
    pub tip: Option<u64>,
    /// The tip block's timestamp (Unix seconds).
    pub tip_time: Option<i64>,
    /// The last block applied.
    pub cursor: Option<u64>,
    /// That block's timestamp, once the watcher has scanned it.
    pub cursor_time: Option<i64>,
    /// The tip has not advanced (or the node has not answered) for `stall_after`.
    pub stalled: bool,
    /// The last poll could not reach the node.
    pub unreachable: bool,
    /// The source's endpoints disagree (EVM: their tips are far apart).
    pub disagreement: Option<String>,
    pub last_error: Option<String>,
    /// The step in progress: since when, and what it is doing.
    pub busy: Option<(Instant, &'static str)>,
    /// Not ready beyond this many blocks behind the tip.
    pub max_lag_blocks: u64,
    /// Not ready beyond this far behind the tip (or a step running this long).
    pub max_lag: Duration,
    /// Chain-specific facts (Bitcoin: `mempool_watched`).
    pub facts: Map<String, Value>,
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn secs(from: i64, to: i64) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}

impl WatchHealth {
    /// Blocks between the tip and what has been applied.
    pub fn lag(&self) -> Option<u64> {
        Some(self.tip?.saturating_sub(self.cursor?))
    }

    /// How long ago the oldest block not yet applied was mined, by the blocks' timestamps:
    /// 0 when caught up; exact when one block behind; when further behind, estimated from the
    /// applied block's and the tip's timestamps (blocks evenly spaced between them).
    pub fn lag_secs(&self) -> Option<u64> {
        self.lag_secs_at(unix_now())
    }

    fn lag_secs_at(&self, now: i64) -> Option<u64> {
        let behind = self.lag()?;
        if behind == 0 {
            return Some(0);
        }
        let tip_time = self.tip_time?;
        let first_unapplied = if behind == 1 {
            tip_time
        } else {
            let cursor_time = self.cursor_time?;
            let spacing = tip_time.saturating_sub(cursor_time) / i64::try_from(behind).ok()?;
            cursor_time.saturating_add(spacing.max(0))
        };
        Some(secs(first_unapplied, now))
    }

    /// Seconds since the tip block's timestamp (informational: blocks can be far apart).
    pub fn tip_age_secs(&self) -> Option<u64> {
        Some(secs(self.tip_time?, unix_now()))
    }

    /// Why the watcher counts as lagging, if it does: too many blocks or seconds behind, or
    /// a step running for longer than `max_lag`.
    pub fn lagging(&self) -> Option<String> {
        if let Some((since, doing)) = self.busy {
            let running = since.elapsed();
            if running > self.max_lag {
                return Some(format!(
                    "a watcher step has been running for {} s ({doing})",
                    running.as_secs()
                ));
            }
        }
        let blocks = self.lag()?;
        if blocks > self.max_lag_blocks {
            return Some(format!(
                "{blocks} blocks behind the tip (max_lag_blocks = {})",
                self.max_lag_blocks
            ));
        }
        match self.lag_secs() {
            Some(s) if s > self.max_lag.as_secs() => Some(format!(
                "{s} s behind the tip (max_lag = {} s)",
                self.max_lag.as_secs()
            )),
            _ => None,
        }
    }

    /// Why the chain is not ready, if it is not.
    pub fn problem(&self) -> Option<String> {
        if self.unreachable {
            return Some(format!(
                "node unreachable: {}",
                self.last_error.as_deref().unwrap_or("no answer")
            ));
        }
        if self.tip.is_none() {
            return Some("no tip yet".into());
        }
        if self.stalled {
            return Some("stalled: the tip has not advanced".into());
        }
        if let Some(d) = &self.disagreement {
            return Some(format!("endpoints disagree: {d}"));
        }
        self.lagging().map(|l| format!("lagging: {l}"))
    }

    pub fn ok(&self) -> bool {
        self.problem().is_none()
    }

    /// `/readyz`'s entry for the chain: ready or not, and the facts.
    pub fn readiness(&self) -> (bool, Value) {
        let problem = self.problem();
        let mut out = json!({
            "tip": self.tip,
            "cursor": self.cursor,
            "lag": self.lag(),
            "lag_secs": self.lag_secs(),
            "tip_age_secs": self.tip_age_secs(),
            "stalled": self.stalled,
            "unreachable": self.unreachable,
            "disagreement": self.disagreement,
            "lagging": self.lagging().is_some(),
            "reason": problem,
            "last_error": self.last_error,
        });
        if let Value::Object(map) = &mut out {
            for (k, v) in &self.facts {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (problem.is_none(), out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn health(tip: u64, cursor: u64) -> WatchHealth {
        WatchHealth {
            tip: Some(tip),
            cursor: Some(cursor),
            max_lag_blocks: 10,
            max_lag: Duration::from_secs(60),
            ..WatchHealth::default()
        }
    }

    #[test]
    fn lag_in_seconds_is_the_age_of_the_first_unapplied_block() {
        let now = 1_000_000;
        let mut h = health(100, 100);
        assert_eq!(h.lag_secs_at(now), Some(0), "caught up");
        h.cursor = Some(99);
        assert_eq!(h.lag_secs_at(now), None, "tip time unknown");
        h.tip_time = Some(now - 7);
        assert_eq!(h.lag_secs_at(now), Some(7), "one behind: the tip's age");
        h.cursor = Some(90);
        assert_eq!(h.lag_secs_at(now), None, "cursor time unknown");
        // ten blocks of 10 s: the first unapplied one was mined 10 s after the cursor's
        h.cursor_time = Some(now - 107);
        assert_eq!(h.lag_secs_at(now), Some(97));
        // a block stamped in the future counts as no lag
        h.cursor = Some(99);
        h.tip_time = Some(now + 30);
        assert_eq!(h.lag_secs_at(now), Some(0));
    }

    #[test]
    fn lagging_blocks_seconds_or_a_long_step_makes_the_chain_not_ready() {
        let mut h = health(100, 100);
        assert!(h.ok());
        h.cursor = Some(89);
        assert!(!h.ok());
        assert!(h.problem().unwrap().contains("11 blocks behind"), "{h:?}");
        h.cursor = Some(99);
        h.tip_time = Some(unix_now() - 120);
        assert!(h.problem().unwrap().contains("s behind the tip"), "{h:?}");
        h.tip_time = Some(unix_now());
        assert!(h.ok());
        h.busy = Some((Instant::now() - Duration::from_secs(61), "reload"));
        let (ready, json) = h.readiness();
        assert!(!ready);
        assert_eq!(json["lagging"], true);
        assert!(
            json["reason"].as_str().unwrap().contains("(reload)"),
            "{json}"
        );
    }

    #[test]
    fn readiness_names_the_problem_and_merges_source_facts() {
        let mut h = health(5, 5);
        h.facts.insert("mempool_watched".into(), json!(2));
        let (ready, json) = h.readiness();
        assert!(ready);
        assert_eq!(json["mempool_watched"], 2);
        assert_eq!(json["lag"], 0);
        h.disagreement = Some("endpoint tips range 1..9".into());
        assert!(!h.readiness().0);
        h.unreachable = true;
        h.last_error = Some("connection refused".into());
        assert_eq!(
            h.readiness().1["reason"],
            "node unreachable: connection refused"
        );
        assert!(!WatchHealth::default().ok(), "no tip yet");
    }
}
