//! The TRON payment method: an address derived from the merchant's account xpub per order
//! (`m/44'/195'/0'`, external chain `/0/i`), `tron:` payment URIs, and confirmation policies
//! counted in solidified blocks.

use async_trait::async_trait;
use coffer_chain_evm::derive::Xpub;
use coffer_core::order::Derivation;
use coffer_core::{Asset, AssetKind, BaseUnits, Chain, PaymentTarget};
use coffer_engine::{EngineError, PaymentMethod, PreparedTarget, TargetRequest};

use crate::address::TronAddress;

/// SLIP-44 coin type of TRX.
pub const COIN_TYPE: u32 = 195;
const HARDENED: u32 = 0x8000_0000;

/// Confirmation policies on TRON: 1 = the block is solidified (irreversible, about 19 blocks
/// or a minute after it was produced); more waits for further solidified blocks.
const CONFIRMATIONS: std::ops::RangeInclusive<u32> = 1..=100;

/// [`PaymentMethod`] of TRON chains.
#[derive(Debug, Default, Clone, Copy)]
pub struct TronMethod;

fn invalid(message: String) -> EngineError {
    EngineError::invalid("invalid_wallet", "xpub", message)
}

/// Depth and child number of an extended key (bytes 4 and 9..13 of its 78-byte payload).
fn depth_and_child(xpub: &str) -> Option<(u8, u32)> {
    let raw = bs58::decode(xpub.trim()).with_check(None).into_vec().ok()?;
    let child: [u8; 4] = raw.get(9..13)?.try_into().ok()?;
    Some((*raw.get(4)?, u32::from_be_bytes(child)))
}

/// Check an account xpub (the key at `m/44'/195'/n'`) and return it trimmed.
pub fn normalize_xpub(descriptor: &str) -> Result<String, EngineError> {
    let descriptor = descriptor.trim();
    Xpub::parse(descriptor).map_err(|e| invalid(format!("xpub: {e}")))?;
    match depth_and_child(descriptor) {
        Some((3, child)) if child >= HARDENED => Ok(descriptor.to_owned()),
        Some((depth, child)) => Err(invalid(format!(
            "xpub must be a TRON account key (depth 3, hardened, m/44'/195'/0'); this one has \
             depth {depth} and child number {}{}",
            child & !HARDENED,
            if child >= HARDENED { "'" } else { "" }
        ))),
        None => Err(invalid("xpub: not a base58check string".into())),
    }
}

/// The address at `index` of the external chain below the account xpub.
pub fn derive(descriptor: &str, index: u32) -> Result<PreparedTarget, EngineError> {
    // The account's parsed external chain is cached by the EVM rail: one public derivation
    // per order.
    let (evm, account_no) = coffer_chain_evm::derive::external_account(descriptor, index)?;
    let evm: [u8; 20] = evm.into_array();
    Ok(PreparedTarget {
        address: TronAddress::from_account(evm).to_base58(),
        derivation: Some(Derivation {
            index,
            path: format!("m/44'/{COIN_TYPE}'/{account_no}'/0/{index}"),
        }),
        details: Default::default(),
    })
}

#[async_trait]
impl PaymentMethod for TronMethod {
    fn normalize_wallet(&self, _chain: &Chain, descriptor: &str) -> Result<String, EngineError> {
        normalize_xpub(descriptor)
    }

    async fn prepare_target(&self, req: TargetRequest<'_>) -> Result<PreparedTarget, EngineError> {
        let (descriptor, index) = req.wallet_index()?;
        derive(descriptor, index)
    }

    fn standing_address(
        &self,
        _chain: &Chain,
        descriptor: &str,
        index: u32,
    ) -> Result<PreparedTarget, EngineError> {
        derive(descriptor, index)
    }

    fn payment_uri(&self, _chain: &Chain, asset: &Asset, target: &PaymentTarget) -> Option<String> {
        Some(tron_uri(asset, &target.address, target.amount_due))
    }

    fn check_confirmations(&self, chain: &Chain, n: u32) -> Result<(), String> {
        if CONFIRMATIONS.contains(&n) {
            Ok(())
        } else {
            Err(format!(
                "confirmations on {} must be {} to {} solidified blocks, not {n}",
                chain.id,
                CONFIRMATIONS.start(),
                CONFIRMATIONS.end()
            ))
        }
    }
}

/// `tron:<address>?amount=<decimal>`, and for a TRC-20 token `&token=<contract>`. TRON has no
/// standard payment URI: the address is what every wallet reads from the QR code; the amount
/// is in whole units (like BIP21), exact, from integer arithmetic.
pub fn tron_uri(asset: &Asset, address: &str, amount: BaseUnits) -> String {
    let amount = amount.format(asset.decimals);
    match &asset.kind {
        AssetKind::Native => format!("tron:{address}?amount={amount}"),
        AssetKind::Token { contract } => {
            format!("tron:{address}?amount={amount}&token={contract}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::{AssetId, Decimals};

    #[test]
    fn uris_carry_exact_whole_units() {
        let trx = Asset {
            id: "tron:TRX".parse::<AssetId>().unwrap(),
            kind: AssetKind::Native,
            decimals: Decimals::new(6).unwrap(),
            display_decimals: 6,
            usd_stablecoin: false,
        };
        let addr = "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH";
        assert_eq!(
            tron_uri(&trx, addr, BaseUnits::new(12_345_000)),
            format!("tron:{addr}?amount=12.345")
        );
        let usdt = Asset {
            id: "tron:USDT".parse::<AssetId>().unwrap(),
            kind: AssetKind::Token {
                contract: crate::config::USDT_MAINNET.into(),
            },
            ..trx
        };
        assert_eq!(
            tron_uri(&usdt, addr, BaseUnits::new(1)),
            format!("tron:{addr}?amount=0.000001&token=TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
        );
    }

    #[test]
    fn wallets_must_be_account_xpubs() {
        let xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
        assert!(
            normalize_xpub(xprv)
                .unwrap_err()
                .to_string()
                .contains("PRIVATE")
        );
        let master = "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB";
        assert!(
            normalize_xpub(master)
                .unwrap_err()
                .to_string()
                .contains("depth 0")
        );
        assert!(normalize_xpub("T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb").is_err());
    }
}
