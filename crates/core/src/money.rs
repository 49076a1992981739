//! Exact money.
//!
//! Two kinds of amount exist and never mix implicitly:
//! - [`BaseUnits`]: an on-chain amount, an unsigned integer in the asset's smallest unit
//!   (wei, satoshi, 10^-6 USDT on TRON, …). `u128` holds 3.4·10^38 base units, i.e. more than
//!   3·10^20 whole tokens at 18 decimals.
//! - [`rust_decimal::Decimal`]: fiat prices, exchange rates and human-readable crypto amounts.
//!
//! Conversions between them take the asset's [`Decimals`] and an explicit rounding direction.
//! The amount a buyer owes is always rounded **up**, so the merchant never receives less than
//! quoted.

use std::fmt;
use std::str::FromStr;

use ruint::aliases::U256;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest number of decimals an asset may declare. 10^30 still fits comfortably in the
/// 256-bit intermediate arithmetic below; no real asset uses more than 18.
pub const MAX_DECIMALS: u8 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount is negative")]
    Negative,
    #[error("amount has more than {max} decimal places")]
    TooPrecise { max: u32 },
    #[error("amount is too large")]
    Overflow,
    #[error("not a valid amount: {0:?}")]
    Invalid(String),
    #[error("an asset cannot have more than {MAX_DECIMALS} decimals")]
    TooManyDecimals,
    #[error("exchange rate must be greater than zero")]
    InvalidRate,
}

/// Number of decimal places of an asset (6 for USDT on TRON, 18 for ETH, 8 for BTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Decimals(u8);

impl Decimals {
    pub fn new(value: u8) -> Result<Self, MoneyError> {
        if value > MAX_DECIMALS {
            return Err(MoneyError::TooManyDecimals);
        }
        Ok(Self(value))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    fn scale_factor(self) -> U256 {
        U256::from(10u8).pow(U256::from(self.0))
    }
}

impl<'de> Deserialize<'de> for Decimals {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = u8::deserialize(deserializer)?;
        Decimals::new(raw).map_err(serde::de::Error::custom)
    }
}

/// Rounding direction for conversions that cannot be exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Towards +infinity: used for every amount a buyer owes.
    Up,
    /// Towards zero: used where showing more than is there would mislead (display of balances).
    Down,
}

/// An on-chain amount in base units. Serialised as a decimal string, because JSON numbers
/// lose precision above 2^53 in most clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BaseUnits(u128);

impl BaseUnits {
    pub const ZERO: BaseUnits = BaseUnits(0);

    pub const fn new(value: u128) -> Self {
        Self(value)
    }

