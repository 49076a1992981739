//! TOTP second factor (RFC 6238 over RFC 4226's HOTP with HMAC-SHA1): six digits, 30-second
//! steps — what every authenticator app does by default. Tested against both RFCs' vectors.

use hmac13::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps either side of the current one that are accepted too (a phone's clock drifts).
pub const SKEW: i64 = 1;
/// Bytes of a new secret (RFC 4226 recommends 160 bits).
pub const SECRET_LEN: usize = 20;

/// HOTP: the `digits`-digit code of `counter` under `secret`.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC takes a key of any length: the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let h = h.as_slice();
    let offset = usize::from(h.last().copied().unwrap_or_default() & 0x0f);
    let word = h
        .get(offset..offset + 4)
        .map(|w| u32::from_be_bytes([w[0] & 0x7f, w[1], w[2], w[3]]))
        .unwrap_or_default();
    word % 10u32.pow(digits)
}

/// The time step of a Unix time.
pub fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECS)
}

/// The code shown at Unix time `unix`.
pub fn code_at(secret: &[u8], unix: i64) -> String {
    let step = u64::try_from(step_of(unix)).unwrap_or_default();
    format!(
        "{:0width$}",
        hotp(secret, step, DIGITS),
        width = DIGITS as usize
    )
}

/// The step (within [`SKEW`] of `unix`) whose code `code` is, if any. Spaces are ignored
/// (apps show `123 456`); every candidate is compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, unix: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix);
    let mut found = None;
    for step in now - SKEW..=now + SKEW {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let expected = format!(
            "{:0width$}",
            hotp(secret, counter, DIGITS),
            width = DIGITS as usize
        );
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// A secret as authenticator apps take it: upper-case base32 without padding.
pub fn encode_secret(secret: &[u8]) -> String {
    coffer_core::ids::base32(secret).to_ascii_uppercase()
}

/// The bytes of a base32 secret (any case, spaces ignored), or `None`.
pub fn decode_secret(raw: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in raw.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => u32::from(c) - u32::from('A'),
            c @ '2'..='7' => u32::from(c) - u32::from('2') + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    (out.len() >= 10).then_some(out)
}

/// The `otpauth://` URI an authenticator app scans (as a QR code).
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer).replace('+', "%20"),
        enc(account).replace('+', "%20"),
        enc(issuer).replace('+', "%20"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn hotp_matches_rfc_4226() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                hotp(RFC_SECRET, counter as u64, 6),
                *code,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn totp_matches_rfc_6238_sha1() {
        for (t, code) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            let step = u64::try_from(step_of(t)).unwrap();
            assert_eq!(hotp(RFC_SECRET, step, 8), code, "t = {t}");
            assert_eq!(code_at(RFC_SECRET, t), format!("{:06}", code % 1_000_000));
        }
    }

    #[test]
    fn codes_match_within_one_step_either_side() {
        let now = 1_700_000_015;
        let code = code_at(RFC_SECRET, now);
        assert_eq!(matching_step(RFC_SECRET, &code, now), Some(step_of(now)));
        assert_eq!(
            matching_step(RFC_SECRET, &code, now + 30),
            Some(step_of(now))
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code, now - 30),
            Some(step_of(now))
        );
        assert_eq!(matching_step(RFC_SECRET, &code, now + 60), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(RFC_SECRET, &spaced, now), Some(step_of(now)));
        assert_eq!(matching_step(RFC_SECRET, "12345", now), None);
        assert_eq!(matching_step(RFC_SECRET, "abcdef", now), None);
    }

    #[test]
    fn secrets_round_trip_through_base32() {
        let encoded = encode_secret(RFC_SECRET);
        assert_eq!(encoded, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(decode_secret(&encoded).unwrap(), RFC_SECRET);
        assert_eq!(
            decode_secret("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap(),
            RFC_SECRET
        );
        assert_eq!(decode_secret("GEZ1"), None);
        assert_eq!(decode_secret("GEZD"), None, "too short to be a secret");
        let uri = otpauth_uri("Coffer (shop.example)", "alice", &encoded);
        assert!(uri.starts_with(
            "otpauth://totp/Coffer%20%28shop.example%29:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Coffer%20%28shop.example%29"
        ), "{uri}");
    }
}
