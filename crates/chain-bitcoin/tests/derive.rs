#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Address derivation against the BIP-84/49/44 test vectors (mnemonic "abandon … about"),
//! the BIP-380 checksum vectors, and an independent derivation by bcoin's HD code.

use std::path::PathBuf;
use std::process::Command;

use coffer_chain_bitcoin::bitcoin::base58;
use coffer_chain_bitcoin::{BitcoinDeriver, ScriptKind, Wallet, WalletError, descriptor_checksum};
use coffer_core::{Chain, ChainId, ChainKind, Network};

// BIP-84: m/84'/0'/0' of "abandon abandon … about".
const BIP84_ZPUB: &str = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";
const BIP84_XPUB: &str = "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V";
// m/84'/1'/0' (testnet/regtest coin type) of the same mnemonic.
const BIP84_TEST_TPUB: &str = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M";
// BIP-49: m/49'/1'/0' (the BIP's vectors are on testnet).
const BIP49_TPUB: &str = "tpubDD7tXK8KeQ3YY83yWq755fHY2JW8Ha8Q765tknUM5rSvjPcGWfUppDFMpQ1ScziKfW3ZNtZvAD7M3u7bSs7HofjTD3KP3YxPK7X6hwV8Rk2";
// BIP-44: m/44'/0'/0'.
const BIP44_XPUB: &str = "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj";

fn chain(network: Network) -> Chain {
    Chain {
        id: ChainId::parse("bitcoin").unwrap(),
        kind: ChainKind::Bitcoin,
        network,
        name: "Bitcoin".into(),
        confirmations: 1,
        evm_chain_id: None,
    }
}

/// Re-encode an extended key with another SLIP-132 version.
fn with_version(key: &str, version: [u8; 4]) -> String {
    let mut data = base58::decode_check(key).unwrap();
    data[..4].copy_from_slice(&version);
    base58::encode_check(&data)
}

fn addresses(wallet: &str, network: Network, n: u32) -> Vec<String> {
    let d = BitcoinDeriver::new();
    let c = chain(network);
    let canonical = d.normalize(&c, wallet).unwrap();
    (0..n)
        .map(|i| d.derive(&c, &canonical, i).unwrap().address)
        .collect()
}

#[test]
fn bip84_zpub_vectors() {
    assert_eq!(
        addresses(BIP84_ZPUB, Network::Mainnet, 2),
        [
            "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
            "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
        ]
    );
    // The zpub is the BIP-84 account xpub with another version.
    assert_eq!(
        with_version(BIP84_ZPUB, [0x04, 0x88, 0xb2, 0x1e]),
        BIP84_XPUB
    );
    // xpub defaults to P2WPKH: same addresses.
    assert_eq!(
        addresses(BIP84_XPUB, Network::Mainnet, 2),
        addresses(BIP84_ZPUB, Network::Mainnet, 2)
    );
    let d = BitcoinDeriver::new();
    let alloc = d
        .derive(
            &chain(Network::Mainnet),
            &d.normalize(&chain(Network::Mainnet), BIP84_ZPUB).unwrap(),
            7,
        )
        .unwrap();
    assert_eq!(alloc.derivation.unwrap().path, "m/0/7");
}

#[test]
fn vpub_and_tpub_on_regtest_and_testnet() {
    let vpub = with_version(BIP84_TEST_TPUB, [0x04, 0x5f, 0x1c, 0xf6]);
    assert!(vpub.starts_with("vpub"));
    let regtest = [
        "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk",
        "bcrt1qd7spv5q28348xl4myc8zmh983w5jx32cs707jh",
    ];
    assert_eq!(addresses(&vpub, Network::Regtest, 2), regtest);
    assert_eq!(addresses(BIP84_TEST_TPUB, Network::Regtest, 2), regtest);
    assert_eq!(
        addresses(&vpub, Network::Testnet, 2),
        [
            "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl",
            "tb1qd7spv5q28348xl4myc8zmh983w5jx32cjhkn97"
        ]
    );
}

