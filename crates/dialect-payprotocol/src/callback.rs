//! Pay Protocol callbacks: POST JSON to the order's `notifyUrl` when it becomes paid,
//! partially paid or failed, and to a refund's or withdrawal's own `notifyUrl` when it reaches
//! a final status (success, failure, rejected); signed with the X-PAY-* headers like a request
//! (method `POST`, the path of the notify URL with its query, the raw body). Success only when
//! the body is `success`; retries at 0 s, 15 s, 30 s, 3 min, 5 min, 10 min.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use coffer_core::{
    Deposit, Event, EventType, Order, PaymentStatus, PayoutKind, PayoutRequest, PayoutStatus,
};
use coffer_engine::AssetRegistry;
use coffer_webhooks::format::{
    DeliveryRequest, DialectContext, FormatError, FormatInput, Formatter, RetrySchedule,
    SuccessRule,
};
use serde_json::Value;

use crate::{auth, mapping};

/// The merchant's dialect setting naming where recharge callbacks go.
pub const RECHARGE_NOTIFY_URL: &str = "recharge_notify_url";

pub struct PayProtocolFormatter {
    pub assets: Arc<AssetRegistry>,
}

/// After the first attempt (sent at once): 15 s, 30 s, 3 min, 5 min, 10 min — six in all.
pub fn retry_schedule() -> RetrySchedule {
    RetrySchedule {
        delays: [15, 30, 180, 300, 600]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
    }
}

/// The events that trigger a payment callback: paid, partially paid, payment failed.
fn notifies(kind: EventType) -> bool {
    matches!(
        kind,
        EventType::OrderSettled
            | EventType::OrderPaidOver
            | EventType::OrderPaidLate
            | EventType::OrderPaidPartial
            | EventType::OrderExpired
            | EventType::OrderInvalid
    )
}

/// The events that trigger a refund or withdrawal callback: "fires on success, failure or
/// rejected" — an update whose status (at the event, not the payout's current one) is final.
/// Requests, approval and sending do not notify.
fn notifies_payout(event: &Event) -> bool {
    matches!(
        event.kind,
        EventType::RefundUpdated | EventType::WithdrawalUpdated
    ) && event
        .data
        .get("object")
        .and_then(|o| o.get("status"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<PayoutStatus>().ok())
        .is_some_and(PayoutStatus::is_final)
}

/// The path and query of a URL (what goes into the callback's signature).
pub fn signed_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..]
            .split('#')
            .next()
            .unwrap_or("/")
            .to_owned(),
        None => "/".to_owned(),
    }
}

impl PayProtocolFormatter {
    /// The JSON body of the callback for the event's object: a payment (order), a refund or
    /// withdrawal (payout request), or a recharge (deposit).
    fn body(&self, context: &DialectContext, event: &Event) -> Result<Value, FormatError> {
        if let Some(payout) = &context.payout {
            return Ok(match payout.kind {
                PayoutKind::Refund => {
                    let order = context
                        .order
                        .as_ref()
                        .filter(|o| payout.order_id.as_ref() == Some(&o.id));
                    mapping::refund_json(payout, order, &self.assets)
                }
                PayoutKind::Withdrawal => mapping::withdrawal_json(payout, &self.assets),
            });
        }
        if let Some(deposit) = &context.deposit {
            let mut body = crate::recharge::recharge_json(deposit, &self.assets);
            // The status the event announced (the deposit may have moved on since).
            let announced = match event.kind {
                EventType::DepositConfirmed => Some(PaymentStatus::Confirmed),
                EventType::DepositReversed => Some(PaymentStatus::Reversed),
                _ => None,
            };
            if let (Some(status), Value::Object(map)) = (announced, &mut body) {
                map.insert(
                    "rechargeStatus".into(),
                    crate::recharge::recharge_status(status).into(),
                );
            }
            return Ok(body);
        }
        let order = context
            .order
            .as_ref()
            .ok_or_else(|| FormatError("the object of the event is gone".into()))?;
        Ok(mapping::payment_json(
            order,
            &context.payments,
            &self.assets,
        ))
    }
}

