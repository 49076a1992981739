//! Aurpay callbacks through Coffer's durable outbox.
//!
//! - `callback_url` is called when the order becomes successful (`SUCCESS`/`RESOLVED`), and
//!   `timeout_callback` when it times out (`OVERDUE`); no other event produces a callback,
//!   and a success a reorg undid and the chain redid (`restored`) is not called back twice.
//! - GET without a body; POST with the order object as JSON when the order was created with
//!   `enable_post_callback`.
//! - Headers `Callback-Token`, `Date` (ISO-8601 UTC) and `Signature` =
//!   base64(HMAC-SHA256(callback secret, "{Date} | {full URL}")), plus `API-Key` when the order
//!   was created in API-Key mode, all of the credential that created the order (while it is
//!   active; else the merchant's newest). Success is exactly HTTP 200.
//! - Orders made through `pay/token` get `public_key={API-Key}` appended to the URL, as
//!   Aurpay's server does for that flow (the WooCommerce gateway using it checks it).

use std::sync::Arc;

use coffer_core::{Event, EventType, Order};
use coffer_engine::AssetRegistry;
use coffer_webhooks::{
    DeliveryRequest, FormatError, FormatInput, Formatter, RetrySchedule, SuccessRule,
};
use time::OffsetDateTime;

use crate::auth::callback_signature;
use crate::view;

pub struct AurpayFormatter {
    pub assets: Arc<AssetRegistry>,
    pub retry: RetrySchedule,
}

/// The callback `Date`: ISO-8601 UTC to the second, as in Aurpay's example
/// (`2024-06-17T00:00:00Z`).
pub fn callback_date(now: OffsetDateTime) -> String {
    format!("{}Z", crate::mapping::naive_time(now))
}

fn data_str<'a>(order: &'a Order, key: &str) -> Option<&'a str> {
    order
        .dialect_data
        .get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

fn data_flag(order: &Order, key: &str) -> bool {
    order
        .dialect_data
        .get(key)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// `url` with `public_key={key}` added to its query (before any fragment). Keys are letters,
/// digits and `_`: nothing to escape.
fn with_public_key(url: &str, key: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, format!("#{fragment}")),
        None => (url, String::new()),
    };
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base}{separator}public_key={key}{fragment}")
}

/// Whether `event` moved the order into a successful state (settled, whatever the reason).
fn became_successful(event: &Event) -> bool {
    let data = &event.data;
    let now = data
        .get("object")
        .and_then(|o| o.get("status"))
        .and_then(|s| s.as_str());
    let before = data.get("previous_status").and_then(|s| s.as_str());
    now == Some("settled") && before != Some("settled")
}

impl Formatter for AurpayFormatter {
    fn callback_url(&self, event: &Event, order: &Order) -> Option<String> {
        // Aurpay has no reversal message: a state a reorg undid and the chain redid was
        // called back already and is not again (docs/webhooks.md, "Once per fact").
        if event.restored() {
            return None;
        }
        match event.kind {
            EventType::OrderExpired => data_str(order, "timeout_callback").map(str::to_owned),
            EventType::PaymentDetected
            | EventType::PaymentConfirmed
            | EventType::PaymentReversed
            | EventType::OrderCreated => None,
            _ if became_successful(event) => {
                order.links.callback_url.clone().filter(|u| !u.is_empty())
            }
            _ => None,
        }
    }

    fn needs_context(&self) -> bool {
        true
    }

    fn build(&self, input: &FormatInput<'_>) -> Result<DeliveryRequest, FormatError> {
        let context = input
            .context
            .ok_or_else(|| FormatError("no dialect context".into()))?;
        let order = context
            .order
            .as_ref()
            .ok_or_else(|| FormatError("the order of the event no longer exists".into()))?;
        let credential = context.credential.as_ref().ok_or_else(|| {
            FormatError("the merchant has no active aurpay credential to sign callbacks".into())
        })?;
        let (token, secret) = match (&credential.callback_token, &credential.callback_secret) {
            (Some(t), Some(s)) => (t, s),
            _ => {
                return Err(FormatError(
                    "the aurpay credential has no callback token and secret".into(),
                ));
            }
        };
        let url = if data_str(order, "endpoint") == Some(crate::handlers::PAY_TOKEN) {
            with_public_key(&input.delivery.url, &credential.key)
        } else {
            input.delivery.url.clone()
        };
        let date = callback_date(input.now);
        let mut headers = vec![
            (
                "user-agent".to_owned(),
                concat!("Coffer-Aurpay/", env!("CARGO_PKG_VERSION")).to_owned(),
            ),
            ("callback-token".to_owned(), token.clone()),
            ("date".to_owned(), date.clone()),
            (
                "signature".to_owned(),
                callback_signature(secret, &date, &url),
            ),
        ];
        if data_str(order, "auth_mode") == Some("api_key") {
            headers.push(("api-key".to_owned(), credential.key.clone()));
        }
        let (method, body) = if data_flag(order, "enable_post_callback") {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
            let body = view::order_json(order, &context.payments, &self.assets);
            (
                http::Method::POST,
                serde_json::to_vec(&body).map_err(|e| FormatError(e.to_string()))?,
            )
        } else {
            (http::Method::GET, Vec::new())
        };
        Ok(DeliveryRequest {
            method,
            url,
            headers,
            body,
            success: SuccessRule::Exactly200,
            retry: self.retry.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::with_public_key;

    #[test]
    fn public_key_joins_the_query() {
        let k = "aurk_x1";
        for (url, expected) in [
            (
                "https://shop.example/?wc-api=APWC_Gateway&order_id=7",
                "https://shop.example/?wc-api=APWC_Gateway&order_id=7&public_key=aurk_x1",
            ),
            (
                "https://shop.example/cb",
                "https://shop.example/cb?public_key=aurk_x1",
            ),
            (
                "https://shop.example/cb?",
                "https://shop.example/cb?public_key=aurk_x1",
            ),
            (
                "https://shop.example/cb?a=1#top",
                "https://shop.example/cb?a=1&public_key=aurk_x1#top",
            ),
        ] {
            assert_eq!(with_public_key(url, k), expected);
        }
    }
}
