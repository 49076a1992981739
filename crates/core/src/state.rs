//! The order state machine.
//!
//! An order's state is a primary [`OrderStatus`] plus an orthogonal [`StatusReason`]
//! (BTCPay's model). Which states exist, and which transitions are legal for which
//! [`Cause`], is decided here and nowhere else. Payment-driven state is a pure function of the
//! counted payments, the rate-lock window and the clock: [`evaluate`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::money::{BaseUnits, Rounding};
use crate::order::SettlementPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Waiting for payment (possibly partially paid).
    Pending,
    /// The full amount has been seen, not all of it confirmed yet.
    Processing,
    /// Paid and confirmed (or settled by hand).
    Settled,
    /// The rate-lock window passed without full payment. Still watched until `monitor_until`.
    Expired,
    /// Invalidated or cancelled by the merchant.
    Invalid,
    /// The received funds were returned.
    Refunded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    None,
    PaidPartial,
    PaidOver,
    PaidLate,
    Marked,
    Resolved,
    Reversed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::Processing,
        OrderStatus::Settled,
        OrderStatus::Expired,
        OrderStatus::Invalid,
        OrderStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Processing => "processing",
            OrderStatus::Settled => "settled",
            OrderStatus::Expired => "expired",
            OrderStatus::Invalid => "invalid",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// No further automatic change can happen (manual actions may still apply).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Settled | OrderStatus::Invalid | OrderStatus::Refunded
        )
    }
}

impl StatusReason {
    pub const ALL: [StatusReason; 7] = [
        StatusReason::None,
        StatusReason::PaidPartial,
        StatusReason::PaidOver,
        StatusReason::PaidLate,
        StatusReason::Marked,
        StatusReason::Resolved,
        StatusReason::Reversed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusReason::None => "none",
            StatusReason::PaidPartial => "paid_partial",
            StatusReason::PaidOver => "paid_over",
            StatusReason::PaidLate => "paid_late",
            StatusReason::Marked => "marked",
            StatusReason::Resolved => "resolved",
            StatusReason::Reversed => "reversed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct ParseStateError {
    pub kind: &'static str,
    pub value: String,
}

impl FromStr for OrderStatus {
    type Err = ParseStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ParseStateError {
                kind: "order status",
                value: s.chars().take(32).collect(),
            })
    }
}

impl FromStr for StatusReason {
    type Err = ParseStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StatusReason::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ParseStateError {
                kind: "status reason",
                value: s.chars().take(32).collect(),
            })
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for StatusReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status and reason together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderState {
    pub status: OrderStatus,
    pub reason: StatusReason,
}

impl OrderState {
    pub const NEW: OrderState = OrderState::new(OrderStatus::Pending, StatusReason::None);

    pub const fn new(status: OrderStatus, reason: StatusReason) -> Self {
        Self { status, reason }
    }

    /// Whether this status/reason pair can exist at all.
    pub fn is_valid(self) -> bool {
        use OrderStatus as S;
        use StatusReason as R;
        match self.status {
            S::Pending => matches!(self.reason, R::None | R::PaidPartial | R::Reversed),
            S::Processing => matches!(self.reason, R::None | R::PaidOver | R::PaidLate),
            S::Settled => matches!(
                self.reason,
                R::None | R::PaidOver | R::PaidLate | R::Marked | R::Resolved
            ),
            S::Expired => matches!(self.reason, R::None | R::PaidPartial | R::Reversed),
            S::Invalid => self.reason == R::Marked,
            S::Refunded => self.reason == R::None,
        }
    }

    /// Every valid state, for exhaustive tests and documentation.
    pub fn all_valid() -> impl Iterator<Item = OrderState> {
        OrderStatus::ALL.into_iter().flat_map(|status| {
            StatusReason::ALL
                .into_iter()
                .map(move |reason| OrderState::new(status, reason))
                .filter(|s| s.is_valid())
        })
    }

    /// Set by a person (mark, resolve, refund): chain activity no longer moves the order.
    pub fn is_manual(self) -> bool {
        matches!(self.reason, StatusReason::Marked | StatusReason::Resolved)
            || matches!(self.status, OrderStatus::Invalid | OrderStatus::Refunded)
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.status, self.reason)
    }
}

/// Why a transition happens. Recorded in the order's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Order created.
    Created,
    /// Chain activity: a payment detected, confirmed, reversed, or accepted by repair.
    Payment,
    /// The rate-lock window passed.
    Expiry,
    /// The merchant settled the order by hand.
    MarkSettled,
    /// The merchant invalidated the order by hand.
    MarkInvalid,
    /// The merchant cancelled an unpaid order.
    Cancel,
    /// The merchant accepted an underpayment.
    Resolve,
    /// The received funds were returned.
    Refund,
}

