//! Typed, prefixed identifiers.
//!
//! Every id is a short prefix naming the kind of object (`ord_`, `mch_`, …) followed by 128
//! random bits in lowercase base32: unguessable, URL-safe, and easy to recognise in logs.
//! The core holds no random source; callers pass the random bytes in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Lowercase RFC 4648 base32 without padding.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct IdError {
    pub kind: &'static str,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id from 16 random bytes (128 bits).
            pub fn from_random(bytes: [u8; 16]) -> Self {
                Self(format!("{}{}", $prefix, base32(&bytes)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let body = s.strip_prefix($prefix).ok_or(IdError { kind: $kind })?;
                let ok = body.len() == 26 && body.bytes().all(|b| ALPHABET.contains(&b));
                if ok { Ok(Self(s.to_owned())) } else { Err(IdError { kind: $kind }) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A merchant (tenant). Every other object belongs to exactly one.
    MerchantId, "mch_", "merchant");
typed_id!(
    /// A payment order.
    OrderId, "ord_", "order");
typed_id!(
    /// An on-chain payment observed for an order.
    PaymentId, "pay_", "payment");
typed_id!(
    /// An immutable event.
    EventId, "evt_", "event");
typed_id!(
    /// An API credential (the public half of an API key).
    KeyId, "key_", "key");
typed_id!(
    /// A merchant's webhook endpoint.
    WebhookId, "whk_", "webhook");
typed_id!(
    /// A payout request (refund or withdrawal) awaiting the merchant's approval.
    PayoutId, "pout_", "payout");
typed_id!(
    /// A payment received at a deposit account's address (Pay Protocol's "recharge").
    DepositId, "dep_", "deposit");
typed_id!(
    /// One event's delivery to one destination (webhook endpoint or order callback URL).
    DeliveryId, "dlv_", "delivery");

/// The token in a hosted checkout URL (`/pay/{token}`): 256 random bits, separate from the
/// order id so that a leaked order id does not open the buyer's page and vice versa.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckoutToken(String);

impl CheckoutToken {
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(base32(&bytes))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == 52 && raw.bytes().all(|b| ALPHABET.contains(&b));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckoutToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_known_vectors() {
        // RFC 4648 test vectors, lowercased, unpadded
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"fo"), "mzxq");
        assert_eq!(base32(b"foo"), "mzxw6");
        assert_eq!(base32(b"foob"), "mzxw6yq");
        assert_eq!(base32(b"fooba"), "mzxw6ytb");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn ids_roundtrip_and_validate() {
        let id = OrderId::from_random([7u8; 16]);
        assert!(id.as_str().starts_with("ord_"));
        assert_eq!(id.as_str().len(), 4 + 26);
        assert_eq!(id.as_str().parse::<OrderId>().unwrap(), id);
        assert!("ord_short".parse::<OrderId>().is_err());
        assert!(
            id.as_str()
                .replace("ord_", "mch_")
                .parse::<OrderId>()
                .is_err()
        );
        assert!("ord_AAAAAAAAAAAAAAAAAAAAAAAAAA".parse::<OrderId>().is_err());
        let token = CheckoutToken::from_random([1u8; 32]);
        assert_eq!(token.as_str().len(), 52);
        assert_eq!(CheckoutToken::parse(token.as_str()), Some(token));
        assert_eq!(CheckoutToken::parse("nope"), None);
    }
}
