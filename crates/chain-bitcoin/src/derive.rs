//! Receiving addresses from a merchant's public wallet: an extended public key (xpub, ypub,
//! zpub; tpub, upub, vpub on test networks) or one of three output descriptor shapes
//! (`wpkh(KEY/…/*)`, `sh(wpkh(KEY/…/*))`, `pkh(KEY/…/*)`).
//!
//! Descriptors are parsed by hand for exactly these shapes (no miniscript dependency); the
//! BIP-380 checksum is verified when given and always present in the canonical form.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use bitcoin::base58;
use bitcoin::bip32::{ChildNumber, Xpub};
use bitcoin::secp256k1::{Secp256k1, VerifyOnly};
use bitcoin::{Address, CompressedPublicKey, KnownHrp, NetworkKind, ScriptBuf};
use coffer_core::order::Derivation;
use coffer_core::{Chain, ChainKind, Network};
use coffer_engine::{EngineError, PreparedTarget};

/// The output script type a wallet pays to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptKind {
    /// Native segwit v0, `bc1q…` (BIP84). The default.
    P2wpkh,
    /// Segwit nested in P2SH, `3…` (BIP49).
    P2shP2wpkh,
    /// Legacy, `1…` (BIP44).
    P2pkh,
}

/// Why a wallet string was refused. The message names what is wrong; it never echoes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    #[error(
        "empty wallet: give an xpub/ypub/zpub (tpub/upub/vpub on test networks) or a descriptor"
    )]
    Empty,
    #[error("not a valid extended public key: {0}")]
    BadKey(String),
    #[error("extended key is for {found} but the chain is {expected}")]
    WrongNetwork {
        found: &'static str,
        expected: &'static str,
    },
    #[error("unsupported descriptor: {0}")]
    Descriptor(String),
    #[error("descriptor checksum mismatch (expected #{expected})")]
    Checksum { expected: String },
    #[error("index {0} is out of range (0..2^31)")]
    Index(u32),
}

/// A parsed receiving wallet: key, script type, the unhardened path from the key to the
/// address (with `*` last), and the key's origin when the descriptor gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub kind: ScriptKind,
    pub xpub: Xpub,
    /// Steps between the key and the wildcard, e.g. `[0]` for the external chain.
    pub path: Vec<u32>,
    /// `[fingerprint/84h/1h/0h]` as written (normalised to `h`), if present.
    pub origin: Option<String>,
}

const XPUB: [u8; 4] = [0x04, 0x88, 0xb2, 0x1e];
const YPUB: [u8; 4] = [0x04, 0x9d, 0x7c, 0xb2];
const ZPUB: [u8; 4] = [0x04, 0xb2, 0x47, 0x46];
const TPUB: [u8; 4] = [0x04, 0x35, 0x87, 0xcf];
const UPUB: [u8; 4] = [0x04, 0x4a, 0x52, 0x62];
const VPUB: [u8; 4] = [0x04, 0x5f, 0x1c, 0xf6];

/// Decode any of the six SLIP-132 public versions into an [`Xpub`] and the script kind the
/// version implies (xpub/tpub: none — the caller's default applies).
fn decode_xkey(s: &str) -> Result<(Xpub, Option<ScriptKind>), WalletError> {
    let data = base58::decode_check(s)
        .map_err(|_| WalletError::BadKey("bad base58 or checksum".into()))?;
    if data.len() != 78 {
        return Err(WalletError::BadKey(format!(
            "{} bytes instead of 78",
            data.len()
        )));
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&data[..4]);
    let (canonical, kind) = match version {
        XPUB => (XPUB, None),
        YPUB => (XPUB, Some(ScriptKind::P2shP2wpkh)),
        ZPUB => (XPUB, Some(ScriptKind::P2wpkh)),
        TPUB => (TPUB, None),
        UPUB => (TPUB, Some(ScriptKind::P2shP2wpkh)),
        VPUB => (TPUB, Some(ScriptKind::P2wpkh)),
        _ => {
            return Err(WalletError::BadKey(
                "unknown version (private keys are never accepted)".into(),
            ));
        }
    };
    let mut bytes = data;
    bytes[..4].copy_from_slice(&canonical);
    let xpub = Xpub::decode(&bytes).map_err(|e| WalletError::BadKey(e.to_string()))?;
    Ok((xpub, kind))
}