#[test]
fn bip49_upub_and_sh_wpkh_descriptor() {
    let upub = with_version(BIP49_TPUB, [0x04, 0x4a, 0x52, 0x62]);
    assert!(upub.starts_with("upub"));
    let expected = [
        "2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2",
        "2N55m54k8vr95ggehfUcNkdbUuQvaqG2GxK",
    ];
    assert_eq!(addresses(&upub, Network::Testnet, 2), expected);
    let desc = format!("sh(wpkh([73c5da0a/49h/1h/0h]{BIP49_TPUB}/0/*))");
    assert_eq!(addresses(&desc, Network::Regtest, 2), expected);
    let d = BitcoinDeriver::new();
    let c = chain(Network::Regtest);
    let canonical = d.normalize(&c, &desc).unwrap();
    assert_eq!(
        canonical,
        format!("{desc}#{}", descriptor_checksum(&desc).unwrap())
    );
    assert_eq!(
        d.derive(&c, &canonical, 3)
            .unwrap()
            .derivation
            .unwrap()
            .path,
        "m/49h/1h/0h/0/3"
    );
}

#[test]
fn bip44_pkh_descriptor() {
    let desc = format!("pkh({BIP44_XPUB}/0/*)");
    assert_eq!(
        addresses(&desc, Network::Mainnet, 1),
        ["1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"]
    );
}

#[test]
fn descriptor_forms_and_checksums() {
    // BIP-380 / Bitcoin Core vectors.
    assert_eq!(
        descriptor_checksum(
            "pkh(02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5)"
        )
        .unwrap(),
        "8fhd9pwu"
    );
    assert_eq!(
        descriptor_checksum(
            "wpkh(02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9)"
        )
        .unwrap(),
        "8zl0zxma"
    );
    assert_eq!(descriptor_checksum("raw(deadbeef)").unwrap(), "89f8spxm");

    let plain = format!("wpkh({BIP84_XPUB}/0/*)");
    let w = Wallet::parse(&plain, Network::Mainnet).unwrap();
    assert_eq!(w.kind, ScriptKind::P2wpkh);
    let canonical = w.descriptor();
    // The canonical form parses back to itself, checksum verified.
    assert_eq!(
        Wallet::parse(&canonical, Network::Mainnet)
            .unwrap()
            .descriptor(),
        canonical
    );
    // An xpub normalises to the same descriptor.
    assert_eq!(
        Wallet::parse(BIP84_XPUB, Network::Mainnet)
            .unwrap()
            .descriptor(),
        canonical
    );
    // Apostrophes and h are the same hardened marker; a wrong checksum is refused.
    let a = Wallet::parse(
        &format!("wpkh([73C5DA0A/84'/0'/0']{BIP84_XPUB}/0/*)"),
        Network::Mainnet,
    )
    .unwrap();
    let b = Wallet::parse(
        &format!("wpkh([73c5da0a/84h/0h/0h]{BIP84_XPUB}/0/*)"),
        Network::Mainnet,
    )
    .unwrap();
    assert_eq!(a, b);
    let mut bad = canonical.clone();
    bad.pop();
    bad.push('q');
    assert!(matches!(
        Wallet::parse(&bad, Network::Mainnet),
        Err(WalletError::Checksum { .. })
    ));
    // Multipath receive branch.
    let multi = Wallet::parse(&format!("wpkh({BIP84_XPUB}/<0;1>/*)"), Network::Mainnet).unwrap();
    assert_eq!(multi.descriptor(), canonical);
}

