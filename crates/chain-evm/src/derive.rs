//! Receiving addresses: BIP32 public derivation below the merchant's account xpub.
//!
//! The merchant gives the extended public key of an account (for Ethereum-style wallets the key
//! at `m/44'/60'/0'`); Coffer derives `…/0/i` for order `i` with public derivation (CKDpub),
//! so no private key ever reaches it. Addresses are EIP-55 checksummed.

use alloy::primitives::{Address, keccak256};
use coffer_core::Chain;
use coffer_core::order::Derivation;
use coffer_engine::{EngineError, PreparedTarget};
use hmac::{Hmac, Mac};
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{ProjectivePoint, PublicKey, Scalar};
use sha2::Sha512;

const XPUB: [u8; 4] = [0x04, 0x88, 0xB2, 0x1E];
const TPUB: [u8; 4] = [0x04, 0x35, 0x87, 0xCF];
const XPRV: [u8; 4] = [0x04, 0x88, 0xAD, 0xE4];
const TPRV: [u8; 4] = [0x04, 0x35, 0x83, 0x94];
const HARDENED: u32 = 0x8000_0000;

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

/// A parsed extended public key.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        let raw = bs58::decode(s.trim())
            .with_check(None)
            .into_vec()
            .map_err(|_| XpubError::Base58)?;
        if raw.len() != 78 {
            return Err(XpubError::Length(raw.len()));
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(&raw[0..4]);
        if version == XPRV || version == TPRV {
            return Err(XpubError::Private);
        }
        if version != XPUB && version != TPUB {
            return Err(XpubError::Version);
        }
        let mut parent_fingerprint = [0u8; 4];
        parent_fingerprint.copy_from_slice(&raw[5..9]);
        let mut child = [0u8; 4];
        child.copy_from_slice(&raw[9..13]);
        let mut chain_code = [0u8; 32];
        chain_code.copy_from_slice(&raw[13..45]);
        let key = PublicKey::from_sec1_bytes(&raw[45..78]).map_err(|_| XpubError::Point)?;
        Ok(Self {
            version,
            depth: raw[4],
            parent_fingerprint,
            child_number: u32::from_be_bytes(child),
            chain_code,
            key,
        })
    }

    /// Base58check serialisation (the canonical form stored as the wallet descriptor).
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(78);
        raw.extend_from_slice(&self.version);
        raw.push(self.depth);
        raw.extend_from_slice(&self.parent_fingerprint);
        raw.extend_from_slice(&self.child_number.to_be_bytes());
        raw.extend_from_slice(&self.chain_code);
        raw.extend_from_slice(self.key.to_encoded_point(true).as_bytes());
        bs58::encode(raw).with_check().into_string()
    }

    fn fingerprint(&self) -> [u8; 4] {
        use sha2::Digest;
        let sha = sha2::Sha256::digest(self.key.to_encoded_point(true).as_bytes());
        let rip = ripemd160(&sha);
        [rip[0], rip[1], rip[2], rip[3]]
    }

    /// CKDpub: the non-hardened child `index`.
    pub fn child(&self, index: u32) -> Result<Xpub, XpubError> {
        if index >= HARDENED {
            return Err(XpubError::Hardened(index));
        }
        // The HMAC key may be any length: this cannot fail.
        let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(&self.chain_code)
            .map_err(|_| XpubError::InvalidChild(index))?;
        mac.update(self.key.to_encoded_point(true).as_bytes());
        mac.update(&index.to_be_bytes());
        let i = mac.finalize().into_bytes();
        let mut il = [0u8; 32];
        il.copy_from_slice(&i[..32]);
        let mut chain_code = [0u8; 32];
        chain_code.copy_from_slice(&i[32..]);
        let tweak: Option<Scalar> = Scalar::from_repr(il.into()).into();
        let tweak = tweak.ok_or(XpubError::InvalidChild(index))?;
        if bool::from(tweak.is_zero()) {
            return Err(XpubError::InvalidChild(index));
        }
        let point = ProjectivePoint::GENERATOR * tweak + self.key.to_projective();
        let key = PublicKey::from_affine(point.to_affine())
            .map_err(|_| XpubError::InvalidChild(index))?;
        Ok(Xpub {
            version: self.version,
            depth: self.depth.saturating_add(1),
            parent_fingerprint: self.fingerprint(),
            child_number: index,
            chain_code,
            key,
        })
    }

    /// The Ethereum address of this key: the last 20 bytes of keccak256 of the uncompressed
    /// public key without its 0x04 prefix.
    pub fn address(&self) -> Address {
        let point = self.key.to_encoded_point(false);
        let hash = keccak256(&point.as_bytes()[1..]);
        Address::from_slice(&hash[12..])
    }
}

