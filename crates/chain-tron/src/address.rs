//! TRON addresses: 21 bytes, `0x41` ‖ the 20-byte Ethereum-style account (the last 20 bytes of
//! keccak-256 of the uncompressed public key). People see them in Base58Check (`T…`, 34
//! characters); java-tron's HTTP API shows them as hex `41…` (with `visible=false`, the
//! default) and its logs as 20-byte hex without the prefix.

use std::fmt;
use std::str::FromStr;

/// The prefix byte of every TRON address (mainnet, Shasta and Nile alike).
pub const PREFIX: u8 = 0x41;

/// A TRON address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TronAddress([u8; 21]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("not a TRON address: expected T… (Base58Check, 34 characters) or hex 41… (42 digits)")]
    Format,
    #[error("the address's checksum does not match (a typo?)")]
    Checksum,
    #[error("not a TRON address: it does not start with the 0x41 prefix")]
    Prefix,
}

impl TronAddress {
    /// The address of a 20-byte account (an EVM-style address, a log topic's low bytes).
    pub fn from_account(account: [u8; 20]) -> Self {
        let mut raw = [0u8; 21];
        raw[0] = PREFIX;
        raw[1..].copy_from_slice(&account);
        Self(raw)
    }

    /// The 20 bytes after the prefix.
    pub fn account(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0[1..]);
        out
    }

    /// `T…`, Base58Check of the 21 bytes.
    pub fn to_base58(&self) -> String {
        bs58::encode(self.0).with_check().into_string()
    }

    /// `41…`, as java-tron's HTTP API shows it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From `T…` only.
    pub fn from_base58(s: &str) -> Result<Self, AddressError> {
        let raw = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|e| match e {
                bs58::decode::Error::InvalidChecksum { .. } => AddressError::Checksum,
                _ => AddressError::Format,
            })?;
        Self::from_raw(&raw)
    }

    /// From hex `41…` (21 bytes, optionally `0x`-prefixed).
    pub fn from_hex(s: &str) -> Result<Self, AddressError> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let raw = hex::decode(s).map_err(|_| AddressError::Format)?;
        Self::from_raw(&raw)
    }

    /// From a 20-byte hex account as logs and JSON-RPC show it (`a614…`, optionally `0x`).
    pub fn from_account_hex(s: &str) -> Option<Self> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let raw = hex::decode(s).ok()?;
        Some(Self::from_account(raw.try_into().ok()?))
    }

    fn from_raw(raw: &[u8]) -> Result<Self, AddressError> {
        let raw: [u8; 21] = raw.try_into().map_err(|_| AddressError::Format)?;
        if raw[0] != PREFIX {
            return Err(AddressError::Prefix);
        }
        Ok(Self(raw))
    }
}

impl FromStr for TronAddress {
    type Err = AddressError;

    /// `T…` or hex `41…`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with('T') && s.len() == 34 {
            Self::from_base58(s)
        } else if s.len() == 42 || s.len() == 44 {
            Self::from_hex(s)
        } else {
            Err(AddressError::Format)
        }
    }
}

impl fmt::Display for TronAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors_both_ways() {
        // java-tron docs / developers.tron.network: USDT and the private key 1 address.
        for (hex, b58) in [
            (
                "41a614f803b6fd780986a42c78ec9c7f77e6ded13c",
                "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
            ),
            (
                "417e5f4552091a69125d5dfcb7b8c2659029395bdf",
                "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC",
            ),
            (
                "41928c9af0651632157ef27a2cf17ca72c575a4d21",
                "TPL66VK2gCXNCD7EJg9pgJRfqcRazjhUZY",
            ),
        ] {
            let a = TronAddress::from_hex(hex).unwrap();
            assert_eq!(a.to_base58(), b58);
            let b: TronAddress = b58.parse().unwrap();
            assert_eq!(b.to_hex(), hex);
            assert_eq!(a, b);
        }
        let log =
            TronAddress::from_account_hex("9ff8fc48fb114ccd5bbdc24a86f0c73082f08825").unwrap();
        assert_eq!(log.to_base58(), "TQZ4iNhzKZvM3nQTrtK69oNwLYxWLHa248");
    }

    #[test]
    fn typos_and_foreign_addresses_are_refused() {
        assert_eq!(
            "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u".parse::<TronAddress>(),
            Err(AddressError::Checksum)
        );
        // A Bitcoin address is Base58Check too, with another prefix.
        assert!(
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
                .parse::<TronAddress>()
                .is_err()
        );
        assert_eq!(
            TronAddress::from_hex("42a614f803b6fd780986a42c78ec9c7f77e6ded13c"),
            Err(AddressError::Prefix)
        );
        for bad in [
            "",
            "T",
            "0xa614f803b6fd780986a42c78ec9c7f77e6ded13c",
            "41zz",
        ] {
            assert!(bad.parse::<TronAddress>().is_err(), "{bad}");
        }
    }
}
