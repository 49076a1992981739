//! Orders, payments and the settlement rules that connect them.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::asset::AssetId;
use crate::ids::{CheckoutToken, MerchantId, OrderId, PaymentId};
use crate::money::{BaseUnits, Price, Rounding};
use crate::state::{self, Cause, OrderState, Totals};

/// Default rate-lock window: all three seed gateways use 30 minutes.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::minutes(30);
/// Default monitoring window: late payments are still seen for a day (BTCPay's default).
pub const DEFAULT_MONITOR_FOR: Duration = Duration::hours(24);

/// Rules that decide how payments count toward an order. Snapshotted onto each order when it
/// is created, so changing a merchant setting never changes the fate of an order in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementPolicy {
    /// A shortfall up to this percentage of the amount due still settles the order.
    #[serde(with = "rust_decimal::serde::str")]
    pub underpayment_tolerance_percent: Decimal,
    /// A payment between `match_min`× and `match_max`× of what is still owed is counted
    /// automatically; outside it the payment is recorded and waits for the merchant
    /// (Pay Protocol's 0.5×–1.2× rule).
    #[serde(with = "rust_decimal::serde::str")]
    pub match_min: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub match_max: Decimal,
    /// Confirmations a payment needs; `None` means the chain's default.
    pub confirmations: Option<u32>,
    /// Per-chain overrides of `confirmations` (chain id → confirmations), e.g.
    /// `bitcoin = 2`. Absent chains use `confirmations`, then the chain's default.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub chain_confirmations: BTreeMap<String, u32>,
}

impl Default for SettlementPolicy {
    fn default() -> Self {
        Self {
            underpayment_tolerance_percent: Decimal::ZERO,
            match_min: Decimal::new(5, 1),
            match_max: Decimal::new(12, 1),
            confirmations: None,
            chain_confirmations: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("underpayment tolerance must be between 0 and 100 percent")]
    Tolerance,
    #[error("match window must satisfy 0 <= min <= 1 <= max")]
    MatchWindow,
}

impl SettlementPolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        let hundred = Decimal::from(100);
        if self.underpayment_tolerance_percent < Decimal::ZERO
            || self.underpayment_tolerance_percent > hundred
        {
            return Err(PolicyError::Tolerance);
        }
        if self.match_min < Decimal::ZERO
            || self.match_min > Decimal::ONE
            || self.match_max < Decimal::ONE
        {
            return Err(PolicyError::MatchWindow);
        }
        Ok(())
    }

    /// The confirmations this policy asks for on `chain`: the chain's override, else the
    /// general setting; `None` means the chain's configured default.
    pub fn confirmations_for(&self, chain: &str) -> Option<u32> {
        self.chain_confirmations
            .get(chain)
            .copied()
            .or(self.confirmations)
    }

    /// The least confirmed amount that settles an order owing `due`.
    pub fn settlement_threshold(&self, due: BaseUnits) -> BaseUnits {
        let fraction = self.underpayment_tolerance_percent / Decimal::from(100);
        state::threshold_for(due, fraction)
    }

    /// Whether a payment of `amount` toward an order that still owes `remaining` is counted
    /// automatically. Once nothing is owed, any further payment is outside the window.
    pub fn within_match_window(&self, amount: BaseUnits, remaining: BaseUnits) -> bool {
        if remaining.is_zero() {
            return false;
        }
        let min = remaining
            .mul_ratio(self.match_min, Rounding::Up)
            .unwrap_or(remaining);
        let max = remaining
            .mul_ratio(self.match_max, Rounding::Down)
            .unwrap_or(BaseUnits::new(u128::MAX));
        amount >= min && amount <= max
    }
}

