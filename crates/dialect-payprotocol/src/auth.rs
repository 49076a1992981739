//! Pay Protocol's request signature:
//! `X-PAY-SIGN = Base64(HMAC-SHA256(apiSecret, timestamp + METHOD + requestPath + body))`,
//! `X-PAY-TIMESTAMP` in seconds within ±60 s.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Allowed clock difference, both ways ("error ≤ 60 seconds").
pub const MAX_SKEW_SECS: i64 = 60;

/// The signature of one request (or callback).
pub fn sign(secret: &[u8], timestamp: &str, method: &str, path: &str, body: &[u8]) -> String {
    STANDARD.encode(mac(secret, timestamp, method, path, body))
}

fn mac(secret: &[u8], timestamp: &str, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Vec::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(method.to_ascii_uppercase().as_bytes());
    mac.update(path.as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Timestamp,
    Stale,
    Signature,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthError::Timestamp => "X-PAY-TIMESTAMP must be a Unix timestamp in seconds",
            AuthError::Stale => "X-PAY-TIMESTAMP is more than 60 seconds from the server's time",
            AuthError::Signature => "invalid X-PAY-KEY or X-PAY-SIGN",
        })
    }
}

impl std::error::Error for AuthError {}

/// Check a request's signature. The path is accepted both with its query string (what the
/// vendor's own plugin signs) and without it; the comparison is constant-time.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    method: &str,
    path_and_query: &str,
    path: &str,
    body: &[u8],
    presented: &str,
    now: i64,
) -> Result<(), AuthError> {
    let ts: i64 = timestamp.parse().map_err(|_| AuthError::Timestamp)?;
    if (now - ts).abs() > MAX_SKEW_SECS {
        return Err(AuthError::Stale);
    }
    let Ok(presented) = STANDARD.decode(presented.trim()) else {
        return Err(AuthError::Signature);
    };
    let mut ok = false;
    for candidate in [path_and_query, path] {
        let expected = mac(secret, timestamp, method, candidate, body);
        ok |= bool::from(expected.ct_eq(&presented));
    }
    if ok {
        Ok(())
    } else {
        Err(AuthError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_and_window() {
        // echo -n '1700000000POST/api/mer/payment/createPaymentOrder{"a":1}' |
        //   openssl dgst -sha256 -hmac secret -binary | base64
        let s = sign(
            b"secret",
            "1700000000",
            "POST",
            "/api/mer/payment/createPaymentOrder",
            br#"{"a":1}"#,
        );
        let path = "/api/mer/payment/createPaymentOrder";
        assert!(
            verify(
                b"secret",
                "1700000000",
                "POST",
                path,
                path,
                br#"{"a":1}"#,
                &s,
                1700000060
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                b"secret",
                "1700000000",
                "POST",
                path,
                path,
                br#"{"a":1}"#,
                &s,
                1700000061
            ),
            Err(AuthError::Stale)
        );
        assert_eq!(
            verify(
                b"other",
                "1700000000",
                "POST",
                path,
                path,
                br#"{"a":1}"#,
                &s,
                1700000000
            ),
            Err(AuthError::Signature)
        );
        assert_eq!(
            verify(b"secret", "x", "POST", path, path, b"", &s, 0),
            Err(AuthError::Timestamp)
        );
    }
}