fn network_kind(network: Network) -> NetworkKind {
    match network {
        Network::Mainnet => NetworkKind::Main,
        Network::Testnet | Network::Regtest => NetworkKind::Test,
    }
}

fn hrp(network: Network) -> KnownHrp {
    match network {
        Network::Mainnet => KnownHrp::Mainnet,
        Network::Testnet => KnownHrp::Testnets,
        Network::Regtest => KnownHrp::Regtest,
    }
}

fn parse_step(step: &str, allow_hardened: bool) -> Result<(u32, bool), WalletError> {
    let (digits, hardened) = match step.strip_suffix(['\'', 'h', 'H']) {
        Some(d) => (d, true),
        None => (step, false),
    };
    if hardened && !allow_hardened {
        return Err(WalletError::Descriptor(
            "hardened steps after a public key cannot be derived".into(),
        ));
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WalletError::Descriptor(format!("bad path step {step:?}")));
    }
    let n: u32 = digits
        .parse()
        .map_err(|_| WalletError::Descriptor(format!("bad path step {step:?}")))?;
    if n >= 1 << 31 {
        return Err(WalletError::Descriptor(format!(
            "path step {step:?} too large"
        )));
    }
    Ok((n, hardened))
}

impl Wallet {
    /// Parse an extended key or a descriptor, checking it belongs to `network`.
    pub fn parse(input: &str, network: Network) -> Result<Self, WalletError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(WalletError::Empty);
        }
        let wallet = if input.contains('(') {
            Self::parse_descriptor(input)?
        } else {
            let (xpub, kind) = decode_xkey(input)?;
            Wallet {
                kind: kind.unwrap_or(ScriptKind::P2wpkh),
                xpub,
                path: vec![0],
                origin: None,
            }
        };
        let expected = network_kind(network);
        if wallet.xpub.network != expected {
            let name = |k: NetworkKind| match k {
                NetworkKind::Main => "mainnet",
                NetworkKind::Test => "a test network",
            };
            return Err(WalletError::WrongNetwork {
                found: name(wallet.xpub.network),
                expected: name(expected),
            });
        }
        Ok(wallet)
    }

    fn parse_descriptor(input: &str) -> Result<Self, WalletError> {
        let (body, checksum) = match input.split_once('#') {
            Some((b, c)) => (b, Some(c)),
            None => (input, None),
        };
        if let Some(given) = checksum {
            let expected = descriptor_checksum(body)?;
            if given != expected {
                return Err(WalletError::Checksum { expected });
            }
        }
        let (kind, inner) = if let Some(rest) = body.strip_prefix("sh(wpkh(") {
            let inner = rest
                .strip_suffix("))")
                .ok_or_else(|| WalletError::Descriptor("unbalanced parentheses".into()))?;
            (ScriptKind::P2shP2wpkh, inner)
        } else if let Some(rest) = body.strip_prefix("wpkh(") {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| WalletError::Descriptor("unbalanced parentheses".into()))?;
            (ScriptKind::P2wpkh, inner)
        } else if let Some(rest) = body.strip_prefix("pkh(") {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| WalletError::Descriptor("unbalanced parentheses".into()))?;
            (ScriptKind::P2pkh, inner)
        } else {
            return Err(WalletError::Descriptor(
                "only wpkh(…), sh(wpkh(…)) and pkh(…) are supported".into(),
            ));
        };
        if inner.contains('(') || inner.contains(')') || inner.contains(',') {
            return Err(WalletError::Descriptor(
                "only single-key descriptors are supported".into(),
            ));
        }
        let (origin, keypath) = if let Some(rest) = inner.strip_prefix('[') {
            let (origin, keypath) = rest
                .split_once(']')
                .ok_or_else(|| WalletError::Descriptor("unclosed key origin".into()))?;
            let mut parts = origin.split('/');
            let fingerprint = parts.next().unwrap_or_default();
            if fingerprint.len() != 8 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(WalletError::Descriptor(
                    "key origin must start with an 8-hex-digit fingerprint".into(),
                ));
            }
            let mut norm = fingerprint.to_ascii_lowercase();
            for step in parts {
                let (n, hardened) = parse_step(step, true)?;
                norm.push('/');
                norm.push_str(&n.to_string());
                if hardened {
                    norm.push('h');
                }
            }
            (Some(norm), keypath)
        } else {
            (None, inner)
        };
        let mut steps = keypath.split('/');
        let key = steps.next().unwrap_or_default();
        let (xpub, _) = decode_xkey(key)?;
        let steps: Vec<&str> = steps.collect();
        let Some((last, middle)) = steps.split_last() else {
            return Err(WalletError::Descriptor(
                "the key must end in a ranged path such as /0/*".into(),
            ));
        };
        if *last != "*" {
            return Err(WalletError::Descriptor(
                "the key must end in /* (an unhardened ranged path)".into(),
            ));
        }
        let mut path = Vec::with_capacity(middle.len());
        for step in middle {
            if let Some(multi) = step.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
                // BIP-389 multipath `<0;1>`: receiving uses the first (external) branch.
                let first = multi.split(';').next().unwrap_or_default();
                path.push(parse_step(first, false)?.0);
            } else {
                path.push(parse_step(step, false)?.0);
            }
        }
        Ok(Wallet {
            kind,
            xpub,
            path,
            origin,
        })
    }

    /// The canonical descriptor with checksum, e.g. `wpkh([d34db33f/84h/1h/0h]tpub…/0/*)#…`.
    pub fn descriptor(&self) -> String {
        let mut key = String::new();
        if let Some(origin) = &self.origin {
            key.push('[');
            key.push_str(origin);
            key.push(']');
        }
        key.push_str(&self.xpub.to_string());
        for step in &self.path {
            key.push('/');
            key.push_str(&step.to_string());
        }
        key.push_str("/*");
        let body = match self.kind {
            ScriptKind::P2wpkh => format!("wpkh({key})"),
            ScriptKind::P2shP2wpkh => format!("sh(wpkh({key}))"),
            ScriptKind::P2pkh => format!("pkh({key})"),
        };
        match descriptor_checksum(&body) {
            Ok(sum) => format!("{body}#{sum}"),
            Err(_) => body, // unreachable: the body only holds descriptor characters
        }
    }

    fn pubkey_at(
        &self,
        secp: &Secp256k1<VerifyOnly>,
        index: u32,
    ) -> Result<CompressedPublicKey, WalletError> {
        let step = ChildNumber::from_normal_idx(index).map_err(|_| WalletError::Index(index))?;
        let child = self
            .branch(secp)?
            .ckd_pub(secp, step)
            .map_err(|e| WalletError::BadKey(e.to_string()))?;
        Ok(child.to_pub())
    }

    /// The address at `index` (below the wallet's path) on `network`.
    pub fn address_at(
        &self,
        secp: &Secp256k1<VerifyOnly>,
        network: Network,
        index: u32,
    ) -> Result<Address, WalletError> {
        let pk = self.pubkey_at(secp, index)?;
        Ok(self.address_of(pk, network))
    }

    /// The address paying to `pk` in this wallet's script type.
    fn address_of(&self, pk: CompressedPublicKey, network: Network) -> Address {
        match self.kind {
            ScriptKind::P2wpkh => Address::p2wpkh(&pk, hrp(network)),
            ScriptKind::P2shP2wpkh => Address::p2shwpkh(&pk, network_kind(network)),
            ScriptKind::P2pkh => Address::p2pkh(pk, network_kind(network)),
        }
    }

    /// The key at the wallet's path: its addresses are this key's unhardened children.
    fn branch(&self, secp: &Secp256k1<VerifyOnly>) -> Result<Xpub, WalletError> {
        let mut steps = Vec::with_capacity(self.path.len());
        for step in &self.path {
            steps.push(ChildNumber::from_normal_idx(*step).map_err(|_| WalletError::Index(*step))?);
        }
        self.xpub
            .derive_pub(secp, &steps)
            .map_err(|e| WalletError::BadKey(e.to_string()))
    }

    /// The scriptPubKey at `index`: what the block matcher watches.
    pub fn script_at(
        &self,
        secp: &Secp256k1<VerifyOnly>,
        index: u32,
    ) -> Result<ScriptBuf, WalletError> {
        // The script does not depend on the network.
        Ok(self
            .address_at(secp, Network::Mainnet, index)?
            .script_pubkey())
    }

    /// The full derivation path of `index` when the origin is known, else relative to the key.
    pub fn path_of(&self, index: u32) -> String {
        let mut out = match &self.origin {
            Some(origin) => match origin.split_once('/') {
                Some((_, path)) => format!("m/{path}"),
                None => "m".to_owned(),
            },
            None => "m".to_owned(),
        };
        for step in &self.path {
            out.push('/');
            out.push_str(&step.to_string());
        }
        out.push('/');
        out.push_str(&index.to_string());
        out
    }
}