    pub const fn get(self) -> u128 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: BaseUnits) -> Option<BaseUnits> {
        self.0.checked_add(other.0).map(BaseUnits)
    }

    pub fn saturating_sub(self, other: BaseUnits) -> BaseUnits {
        BaseUnits(self.0.saturating_sub(other.0))
    }

    /// Sum of many amounts; `None` on overflow (which no real chain can produce, but input
    /// from an RPC is input).
    pub fn checked_sum<I: IntoIterator<Item = BaseUnits>>(items: I) -> Option<BaseUnits> {
        items
            .into_iter()
            .try_fold(BaseUnits::ZERO, |acc, x| acc.checked_add(x))
    }

    /// `self × numerator / denominator`, rounded as asked. Used for tolerance and match-window
    /// thresholds (e.g. 0.5× and 1.2× of the amount due) without floats.
    pub fn mul_ratio(self, ratio: Decimal, rounding: Rounding) -> Result<BaseUnits, MoneyError> {
        if ratio.is_sign_negative() {
            return Err(MoneyError::Negative);
        }
        let (mantissa, scale) = decimal_parts(ratio)?;
        let numerator = U256::from(self.0) * mantissa;
        let denominator = U256::from(10u8).pow(U256::from(scale));
        let value = div_round(numerator, denominator, rounding);
        u128::try_from(value)
            .map(BaseUnits)
            .map_err(|_| MoneyError::Overflow)
    }

    /// Parse a human amount ("12.5") of an asset into base units. Refuses more fractional
    /// digits than the asset has: silently dropping them would change the amount.
    pub fn from_decimal(amount: Decimal, decimals: Decimals) -> Result<BaseUnits, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative);
        }
        let normalized = amount.normalize();
        if normalized.scale() > u32::from(decimals.get()) {
            return Err(MoneyError::TooPrecise {
                max: u32::from(decimals.get()),
            });
        }
        Self::from_decimal_rounded(amount, decimals, Rounding::Down)
    }

    /// Convert a decimal amount into base units, rounding any excess precision as asked.
    pub fn from_decimal_rounded(
        amount: Decimal,
        decimals: Decimals,
        rounding: Rounding,
    ) -> Result<BaseUnits, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative);
        }
        let (mantissa, scale) = decimal_parts(amount)?;
        let numerator = mantissa * decimals.scale_factor();
        let denominator = U256::from(10u8).pow(U256::from(scale));
        let value = div_round(numerator, denominator, rounding);
        u128::try_from(value)
            .map(BaseUnits)
            .map_err(|_| MoneyError::Overflow)
    }

    /// The exact decimal value of this amount (`base units / 10^decimals`).
    pub fn to_decimal(self, decimals: Decimals) -> Result<Decimal, MoneyError> {
        // Decimal holds a 96-bit mantissa; larger amounts cannot be shown exactly.
        let mantissa = i128::try_from(self.0).map_err(|_| MoneyError::Overflow)?;
        Decimal::try_from_i128_with_scale(mantissa, u32::from(decimals.get()))
            .map(|d| d.normalize())
            .map_err(|_| MoneyError::Overflow)
    }

    /// A display string with exactly `decimals` fractional digits trimmed of trailing zeros,
    /// computed with integer arithmetic so it works for every `u128`.
    pub fn format(self, decimals: Decimals) -> String {
        let digits = self.0.to_string();
        let places = usize::from(decimals.get());
        if places == 0 {
            return digits;
        }
        let padded = if digits.len() <= places {
            format!("{}{}", "0".repeat(places + 1 - digits.len()), digits)
        } else {
            digits
        };
        let (int_part, frac_part) = padded.split_at(padded.len() - places);
        let frac = frac_part.trim_end_matches('0');
        if frac.is_empty() {
            int_part.to_string()
        } else {
            format!("{int_part}.{frac}")
        }
    }
}

impl fmt::Display for BaseUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for BaseUnits {
    type Err = MoneyError;

    /// Accepts only canonical unsigned decimal integers: no sign, no whitespace, no leading
    /// zeros (except "0"), no exponent.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let canonical = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        if !canonical {
            return Err(MoneyError::Invalid(s.chars().take(64).collect()));
        }
        s.parse::<u128>()
            .map(BaseUnits)
            .map_err(|_| MoneyError::Overflow)
    }
}

impl Serialize for BaseUnits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BaseUnits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// A price: how many units of the quote currency (e.g. USD) one whole unit of the asset costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price(#[serde(with = "rust_decimal::serde::str")] Decimal);

