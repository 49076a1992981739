//! Cursors of the lists numbered by the store (payouts, deposit accounts, deposits): newest
//! first, the next page is everything numbered below the last one shown. The cursor is
//! opaque (base64url of `kind.number`) so it can change form later.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::ApiError;

pub(crate) fn encode_seq_cursor(kind: &str, seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}.{seq}"))
}

/// The number in a cursor of `kind`, or `400 invalid_cursor`.
pub(crate) fn decode_seq_cursor(kind: &str, raw: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            "cursor",
            "cursor is not a next_cursor returned by this API",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_garbage() {
        assert_eq!(
            decode_seq_cursor("pout", &encode_seq_cursor("pout", 42)).unwrap(),
            42
        );
        for bad in [
            String::new(),
            "!!".into(),
            URL_SAFE_NO_PAD.encode("42"),
            URL_SAFE_NO_PAD.encode("pout.x"),
            URL_SAFE_NO_PAD.encode("pout.-1"),
            URL_SAFE_NO_PAD.encode("poutx.1"),
            encode_seq_cursor("dep", 7),
        ] {
            assert_eq!(
                decode_seq_cursor("pout", &bad).unwrap_err().code,
                "invalid_cursor",
                "{bad}"
            );
        }
    }
}