impl fmt::Display for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.descriptor())
    }
}

const INPUT_CHARSET: &str = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
const CHECKSUM_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(c: u64, val: u64) -> u64 {
    let c0 = c >> 35;
    let mut c = ((c & 0x7_ffff_ffff) << 5) ^ val;
    if c0 & 1 != 0 {
        c ^= 0xf5_dee5_1989;
    }
    if c0 & 2 != 0 {
        c ^= 0xa9_fdca_3312;
    }
    if c0 & 4 != 0 {
        c ^= 0x1b_ab10_e32d;
    }
    if c0 & 8 != 0 {
        c ^= 0x37_06b1_677a;
    }
    if c0 & 16 != 0 {
        c ^= 0x64_4d62_6ffd;
    }
    c
}

/// The BIP-380 descriptor checksum (8 characters) of a descriptor without `#…`.
pub fn descriptor_checksum(desc: &str) -> Result<String, WalletError> {
    let mut c: u64 = 1;
    let mut cls: u64 = 0;
    let mut clscount = 0;
    for ch in desc.chars() {
        let pos = INPUT_CHARSET
            .find(ch)
            .ok_or_else(|| WalletError::Descriptor(format!("invalid character {ch:?}")))?
            as u64;
        c = polymod(c, pos & 31);
        cls = cls * 3 + (pos >> 5);
        clscount += 1;
        if clscount == 3 {
            c = polymod(c, cls);
            cls = 0;
            clscount = 0;
        }
    }
    if clscount > 0 {
        c = polymod(c, cls);
    }
    for _ in 0..8 {
        c = polymod(c, 0);
    }
    c ^= 1;
    let mut out = String::with_capacity(8);
    for j in 0..8 {
        out.push(CHECKSUM_CHARSET[((c >> (5 * (7 - j))) & 31) as usize] as char);
    }
    Ok(out)
}

