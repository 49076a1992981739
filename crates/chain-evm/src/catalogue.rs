//! Built-in catalogue of well-known EVM chains and their main stablecoins, so an operator
//! usually configures only `id` and `rpc`. Anything set in the configuration overrides it.

/// A token in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownToken {
    pub symbol: &'static str,
    pub contract: &'static str,
    pub decimals: u8,
}

/// A chain in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownChain {
    /// The `id` an operator uses in `[[chains]]`.
    pub id: &'static str,
    pub name: &'static str,
    pub chain_id: u64,
    pub native_symbol: &'static str,
    pub native_decimals: u8,
    /// Default confirmations (a payment counts as final after this many blocks).
    pub confirmations: u32,
    /// Default poll interval, milliseconds (about the block time).
    pub poll_interval_ms: u64,
    pub tokens: &'static [KnownToken],
    /// The block explorer's transaction page, `{txid}` standing for the hash (checkout links).
    pub explorer_tx: &'static str,
}

const fn t(symbol: &'static str, contract: &'static str, decimals: u8) -> KnownToken {
    KnownToken {
        symbol,
        contract,
        decimals,
    }
}

pub const CATALOGUE: &[KnownChain] = &[
    KnownChain {
        id: "eth",
        name: "Ethereum",
        chain_id: 1,
        native_symbol: "ETH",
        native_decimals: 18,
        confirmations: 12,
        poll_interval_ms: 12_000,
        tokens: &[
            t("USDT", "0xdAC17F958D2ee523a2206206994597C13D831ec7", 6),
            t("USDC", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6),
        ],
        explorer_tx: "https://etherscan.io/tx/{txid}",
    },
    KnownChain {
        id: "bsc",
        name: "BNB Smart Chain",
        chain_id: 56,
        native_symbol: "BNB",
        native_decimals: 18,
        confirmations: 15,
        poll_interval_ms: 3_000,
        tokens: &[
            t("USDT", "0x55d398326f99059fF775485246999027B3197955", 18),
            t("USDC", "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d", 18),
        ],
        explorer_tx: "https://bscscan.com/tx/{txid}",
    },
    KnownChain {
        id: "polygon",
        name: "Polygon PoS",
        chain_id: 137,
        native_symbol: "POL",
        native_decimals: 18,
        confirmations: 64,
        poll_interval_ms: 2_000,
        tokens: &[
            t("USDT", "0xc2132D05D31c914a87C6611C10748AEb04B58e8F", 6),
            t("USDC", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", 6),
        ],
        explorer_tx: "https://polygonscan.com/tx/{txid}",
    },
    KnownChain {
        id: "arbitrum",
        name: "Arbitrum One",
        chain_id: 42_161,
        native_symbol: "ETH",
        native_decimals: 18,
        confirmations: 20,
        poll_interval_ms: 1_000,
        tokens: &[
            t("USDT", "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9", 6),
            t("USDC", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", 6),
        ],
        explorer_tx: "https://arbiscan.io/tx/{txid}",
    },
    KnownChain {
        id: "base",
        name: "Base",
        chain_id: 8_453,
        native_symbol: "ETH",
        native_decimals: 18,
        confirmations: 20,
        poll_interval_ms: 2_000,
        tokens: &[t("USDC", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", 6)],
        explorer_tx: "https://basescan.org/tx/{txid}",
    },
    KnownChain {
        id: "optimism",
        name: "OP Mainnet",
        chain_id: 10,
        native_symbol: "ETH",
        native_decimals: 18,
        confirmations: 20,
        poll_interval_ms: 2_000,
        tokens: &[
            t("USDT", "0x94b008aA00579c1307B0EF2c499aD98a8ce58e58", 6),
            t("USDC", "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85", 6),
        ],
        explorer_tx: "https://optimistic.etherscan.io/tx/{txid}",
    },
    KnownChain {
        id: "avax",
        name: "Avalanche C-Chain",
        chain_id: 43_114,
        native_symbol: "AVAX",
        native_decimals: 18,
        confirmations: 12,
        poll_interval_ms: 2_000,
        tokens: &[
            t("USDT", "0x9702230A8Ea53601f5cD2dc00fDBc13d4dF4A8c7", 6),
            t("USDC", "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E", 6),
        ],
        explorer_tx: "https://snowtrace.io/tx/{txid}",
    },
];

/// The catalogue entry for a configured chain: by `id`, or by `chain_id` if given.
pub fn lookup(id: &str, chain_id: Option<u64>) -> Option<&'static KnownChain> {
    match chain_id {
        Some(n) => CATALOGUE.iter().find(|c| c.chain_id == n),
        None => CATALOGUE.iter().find(|c| c.id == id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Address;

    #[test]
    fn catalogue_is_well_formed() {
        let mut ids = std::collections::HashSet::new();
        for c in CATALOGUE {
            assert!(ids.insert(c.id), "duplicate {}", c.id);
            for tok in c.tokens {
                // EIP-55 checksums must verify: a typo in a contract is caught here.
                Address::parse_checksummed(tok.contract, None)
                    .unwrap_or_else(|e| panic!("{} {}: {e}", c.id, tok.symbol));
            }
        }
        let bsc = lookup("bsc", None).unwrap();
        assert_eq!(bsc.chain_id, 56);
        assert_eq!(bsc.tokens[0].decimals, 18);
        let eth = lookup("whatever", Some(1)).unwrap();
        assert_eq!(
            eth.tokens[0].contract,
            "0xdAC17F958D2ee523a2206206994597C13D831ec7"
        );
        assert_eq!(eth.tokens[0].decimals, 6);
    }
}