impl Price {
    pub fn new(value: Decimal) -> Result<Self, MoneyError> {
        if value <= Decimal::ZERO {
            return Err(MoneyError::InvalidRate);
        }
        Ok(Self(value))
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

/// How much of an asset (in base units) pays `fiat_amount` at `price`, rounded **up** to the
/// asset's smallest unit: `ceil(fiat_amount × 10^decimals / price)`.
///
/// Computed on exact 256-bit integers from the decimals' mantissas, so no intermediate
/// rounding can make the buyer's amount one base unit short.
pub fn crypto_due(
    fiat_amount: Decimal,
    price: Price,
    decimals: Decimals,
) -> Result<BaseUnits, MoneyError> {
    if fiat_amount <= Decimal::ZERO {
        return Err(MoneyError::NotPositive);
    }
    let (amount_m, amount_s) = decimal_parts(fiat_amount)?;
    let (price_m, price_s) = decimal_parts(price.get())?;
    // amount/10^as ÷ price/10^ps × 10^d = amount × 10^(ps + d) / (price × 10^as)
    let ten = U256::from(10u8);
    let numerator = amount_m
        .checked_mul(ten.pow(U256::from(price_s)))
        .and_then(|x| x.checked_mul(decimals.scale_factor()))
        .ok_or(MoneyError::Overflow)?;
    let denominator = price_m
        .checked_mul(ten.pow(U256::from(amount_s)))
        .ok_or(MoneyError::Overflow)?;
    let value = div_round(numerator, denominator, Rounding::Up);
    u128::try_from(value)
        .map(BaseUnits)
        .map_err(|_| MoneyError::Overflow)
}

/// Validate a fiat (or other quote-currency) amount: positive and no more fractional digits
/// than the currency's minor units.
pub fn validate_quote_amount(amount: Decimal, minor_units: u32) -> Result<Decimal, MoneyError> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(MoneyError::Negative);
    }
    if amount.is_zero() {
        return Err(MoneyError::NotPositive);
    }
    let normalized = amount.normalize();
    if normalized.scale() > minor_units {
        return Err(MoneyError::TooPrecise { max: minor_units });
    }
    Ok(normalized)
}

fn decimal_parts(value: Decimal) -> Result<(U256, u32), MoneyError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(MoneyError::Negative);
    }
    let mantissa = u128::try_from(value.mantissa()).map_err(|_| MoneyError::Negative)?;
    Ok((U256::from(mantissa), value.scale()))
}