/// Bitcoin receiving addresses and scripts from a wallet (what
/// [`BitcoinMethod`](crate::BitcoinMethod) hands out); the network comes from `Chain.network`.
pub struct BitcoinDeriver {
    secp: Secp256k1<VerifyOnly>,
    /// Wallets in use, parsed and derived down to their branch, by network and canonical
    /// descriptor: an address then costs one public derivation instead of a parse (a point
    /// decompression) and one derivation per path step. Keyed by the descriptor itself, so a
    /// wallet that changes is a new entry and can never be served the old key; emptied when
    /// it grows past [`PARSED_WALLETS`].
    parsed: Mutex<HashMap<(Network, String), Arc<ParsedWallet>>>,
}

/// Wallets whose branch key stays parsed at most (one per merchant and Bitcoin chain in use).
const PARSED_WALLETS: usize = 10_000;

/// A wallet and the key at its path.
struct ParsedWallet {
    wallet: Wallet,
    branch: Xpub,
}

impl Default for BitcoinDeriver {
    fn default() -> Self {
        Self::new()
    }
}

impl BitcoinDeriver {
    pub fn new() -> Self {
        Self {
            secp: Secp256k1::verification_only(),
            parsed: Mutex::default(),
        }
    }

    fn wallet(chain: &Chain, descriptor: &str) -> Result<Wallet, EngineError> {
        if chain.kind != ChainKind::Bitcoin {
            return Err(EngineError::invalid(
                "chain_unsupported",
                "chain",
                format!("{} is not a Bitcoin chain", chain.id.as_str()),
            ));
        }
        Wallet::parse(descriptor, chain.network)
            .map_err(|e| EngineError::invalid("invalid_wallet", "xpub", e.to_string()))
    }