/// RIPEMD-160, only for BIP32 parent fingerprints (kept here to avoid another dependency).
fn ripemd160(data: &[u8]) -> [u8; 20] {
    const R: [usize; 80] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9,
        5, 2, 14, 11, 8, 3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12, 1, 9, 11, 10, 0, 8,
        12, 4, 13, 3, 7, 15, 14, 5, 6, 2, 4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
    ];
    const RP: [usize; 80] = [
        5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12, 6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8,
        12, 4, 9, 1, 2, 15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13, 8, 6, 4, 1, 3, 11,
        15, 0, 5, 12, 2, 13, 9, 7, 10, 14, 12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
    ];
    const S: [u32; 80] = [
        11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8, 7, 6, 8, 13, 11, 9, 7, 15, 7, 12,
        15, 9, 11, 7, 13, 12, 11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5, 11, 12, 14,
        15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12, 9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11,
        8, 5, 6,
    ];
    const SP: [u32; 80] = [
        8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6, 9, 13, 15, 7, 12, 8, 9, 11, 7, 7,
        12, 7, 6, 15, 13, 11, 9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5, 15, 5, 8, 11,
        14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8, 8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13,
        11, 11,
    ];
    const K: [u32; 5] = [0, 0x5A82_7999, 0x6ED9_EBA1, 0x8F1B_BCDC, 0xA953_FD4E];
    const KP: [u32; 5] = [0x50A2_8BE6, 0x5C4D_D124, 0x6D70_3EF3, 0x7A6D_76E9, 0];
    fn f(j: usize, x: u32, y: u32, z: u32) -> u32 {
        match j / 16 {
            0 => x ^ y ^ z,
            1 => (x & y) | (!x & z),
            2 => (x | !y) ^ z,
            3 => (x & z) | (y & !z),
            _ => x ^ (y | !z),
        }
    }
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for block in msg.chunks_exact(64) {
        let mut x = [0u32; 16];
        for (i, w) in x.iter_mut().enumerate() {
            *w = u32::from_le_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        let (mut al, mut bl, mut cl, mut dl, mut el) = (h[0], h[1], h[2], h[3], h[4]);
        let (mut ar, mut br, mut cr, mut dr, mut er) = (h[0], h[1], h[2], h[3], h[4]);
        for j in 0..80 {
            let t = al
                .wrapping_add(f(j, bl, cl, dl))
                .wrapping_add(x[R[j]])
                .wrapping_add(K[j / 16])
                .rotate_left(S[j])
                .wrapping_add(el);
            al = el;
            el = dl;
            dl = cl.rotate_left(10);
            cl = bl;
            bl = t;
            let t = ar
                .wrapping_add(f(79 - j, br, cr, dr))
                .wrapping_add(x[RP[j]])
                .wrapping_add(KP[j / 16])
                .rotate_left(SP[j])
                .wrapping_add(er);
            ar = er;
            er = dr;
            dr = cr.rotate_left(10);
            cr = br;
            br = t;
        }
        let t = h[1].wrapping_add(cl).wrapping_add(dr);
        h[1] = h[2].wrapping_add(dl).wrapping_add(er);
        h[2] = h[3].wrapping_add(el).wrapping_add(ar);
        h[3] = h[4].wrapping_add(al).wrapping_add(br);
        h[4] = h[0].wrapping_add(bl).wrapping_add(cr);
        h[0] = t;
    }
    let mut out = [0u8; 20];
    for (i, word) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
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
        let account = Xpub::parse(descriptor).map_err(|e| invalid(format!("xpub: {e}")))?;
        let key = account
            .child(0)
            .and_then(|external| external.child(index))
            .map_err(|e| invalid(format!("derivation: {e}")))?;
        Ok(PreparedTarget {
            address: key.address().to_checksum(None),
            derivation: Some(Derivation {
                index,
                path: format!("m/44'/60'/{}'/0/{index}", account.child_number & !HARDENED),
            }),
            details: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ripemd160_vectors() {
        assert_eq!(
            hex(&ripemd160(b"")),
            "9c1185a5c5e9fc54612808977ee8f548b2258d31"
        );
        assert_eq!(
            hex(&ripemd160(b"abc")),
            "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
        );
        assert_eq!(
            hex(&ripemd160(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "9b752e45573d4b39f4dbd3323cab82bf63326bfb"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
