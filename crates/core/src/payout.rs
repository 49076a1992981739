//! Payout requests: refunds and withdrawals a merchant (or a dialect on its behalf) asks for.
//!
//! Coffer is non-custodial and does not execute payouts yet: a request is recorded and waits
//! for the merchant's approval. Its lifecycle and the generic refund rules live here.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::asset::AssetId;
use crate::ids::{MerchantId, OrderId, PayoutId};
use crate::money::BaseUnits;
use crate::state::{OrderState, OrderStatus, StatusReason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutKind {
    /// Money back to a buyer, for one order.
    Refund,
    /// Money out to an address of the merchant's choosing.
    Withdrawal,
}

impl PayoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutKind::Refund => "refund",
            PayoutKind::Withdrawal => "withdrawal",
        }
    }
}

/// `requested` → `approved` | `rejected`; `approved` → `sent` | `rejected`;
/// `sent` → `completed` | `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    Requested,
    Approved,
    Rejected,
    Sent,
    Completed,
    Failed,
}

impl PayoutStatus {
    pub const ALL: [PayoutStatus; 6] = [
        PayoutStatus::Requested,
        PayoutStatus::Approved,
        PayoutStatus::Rejected,
        PayoutStatus::Sent,
        PayoutStatus::Completed,
        PayoutStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Requested => "requested",
            PayoutStatus::Approved => "approved",
            PayoutStatus::Rejected => "rejected",
            PayoutStatus::Sent => "sent",
            PayoutStatus::Completed => "completed",
            PayoutStatus::Failed => "failed",
        }
    }

    /// Still on its way to paying out (counts against what may be refunded).
    pub fn is_active(self) -> bool {
        !matches!(self, PayoutStatus::Rejected | PayoutStatus::Failed)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            PayoutStatus::Rejected | PayoutStatus::Completed | PayoutStatus::Failed
        )
    }
}

impl fmt::Display for PayoutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PayoutKind {
    type Err = PayoutError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [PayoutKind::Refund, PayoutKind::Withdrawal]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(PayoutError::UnknownValue("payout kind"))
    }
}