fn div_round(numerator: U256, denominator: U256, rounding: Rounding) -> U256 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    match rounding {
        Rounding::Up if !remainder.is_zero() => quotient + U256::from(1u8),
        _ => quotient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn d(n: u8) -> Decimals {
        Decimals::new(n).unwrap()
    }

    #[test]
    fn due_is_exact_when_divisible() {
        // 100 USD at 50,000 USD/BTC = 0.002 BTC = 200,000 sat
        let due = crypto_due(dec("100"), Price::new(dec("50000")).unwrap(), d(8)).unwrap();
        assert_eq!(due, BaseUnits::new(200_000));
    }

    #[test]
    fn due_rounds_up_never_down() {
        // 10 USD at 3 USD per unit with 6 decimals = 3.333333…: buyer owes 3.333334
        let due = crypto_due(dec("10"), Price::new(dec("3")).unwrap(), d(6)).unwrap();
        assert_eq!(due, BaseUnits::new(3_333_334));
        // …and the result covers the price: 3.333334 × 3 ≥ 10
        assert!(due.to_decimal(d(6)).unwrap() * dec("3") >= dec("10"));
    }

    #[test]
    fn due_with_18_decimals_and_large_amounts_keeps_every_digit() {
        // 12,345,678,901.23 USD at 1.000000000000000001 needs more than 28 significant digits
        let price = Price::new(dec("1.000000000000000001")).unwrap();
        let due = crypto_due(dec("12345678901.23"), price, d(18)).unwrap();
        // exact: ceil(12345678901.23e18 / 1.000000000000000001)
        let num = U256::from(1_234_567_890_123u128)
            * U256::from(10u8).pow(U256::from(16u8))
            * U256::from(10u8).pow(U256::from(18u8));
        let den = U256::from(1_000_000_000_000_000_001u128);
        let expected = (num + den - U256::from(1u8)) / den;
        assert_eq!(U256::from(due.get()), expected);
    }

    #[test]
    fn due_rejects_zero_and_negative() {
        let p = Price::new(dec("1")).unwrap();
        assert_eq!(crypto_due(dec("0"), p, d(6)), Err(MoneyError::NotPositive));
        assert_eq!(crypto_due(dec("-1"), p, d(6)), Err(MoneyError::NotPositive));
        assert_eq!(Price::new(dec("0")), Err(MoneyError::InvalidRate));
        assert_eq!(Price::new(dec("-2")), Err(MoneyError::InvalidRate));
    }

    #[test]
    fn from_decimal_refuses_excess_precision() {
        assert_eq!(
            BaseUnits::from_decimal(dec("1.0000001"), d(6)),
            Err(MoneyError::TooPrecise { max: 6 })
        );
        // trailing zeros are not precision
        assert_eq!(
            BaseUnits::from_decimal(dec("1.5000000000"), d(6)),
            Ok(BaseUnits::new(1_500_000))
        );
        assert_eq!(
            BaseUnits::from_decimal(dec("-1"), d(6)),
            Err(MoneyError::Negative)
        );
    }

    #[test]
    fn rounded_conversion_goes_the_asked_way() {
        let up = BaseUnits::from_decimal_rounded(dec("0.0000001"), d(6), Rounding::Up).unwrap();
        let down = BaseUnits::from_decimal_rounded(dec("0.0000001"), d(6), Rounding::Down).unwrap();
        assert_eq!(up, BaseUnits::new(1));
        assert_eq!(down, BaseUnits::ZERO);
    }

    #[test]
    fn parse_accepts_only_canonical_integers() {
        assert_eq!("0".parse::<BaseUnits>(), Ok(BaseUnits::ZERO));
        assert_eq!("1500".parse::<BaseUnits>(), Ok(BaseUnits::new(1500)));
        for bad in ["", "-1", "+1", "01", "1.0", "1e3", " 1", "0x10", "abc"] {
            assert!(bad.parse::<BaseUnits>().is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            "340282366920938463463374607431768211456".parse::<BaseUnits>(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            u128::MAX.to_string().parse::<BaseUnits>(),
            Ok(BaseUnits::new(u128::MAX))
        );
    }

    #[test]
    fn format_trims_and_pads() {
        assert_eq!(BaseUnits::new(1_500_000).format(d(6)), "1.5");
        assert_eq!(BaseUnits::new(1).format(d(18)), "0.000000000000000001");
        assert_eq!(BaseUnits::new(0).format(d(8)), "0");
        assert_eq!(BaseUnits::new(123).format(d(0)), "123");
        assert_eq!(BaseUnits::new(100_000_000).format(d(8)), "1");
        assert_eq!(
            BaseUnits::new(u128::MAX).format(d(18)),
            "340282366920938463463.374607431768211455"
        );
    }

    #[test]
    fn serde_uses_strings() {
        let json = serde_json::to_string(&BaseUnits::new(u128::MAX)).unwrap();
        assert_eq!(json, "\"340282366920938463463374607431768211455\"");
        let back: BaseUnits = serde_json::from_str(&json).unwrap();
        assert_eq!(back, BaseUnits::new(u128::MAX));
        assert!(serde_json::from_str::<BaseUnits>("12").is_err());
        assert!(serde_json::from_str::<BaseUnits>("\"-12\"").is_err());
    }

    #[test]
    fn ratio_thresholds() {
        let due = BaseUnits::new(1_000_001);
        assert_eq!(
            due.mul_ratio(dec("0.5"), Rounding::Up).unwrap(),
            BaseUnits::new(500_001)
        );
        assert_eq!(
            due.mul_ratio(dec("0.5"), Rounding::Down).unwrap(),
            BaseUnits::new(500_000)
        );
        assert_eq!(
            due.mul_ratio(dec("1.2"), Rounding::Down).unwrap(),
            BaseUnits::new(1_200_001)
        );
        assert!(due.mul_ratio(dec("-1"), Rounding::Down).is_err());
    }

    #[test]
    fn quote_amount_validation() {
        assert_eq!(validate_quote_amount(dec("10.50"), 2), Ok(dec("10.5")));
        assert_eq!(
            validate_quote_amount(dec("10.505"), 2),
            Err(MoneyError::TooPrecise { max: 2 })
        );
        assert_eq!(
            validate_quote_amount(dec("0"), 2),
            Err(MoneyError::NotPositive)
        );
        assert_eq!(
            validate_quote_amount(dec("-0.01"), 2),
            Err(MoneyError::Negative)
        );
        assert_eq!(
            validate_quote_amount(dec("100"), 0),
            Ok(dec("100")),
            "JPY has no minor units"
        );
    }

    #[test]
    fn decimals_bounds() {
        assert!(Decimals::new(30).is_ok());
        assert_eq!(Decimals::new(31), Err(MoneyError::TooManyDecimals));
    }

    fn arb_decimal(max_scale: u32) -> impl Strategy<Value = Decimal> {
        (1u64..=u64::MAX / 2, 0..=max_scale).prop_map(|(m, s)| Decimal::new(m as i64, s))
    }

    proptest! {
        /// The amount due always covers the fiat price, and one base unit less never does.
        #[test]
        fn due_is_the_least_sufficient_amount(
            fiat in arb_decimal(4),
            price in arb_decimal(8),
            decimals in 0u8..=18,
        ) {
            let dec_ = Decimals::new(decimals).unwrap();
            let price = Price::new(price).unwrap();
            let due = crypto_due(fiat, price, dec_).unwrap();
            // Check with exact integers: due × price × 10^fs ≥ fiat × 10^(d + ps)
            let (fm, fs) = decimal_parts(fiat).unwrap();
            let (pm, ps) = decimal_parts(price.get()).unwrap();
            let ten = U256::from(10u8);
            let lhs = |units: u128| U256::from(units) * pm * ten.pow(U256::from(fs));
            let rhs = fm * ten.pow(U256::from(u32::from(decimals) + ps));
            prop_assert!(lhs(due.get()) >= rhs);
            if due.get() > 0 {
                prop_assert!(lhs(due.get() - 1) < rhs);
            }
        }

        /// Converting to a decimal and back is lossless for every amount Decimal can hold.
        #[test]
        fn decimal_roundtrip(units in 0u128..(1u128 << 95), decimals in 0u8..=28) {
            let d = Decimals::new(decimals).unwrap();
            let amount = BaseUnits::new(units);
            let as_dec = amount.to_decimal(d).unwrap();
            prop_assert_eq!(BaseUnits::from_decimal(as_dec, d), Ok(amount));
        }

        /// The display string parses back to the same decimal value.
        #[test]
        fn format_matches_decimal(units in 0u128..(1u128 << 95), decimals in 0u8..=28) {
            let d = Decimals::new(decimals).unwrap();
            let amount = BaseUnits::new(units);
            let shown = Decimal::from_str(&amount.format(d)).unwrap();
            prop_assert_eq!(shown, amount.to_decimal(d).unwrap());
        }

        /// String form round-trips for the whole u128 range.
        #[test]
        fn string_roundtrip(units in any::<u128>()) {
            let amount = BaseUnits::new(units);
            prop_assert_eq!(amount.to_string().parse::<BaseUnits>(), Ok(amount));
        }

        /// Up and down rounding differ by at most one base unit, and only when inexact.
        #[test]
        fn rounding_brackets(amount in arb_decimal(12), decimals in 0u8..=18) {
            let d = Decimals::new(decimals).unwrap();
            let up = BaseUnits::from_decimal_rounded(amount, d, Rounding::Up);
            let down = BaseUnits::from_decimal_rounded(amount, d, Rounding::Down);
            if let (Ok(up), Ok(down)) = (up, down) {
                prop_assert!(up.get() - down.get() <= 1);
                let exact = BaseUnits::from_decimal(amount, d).is_ok();
                prop_assert_eq!(exact, up == down);
            }
        }

        /// Ratio thresholds bracket the exact product.
        #[test]
        fn ratio_brackets(units in 0u128..(1u128 << 100), ratio in arb_decimal(6)) {
            let amount = BaseUnits::new(units);
            if let (Ok(up), Ok(down)) = (
                amount.mul_ratio(ratio, Rounding::Up),
                amount.mul_ratio(ratio, Rounding::Down),
            ) {
                prop_assert!(up >= down);
                prop_assert!(up.get() - down.get() <= 1);
            }
        }
    }
}
