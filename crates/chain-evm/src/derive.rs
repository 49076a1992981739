//! Receiving addresses: BIP32 public derivation below the merchant's account xpub.
//!
//! The merchant gives the extended public key of an account (for Ethereum-style wallets the key
//! at `m/44'/60'/0'`); Coffer derives `…/0/i` for order `i` with public derivation (CKDpub),
//! so no private key ever reaches it. Addresses are EIP-55 checksummed.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use alloy::primitives::{Address, keccak256};
use bitcoin::NetworkKind;
use bitcoin::base58;
use bitcoin::bip32::{self, ChildNumber};
use bitcoin::secp256k1::{PublicKey, Secp256k1, VerifyOnly};
use coffer_core::Chain;
use coffer_core::order::Derivation;
use coffer_engine::{EngineError, PreparedTarget};

const XPUB: [u8; 4] = [0x04, 0x88, 0xB2, 0x1E];
const TPUB: [u8; 4] = [0x04, 0x35, 0x87, 0xCF];
const XPRV: [u8; 4] = [0x04, 0x88, 0xAD, 0xE4];
const TPRV: [u8; 4] = [0x04, 0x35, 0x83, 0x94];
const HARDENED: u32 = 0x8000_0000;

/// libsecp256k1's verification context (public derivation needs no signing tables).
static SECP: LazyLock<Secp256k1<VerifyOnly>> = LazyLock::new(Secp256k1::verification_only);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XpubError {
    #[error("not a base58check string")]
    Base58,
    #[error("an extended key is 78 bytes, this one is {0}")]
    Length(usize),
    #[error("this is an extended PRIVATE key: give Coffer the extended public key (xpub) only")]
    Private,
    #[error("unknown extended key version (expected xpub or tpub)")]
    Version,
    #[error("the public key is not a valid secp256k1 point")]
    Point,
    #[error("public derivation cannot derive hardened index {0}")]
    Hardened(u32),
    #[error("index {0} gives an invalid key (probability < 2^-127): skip it")]
    InvalidChild(u32),
}

/// A parsed extended public key. Derivation is rust-bitcoin's BIP32 (`bip32::Xpub::ckd_pub`
/// on libsecp256k1); this type keeps the fields the EVM and TRON rails read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xpub {
    pub version: [u8; 4],
    pub depth: u8,
    pub parent_fingerprint: [u8; 4],
    pub child_number: u32,
    pub chain_code: [u8; 32],
    pub key: PublicKey,
}

impl Xpub {
    pub fn parse(s: &str) -> Result<Self, XpubError> {
        let raw = base58::decode_check(s.trim()).map_err(|_| XpubError::Base58)?;
        if raw.len() != 78 {
            return Err(XpubError::Length(raw.len()));
        }
        let version = &raw[0..4];
        if version == XPRV || version == TPRV {
            return Err(XpubError::Private);
        }
        if version != XPUB && version != TPUB {
            return Err(XpubError::Version);
        }
        // Length and version are checked above: what is left to fail is the point.
        let key = bip32::Xpub::decode(&raw).map_err(|_| XpubError::Point)?;
        Ok(Self::from_bip32(&key))
    }

    fn from_bip32(key: &bip32::Xpub) -> Self {
        Self {
            version: match key.network {
                NetworkKind::Main => XPUB,
                NetworkKind::Test => TPUB,
            },
            depth: key.depth,
            parent_fingerprint: key.parent_fingerprint.to_bytes(),
            child_number: u32::from(key.child_number),
            chain_code: key.chain_code.to_bytes(),
            key: key.public_key,
        }
    }

    fn to_bip32(self) -> bip32::Xpub {
        bip32::Xpub {
            network: if self.version == TPUB {
                NetworkKind::Test
            } else {
                NetworkKind::Main
            },
            depth: self.depth,
            parent_fingerprint: self.parent_fingerprint.into(),
            child_number: ChildNumber::from(self.child_number),
            public_key: self.key,
            chain_code: self.chain_code.into(),
        }
    }

    /// Base58check serialisation (the canonical form stored as the wallet descriptor).
    pub fn encode(&self) -> String {
        base58::encode_check(&self.to_bip32().encode())
    }

