//! Pay Protocol callbacks: POST JSON to the order's `notifyUrl` when it becomes paid,
//! partially paid or failed, signed with the X-PAY-* headers like a request (method `POST`,
//! the path of the notify URL with its query, the raw body). Success only when the body is
//! `success`; retries at 0 s, 15 s, 30 s, 3 min, 5 min, 10 min.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use coffer_core::{Deposit, Event, EventType, Order};
use coffer_engine::{AssetRegistry, Engine};
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

/// The formatter to register under [`crate::DIALECT`] in `coffer_webhooks::Formatters`.
pub fn formatter(engine: &Engine) -> Arc<dyn Formatter> {
    Arc::new(PayProtocolFormatter {
        assets: engine.assets.clone(),
    })
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
    fn body(&self, context: &DialectContext) -> Result<Value, FormatError> {
        if let Some(payout) = &context.payout {
            return Err(FormatError(format!(
                "no Pay Protocol callback for payout {} yet",
                payout.id
            )));
        }
        if let Some(deposit) = &context.deposit {
            return Ok(crate::recharge::recharge_json(deposit, &self.assets));
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
        let body =
            serde_json::to_vec(&self.body(context)?).map_err(|e| FormatError(e.to_string()))?;
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
        if !notifies(event.kind) {
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
    /// the callback.
    fn deposit_callback_url(
        &self,
        event: &Event,
        deposit: &Deposit,
        settings: &BTreeMap<String, String>,
    ) -> Option<String> {
        let fires = match event.kind {
            EventType::DepositConfirmed => true,
            EventType::DepositReversed => deposit.confirmed_at.is_some(),
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

    #[test]
    fn six_attempts_in_the_documented_schedule() {
        let s = retry_schedule();
        assert_eq!(s.delays.len(), 5);
        assert_eq!(s.total(), Duration::from_secs(15 + 30 + 180 + 300 + 600));
    }
}
