//! The Bitcoin payment method: an address from the merchant's wallet per order, BIP21
//! payment URIs, the confirmation policies merchants may pick (0 = zero-conf, which the
//! default rule grants only to what cannot be replaced) and the gap limit wallets care about.

use async_trait::async_trait;
use coffer_core::{Asset, BaseUnits, Chain, PaymentTarget};
use coffer_engine::{EngineError, PaymentMethod, PreparedTarget, TargetRequest};

use crate::derive::BitcoinDeriver;

/// Confirmation policies a merchant may pick on a Bitcoin chain (0 = zero-conf).
const CONFIRMATIONS: [u32; 4] = [0, 1, 2, 6];

/// [`PaymentMethod`] of Bitcoin chains; the network comes from `Chain.network`.
#[derive(Default)]
pub struct BitcoinMethod {
    deriver: BitcoinDeriver,
}

impl BitcoinMethod {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PaymentMethod for BitcoinMethod {
    fn normalize_wallet(&self, chain: &Chain, descriptor: &str) -> Result<String, EngineError> {
        self.deriver.normalize(chain, descriptor)
    }

    async fn prepare_target(&self, req: TargetRequest<'_>) -> Result<PreparedTarget, EngineError> {
        let (descriptor, index) = req.wallet_index()?;
        self.deriver.derive(req.chain, descriptor, index)
    }

    fn standing_address(
        &self,
        chain: &Chain,
        descriptor: &str,
        index: u32,
    ) -> Result<PreparedTarget, EngineError> {
        self.deriver.derive(chain, descriptor, index)
    }

    fn payment_uri(&self, _chain: &Chain, asset: &Asset, target: &PaymentTarget) -> Option<String> {
        Some(bip21(asset, &target.address, target.amount_due))
    }

    fn check_confirmations(&self, chain: &Chain, n: u32) -> Result<(), String> {
        if CONFIRMATIONS.contains(&n) {
            Ok(())
        } else {
            Err(format!(
                "confirmations on {} must be 0, 1, 2 or 6, not {n}",
                chain.id
            ))
        }
    }

    fn has_gap_limit(&self) -> bool {
        true
    }
}

/// The BIP21 URI for sending `amount` of `asset` to `address`: the amount in BTC as an exact
/// decimal, no floating point.
pub fn bip21(asset: &Asset, address: &str, amount: BaseUnits) -> String {
    format!("bitcoin:{address}?amount={}", amount.format(asset.decimals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::{AssetId, AssetKind, Decimals};

    #[test]
    fn bip21_amount_is_exact_btc_decimal() {
        let btc = Asset {
            id: "c:BTC".parse::<AssetId>().unwrap(),
            kind: AssetKind::Native,
            decimals: Decimals::new(8).unwrap(),
            display_decimals: 6,
            usd_stablecoin: false,
        };
        for (sats, shown) in [
            (1u128, "0.00000001"),
            (100_000_000, "1"),
            (123_450_000, "1.2345"),
            (2_100_000_000_000_000, "21000000"),
        ] {
            assert_eq!(
                bip21(&btc, "bc1qxyz", BaseUnits::new(sats)),
                format!("bitcoin:bc1qxyz?amount={shown}")
            );
        }
    }

    #[test]
    fn policies_are_0_1_2_or_6() {
        let chain = Chain {
            id: coffer_core::ChainId::parse("btc").unwrap(),
            kind: coffer_core::ChainKind::Bitcoin,
            network: coffer_core::Network::Mainnet,
            name: "Bitcoin".into(),
            confirmations: 2,
            evm_chain_id: None,
        };
        let m = BitcoinMethod::new();
        for n in CONFIRMATIONS {
            assert!(m.check_confirmations(&chain, n).is_ok());
        }
        assert_eq!(
            m.check_confirmations(&chain, 3).unwrap_err(),
            "confirmations on btc must be 0, 1, 2 or 6, not 3"
        );
        assert!(m.has_gap_limit());
    }
}