#[test]
fn bad_wallets_are_refused_with_invalid_wallet() {
    let d = BitcoinDeriver::new();
    let main = chain(Network::Mainnet);
    let cases = [
        String::new(),
        "xpub123".to_owned(),
        BIP84_TEST_TPUB.to_owned(),                        // test key on mainnet
        format!("tr({BIP84_XPUB}/0/*)"),                     // unsupported shape
        format!("wpkh({BIP84_XPUB}/0/1h/*)"),                // hardened after a public key
        format!("wpkh({BIP84_XPUB}/0)"),                     // not ranged
        format!("wsh(multi(1,{BIP84_XPUB}/0/*,{BIP84_XPUB}/1/*))"),
        "tprv8ZgxMBicQKsPerQj6m35no46amfKQdjY7AhLnmatHYXs8S4MTgeZYkWAn4edSGwwL3vkSiiGqSZQrmy5D3P5gBoqgvYP2fCUpBwbKTMTAkL".to_owned(),
    ];
    for case in cases {
        let err = d.normalize(&main, &case).unwrap_err();
        assert_eq!(err.code(), "invalid_wallet", "{case}: {err}");
    }
    let mut evm = chain(Network::Mainnet);
    evm.kind = ChainKind::Evm;
    assert_eq!(
        d.normalize(&evm, BIP84_ZPUB).unwrap_err().code(),
        "chain_unsupported"
    );
    // Indexes must stay unhardened.
    let canonical = d.normalize(&main, BIP84_ZPUB).unwrap();
    assert!(d.derive(&main, &canonical, 1 << 31).is_err());
}

fn tools_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/bitcoin-regtest")
}

/// bcoin's own HD and address code derives the same addresses for many indexes.
#[test]
fn agrees_with_bcoin_for_many_indexes() {
    let dir = tools_dir();
    assert!(
        dir.join("node_modules/bcoin").exists(),
        "run tools/bitcoin-regtest/install.sh first (scripts/test.sh does)"
    );
    let upub = with_version(BIP49_TPUB, [0x04, 0x4a, 0x52, 0x62]);
    let cases = [
        (
            BIP84_TEST_TPUB.to_owned(),
            "wpkh",
            BIP84_TEST_TPUB.to_owned(),
        ),
        (BIP49_TPUB.to_owned(), "sh-wpkh", upub),
        (
            BIP84_TEST_TPUB.to_owned(),
            "pkh",
            format!("pkh({BIP84_TEST_TPUB}/0/*)"),
        ),
    ];
    for (key, kind, wallet) in cases {
        let out = Command::new("node")
            .arg(dir.join("derive.js"))
            .args([key.as_str(), kind, "0", "25", "regtest"])
            .output()
            .expect("node runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(theirs.len(), 25);
        assert_eq!(addresses(&wallet, Network::Regtest, 25), theirs, "{kind}");
    }
}

/// The deriver remembers each wallet's branch key: interleaving wallets and networks, every
/// address is still the one a fresh parse gives.
#[test]
fn remembered_wallets_never_mix() {
    let d = BitcoinDeriver::new();
    let secp = bitcoin::secp256k1::Secp256k1::verification_only();
    let regtest = chain(Network::Regtest);
    let testnet = chain(Network::Testnet);
    let wallets = [
        d.normalize(&regtest, BIP84_TEST_TPUB).unwrap(),
        d.normalize(&regtest, &format!("pkh({BIP84_TEST_TPUB}/1/7/*)"))
            .unwrap(),
    ];
    for index in [0u32, 3, 0, 1000] {
        for chain in [&regtest, &testnet, &regtest] {
            for w in &wallets {
                let fresh = Wallet::parse(w, chain.network)
                    .unwrap()
                    .address_at(&secp, chain.network, index)
                    .unwrap()
                    .to_string();
                assert_eq!(d.derive(chain, w, index).unwrap().address, fresh);
                let script = d.script(chain, w, index).unwrap();
                assert_eq!(
                    script,
                    Wallet::parse(w, chain.network)
                        .unwrap()
                        .script_at(&secp, index)
                        .unwrap()
                );
            }
        }
    }
}
