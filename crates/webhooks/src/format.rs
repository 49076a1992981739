//! The request a delivery sends, as data supplied per dialect.
//!
//! The sender knows nothing about payload formats: a [`Formatter`] (one per dialect) turns an
//! event into a [`DeliveryRequest`] — method, URL, headers, body, what counts as success and
//! how to retry. Native is the only formatter today; the compatibility dialects register their
//! own in [`Formatters`] without touching the sender.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use coffer_core::{Deposit, Event, Order, Payment, PayoutRequest};
use coffer_engine::DialectCredential;
use coffer_store::DeliveryRecord;
use time::OffsetDateTime;

use crate::crypto;

/// What counts as a successful delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuccessRule {
    /// Any 2xx status.
    Any2xx,
    /// Exactly HTTP 200.
    Exactly200,
    /// HTTP 2xx and the body is `success`: as plain text or as a JSON string (`"success"`,
    /// what PHP's `wp_send_json('success')` writes), with surrounding whitespace and a UTF-8
    /// byte-order mark ignored. The content type is not looked at.
    BodyIsSuccess,
}

impl SuccessRule {
    pub fn accepts(self, status: u16, body: &[u8]) -> bool {
        match self {
            SuccessRule::Any2xx => (200..300).contains(&status),
            SuccessRule::Exactly200 => status == 200,
            SuccessRule::BodyIsSuccess => (200..300).contains(&status) && says_success(body),
        }
    }
}

/// Whether a response body is the word `success`, bare or as a JSON string.
fn says_success(body: &[u8]) -> bool {
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(body)
        .trim_ascii();
    let word = body
        .strip_prefix(b"\"")
        .and_then(|b| b.strip_suffix(b"\""))
        .unwrap_or(body);
    word == b"success"
}

/// Delays before each retry: `delays[i]` follows failed attempt `i + 1`. After the last one
/// fails, the delivery is given up and its endpoint flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
}

impl RetrySchedule {
    /// About three days: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 4 × 12 h, 8 h.
    pub fn default_three_days() -> Self {
        let m = 60;
        let h = 3600;
        let secs = [
            5,
            30,
            2 * m,
            10 * m,
            30 * m,
            h,
            2 * h,
            4 * h,
            8 * h,
            12 * h,
            12 * h,
            12 * h,
            12 * h,
            8 * h,
        ];
        Self {
            delays: secs.into_iter().map(Duration::from_secs).collect(),
        }
    }

    /// The delay after failed attempt number `attempt` (1-based), with ±10 % jitter from
    /// `jitter` (any random number), or `None` when the schedule is exhausted.
    pub fn next_delay(&self, attempt: u32, jitter: u64) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        let base = *self.delays.get(index)?;
        let ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
        let factor = 90 + jitter % 21; // 90..=110 percent
        Some(Duration::from_millis(ms.saturating_mul(factor) / 100))
    }

    pub fn total(&self) -> Duration {
        self.delays.iter().sum()
    }
}

/// A fully built request. Headers are sent exactly as listed and recorded in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRequest {
    pub method: http::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub success: SuccessRule,
    pub retry: RetrySchedule,
}

/// What a formatter gets to build one attempt's request.
pub struct FormatInput<'a> {
    pub event: &'a Event,
    pub delivery: &'a DeliveryRecord,
    /// Signing secrets valid now, in clear (current first). May be empty for a callback URL of
    /// a merchant without endpoints.
    pub secrets: &'a [String],
    pub now: OffsetDateTime,
    /// Loaded before each attempt for formatters whose [`Formatter::needs_context`] is true.
    pub context: Option<&'a DialectContext>,
}

