//! The EVM payment method: an address derived from the merchant's account xpub per order,
//! EIP-681 payment URIs, and confirmation policies of 1 to 1000 blocks (no zero-conf: a
//! mempool transaction can always be replaced, and the watcher never reports one as not).

use async_trait::async_trait;
use coffer_core::{Asset, AssetKind, BaseUnits, Chain, PaymentTarget};
use coffer_engine::{EngineError, PaymentMethod, PreparedTarget, TargetRequest};

use crate::derive::EvmDeriver;

/// Confirmation policies a merchant may pick on an EVM chain.
const CONFIRMATIONS: std::ops::RangeInclusive<u32> = 1..=1000;

/// [`PaymentMethod`] of EVM chains.
#[derive(Debug, Default, Clone, Copy)]
pub struct EvmMethod;

#[async_trait]
impl PaymentMethod for EvmMethod {
    fn normalize_wallet(&self, chain: &Chain, descriptor: &str) -> Result<String, EngineError> {
        EvmDeriver.normalize(chain, descriptor)
    }

    async fn prepare_target(&self, req: TargetRequest<'_>) -> Result<PreparedTarget, EngineError> {
        let (descriptor, index) = req.wallet_index()?;
        EvmDeriver.derive(req.chain, descriptor, index)
    }

    fn standing_address(
        &self,
        chain: &Chain,
        descriptor: &str,
        index: u32,
    ) -> Result<PreparedTarget, EngineError> {
        EvmDeriver.derive(chain, descriptor, index)
    }

    fn payment_uri(&self, chain: &Chain, asset: &Asset, target: &PaymentTarget) -> Option<String> {
        eip681(chain, asset, &target.address, target.amount_due)
    }

    fn check_confirmations(&self, chain: &Chain, n: u32) -> Result<(), String> {
        if CONFIRMATIONS.contains(&n) {
            Ok(())
        } else {
            Err(format!(
                "confirmations on {} must be {} to {}, not {n}",
                chain.id,
                CONFIRMATIONS.start(),
                CONFIRMATIONS.end()
            ))
        }
    }
}

/// The EIP-681 URI for sending `amount` of `asset` to `address`: `value` in wei for the
/// native coin, a `transfer` call with `uint256` in token units for a token. Exact integers,
/// no floating point. `None` when the chain lacks its numeric chain id.
pub fn eip681(chain: &Chain, asset: &Asset, address: &str, amount: BaseUnits) -> Option<String> {
    let chain_id = chain.evm_chain_id?;
    Some(match &asset.kind {
        AssetKind::Native => format!("ethereum:{address}@{chain_id}?value={amount}"),
        AssetKind::Token { contract } => {
            format!("ethereum:{contract}@{chain_id}/transfer?address={address}&uint256={amount}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::{AssetId, ChainId, ChainKind, Decimals, Network};

    fn chain(evm_chain_id: Option<u64>) -> Chain {
        Chain {
            id: ChainId::parse("c").unwrap(),
            kind: ChainKind::Evm,
            network: Network::Mainnet,
            name: "C".into(),
            confirmations: 1,
            evm_chain_id,
        }
    }

    fn asset(id: &str, kind: AssetKind, decimals: u8) -> Asset {
        Asset {
            id: id.parse::<AssetId>().unwrap(),
            kind,
            decimals: Decimals::new(decimals).unwrap(),
            display_decimals: 6,
            usd_stablecoin: false,
        }
    }

    #[test]
    fn eip681_native_uses_wei_value() {
        let uri = eip681(
            &chain(Some(1)),
            &asset("c:ETH", AssetKind::Native, 18),
            "0xAbC",
            BaseUnits::new(1_500_000_000_000_000_000),
        );
        assert_eq!(
            uri.as_deref(),
            Some("ethereum:0xAbC@1?value=1500000000000000000")
        );
    }

    #[test]
    fn eip681_token_transfer_names_contract_recipient_and_units() {
        let token = AssetKind::Token {
            contract: "0x55d398326f99059fF775485246999027B3197955".into(),
        };
        let uri = eip681(
            &chain(Some(56)),
            &asset("c:USDT", token, 18),
            "0xDef",
            BaseUnits::new(10_000_000_000_000_000_000),
        );
        assert_eq!(
            uri.as_deref(),
            Some(
                "ethereum:0x55d398326f99059fF775485246999027B3197955@56/transfer?address=0xDef&uint256=10000000000000000000"
            )
        );
    }

    #[test]
    fn eip681_needs_a_chain_id() {
        let uri = eip681(
            &chain(None),
            &asset("c:ETH", AssetKind::Native, 18),
            "0xAbC",
            BaseUnits::new(1),
        );
        assert_eq!(uri, None);
    }

    #[test]
    fn confirmation_policies_are_1_to_1000_blocks() {
        let m = EvmMethod;
        let c = chain(Some(1));
        assert!(m.check_confirmations(&c, 1).is_ok());
        assert!(m.check_confirmations(&c, 1000).is_ok());
        assert_eq!(
            m.check_confirmations(&c, 0).unwrap_err(),
            "confirmations on c must be 1 to 1000, not 0"
        );
        assert!(m.check_confirmations(&c, 1001).is_err());
        // What is in the mempool (replaceable, as the watcher reports all of it) waits.
        assert!(!m.is_confirmed(1, 0, true));
        assert!(m.is_confirmed(1, 1, true));
    }
}