/// Whether a payment with `confirmations` counts as confirmed under a policy asking for
/// `required` confirmations. Zero-conf (`required == 0`) accepts a payment still in the
/// mempool only when its transaction cannot be replaced (`replaceable == false`: no BIP-125
/// signal on it or on an unconfirmed ancestor); a replaceable one waits for one confirmation.
pub fn payment_confirmed(required: u32, confirmations: u32, replaceable: bool) -> bool {
    let needed = if replaceable {
        required.max(1)
    } else {
        required
    };
    confirmations >= needed
}

/// The rate used to price an order, locked until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedRate {
    /// Units of the order's currency per one whole unit of the asset.
    pub price: Price,
    /// Where the price came from (`fixed`, `median(binance,kraken,okx)`, `peg`).
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Where a receiving address came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derivation {
    pub index: u32,
    pub path: String,
}

/// What the buyer must send: chosen asset, amount and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTarget {
    pub asset: AssetId,
    pub amount_due: BaseUnits,
    pub address: String,
    pub derivation: Option<Derivation>,
    pub rate: LockedRate,
    /// What the payment method keeps about the target beside the common fields (an
    /// invoice's payment hash, a contract's salt): a JSON object, empty for plain addresses.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// One entry of an order's append-only timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub from: Option<OrderState>,
    pub to: OrderState,
    pub cause: Cause,
    pub note: Option<String>,
}

/// Merchant-supplied links.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderLinks {
    pub success_url: Option<String>,
    pub expired_url: Option<String>,
    pub callback_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub merchant_id: MerchantId,
    /// The merchant's own order number, unique per merchant.
    pub order_no: Option<String>,
    pub checkout_token: CheckoutToken,
    pub state: OrderState,
    /// Price in `currency` (fiat ISO code or crypto symbol).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    /// Price stablecoins 1:1 with USD instead of at the market rate.
    pub fixed_stablecoin_rate: bool,
    /// Set once the asset is chosen.
    pub target: Option<PaymentTarget>,
    pub totals: Totals,
    pub policy: SettlementPolicy,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub links: OrderLinks,
    /// Which API created the order (`native` or a dialect's name): decides the
    /// shape of its callbacks.
    pub dialect: String,
    /// Fields the creating dialect must echo back or use in its callbacks (Pay Protocol's
    /// `notifyUrl`, Aurpay's `timeout_callback`, …): a JSON object, empty for native orders.
    #[serde(default)]
    pub dialect_data: serde_json::Map<String, serde_json::Value>,
    /// The dialect credential that created the order (its id), if a dialect did: its
    /// callbacks carry and are signed with that credential while it is active.
    #[serde(default)]
    pub credential_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub monitor_until: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency counter, bumped by every change.
    pub version: i64,
    /// Length of the rate lock (`expires_in`): choosing another asset re-locks for this long.
    pub lock_window: Duration,
}

impl Order {
    /// Whether chain activity to this order's address is still of interest.
    pub fn is_watched(&self, now: OffsetDateTime) -> bool {
        self.target.is_some() && now < self.monitor_until && !self.state.is_manual()
    }

    pub fn amount_due(&self) -> Option<BaseUnits> {
        self.target.as_ref().map(|t| t.amount_due)
    }

    /// What is still owed (zero once paid in full).
    pub fn remaining(&self) -> Option<BaseUnits> {
        self.amount_due()
            .map(|due| due.saturating_sub(self.totals.seen()))
    }