    /// The scriptPubKey at `index` of a (normalised) wallet, for the watcher's script set.
    pub fn script(
        &self,
        chain: &Chain,
        descriptor: &str,
        index: u32,
    ) -> Result<ScriptBuf, EngineError> {
        let (_, address) = self.address(chain, descriptor, index)?;
        Ok(address.script_pubkey())
    }

    /// The wallet of a (normalised) descriptor on `chain`, parsed once and then remembered.
    fn parsed(&self, chain: &Chain, descriptor: &str) -> Result<Arc<ParsedWallet>, EngineError> {
        let key = (chain.network, descriptor.to_owned());
        let cached = self
            .parsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(parsed) = cached {
            return Ok(parsed);
        }
        let wallet = Self::wallet(chain, descriptor)?;
        let branch = wallet.branch(&self.secp).map_err(invalid_wallet)?;
        let parsed = Arc::new(ParsedWallet { wallet, branch });
        let mut wallets = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        if wallets.len() >= PARSED_WALLETS {
            wallets.clear();
        }
        wallets.insert(key, parsed.clone());
        Ok(parsed)
    }

    /// The address at `index` of a (normalised) wallet: one public derivation below its
    /// remembered branch key.
    fn address(
        &self,
        chain: &Chain,
        descriptor: &str,
        index: u32,
    ) -> Result<(Arc<ParsedWallet>, Address), EngineError> {
        let parsed = self.parsed(chain, descriptor)?;
        let step = ChildNumber::from_normal_idx(index)
            .map_err(|_| invalid_wallet(WalletError::Index(index)))?;
        let key = parsed
            .branch
            .ckd_pub(&self.secp, step)
            .map_err(|e| invalid_wallet(WalletError::BadKey(e.to_string())))?;
        let address = parsed.wallet.address_of(key.to_pub(), chain.network);
        Ok((parsed, address))
    }
}

fn invalid_wallet(e: WalletError) -> EngineError {
    EngineError::invalid("invalid_wallet", "xpub", e.to_string())
}

impl BitcoinDeriver {
    /// Check a wallet (xpub or descriptor) and return its canonical descriptor.
    pub fn normalize(&self, chain: &Chain, descriptor: &str) -> Result<String, EngineError> {
        Ok(Self::wallet(chain, descriptor)?.descriptor())
    }

    /// The receiving address at `index` of a (normalised) wallet.
    pub fn derive(
        &self,
        chain: &Chain,
        descriptor: &str,
        index: u32,
    ) -> Result<PreparedTarget, EngineError> {
        let (parsed, address) = self.address(chain, descriptor, index)?;
        Ok(PreparedTarget {
            address: address.to_string(),
            derivation: Some(Derivation {
                index,
                path: parsed.wallet.path_of(index),
            }),
            details: Default::default(),
        })
    }
}

impl FromStr for ScriptKind {
    type Err = WalletError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wpkh" | "p2wpkh" => Ok(ScriptKind::P2wpkh),
            "sh-wpkh" | "p2sh-p2wpkh" => Ok(ScriptKind::P2shP2wpkh),
            "pkh" | "p2pkh" => Ok(ScriptKind::P2pkh),
            other => Err(WalletError::Descriptor(format!(
                "unknown script kind {other}"
            ))),
        }
    }
}