impl Cause {
    pub const ALL: [Cause; 8] = [
        Cause::Created,
        Cause::Payment,
        Cause::Expiry,
        Cause::MarkSettled,
        Cause::MarkInvalid,
        Cause::Cancel,
        Cause::Resolve,
        Cause::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Created => "created",
            Cause::Payment => "payment",
            Cause::Expiry => "expiry",
            Cause::MarkSettled => "mark_settled",
            Cause::MarkInvalid => "mark_invalid",
            Cause::Cancel => "cancel",
            Cause::Resolve => "resolve",
            Cause::Refund => "refund",
        }
    }
}

impl FromStr for Cause {
    type Err = ParseStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cause::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ParseStateError {
                kind: "cause",
                value: s.chars().take(32).collect(),
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot go from {from} to {to} by {cause:?}")]
pub struct IllegalTransition {
    pub from: OrderState,
    pub to: OrderState,
    pub cause: Cause,
}

/// Whether `cause` may move an order from `from` to `to`. The one place that decides it.
pub fn is_legal(from: OrderState, to: OrderState, cause: Cause) -> bool {
    use OrderStatus as S;
    use StatusReason as R;
    if !from.is_valid() || !to.is_valid() || from == to {
        return false;
    }
    match cause {
        // Creation has no `from`; it is never a transition between two states.
        Cause::Created => false,
        Cause::Payment => {
            let from_automatic = matches!(from.status, S::Pending | S::Processing | S::Expired)
                || (from.status == S::Settled && !from.is_manual());
            let to_automatic = matches!(
                to.status,
                S::Pending | S::Processing | S::Settled | S::Expired
            ) && !to.is_manual();
            // Expiry is sticky: once the rate lock has lapsed, the order never becomes payable
            // at the old rate again.
            let unexpires = from.status == S::Expired && to.status == S::Pending;
            from_automatic && to_automatic && !unexpires
        }
        Cause::Expiry => {
            from.status == S::Pending && to.status == S::Expired && from.reason == to.reason
        }
        Cause::MarkSettled => {
            matches!(
                from.status,
                S::Pending | S::Processing | S::Expired | S::Invalid
            ) && to == OrderState::new(S::Settled, R::Marked)
        }
        Cause::MarkInvalid => {
            matches!(
                from.status,
                S::Pending | S::Processing | S::Expired | S::Settled
            ) && to == OrderState::new(S::Invalid, R::Marked)
        }
        Cause::Cancel => {
            from.status == S::Pending
                && matches!(from.reason, R::None | R::Reversed)
                && to == OrderState::new(S::Invalid, R::Marked)
        }
        Cause::Resolve => {
            matches!(from.status, S::Pending | S::Expired)
                && from.reason == R::PaidPartial
                && to == OrderState::new(S::Settled, R::Resolved)
        }
        Cause::Refund => {
            let refundable = from.status == S::Settled
                || from == OrderState::new(S::Expired, R::PaidPartial)
                || from.status == S::Invalid;
            refundable && to == OrderState::new(S::Refunded, R::None)
        }
    }
}

/// Check a transition, returning it as an error if illegal.
pub fn check(from: OrderState, to: OrderState, cause: Cause) -> Result<(), IllegalTransition> {
    if is_legal(from, to, cause) {
        Ok(())
    } else {
        Err(IllegalTransition { from, to, cause })
    }
}

/// The target state of a manual action, if the action is legal from `from`.
pub fn manual_target(from: OrderState, cause: Cause) -> Result<OrderState, IllegalTransition> {
    use OrderStatus as S;
    use StatusReason as R;
    let to = match cause {
        Cause::MarkSettled => OrderState::new(S::Settled, R::Marked),
        Cause::MarkInvalid | Cause::Cancel => OrderState::new(S::Invalid, R::Marked),
        Cause::Resolve => OrderState::new(S::Settled, R::Resolved),
        Cause::Refund => OrderState::new(S::Refunded, R::None),
        Cause::Expiry => OrderState::new(S::Expired, from.reason),
        Cause::Created | Cause::Payment => from,
    };
    check(from, to, cause).map(|()| to)
}

/// Sums of the payments that count toward an order (matched, right asset, not reversed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Payments with enough confirmations.
    pub confirmed: BaseUnits,
    /// Payments seen but not yet confirmed enough.
    pub unconfirmed: BaseUnits,
    /// Some counted payment arrived after the rate lock expired.
    pub late: bool,
    /// Some payment was reversed (reorg, replacement, double spend).
    pub any_reversed: bool,
}

impl Totals {
    pub fn seen(&self) -> BaseUnits {
        self.confirmed
            .checked_add(self.unconfirmed)
            .unwrap_or(BaseUnits::new(u128::MAX))
    }
}

/// What chain activity and the clock say the order's state should be.
///
/// - confirmed ≥ due·(1 − tolerance) → `settled` (`paid_late` if a counted payment was late,
///   else `paid_over` if more than due arrived, else `none`);
/// - confirmed + unconfirmed reaches that threshold → `processing` (same reasons);
/// - something arrived, not enough → `paid_partial`, `pending` before the rate lock expires,
///   `expired` after;
/// - nothing counted → `pending`/`expired`, with reason `reversed` if a payment vanished.
///
/// Manual states (marked, resolved, invalid, refunded) are returned unchanged: chain activity
/// is recorded on them, but only a person moves them.
pub fn evaluate(
    current: OrderState,
    due: BaseUnits,
    policy: &SettlementPolicy,
    totals: &Totals,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> OrderState {
    use OrderStatus as S;
    use StatusReason as R;
    if current.is_manual() {
        return current;
    }
    let threshold = policy.settlement_threshold(due);
    let seen = totals.seen();
    let over = seen > due;
    let full_reason = if totals.late {
        R::PaidLate
    } else if over {
        R::PaidOver
    } else {
        R::None
    };
    // Sticky: an order marked expired stays past its lock even if clocks disagree.
    let lock_lapsed = now >= expires_at || current.status == S::Expired;
    if !due.is_zero() && totals.confirmed >= threshold {
        OrderState::new(S::Settled, full_reason)
    } else if !due.is_zero() && seen >= threshold {
        OrderState::new(S::Processing, full_reason)
    } else if !seen.is_zero() {
        let status = if lock_lapsed { S::Expired } else { S::Pending };
        OrderState::new(status, R::PaidPartial)
    } else {
        let status = if lock_lapsed { S::Expired } else { S::Pending };
        let reason = if totals.any_reversed {
            R::Reversed
        } else {
            R::None
        };
        OrderState::new(status, reason)
    }
}

/// Settlement threshold helper kept next to [`evaluate`]'s use of it.
pub(crate) fn threshold_for(
    due: BaseUnits,
    tolerance_fraction: rust_decimal::Decimal,
) -> BaseUnits {
    // due × (1 − tolerance), rounded up: a tolerance never lets through more than it says.
    let keep = rust_decimal::Decimal::ONE - tolerance_fraction;
    due.mul_ratio(keep, Rounding::Up).unwrap_or(due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::SettlementPolicy;
    use OrderStatus as S;
    use StatusReason as R;
    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use std::collections::BTreeSet;
    use std::str::FromStr;
    use time::macros::datetime;

    fn st(s: S, r: R) -> OrderState {
        OrderState::new(s, r)
    }

    /// The legal transitions, written out by hand as the specification. The implementation
    /// above computes them from rules; this table is the independent statement the rules are
    /// checked against, state by state.
    fn spec() -> BTreeSet<(String, String, &'static str)> {
        let auto_from = [
            st(S::Pending, R::None),
            st(S::Pending, R::PaidPartial),
            st(S::Pending, R::Reversed),
            st(S::Processing, R::None),
            st(S::Processing, R::PaidOver),
            st(S::Processing, R::PaidLate),
            st(S::Expired, R::None),
            st(S::Expired, R::PaidPartial),
            st(S::Expired, R::Reversed),
            st(S::Settled, R::None),
            st(S::Settled, R::PaidOver),
            st(S::Settled, R::PaidLate),
        ];
        let auto_to = auto_from;
        let mut set = BTreeSet::new();
        let mut add = |from: OrderState, to: OrderState, cause: Cause| {
            set.insert((from.to_string(), to.to_string(), cause.as_str()));
        };
        for from in auto_from {
            for to in auto_to {
                if from != to && !(from.status == S::Expired && to.status == S::Pending) {
                    add(from, to, Cause::Payment);
                }
            }
        }
        for r in [R::None, R::PaidPartial, R::Reversed] {
            add(st(S::Pending, r), st(S::Expired, r), Cause::Expiry);
        }
        let marked_settled = st(S::Settled, R::Marked);
        let marked_invalid = st(S::Invalid, R::Marked);
        for from in OrderState::all_valid() {
            if matches!(
                from.status,
                S::Pending | S::Processing | S::Expired | S::Invalid
            ) && from != marked_settled
            {
                add(from, marked_settled, Cause::MarkSettled);
            }
            if matches!(
                from.status,
                S::Pending | S::Processing | S::Expired | S::Settled
            ) && from != marked_invalid
            {
                add(from, marked_invalid, Cause::MarkInvalid);
            }
            if from.status == S::Settled || from.status == S::Invalid {
                add(from, st(S::Refunded, R::None), Cause::Refund);
            }
        }
        add(
            st(S::Expired, R::PaidPartial),
            st(S::Refunded, R::None),
            Cause::Refund,
        );
        add(st(S::Pending, R::None), marked_invalid, Cause::Cancel);
        add(st(S::Pending, R::Reversed), marked_invalid, Cause::Cancel);
        add(
            st(S::Pending, R::PaidPartial),
            st(S::Settled, R::Resolved),
            Cause::Resolve,
        );
        add(
            st(S::Expired, R::PaidPartial),
            st(S::Settled, R::Resolved),
            Cause::Resolve,
        );
        set
    }

    #[test]
    fn exactly_sixteen_valid_states() {
        assert_eq!(OrderState::all_valid().count(), 16);
        assert!(OrderState::NEW.is_valid());
    }

    #[test]
    fn every_transition_matches_the_spec() {
        let spec = spec();
        let mut legal_seen = 0;
        // Every status × reason pair, valid or not, for every cause.
        for fs in OrderStatus::ALL {
            for fr in StatusReason::ALL {
                for ts in OrderStatus::ALL {
                    for tr in StatusReason::ALL {
                        for cause in Cause::ALL {
                            let (from, to) = (st(fs, fr), st(ts, tr));
                            let expected =
                                spec.contains(&(from.to_string(), to.to_string(), cause.as_str()));
                            assert_eq!(
                                is_legal(from, to, cause),
                                expected,
                                "{from} -> {to} by {cause:?}"
                            );
                            assert_eq!(check(from, to, cause).is_ok(), expected);
                            legal_seen += usize::from(expected);
                        }
                    }
                }
            }
        }
        assert_eq!(legal_seen, spec.len());
    }

    #[test]
    fn manual_targets() {
        assert_eq!(
            manual_target(st(S::Pending, R::PaidPartial), Cause::Resolve),
            Ok(st(S::Settled, R::Resolved))
        );
        assert!(manual_target(st(S::Pending, R::None), Cause::Resolve).is_err());
        assert!(manual_target(st(S::Processing, R::None), Cause::Cancel).is_err());
        assert!(manual_target(st(S::Refunded, R::None), Cause::MarkSettled).is_err());
        assert!(manual_target(st(S::Settled, R::Marked), Cause::MarkSettled).is_err());
        assert_eq!(
            manual_target(st(S::Pending, R::PaidPartial), Cause::Expiry),
            Ok(st(S::Expired, R::PaidPartial))
        );
        assert!(manual_target(st(S::Pending, R::None), Cause::Payment).is_err());
    }

    #[test]
    fn strings_roundtrip() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for r in StatusReason::ALL {
            assert_eq!(r.as_str().parse::<StatusReason>().unwrap(), r);
        }
        for c in Cause::ALL {
            assert_eq!(c.as_str().parse::<Cause>().unwrap(), c);
        }
        assert!("paid".parse::<OrderStatus>().is_err());
    }

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
    const EXPIRES: OffsetDateTime = datetime!(2026-01-01 00:30 UTC);

    fn policy(tolerance_percent: &str) -> SettlementPolicy {
        SettlementPolicy {
            underpayment_tolerance_percent: Decimal::from_str(tolerance_percent).unwrap(),
            ..SettlementPolicy::default()
        }
    }

    fn totals(confirmed: u128, unconfirmed: u128) -> Totals {
        Totals {
            confirmed: BaseUnits::new(confirmed),
            unconfirmed: BaseUnits::new(unconfirmed),
            ..Totals::default()
        }
    }

    fn eval(current: OrderState, t: Totals, now: OffsetDateTime) -> OrderState {
        evaluate(
            current,
            BaseUnits::new(1000),
            &policy("0"),
            &t,
            EXPIRES,
            now,
        )
    }

    #[test]
    fn evaluate_rules() {
        let new = OrderState::NEW;
        assert_eq!(eval(new, totals(0, 0), T0), st(S::Pending, R::None));
        assert_eq!(eval(new, totals(0, 0), EXPIRES), st(S::Expired, R::None));
        assert_eq!(
            eval(new, totals(0, 400), T0),
            st(S::Pending, R::PaidPartial)
        );
        assert_eq!(
            eval(new, totals(400, 0), EXPIRES),
            st(S::Expired, R::PaidPartial)
        );
        assert_eq!(eval(new, totals(0, 1000), T0), st(S::Processing, R::None));
        assert_eq!(eval(new, totals(600, 400), T0), st(S::Processing, R::None));
        assert_eq!(eval(new, totals(1000, 0), T0), st(S::Settled, R::None));
        assert_eq!(eval(new, totals(1001, 0), T0), st(S::Settled, R::PaidOver));
        assert_eq!(
            eval(new, totals(0, 1500), T0),
            st(S::Processing, R::PaidOver)
        );
        // an unconfirmed full payment keeps an expired-looking order processing, not expired
        assert_eq!(
            eval(new, totals(0, 1000), EXPIRES),
            st(S::Processing, R::None)
        );
        let late = Totals {
            late: true,
            ..totals(1000, 0)
        };
        let expired = st(S::Expired, R::None);
        assert_eq!(eval(expired, late, EXPIRES), st(S::Settled, R::PaidLate));
        let late_over = Totals {
            late: true,
            ..totals(2000, 0)
        };
        assert_eq!(
            eval(expired, late_over, EXPIRES),
            st(S::Settled, R::PaidLate)
        );
        let reversed = Totals {
            any_reversed: true,
            ..totals(0, 0)
        };
        assert_eq!(
            eval(st(S::Processing, R::None), reversed, T0),
            st(S::Pending, R::Reversed)
        );
        assert_eq!(
            eval(st(S::Settled, R::None), reversed, EXPIRES),
            st(S::Expired, R::Reversed)
        );
        // expired is sticky even if the clock reads earlier (another instance's clock)
        assert_eq!(eval(expired, totals(0, 0), T0), expired);
        // manual states never move by themselves
        for manual in [
            st(S::Settled, R::Marked),
            st(S::Settled, R::Resolved),
            st(S::Invalid, R::Marked),
            st(S::Refunded, R::None),
        ] {
            assert_eq!(eval(manual, totals(5000, 0), EXPIRES), manual);
        }
    }

    #[test]
    fn tolerance_accepts_small_shortfall_only() {
        let p = policy("1"); // 1 %
        let due = BaseUnits::new(1000);
        let at = |confirmed| evaluate(OrderState::NEW, due, &p, &totals(confirmed, 0), EXPIRES, T0);
        assert_eq!(at(990), st(S::Settled, R::None));
        assert_eq!(at(989), st(S::Pending, R::PaidPartial));
    }

    fn arb_state() -> impl Strategy<Value = OrderState> {
        let states: Vec<OrderState> = OrderState::all_valid().collect();
        proptest::sample::select(states)
    }

    proptest! {
        /// Whatever the payments and the clock say, evaluation yields a valid state, and moving
        /// there is a legal payment- or expiry-driven transition (or no move at all).
        #[test]
        fn evaluation_only_makes_legal_moves(
            current in arb_state(),
            confirmed in 0u128..3000,
            unconfirmed in 0u128..3000,
            late in any::<bool>(),
            any_reversed in any::<bool>(),
            minutes in 0i64..120,
            tolerance in 0u32..=100,
        ) {
            let t = Totals {
                confirmed: BaseUnits::new(confirmed),
                unconfirmed: BaseUnits::new(unconfirmed),
                late,
                any_reversed,
            };
            let now = T0 + time::Duration::minutes(minutes);
            let p = SettlementPolicy {
                underpayment_tolerance_percent: Decimal::from(tolerance),
                ..SettlementPolicy::default()
            };
            let next = evaluate(current, BaseUnits::new(1000), &p, &t, EXPIRES, now);
            prop_assert!(next.is_valid());
            if next != current {
                prop_assert!(
                    is_legal(current, next, Cause::Payment) || is_legal(current, next, Cause::Expiry),
                    "{} -> {}", current, next
                );
            }
        }

        /// More confirmed money never makes an order less settled.
        #[test]
        fn more_money_is_monotone(c1 in 0u128..3000, extra in 0u128..3000, minutes in 0i64..120) {
            let now = T0 + time::Duration::minutes(minutes);
            let rank = |s: OrderState| match s.status {
                S::Pending | S::Expired => if s.reason == R::PaidPartial { 1 } else { 0 },
                S::Processing => 2,
                S::Settled => 3,
                _ => 4,
            };
            let a = eval(OrderState::NEW, totals(c1, 0), now);
            let b = eval(OrderState::NEW, totals(c1 + extra, 0), now);
            prop_assert!(rank(b) >= rank(a));
        }
    }
}