    /// The state chain activity and the clock call for now.
    pub fn evaluate(&self, now: OffsetDateTime) -> OrderState {
        match &self.target {
            Some(target) => state::evaluate(
                self.state,
                target.amount_due,
                &self.policy,
                &self.totals,
                self.expires_at,
                now,
            ),
            // No asset chosen: nothing can have been paid, only the clock matters.
            None => state::evaluate(
                self.state,
                BaseUnits::ZERO,
                &self.policy,
                &Totals::default(),
                self.expires_at,
                now,
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Seen (mempool or too few confirmations).
    Unconfirmed,
    Confirmed,
    /// Removed by a reorg, replaced or double-spent.
    Reversed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unconfirmed => "unconfirmed",
            PaymentStatus::Confirmed => "confirmed",
            PaymentStatus::Reversed => "reversed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unconfirmed" => Some(PaymentStatus::Unconfirmed),
            "confirmed" => Some(PaymentStatus::Confirmed),
            "reversed" => Some(PaymentStatus::Reversed),
            _ => None,
        }
    }
}

/// Whether a payment counts toward its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    /// Counted.
    Matched,
    /// Amount outside the auto-match window: recorded, waits for the merchant.
    OutsideWindow,
    /// Another asset than the order's (USDC sent to a USDT order): recorded and flagged.
    WrongAsset,
    /// Arrived when the order was no longer payable (manual state): recorded and flagged.
    Unexpected,
    /// Accepted by the merchant after review (repair).
    Accepted,
}

impl MatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchStatus::Matched => "matched",
            MatchStatus::OutsideWindow => "outside_window",
            MatchStatus::WrongAsset => "wrong_asset",
            MatchStatus::Unexpected => "unexpected",
            MatchStatus::Accepted => "accepted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            MatchStatus::Matched,
            MatchStatus::OutsideWindow,
            MatchStatus::WrongAsset,
            MatchStatus::Unexpected,
            MatchStatus::Accepted,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    pub fn counts(self) -> bool {
        matches!(self, MatchStatus::Matched | MatchStatus::Accepted)
    }
}

/// An on-chain transfer to an order's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    pub asset: AssetId,
    pub amount: BaseUnits,
    /// Transaction hash.
    pub txid: String,
    /// Output index (Bitcoin) or log index (EVM token) or 0 (EVM native): with `txid`, the
    /// transfer's identity on its chain.
    pub output_index: u32,
    pub from_address: Option<String>,
    pub to_address: String,
    pub block_height: Option<u64>,
    pub block_hash: Option<String>,
    pub confirmations: u32,
    pub status: PaymentStatus,
    pub match_status: MatchStatus,
    /// Arrived after the rate lock expired.
    pub late: bool,
    /// When it happened: block time, or first sighting for an unconfirmed payment.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub detected_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// What the payment method keeps about the payment beside the common columns (a
    /// Lightning payment's preimage, say): a JSON object, empty on the chains of today.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Sum the payments that count toward an order.
pub fn totals_of<'a, I: IntoIterator<Item = &'a Payment>>(payments: I) -> Totals {
    let mut totals = Totals::default();
    for p in payments {
        if p.status == PaymentStatus::Reversed {
            totals.any_reversed = true;
            continue;
        }
        if !p.match_status.counts() {
            continue;
        }
        let slot = match p.status {
            PaymentStatus::Confirmed => &mut totals.confirmed,
            _ => &mut totals.unconfirmed,
        };
        *slot = slot
            .checked_add(p.amount)
            .unwrap_or(BaseUnits::new(u128::MAX));
        totals.late |= p.late;
    }
    totals
}

