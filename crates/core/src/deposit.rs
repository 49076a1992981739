//! Deposits: transfers to a deposit account's standing address (Pay Protocol's "recharge").
//! Unlike a payment, a deposit belongs to no order: nothing is due, every amount counts, and
//! the address never expires. Its status follows the chain like a payment's.

use time::OffsetDateTime;

use crate::asset::AssetId;
use crate::ids::{DepositId, MerchantId};
use crate::money::BaseUnits;
use crate::order::PaymentStatus;

/// A transfer received at a deposit account's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    pub id: DepositId,
    /// Small sequential number assigned by the store (Pay Protocol's `rechargeId`); 0 until
    /// stored.
    pub seq: i64,
    pub merchant_id: MerchantId,
    /// The account: the merchant's own id for its user, and the account's number.
    pub account_uuid: String,
    pub account_seq: i64,
    /// The API whose user the account is (`payprotocol`): its format for callbacks.
    pub dialect: String,
    pub asset: AssetId,
    pub amount: BaseUnits,
    pub txid: String,
    /// Output index (Bitcoin), log index (EVM token) or 0 (EVM native).
    pub output_index: u32,
    pub from_address: Option<String>,
    pub to_address: String,
    pub derivation_index: u32,
    pub block_height: Option<u64>,
    pub block_hash: Option<String>,
    pub confirmations: u32,
    pub status: PaymentStatus,
    /// Block time, or first sighting while unconfirmed.
    pub occurred_at: OffsetDateTime,
    pub detected_at: OffsetDateTime,
    /// When it first reached the confirmations required.
    pub confirmed_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

/// What a change of a transfer's status announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferNews {
    Detected,
    Confirmed,
    Reversed,
}

/// The news, in order, when a transfer last known as `was` (`None`: never seen) is now
/// observed as `now`. Seen again after a reversal it is detected anew; counted as confirmed
/// and now back below the policy (reorged into the mempool) it is reversed.
pub fn transfer_news(was: Option<PaymentStatus>, now: PaymentStatus) -> &'static [TransferNews] {
    use PaymentStatus::{Confirmed, Reversed, Unconfirmed};
    use TransferNews as N;
    match (was, now) {
        (None | Some(Reversed), Unconfirmed) => &[N::Detected],
        (None | Some(Reversed), Confirmed) => &[N::Detected, N::Confirmed],
        (Some(Unconfirmed), Confirmed) => &[N::Confirmed],
        (Some(Confirmed), Unconfirmed) => &[N::Reversed],
        (Some(Unconfirmed | Confirmed), Reversed) => &[N::Reversed],
        (Some(Unconfirmed), Unconfirmed)
        | (Some(Confirmed), Confirmed)
        | (None | Some(Reversed), Reversed) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::{Confirmed, Reversed, Unconfirmed};
    use TransferNews as N;

    #[test]
    fn news_for_every_pair() {
        let all = [Unconfirmed, Confirmed, Reversed];
        for was in std::iter::once(None).chain(all.into_iter().map(Some)) {
            for now in all {
                let news = transfer_news(was, now);
                // Nothing is announced without a change, and a status never repeats news.
                if was == Some(now) {
                    assert!(news.is_empty(), "{was:?} -> {now:?}");
                }
                // Counting transfers that stop counting are always announced as reversed.
                let counted = matches!(was, Some(Unconfirmed | Confirmed));
                if counted && now == Reversed {
                    assert_eq!(news, [N::Reversed]);
                }
                // Confirmed is announced exactly when the transfer becomes confirmed.
                assert_eq!(
                    news.contains(&N::Confirmed),
                    now == Confirmed && was != Some(Confirmed),
                    "{was:?} -> {now:?}"
                );
                // Detected exactly when it starts counting again (or for the first time).
                assert_eq!(
                    news.contains(&N::Detected),
                    !counted && now != Reversed,
                    "{was:?} -> {now:?}"
                );
            }
        }
        assert_eq!(transfer_news(Some(Confirmed), Unconfirmed), [N::Reversed]);
    }
}