/// What a dialect formatter may need beyond the event: the object the event is about as it is
/// now (an order with its payments, a payout request, or a deposit), and the credential of the
/// delivery's dialect the callback uses: the one that created the order while it is active,
/// else the merchant's newest active one (opened: callback tokens and secrets). Loaded by the
/// sender before each attempt.
#[derive(Clone, Default)]
pub struct DialectContext {
    /// The event's order, or the refunded order of a refund event (then without payments).
    pub order: Option<Order>,
    pub payments: Vec<Payment>,
    /// Set for refund and withdrawal events (subject `pout_…`).
    pub payout: Option<PayoutRequest>,
    /// Set for deposit events (subject `dep_…`).
    pub deposit: Option<Deposit>,
    pub credential: Option<DialectCredential>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot format the delivery: {0}")]
pub struct FormatError(pub String);

pub trait Formatter: Send + Sync {
    fn build(&self, input: &FormatInput<'_>) -> Result<DeliveryRequest, FormatError>;

    /// Where the order's own callback for `event` goes, or `None` for no callback (asked by the
    /// dispatcher). Default: the order's `callback_url`, for every event about the order.
    fn callback_url(&self, _event: &Event, order: &Order) -> Option<String> {
        order.links.callback_url.clone().filter(|u| !u.is_empty())
    }

    /// Where the callback for an event about a payout request (refund, withdrawal) made
    /// through this dialect goes, or `None` (asked by the dispatcher). Default: none; native
    /// payouts reach the merchant through its webhook endpoints.
    fn payout_callback_url(&self, _event: &Event, _payout: &PayoutRequest) -> Option<String> {
        None
    }

    /// Where the callback for an event about a deposit to an account created through this
    /// dialect goes, given the merchant's settings of the dialect (what its vendor keeps in a
    /// console), or `None`. Default: none.
    fn deposit_callback_url(
        &self,
        _event: &Event,
        _deposit: &Deposit,
        _settings: &BTreeMap<String, String>,
    ) -> Option<String> {
        None
    }

    /// Whether `build` needs a [`DialectContext`] (loaded by the sender). Default: no.
    fn needs_context(&self) -> bool {
        false
    }
}

/// Coffer's own format: the event as the events API returns it, signed with
/// `Coffer-Signature`, success on any 2xx.
pub struct NativeFormatter {
    pub retry: RetrySchedule,
}

/// The JSON body of a native delivery, identical on every attempt.
pub fn native_body(event: &Event) -> Vec<u8> {
    let body = serde_json::json!({
        "id": event.id,
        "object": "event",
        "type": event.kind,
        "dedupe_key": event.dedupe_key(),
        "created_at": coffer_engine::view::rfc3339(event.created_at),
        "data": event.public_data(),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

impl Formatter for NativeFormatter {
    fn build(&self, input: &FormatInput<'_>) -> Result<DeliveryRequest, FormatError> {
        let body = native_body(input.event);
        let t = input.now.unix_timestamp();
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "user-agent".to_owned(),
                concat!("Coffer-Webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
            ),
            ("coffer-event-id".to_owned(), input.event.id.to_string()),
            ("coffer-dedupe-key".to_owned(), input.event.dedupe_key()),
            (
                "coffer-event-type".to_owned(),
                input.event.kind.as_str().to_owned(),
            ),
            (
                "coffer-delivery-id".to_owned(),
                input.delivery.id.to_string(),
            ),
        ];
        if !input.secrets.is_empty() {
            headers.push((
                "coffer-signature".to_owned(),
                crypto::signature_header(input.secrets, t, &body),
            ));
        }
        Ok(DeliveryRequest {
            method: http::Method::POST,
            url: input.delivery.url.clone(),
            headers,
            body,
            success: SuccessRule::Any2xx,
            retry: self.retry.clone(),
        })
    }
}

/// Formatters by dialect name. Unknown dialects use the native formatter.
#[derive(Clone)]
pub struct Formatters {
    native: Arc<dyn Formatter>,
    by_dialect: HashMap<String, Arc<dyn Formatter>>,
}

impl Formatters {
    pub fn new(retry: RetrySchedule) -> Self {
        Self {
            native: Arc::new(NativeFormatter { retry }),
            by_dialect: HashMap::new(),
        }
    }

    /// Register the formatter of a dialect, by its name.
    pub fn with(mut self, dialect: &str, formatter: Arc<dyn Formatter>) -> Self {
        self.by_dialect.insert(dialect.to_owned(), formatter);
        self
    }

    pub fn get(&self, dialect: &str) -> &Arc<dyn Formatter> {
        self.by_dialect.get(dialect).unwrap_or(&self.native)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rules() {
        assert!(SuccessRule::Any2xx.accepts(204, b""));
        assert!(!SuccessRule::Any2xx.accepts(301, b""));
        assert!(!SuccessRule::Any2xx.accepts(500, b""));
        assert!(SuccessRule::Exactly200.accepts(200, b"x"));
        assert!(!SuccessRule::Exactly200.accepts(201, b""));
        assert!(SuccessRule::BodyIsSuccess.accepts(200, b"success\n"));
        assert!(!SuccessRule::BodyIsSuccess.accepts(200, b"ok"));
        // What PHP plugins send: `wp_send_json('success')`, echo with newlines, a BOM.
        for body in [
            &b"\"success\""[..],
            b" \"success\"\r\n",
            b"\n\tsuccess \n",
            b"\xEF\xBB\xBFsuccess",
            b"\xEF\xBB\xBF\"success\"\n",
        ] {
            assert!(SuccessRule::BodyIsSuccess.accepts(200, body), "{body:?}");
        }
        for body in [
            &b"\"success"[..],
            b"success\"",
            b"\" success \"",
            b"\"fail\"",
            b"{\"success\":true}",
            b"successful",
            b"",
        ] {
            assert!(!SuccessRule::BodyIsSuccess.accepts(200, body), "{body:?}");
        }
        assert!(!SuccessRule::BodyIsSuccess.accepts(500, b"success"));
    }

    #[test]
    fn default_schedule_spans_about_three_days_and_jitters() {
        let s = RetrySchedule::default_three_days();
        let total = s.total().as_secs();
        assert!((70 * 3600..=72 * 3600).contains(&total), "{total}");
        assert_eq!(s.next_delay(0, 0), None);
        assert_eq!(s.next_delay(1, 10), Some(Duration::from_secs(5)));
        assert_eq!(s.next_delay(1, 0), Some(Duration::from_millis(4500)));
        assert_eq!(s.next_delay(1, 20), Some(Duration::from_millis(5500)));
        let last = u32::try_from(s.delays.len()).unwrap();
        assert!(s.next_delay(last, 0).is_some());
        assert_eq!(s.next_delay(last + 1, 0), None);
        // Backoff grows up to the cap.
        for w in s.delays.windows(2).take(9) {
            assert!(w[1] > w[0]);
        }
    }
}
