//! The one list envelope of the native API, and the cursors of the lists numbered by the
//! store.
//!
//! Every list answers `{"object": "list", "data": […], "has_more": bool, "next_cursor":
//! string|null}`: `has_more` says whether another page follows right now, and `next_cursor`
//! (non-null exactly when `has_more`) is what to pass as `cursor` to get it. A paged list
//! fetches `limit + 1` items to know. Lists that are never paged (assets, currencies,
//! wallets, rates, an order's payments, webhook endpoints) answer `has_more: false` and
//! `next_cursor: null`.
//!
//! Numbered lists (payouts, deposit accounts, deposits): newest first, the next page is
//! everything numbered below the last one shown. The cursor is opaque (base64url of
//! `kind.number`) so it can change form later.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::error::ApiError;

/// A page of a list: `items` as fetched with `limit + 1`, so one more than `limit` means
/// another page follows, starting after the last item shown (`cursor_of` it).
pub(crate) fn page<T>(
    mut items: Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> String,
    show: impl Fn(&T) -> Value,
) -> Value {
    let has_more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if has_more {
        items.last().map(cursor_of)
    } else {
        None
    };
    let data: Vec<Value> = items.iter().map(show).collect();
    json!({"object": "list", "data": data, "has_more": has_more, "next_cursor": next_cursor})
}

/// A list that is never paged: everything in one answer.
pub(crate) fn whole(data: Vec<Value>) -> Value {
    json!({"object": "list", "data": data, "has_more": false, "next_cursor": null})
}

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
    fn envelopes_are_uniform() {
        let show = |n: &i64| json!(n);
        let cursor = |n: &i64| n.to_string();
        let full = page(vec![1, 2, 3], 2, cursor, show);
        assert_eq!(
            full,
            json!({"object": "list", "data": [1, 2], "has_more": true, "next_cursor": "2"})
        );
        let last = page(vec![1, 2], 2, cursor, show);
        assert_eq!(
            last,
            json!({"object": "list", "data": [1, 2], "has_more": false, "next_cursor": null})
        );
        assert_eq!(
            whole(vec![json!(1)]),
            json!({"object": "list", "data": [1], "has_more": false, "next_cursor": null})
        );
    }

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
