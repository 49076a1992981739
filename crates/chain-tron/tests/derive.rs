#![allow(clippy::unwrap_used, clippy::expect_used)]
//! TRON addresses checked three ways: the published vectors (the USDT contract both ways, the
//! BIP44 addresses of the well-known test mnemonic that tronweb and ethers agree on), and an
//! independent implementation: `cast` derives the keccak account at `m/44'/195'/0'/0/i` from
//! the mnemonic, and a standard-library Python script (tests/tron_reference.py) computes the
//! account xpub and the Base58Check forms.

use std::process::Command;

use coffer_chain_evm::testtools;
use coffer_chain_tron::TronAddress;
use coffer_chain_tron::method::{derive, normalize_xpub};

const MNEMONIC: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

fn python(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tron_reference.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn hex_and_base58_agree_with_published_vectors_and_python() {
    let usdt = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t";
    let usdt_hex = "41a614f803b6fd780986a42c78ec9c7f77e6ded13c";
    assert_eq!(TronAddress::from_hex(usdt_hex).unwrap().to_base58(), usdt);
    assert_eq!(usdt.parse::<TronAddress>().unwrap().to_hex(), usdt_hex);
    assert_eq!(python(&["base58", usdt_hex]), usdt);
    assert_eq!(python(&["hex", usdt]), usdt_hex);
    // Event-API accounts (20 bytes) and their published T… forms.
    for (account, b58) in [
        (
            "01311788a9736dcc38cf6d53342c076c38e95ef2",
            "TA5WVDb8QG5SoPNk1HCnombmkS9nWqH9LR",
        ),
        (
            "b2ff692d318825a41b5668c4cefa263e8cdcc82e",
            "TSHfFTij9Ch7MEcs8c67b9iPTCYmxrwsVV",
        ),
    ] {
        assert_eq!(
            TronAddress::from_account_hex(account).unwrap().to_base58(),
            b58
        );
        assert_eq!(python(&["base58", account]), b58);
        assert_eq!(python(&["hex", b58]), format!("41{account}"));
    }
    // Many more, ours against Python's, both directions (one run of the script).
    let accounts: Vec<[u8; 20]> = (0u8..64)
        .map(|i| std::array::from_fn(|j| i.wrapping_mul(37).wrapping_add(j as u8 * 11)))
        .collect();
    let hexes: Vec<String> = accounts.iter().map(hex::encode).collect();
    let mut args = vec!["base58"];
    args.extend(hexes.iter().map(String::as_str));
    let theirs = python(&args);
    assert_eq!(theirs.lines().count(), accounts.len());
    for (account, theirs) in accounts.iter().zip(theirs.lines()) {
        let ours = TronAddress::from_account(*account);
        assert_eq!(ours.to_base58(), theirs);
        assert_eq!(theirs.parse::<TronAddress>().unwrap(), ours);
    }
}

#[test]
fn bip44_vectors_and_cast_agree() {
    let xpub = python(&["xpub", MNEMONIC]);
    let xpub = normalize_xpub(&xpub).unwrap();
    // Published (tronweb and ethers agree): m/44'/195'/0'/0/{0,1,2}.
    for (index, want) in [
        (0, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"),
        (1, "TSeJkUh4Qv67VNFwY8LaAxERygNdy6NQZK"),
        (2, "TYJPRrdB5APNeRs4R7fYZSwW3TcrTKw2gx"),
    ] {
        let t = derive(&xpub, index).unwrap();
        assert_eq!(t.address, want, "index {index}");
        assert_eq!(
            t.derivation.unwrap().path,
            format!("m/44'/195'/0'/0/{index}")
        );
    }
    let cast = testtools::tool("cast");
    for index in [0u32, 3, 19, 1000, 65_537] {
        let path = format!("m/44'/195'/0'/0/{index}");
        let out = Command::new(&cast)
            .args([
                "wallet",
                "address",
                "--mnemonic",
                MNEMONIC,
                "--mnemonic-derivation-path",
            ])
            .arg(&path)
            .output()
            .expect("run cast");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let evm = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let theirs = python(&["base58", &evm]);
        assert_eq!(
            derive(&xpub, index).unwrap().address,
            theirs,
            "index {index}"
        );
    }
}