impl FromStr for PayoutStatus {
    type Err = PayoutError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PayoutStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(PayoutError::UnknownValue("payout status"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutError {
    #[error("a payout cannot move from {from} to {to}")]
    IllegalTransition {
        from: PayoutStatus,
        to: PayoutStatus,
    },
    #[error("unknown {0}")]
    UnknownValue(&'static str),
    #[error("only a paid order can be refunded; it is {status} ({reason})")]
    NotRefundable { status: String, reason: String },
    #[error("the refund amount must be positive")]
    ZeroAmount,
    #[error("the refund amount exceeds what is left to refund ({available} base units)")]
    ExceedsReceived { available: BaseUnits },
    #[error("a transaction hash may only be given when a payout is marked sent or completed")]
    TxidNotAllowed { to: PayoutStatus },
    #[error("txid must be 1 to {MAX_TXID} printable characters")]
    InvalidTxid,
}

/// Longest transaction hash a payout keeps.
pub const MAX_TXID: usize = 128;

/// Whether the transaction that paid a payout out may be given when it moves to `to`: only
/// with `sent` or `completed`, and only 1 to [`MAX_TXID`] printable characters (no spaces or
/// control characters). The hash is the merchant's record; Coffer does not check it on chain.
pub fn check_txid(to: PayoutStatus, txid: &str) -> Result<(), PayoutError> {
    if !matches!(to, PayoutStatus::Sent | PayoutStatus::Completed) {
        return Err(PayoutError::TxidNotAllowed { to });
    }
    let printable = txid.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if txid.is_empty() || txid.chars().count() > MAX_TXID || !printable {
        return Err(PayoutError::InvalidTxid);
    }
    Ok(())
}

/// Whether a payout may move from `from` to `to`.
pub fn is_legal(from: PayoutStatus, to: PayoutStatus) -> bool {
    use PayoutStatus::*;
    matches!(
        (from, to),
        (Requested, Approved)
            | (Requested, Rejected)
            | (Approved, Sent)
            | (Approved, Rejected)
            | (Sent, Completed)
            | (Sent, Failed)
    )
}

pub fn check_transition(from: PayoutStatus, to: PayoutStatus) -> Result<(), PayoutError> {
    if is_legal(from, to) {
        Ok(())
    } else {
        Err(PayoutError::IllegalTransition { from, to })
    }
}

/// Whether an order in `state` has money that may be refunded: settled (in full, over, late,
/// by hand), or expired after a partial payment (the buyer's money would otherwise be stuck).
pub fn order_is_refundable(state: OrderState) -> bool {
    match state.status {
        OrderStatus::Settled => true,
        OrderStatus::Expired => state.reason == StatusReason::PaidPartial,
        _ => false,
    }
}

/// The amount a new refund may have: `requested` (or, with `None`, everything still
/// refundable) given what the order received and the refunds already active for it. The sum
/// of an order's active refunds never exceeds what it received.
pub fn refund_amount(
    state: OrderState,
    received: BaseUnits,
    already_requested: BaseUnits,
    requested: Option<BaseUnits>,
) -> Result<BaseUnits, PayoutError> {
    if !order_is_refundable(state) {
        return Err(PayoutError::NotRefundable {
            status: state.status.as_str().to_owned(),
            reason: state.reason.as_str().to_owned(),
        });
    }
    let available = received.saturating_sub(already_requested);
    let amount = requested.unwrap_or(available);
    if amount.is_zero() {
        return Err(PayoutError::ZeroAmount);
    }
    if amount > available {
        return Err(PayoutError::ExceedsReceived { available });
    }
    Ok(amount)
}

/// A refund or withdrawal request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRequest {
    pub id: PayoutId,
    /// Small sequential number assigned by the store (dialects with integer ids use it);
    /// 0 until stored.
    pub seq: i64,
    pub merchant_id: MerchantId,
    pub kind: PayoutKind,
    /// The refunded order (refunds only).
    pub order_id: Option<OrderId>,
    pub asset: Option<AssetId>,
    /// In base units of `asset`.
    pub amount: Option<BaseUnits>,
    /// Where the dialect gave a fiat amount instead.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub fiat_amount: Option<Decimal>,
    pub fiat_currency: Option<String>,
    pub destination: Option<String>,
    pub memo: Option<String>,
    pub status: PayoutStatus,
    /// The API that asked (`native` or a dialect's name).
    pub dialect: String,
    /// The dialect's own reference (e.g. Pay Protocol's withdrawal `outTradeNo`): unique per
    /// merchant, kind and dialect, so a repeated request finds the first.
    pub reference: Option<String>,
    /// Dialect-specific fields to echo back (notify URL, …).
    pub dialect_data: serde_json::Map<String, serde_json::Value>,
    /// The transaction that paid it out, as the merchant gave it when marking it `sent` or
    /// `completed` (see [`check_txid`]).
    #[serde(default)]
    pub txid: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_exhaustive() {
        use PayoutStatus::*;
        let legal = [
            (Requested, Approved),
            (Requested, Rejected),
            (Approved, Sent),
            (Approved, Rejected),
            (Sent, Completed),
            (Sent, Failed),
        ];
        for from in PayoutStatus::ALL {
            for to in PayoutStatus::ALL {
                assert_eq!(
                    is_legal(from, to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
                assert_eq!(check_transition(from, to).is_ok(), is_legal(from, to));
            }
            // nothing leaves a final state
            if from.is_final() {
                assert!(PayoutStatus::ALL.iter().all(|to| !is_legal(from, *to)));
            }
            assert_eq!(from.as_str().parse::<PayoutStatus>().unwrap(), from);
        }
        assert!("done".parse::<PayoutStatus>().is_err());
        assert_eq!("refund".parse::<PayoutKind>().unwrap(), PayoutKind::Refund);
        assert!(!Rejected.is_active() && !Failed.is_active() && Sent.is_active());
    }

    #[test]
    fn txid_only_with_sent_or_completed() {
        use PayoutStatus::*;
        for to in PayoutStatus::ALL {
            let allowed = matches!(to, Sent | Completed);
            assert_eq!(check_txid(to, "0xabc").is_ok(), allowed, "{to}");
            if !allowed {
                assert_eq!(
                    check_txid(to, "0xabc"),
                    Err(PayoutError::TxidNotAllowed { to })
                );
            }
        }
        let longest = "a".repeat(MAX_TXID);
        assert_eq!(check_txid(Sent, &longest), Ok(()));
        assert_eq!(check_txid(Completed, "é-hash_1"), Ok(()));
        for bad in [
            String::new(),
            "a".repeat(MAX_TXID + 1),
            "0xab cd".into(),
            " 0xabc".into(),
            "0xab\ncd".into(),
            "0x\u{7}".into(),
        ] {
            assert_eq!(
                check_txid(Sent, &bad),
                Err(PayoutError::InvalidTxid),
                "{bad:?}"
            );
        }
        // the status rule wins over the format: a bad txid with `approved` names the status
        assert_eq!(
            check_txid(Approved, ""),
            Err(PayoutError::TxidNotAllowed { to: Approved })
        );
    }

    #[test]
    fn refund_rules() {
        let settled = OrderState::new(OrderStatus::Settled, StatusReason::None);
        let over = OrderState::new(OrderStatus::Settled, StatusReason::PaidOver);
        let partial = OrderState::new(OrderStatus::Expired, StatusReason::PaidPartial);
        let pending = OrderState::new(OrderStatus::Pending, StatusReason::None);
        let expired = OrderState::new(OrderStatus::Expired, StatusReason::None);
        let b = BaseUnits::new;
        assert_eq!(refund_amount(settled, b(100), b(0), None), Ok(b(100)));
        assert_eq!(refund_amount(over, b(100), b(30), None), Ok(b(70)));
        assert_eq!(refund_amount(partial, b(50), b(0), Some(b(50))), Ok(b(50)));
        assert_eq!(
            refund_amount(settled, b(100), b(30), Some(b(71))),
            Err(PayoutError::ExceedsReceived { available: b(70) })
        );
        assert_eq!(
            refund_amount(settled, b(100), b(100), None),
            Err(PayoutError::ZeroAmount)
        );
        assert_eq!(
            refund_amount(settled, b(100), b(0), Some(b(0))),
            Err(PayoutError::ZeroAmount)
        );
        assert!(matches!(
            refund_amount(pending, b(100), b(0), None),
            Err(PayoutError::NotRefundable { .. })
        ));
        assert!(matches!(
            refund_amount(expired, b(0), b(0), None),
            Err(PayoutError::NotRefundable { .. })
        ));
        // the sum of accepted refunds never exceeds what was received
        for received in 0..20u128 {
            let mut requested = 0u128;
            for ask in [3u128, 5, 7, 11] {
                if let Ok(a) = refund_amount(settled, b(received), b(requested), Some(b(ask))) {
                    requested += a.get();
                }
                assert!(requested <= received);
            }
        }
    }
}
