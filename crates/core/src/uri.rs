//! Payment URIs a wallet can open: EIP-681 for EVM chains, BIP21 for Bitcoin.
//!
//! Amounts in EIP-681 are integers in base units (`value` in wei, `uint256` in token units);
//! in BIP21 the amount is BTC as a decimal. Both are exact: no floating point anywhere.

use crate::asset::{Asset, AssetKind, Chain, ChainKind};
use crate::money::BaseUnits;

/// The payment URI for sending `amount` of `asset` on `chain` to `address`, or `None` when
/// the chain has no standard URI scheme here (Tron, Lightning) or an EVM chain lacks its
/// numeric chain id.
pub fn payment_uri(
    chain: &Chain,
    asset: &Asset,
    address: &str,
    amount: BaseUnits,
) -> Option<String> {
    match chain.kind {
        ChainKind::Evm => {
            let chain_id = chain.evm_chain_id?;
            Some(match &asset.kind {
                AssetKind::Native => format!("ethereum:{address}@{chain_id}?value={amount}"),
                AssetKind::Token { contract } => format!(
                    "ethereum:{contract}@{chain_id}/transfer?address={address}&uint256={amount}"
                ),
            })
        }
        ChainKind::Bitcoin => Some(format!(
            "bitcoin:{address}?amount={}",
            amount.format(asset.decimals)
        )),
        ChainKind::Tron | ChainKind::Lightning => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::{AssetId, ChainId, Network};
    use crate::money::Decimals;

    fn chain(kind: ChainKind, evm_chain_id: Option<u64>) -> Chain {
        Chain {
            id: ChainId::parse("c").unwrap(),
            kind,
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
        let uri = payment_uri(
            &chain(ChainKind::Evm, Some(1)),
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
        let uri = payment_uri(
            &chain(ChainKind::Evm, Some(56)),
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
        let uri = payment_uri(
            &chain(ChainKind::Evm, None),
            &asset("c:ETH", AssetKind::Native, 18),
            "0xAbC",
            BaseUnits::new(1),
        );
        assert_eq!(uri, None);
    }

    #[test]
    fn bip21_amount_is_exact_btc_decimal() {
        let btc = asset("c:BTC", AssetKind::Native, 8);
        let c = chain(ChainKind::Bitcoin, None);
        for (sats, shown) in [
            (1u128, "0.00000001"),
            (100_000_000, "1"),
            (123_450_000, "1.2345"),
            (2_100_000_000_000_000, "21000000"),
        ] {
            assert_eq!(
                payment_uri(&c, &btc, "bc1qxyz", BaseUnits::new(sats)).unwrap(),
                format!("bitcoin:bc1qxyz?amount={shown}")
            );
        }
    }

    #[test]
    fn chains_without_a_scheme_have_no_uri() {
        let a = asset("c:TRX", AssetKind::Native, 6);
        assert_eq!(
            payment_uri(&chain(ChainKind::Tron, None), &a, "T1", BaseUnits::new(5)),
            None
        );
        assert_eq!(
            payment_uri(
                &chain(ChainKind::Lightning, None),
                &a,
                "ln",
                BaseUnits::new(5)
            ),
            None
        );
    }
}
