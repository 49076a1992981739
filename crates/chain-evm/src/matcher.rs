//! In-memory matching of ERC-20 `Transfer` logs against the watched addresses: one hash
//! lookup per log, whatever the number of watched addresses.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, U256, b256};
use coffer_core::{AssetId, BaseUnits};

/// keccak256("Transfer(address,address,uint256)").
pub const TRANSFER_TOPIC: B256 =
    b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

/// The token contracts a chain watches, by contract address.
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<Address, AssetId>);

impl Tokens {
    pub fn new(tokens: impl IntoIterator<Item = (Address, AssetId)>) -> Self {
        Self(tokens.into_iter().collect())
    }

    pub fn contracts(&self) -> Vec<Address> {
        let mut v: Vec<Address> = self.0.keys().copied().collect();
        v.sort();
        v
    }

    pub fn asset(&self, contract: &Address) -> Option<&AssetId> {
        self.0.get(contract)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Watched addresses, mapped to the exact string the order was given (EIP-55), with the end of
/// their monitoring window.
pub type Watched = coffer_rail::WatchSet<Address>;

/// The parts of a log the matcher reads.
#[derive(Debug, Clone, Copy)]
pub struct RawLog<'a> {
    pub contract: Address,
    pub topics: &'a [B256],
    pub data: &'a [u8],
}

/// A log that is a `Transfer` of a watched token to a watched address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'w> {
    pub asset: &'w AssetId,
    pub to: &'w str,
    pub from: Address,
    pub amount: BaseUnits,
}

/// Match one log. Logs of other contracts or events, malformed logs and amounts beyond
/// `u128` (no real token has them) are ignored.
pub fn match_log<'w>(
    log: RawLog<'_>,
    tokens: &'w Tokens,
    watched: &'w Watched,
) -> Option<Match<'w>> {
    let [topic0, from, to] = log.topics else {
        return None;
    };
    if *topic0 != TRANSFER_TOPIC {
        return None;
    }
    let to_addr = Address::from_word(*to);
    let original = watched.get(&to_addr)?;
    let asset = tokens.asset(&log.contract)?;
    if log.data.len() != 32 {
        return None;
    }
    let value = U256::from_be_slice(log.data);
    let amount = u128::try_from(value).ok()?;
    Some(Match {
        asset,
        to: original,
        from: Address::from_word(*from),
        amount: BaseUnits::new(amount),
    })
}