    /// CKDpub: the non-hardened child `index`.
    pub fn child(&self, index: u32) -> Result<Xpub, XpubError> {
        let number = ChildNumber::from_normal_idx(index).map_err(|_| XpubError::Hardened(index))?;
        let child = self
            .to_bip32()
            .ckd_pub(&SECP, number)
            .map_err(|_| XpubError::InvalidChild(index))?;
        Ok(Self::from_bip32(&child))
    }

    /// The Ethereum address of this key: the last 20 bytes of keccak256 of the uncompressed
    /// public key without its 0x04 prefix.
    pub fn address(&self) -> Address {
        let point = self.key.serialize_uncompressed();
        let hash = keccak256(&point[1..]);
        Address::from_slice(&hash[12..])
    }
}

/// Parsed external chains (`…/0`) of the account xpubs in use, by canonical descriptor: an
/// order then costs one public derivation instead of a parse (a point decompression) and two
/// derivations. Keyed by the descriptor itself, so a wallet that changes is a new entry and
/// can never be served the old key; the map is emptied when it grows past [`EXTERNAL_KEYS`].
static EXTERNAL: LazyLock<Mutex<HashMap<String, Arc<ExternalChain>>>> =
    LazyLock::new(Mutex::default);

/// Wallets whose external chain stays parsed at most (one per merchant and EVM chain in use).
const EXTERNAL_KEYS: usize = 10_000;

struct ExternalChain {
    /// The account's child number without the hardened bit (`m/44'/60'/{account}'`).
    account: u32,
    key: Xpub,
}

fn external_chain(descriptor: &str) -> Result<Arc<ExternalChain>, EngineError> {
    let cached = EXTERNAL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(descriptor)
        .cloned();
    if let Some(external) = cached {
        return Ok(external);
    }
    let account = Xpub::parse(descriptor).map_err(|e| invalid(format!("xpub: {e}")))?;
    let key = account
        .child(0)
        .map_err(|e| invalid(format!("derivation: {e}")))?;
    let external = Arc::new(ExternalChain {
        account: account.child_number & !HARDENED,
        key,
    });
    let mut keys = EXTERNAL.lock().unwrap_or_else(PoisonError::into_inner);
    if keys.len() >= EXTERNAL_KEYS {
        keys.clear();
    }
    keys.insert(descriptor.to_owned(), external.clone());
    Ok(external)
}

/// The 20-byte account (keccak of the public key, as on EVM chains and TRON) at `…/0/index`
/// below the account xpub `descriptor`, derived from the cached external chain, and the
/// account's child number (without the hardened bit). TRON's rail derives through it too.
pub fn external_account(descriptor: &str, index: u32) -> Result<(Address, u32), EngineError> {
    let external = external_chain(descriptor)?;
    let key = external
        .key
        .child(index)
        .map_err(|e| invalid(format!("derivation: {e}")))?;
    Ok((key.address(), external.account))
}

/// EVM receiving addresses: account xpub in, `…/0/i` EIP-55 addresses out (what
/// [`EvmMethod`](crate::EvmMethod) hands out).
#[derive(Debug, Default, Clone, Copy)]
pub struct EvmDeriver;

fn invalid(message: String) -> EngineError {
    EngineError::invalid("invalid_wallet", "xpub", message)
}

impl EvmDeriver {
    /// Check an account xpub and return its canonical encoding.
    pub fn normalize(&self, _chain: &Chain, descriptor: &str) -> Result<String, EngineError> {
        let xpub = Xpub::parse(descriptor).map_err(|e| invalid(format!("xpub: {e}")))?;
        if xpub.depth != 3 || xpub.child_number < HARDENED {
            return Err(invalid(format!(
                "xpub must be an account key (depth 3, hardened, e.g. m/44'/60'/0'); this one has \
                 depth {} and child number {}{}",
                xpub.depth,
                xpub.child_number & !HARDENED,
                if xpub.child_number >= HARDENED {
                    "'"
                } else {
                    ""
                }
            )));
        }
        Ok(xpub.encode())
    }

    /// The address at `index` of the external chain below the account xpub.
    pub fn derive(
        &self,
        _chain: &Chain,
        descriptor: &str,
        index: u32,
    ) -> Result<PreparedTarget, EngineError> {
        let (address, account) = external_account(descriptor, index)?;
        Ok(PreparedTarget {
            address: address.to_checksum(None),
            derivation: Some(Derivation {
                index,
                path: format!("m/44'/60'/{account}'/0/{index}"),
            }),
            details: Default::default(),
        })
    }
}
