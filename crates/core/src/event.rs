//! Immutable events. Every state change writes one in the same transaction as the change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{EventId, MerchantId};
use crate::state::{OrderState, OrderStatus, StatusReason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    OrderCreated,
    OrderProcessing,
    OrderSettled,
    OrderPaidPartial,
    OrderPaidOver,
    OrderPaidLate,
    OrderExpired,
    OrderInvalid,
    OrderRefunded,
    OrderReversed,
    PaymentDetected,
    PaymentConfirmed,
    PaymentReversed,
    RefundCreated,
    RefundUpdated,
    RefundRequested,
    WithdrawalRequested,
    WithdrawalUpdated,
    DepositDetected,
    DepositConfirmed,
    DepositReversed,
}

impl EventType {
    pub const ALL: [EventType; 21] = [
        EventType::OrderCreated,
        EventType::OrderProcessing,
        EventType::OrderSettled,
        EventType::OrderPaidPartial,
        EventType::OrderPaidOver,
        EventType::OrderPaidLate,
        EventType::OrderExpired,
        EventType::OrderInvalid,
        EventType::OrderRefunded,
        EventType::OrderReversed,
        EventType::PaymentDetected,
        EventType::PaymentConfirmed,
        EventType::PaymentReversed,
        EventType::RefundCreated,
        EventType::RefundUpdated,
        EventType::RefundRequested,
        EventType::WithdrawalRequested,
        EventType::WithdrawalUpdated,
        EventType::DepositDetected,
        EventType::DepositConfirmed,
        EventType::DepositReversed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderCreated => "order.created",
            EventType::OrderProcessing => "order.processing",
            EventType::OrderSettled => "order.settled",
            EventType::OrderPaidPartial => "order.paid_partial",
            EventType::OrderPaidOver => "order.paid_over",
            EventType::OrderPaidLate => "order.paid_late",
            EventType::OrderExpired => "order.expired",
            EventType::OrderInvalid => "order.invalid",
            EventType::OrderRefunded => "order.refunded",
            EventType::OrderReversed => "order.reversed",
            EventType::PaymentDetected => "payment.detected",
            EventType::PaymentConfirmed => "payment.confirmed",
            EventType::PaymentReversed => "payment.reversed",
            EventType::RefundCreated => "refund.created",
            EventType::RefundUpdated => "refund.updated",
            EventType::RefundRequested => "refund.requested",
            EventType::WithdrawalRequested => "withdrawal.requested",
            EventType::WithdrawalUpdated => "withdrawal.updated",
            EventType::DepositDetected => "deposit.detected",
            EventType::DepositConfirmed => "deposit.confirmed",
            EventType::DepositReversed => "deposit.reversed",
        }
    }

    /// The event announcing an order's move into `to`. Where the reason carries news the
    /// merchant must act on (over-, under- or late payment, a reversal) it names the event;
    /// the payload always carries both status and reason.
    pub fn for_order_state(to: OrderState) -> EventType {
        match (to.status, to.reason) {
            (OrderStatus::Pending, StatusReason::PaidPartial) => EventType::OrderPaidPartial,
            (OrderStatus::Pending, StatusReason::Reversed) => EventType::OrderReversed,
            (OrderStatus::Pending, _) => EventType::OrderCreated,
            (OrderStatus::Processing, _) => EventType::OrderProcessing,
            (OrderStatus::Settled, StatusReason::PaidOver) => EventType::OrderPaidOver,
            (OrderStatus::Settled, StatusReason::PaidLate) => EventType::OrderPaidLate,
            (OrderStatus::Settled, _) => EventType::OrderSettled,
            (OrderStatus::Expired, StatusReason::PaidPartial) => EventType::OrderPaidPartial,
            (OrderStatus::Expired, StatusReason::Reversed) => EventType::OrderReversed,
            (OrderStatus::Expired, _) => EventType::OrderExpired,
            (OrderStatus::Invalid, _) => EventType::OrderInvalid,
            (OrderStatus::Refunded, _) => EventType::OrderRefunded,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.chars().take(48).collect()))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// An immutable event. `data` is the object as the API returns it plus its previous status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub merchant_id: MerchantId,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Id of the object the event is about (order, payment, refund).
    pub subject: String,
    pub data: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Where an event's dedupe key is kept inside `data` (APIs show it as a top-level field).
pub const DEDUPE_KEY: &str = "dedupe_key";

/// Set on an order state event when chain activity brings the order back into a state it
/// had been in and left because payments were reversed (a reorganisation, a dropped
/// transaction): the fact was announced before.
pub const RESTORED: &str = "restored";

/// The dedupe key of an event about `subject`: `{subject}:{type}`, and `:{detail}` when the
/// same kind of event can announce different facts about one object (an order's counted
/// amount, a payout's status). Events announcing the same fact again share it.
pub fn dedupe_key(subject: &str, kind: EventType, detail: Option<&str>) -> String {
    match detail {
        Some(d) => format!("{subject}:{kind}:{d}"),
        None => format!("{subject}:{kind}"),
    }
}

impl Event {
    /// The fact this event announces: the same for an event announcing it again with another
    /// id (an order settled again by the same payments after a reorg). Events written before
    /// dedupe keys existed answer their own id.
    pub fn dedupe_key(&self) -> String {
        self.data
            .get(DEDUPE_KEY)
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| self.id.to_string(), str::to_owned)
    }

    /// Whether this order event restores a state chain activity had undone ([`RESTORED`]).
    pub fn restored(&self) -> bool {
        self.data.get(RESTORED) == Some(&serde_json::Value::Bool(true))
    }

    /// `data` as APIs show it: the dedupe key is a top-level field there, not part of `data`.
    pub fn public_data(&self) -> serde_json::Value {
        let mut data = self.data.clone();
        if let serde_json::Value::Object(map) = &mut data {
            map.remove(DEDUPE_KEY);
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_roundtrip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!("order.paid".parse::<EventType>().is_err());
    }

    #[test]
    fn every_valid_state_has_an_event() {
        use crate::state::OrderState;
        for s in OrderState::all_valid() {
            let t = EventType::for_order_state(s);
            assert!(t.as_str().starts_with("order."), "{s}");
        }
        assert_eq!(
            EventType::for_order_state(OrderState::new(OrderStatus::Settled, StatusReason::Marked)),
            EventType::OrderSettled
        );
    }
}