/// How a newly seen transfer to an order's address is classified.
pub fn classify_payment(
    order: &Order,
    asset: &AssetId,
    amount: BaseUnits,
    occurred_at: OffsetDateTime,
) -> (MatchStatus, bool) {
    let late = occurred_at >= order.expires_at;
    let Some(target) = &order.target else {
        return (MatchStatus::Unexpected, late);
    };
    if &target.asset != asset {
        return (MatchStatus::WrongAsset, late);
    }
    if order.state.is_manual() {
        return (MatchStatus::Unexpected, late);
    }
    let remaining = target.amount_due.saturating_sub(order.totals.seen());
    if order.policy.within_match_window(amount, remaining) {
        (MatchStatus::Matched, late)
    } else {
        (MatchStatus::OutsideWindow, late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn default_policy_is_valid_and_matches_pay_protocol() {
        let p = SettlementPolicy::default();
        p.validate().unwrap();
        assert_eq!(p.match_min, dec("0.5"));
        assert_eq!(p.match_max, dec("1.2"));
        assert_eq!(p.underpayment_tolerance_percent, Decimal::ZERO);
    }

    #[test]
    fn policy_validation() {
        let bad_tol = SettlementPolicy {
            underpayment_tolerance_percent: dec("101"),
            ..Default::default()
        };
        assert_eq!(bad_tol.validate(), Err(PolicyError::Tolerance));
        let bad_window = SettlementPolicy {
            match_min: dec("1.1"),
            ..Default::default()
        };
        assert_eq!(bad_window.validate(), Err(PolicyError::MatchWindow));
        let bad_max = SettlementPolicy {
            match_max: dec("0.9"),
            ..Default::default()
        };
        assert_eq!(bad_max.validate(), Err(PolicyError::MatchWindow));
    }

    #[test]
    fn zero_conf_only_for_non_replaceable_transactions() {
        // Exhaustive over the policies a merchant can pick and the depths that matter.
        for required in [0u32, 1, 2, 6] {
            for confirmations in 0u32..=8 {
                for replaceable in [false, true] {
                    let got = payment_confirmed(required, confirmations, replaceable);
                    let expected = if confirmations == 0 {
                        required == 0 && !replaceable
                    } else {
                        confirmations >= required
                    };
                    assert_eq!(got, expected, "{required} {confirmations} {replaceable}");
                }
            }
        }
        // An RBF-signalling payment under policy 0 settles at its first confirmation.
        assert!(!payment_confirmed(0, 0, true));
        assert!(payment_confirmed(0, 1, true));
    }

    #[test]
    fn chain_confirmations_override_the_general_setting() {
        let mut p = SettlementPolicy::default();
        assert_eq!(p.confirmations_for("bitcoin"), None);
        p.confirmations = Some(3);
        assert_eq!(p.confirmations_for("bitcoin"), Some(3));
        p.chain_confirmations.insert("bitcoin".into(), 0);
        assert_eq!(p.confirmations_for("bitcoin"), Some(0));
        assert_eq!(p.confirmations_for("ethereum"), Some(3));
        // Stored policies written before the field existed still load.
        let old: SettlementPolicy = serde_json::from_str(
            r#"{"underpayment_tolerance_percent":"0","match_min":"0.5","match_max":"1.2","confirmations":null}"#,
        )
        .unwrap();
        assert_eq!(old, SettlementPolicy::default());
        let json = serde_json::to_string(&SettlementPolicy::default()).unwrap();
        assert!(!json.contains("chain_confirmations"), "{json}");
    }

    #[test]
    fn match_window_edges() {
        let p = SettlementPolicy::default();
        let due = BaseUnits::new(1_000_000);
        assert!(p.within_match_window(BaseUnits::new(500_000), due));
        assert!(!p.within_match_window(BaseUnits::new(499_999), due));
        assert!(p.within_match_window(BaseUnits::new(1_200_000), due));
        assert!(!p.within_match_window(BaseUnits::new(1_200_001), due));
        // the rest of a partially paid order is judged against what is still owed
        assert!(p.within_match_window(BaseUnits::new(400_000), BaseUnits::new(400_000)));
        assert!(!p.within_match_window(BaseUnits::new(1), BaseUnits::ZERO));
    }

    #[test]
    fn threshold_with_tolerance() {
        let p = SettlementPolicy {
            underpayment_tolerance_percent: dec("0.5"),
            ..Default::default()
        };
        // 1000 × 0.995 = 995
        assert_eq!(
            p.settlement_threshold(BaseUnits::new(1000)),
            BaseUnits::new(995)
        );
        // 1001 × 0.995 = 995.995 → 996 (rounded up: tolerance never exceeds what it says)
        assert_eq!(
            p.settlement_threshold(BaseUnits::new(1001)),
            BaseUnits::new(996)
        );
        assert_eq!(
            SettlementPolicy::default().settlement_threshold(BaseUnits::new(1001)),
            BaseUnits::new(1001)
        );
    }
}
