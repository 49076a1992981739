//! Aurpay's request and callback signatures, as pure functions.
//!
//! Request signature (signature mode; from the public clients, see docs/compat/aurpay.md):
//! `Signature = base64(HMAC-SHA256(API-Secret, "HMAC-SHA256 | {Date} | {METHOD} {path} | {Body-MD5}"))`,
//! the last element only when a body is sent. `{path}` is accepted with and without the query
//! string. Callback signature: `base64(HMAC-SHA256(callback secret, "{Date} | {full URL}"))`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc2822, Rfc3339};

/// The only algorithm Aurpay names.
pub const ALGORITHM: &str = "HMAC-SHA256";
/// Allowed difference between a request's `Date` and the server clock, either way.
pub const MAX_SKEW_SECS: i64 = 300;

/// Lowercase hex MD5 of the raw body (`Body-MD5`).
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// The string a request signature covers.
pub fn signature_origin(date: &str, method: &str, path: &str, body_md5: Option<&str>) -> String {
    match body_md5 {
        Some(md5) => format!("{ALGORITHM} | {date} | {method} {path} | {md5}"),
        None => format!("{ALGORITHM} | {date} | {method} {path}"),
    }
}

/// base64 HMAC-SHA256 of `message` under `secret`.
pub fn hmac_base64(secret: &str, message: &str) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(message.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Signature` header of a callback to `url` sent at `date`.
pub fn callback_signature(callback_secret: &str, date: &str, url: &str) -> String {
    hmac_base64(callback_secret, &format!("{date} | {url}"))
}

/// `Date` as Aurpay clients send it: ISO-8601 UTC with milliseconds (`2025-01-01T00:00:00.000Z`).
pub fn format_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Why a signed request was refused. Each maps to one message of the error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    MissingHeader(&'static str),
    BadAlgorithm,
    BadDate,
    StaleDate,
    BodyMd5Mismatch,
    BadSignature,
}

impl SignatureError {
    pub fn message(self) -> String {
        match self {
            SignatureError::MissingHeader(h) => format!("missing header {h}"),
            SignatureError::BadAlgorithm => {
                format!("header Algorithm must be {ALGORITHM}")
            }
            SignatureError::BadDate => {
                "header Date must be an ISO-8601 timestamp, e.g. 2025-01-01T00:00:00.000Z".into()
            }
            SignatureError::StaleDate => format!(
                "header Date is more than {MAX_SKEW_SECS} seconds away from the server time"
            ),
            SignatureError::BodyMd5Mismatch => {
                "header Body-MD5 does not match the request body".into()
            }
            SignatureError::BadSignature => "header Signature does not match the request".into(),
        }
    }
}

/// The signature headers of one request, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    pub algorithm: Option<&'a str>,
    pub date: Option<&'a str>,
    pub body_md5: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Parse a `Date`: ISO-8601 / RFC 3339 with `Z` or an offset (fractions optional), or without
/// a zone (taken as UTC, the way Aurpay writes its own timestamps), or an HTTP date (RFC 2822).
pub fn parse_date(raw: &str) -> Option<OffsetDateTime> {
    let raw = raw.trim();
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(t);
    }
    if let Ok(t) = time::PrimitiveDateTime::parse(raw, &Iso8601::DEFAULT) {
        return Some(t.assume_utc());
    }
    OffsetDateTime::parse(raw, &Rfc2822).ok()
}

/// Verify a signed request against `secret`. `path` is the path as sent; `query` the raw
/// query string, if any: the signature may cover `path` or `path?query`.
pub fn verify_request(
    secret: &str,
    headers: SignedHeaders<'_>,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let algorithm = headers
        .algorithm
        .ok_or(SignatureError::MissingHeader("Algorithm"))?;
    if !algorithm.trim().eq_ignore_ascii_case(ALGORITHM) {
        return Err(SignatureError::BadAlgorithm);
    }
    let date = headers.date.ok_or(SignatureError::MissingHeader("Date"))?;
    let signature = headers
        .signature
        .ok_or(SignatureError::MissingHeader("Signature"))?;
    let at = parse_date(date).ok_or(SignatureError::BadDate)?;
    if (now - at).whole_seconds().abs() > MAX_SKEW_SECS {
        return Err(SignatureError::StaleDate);
    }
    let md5 = match headers.body_md5 {
        Some(given) => {
            if !given.trim().eq_ignore_ascii_case(&body_md5(body)) {
                return Err(SignatureError::BodyMd5Mismatch);
            }
            Some(given.trim())
        }
        None if body.is_empty() => None,
        None => return Err(SignatureError::MissingHeader("Body-MD5")),
    };
    let method = method.to_ascii_uppercase();
    let mut candidates = vec![path.to_owned()];
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        candidates.push(format!("{path}?{q}"));
    }
    let presented = signature.trim().as_bytes();
    let mut ok = false;
    for p in &candidates {
        let expected = hmac_base64(secret, &signature_origin(date, &method, p, md5));
        ok |= bool::from(expected.as_bytes().ct_eq(presented));
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn md5_and_dates() {
        assert_eq!(body_md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            format_date(datetime!(2025-01-01 00:00:00.5 UTC)),
            "2025-01-01T00:00:00.500Z"
        );
        assert_eq!(
            parse_date("2024-06-17T00:00:00Z"),
            Some(datetime!(2024-06-17 00:00 UTC))
        );
        assert_eq!(
            parse_date("2024-06-17T00:00:00.250"),
            Some(datetime!(2024-06-17 00:00:00.25 UTC))
        );
        assert_eq!(
            parse_date("2024-06-17T02:00:00+02:00"),
            Some(datetime!(2024-06-17 00:00 UTC))
        );
        assert_eq!(
            parse_date("Mon, 17 Jun 2024 00:00:00 +0000"),
            Some(datetime!(2024-06-17 00:00 UTC))
        );
        assert!(parse_date("yesterday").is_none());
        assert!(parse_date("").is_none());
    }

    #[test]
    fn verification_rules() {
        let now = datetime!(2025-01-01 00:01 UTC);
        let date = "2025-01-01T00:00:00.000Z";
        let body = br#"{"a":1}"#;
        let md5 = body_md5(body);
        let sig = hmac_base64(
            "s",
            &signature_origin(date, "POST", "/api/order/pay-info", Some(&md5)),
        );
        let h = SignedHeaders {
            algorithm: Some("HMAC-SHA256"),
            date: Some(date),
            body_md5: Some(&md5),
            signature: Some(&sig),
        };
        let v = |h: SignedHeaders<'_>, body: &[u8], now| {
            verify_request("s", h, "POST", "/api/order/pay-info", None, body, now)
        };
        assert_eq!(v(h, body, now), Ok(()));
        assert_eq!(
            verify_request("t", h, "POST", "/api/order/pay-info", None, body, now),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(v(h, b"{}", now), Err(SignatureError::BodyMd5Mismatch));
        assert_eq!(
            v(h, body, datetime!(2025-01-01 00:05:01 UTC)),
            Err(SignatureError::StaleDate)
        );
        assert_eq!(
            v(
                SignedHeaders {
                    body_md5: None,
                    ..h
                },
                body,
                now
            ),
            Err(SignatureError::MissingHeader("Body-MD5"))
        );
        assert_eq!(
            v(
                SignedHeaders {
                    algorithm: Some("HMAC-SHA1"),
                    ..h
                },
                body,
                now
            ),
            Err(SignatureError::BadAlgorithm)
        );
        // GET with a query: both readings are accepted.
        for signed_path in ["/api/v2/order/", "/api/v2/order/?page=1&size=10"] {
            let sig = hmac_base64("s", &signature_origin(date, "GET", signed_path, None));
            let h = SignedHeaders {
                algorithm: Some("HMAC-SHA256"),
                date: Some(date),
                body_md5: None,
                signature: Some(&sig),
            };
            assert_eq!(
                verify_request(
                    "s",
                    h,
                    "GET",
                    "/api/v2/order/",
                    Some("page=1&size=10"),
                    b"",
                    now
                ),
                Ok(())
            );
        }
    }
}