impl Formatter for PayProtocolFormatter {
    fn build(&self, input: &FormatInput<'_>) -> Result<DeliveryRequest, FormatError> {
        let context = input
            .context
            .ok_or_else(|| FormatError("no callback context".into()))?;
        let credential = context.credential.as_ref().ok_or_else(|| {
            FormatError("the merchant has no active Pay Protocol credential".into())
        })?;
        let body = serde_json::to_vec(&self.body(context, input.event)?)
            .map_err(|e| FormatError(e.to_string()))?;
        let url = input.delivery.url.clone();
        let ts = input.now.unix_timestamp().to_string();
        let sign = auth::sign(
            credential.secret.as_bytes(),
            &ts,
            "POST",
            &signed_path(&url),
            &body,
        );
        Ok(DeliveryRequest {
            method: http::Method::POST,
            url,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-pay-key".into(), credential.key.clone()),
                ("x-pay-timestamp".into(), ts),
                ("x-pay-sign".into(), sign),
            ],
            body,
            success: SuccessRule::BodyIsSuccess,
            retry: retry_schedule(),
        })
    }

    fn callback_url(&self, event: &Event, order: &Order) -> Option<String> {
        // No reversal message exists in the protocol: a state a reorg undid and the chain
        // redid (`restored`) was called back already and is not again.
        if !notifies(event.kind) || event.restored() {
            return None;
        }
        order
            .dialect_data
            .get("notifyUrl")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| order.links.callback_url.clone())
            .filter(|u| !u.is_empty())
    }

    /// Recharge callbacks go to the merchant's `recharge_notify_url` (the vendor keeps it in
    /// its console) when a deposit is confirmed (status 0), and when a confirmed one is
    /// reversed (status 2). A deposit still pending is not announced: shops credit users on
    /// the callback. The status sent is the event's, so a retried callback never says
    /// something else than the first attempt.
    fn deposit_callback_url(
        &self,
        event: &Event,
        _deposit: &Deposit,
        settings: &BTreeMap<String, String>,
    ) -> Option<String> {
        let fires = match event.kind {
            EventType::DepositConfirmed => true,
            // Only a reversal of what was announced as successful (by the event, not the
            // deposit as it is now: it may have been confirmed again meanwhile).
            EventType::DepositReversed => {
                event.data.get("previous_status").and_then(Value::as_str) == Some("confirmed")
            }
            _ => false,
        };
        if !fires {
            return None;
        }
        settings
            .get(RECHARGE_NOTIFY_URL)
            .filter(|u| !u.is_empty())
            .cloned()
    }

    /// A refund's or withdrawal's own `notifyUrl` (given to `createRefundOrder` or
    /// `withdraw/apply`); none given, no callback (the order's `notifyUrl` is not used: it
    /// expects payment bodies).
    fn payout_callback_url(&self, event: &Event, payout: &PayoutRequest) -> Option<String> {
        if payout.dialect != crate::DIALECT || !notifies_payout(event) {
            return None;
        }
        payout
            .dialect_data
            .get("notifyUrl")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
    }

    fn needs_context(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_paths() {
        assert_eq!(
            signed_path("https://shop.example/notify?a=1"),
            "/notify?a=1"
        );
        assert_eq!(signed_path("https://shop.example"), "/");
        assert_eq!(signed_path("http://127.0.0.1:9/x/y#frag"), "/x/y");
    }

    fn payout(kind: PayoutKind, dialect: &str, notify: Option<&str>) -> PayoutRequest {
        let mut data = serde_json::Map::new();
        if let Some(url) = notify {
            data.insert("notifyUrl".into(), url.into());
        }
        let at = time::OffsetDateTime::UNIX_EPOCH;
        PayoutRequest {
            id: coffer_core::PayoutId::from_random([1; 16]),
            seq: 1,
            merchant_id: coffer_core::MerchantId::from_random([2; 16]),
            kind,
            order_id: None,
            asset: None,
            amount: None,
            fiat_amount: None,
            fiat_currency: None,
            destination: None,
            memo: None,
            status: PayoutStatus::Requested,
            dialect: dialect.into(),
            reference: None,
            dialect_data: data,
            txid: None,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    fn event(kind: EventType, status: PayoutStatus) -> Event {
        Event {
            id: coffer_core::EventId::from_random([3; 16]),
            merchant_id: coffer_core::MerchantId::from_random([2; 16]),
            kind,
            subject: "pout_x".into(),
            data: serde_json::json!({"object": {"status": status.as_str()}}),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// Every event type × payout status: a callback only for an update to a final status of
    /// a Pay Protocol payout with a `notifyUrl`, to that URL.
    #[test]
    fn payout_callbacks_only_on_final_updates() {
        let f = PayProtocolFormatter {
            assets: Arc::new(AssetRegistry::new(Vec::new(), Vec::new()).unwrap()),
        };
        let url = "https://shop.example/refund?id=1";
        for kind in [PayoutKind::Refund, PayoutKind::Withdrawal] {
            let p = payout(kind, crate::DIALECT, Some(url));
            for event_kind in EventType::ALL {
                for status in PayoutStatus::ALL {
                    let expected = matches!(
                        event_kind,
                        EventType::RefundUpdated | EventType::WithdrawalUpdated
                    ) && matches!(
                        status,
                        PayoutStatus::Completed | PayoutStatus::Failed | PayoutStatus::Rejected
                    );
                    let got = f.payout_callback_url(&event(event_kind, status), &p);
                    assert_eq!(
                        got.as_deref(),
                        expected.then_some(url),
                        "{event_kind:?} {status}"
                    );
                }
            }
            let done = event(EventType::RefundUpdated, PayoutStatus::Completed);
            assert_eq!(
                f.payout_callback_url(&done, &payout(kind, crate::DIALECT, None)),
                None,
                "no notifyUrl given: no callback"
            );
            assert_eq!(
                f.payout_callback_url(&done, &payout(kind, crate::DIALECT, Some(""))),
                None
            );
            assert_eq!(
                f.payout_callback_url(&done, &payout(kind, "native", Some(url))),
                None,
                "another dialect's payout"
            );
            let mut no_status = done.clone();
            no_status.data = serde_json::json!({});
            assert_eq!(f.payout_callback_url(&no_status, &p), None);
        }
    }

    #[test]
    fn six_attempts_in_the_documented_schedule() {
        let s = retry_schedule();
        assert_eq!(s.delays.len(), 5);
        assert_eq!(s.total(), Duration::from_secs(15 + 30 + 180 + 300 + 600));
    }

    fn deposit(status: coffer_core::PaymentStatus) -> Deposit {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        Deposit {
            id: coffer_core::DepositId::from_random([4; 16]),
            seq: 7,
            merchant_id: coffer_core::MerchantId::from_random([2; 16]),
            account_uuid: "U1".into(),
            account_seq: 3,
            dialect: crate::DIALECT.into(),
            asset: "bsc:USDT".parse().unwrap(),
            amount: coffer_core::BaseUnits::new(5),
            txid: "0xd".into(),
            output_index: 0,
            from_address: None,
            to_address: "0xa".into(),
            derivation_index: 0,
            block_height: Some(1),
            block_hash: Some("0xb".into()),
            confirmations: 1,
            status,
            occurred_at: at,
            detected_at: at,
            confirmed_at: Some(at),
            updated_at: at,
        }
    }

    fn deposit_event(kind: EventType, previous: Option<&str>) -> Event {
        Event {
            id: coffer_core::EventId::from_random([5; 16]),
            merchant_id: coffer_core::MerchantId::from_random([2; 16]),
            kind,
            subject: "dep_x".into(),
            data: serde_json::json!({"object": {}, "previous_status": previous}),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// A recharge callback for a confirmation, and for a reversal only of what was confirmed,
    /// judged by the event (the deposit may have moved on); the body says the event's status.
    #[test]
    fn recharge_callbacks_follow_the_event() {
        use coffer_core::PaymentStatus::{Confirmed, Reversed, Unconfirmed};
        let f = PayProtocolFormatter {
            assets: Arc::new(AssetRegistry::new(Vec::new(), Vec::new()).unwrap()),
        };
        let url = "https://shop.example/recharge";
        let mut settings = BTreeMap::new();
        settings.insert(RECHARGE_NOTIFY_URL.to_owned(), url.to_owned());
        let now_confirmed = deposit(Confirmed);
        for (kind, previous, fires) in [
            (EventType::DepositDetected, None, false),
            (EventType::DepositConfirmed, Some("unconfirmed"), true),
            (EventType::DepositReversed, Some("confirmed"), true),
            (EventType::DepositReversed, Some("unconfirmed"), false),
        ] {
            let got =
                f.deposit_callback_url(&deposit_event(kind, previous), &now_confirmed, &settings);
            assert_eq!(
                got.as_deref(),
                fires.then_some(url),
                "{kind:?} {previous:?}"
            );
        }
        assert_eq!(
            f.deposit_callback_url(
                &deposit_event(EventType::DepositConfirmed, None),
                &now_confirmed,
                &BTreeMap::new()
            ),
            None,
            "no recharge URL set"
        );
        // A reversal retried after the deposit was confirmed again still says failure (2);
        // a confirmation retried after a reversal still says success (0).
        for (kind, now, status) in [
            (EventType::DepositReversed, Confirmed, 2),
            (EventType::DepositConfirmed, Reversed, 0),
            (EventType::DepositConfirmed, Unconfirmed, 0),
        ] {
            let context = DialectContext {
                deposit: Some(deposit(now)),
                ..DialectContext::default()
            };
            let body = f.body(&context, &deposit_event(kind, None)).unwrap();
            assert_eq!(body["rechargeStatus"], status, "{kind:?} now {now:?}");
        }
    }
}
