//! The pure aggregation rule: median of fresh sources, outliers dropped, quorum enforced.
//!
//! No I/O and no clock: callers pass the candidates (already filtered for staleness) and the
//! limits, so the rule is a deterministic function with exhaustive and property tests.

use rust_decimal::Decimal;

/// Significant digits kept in a derived price (a median of two values or a cross rate).
/// Providers quote at most 8–10 significant digits, so 12 loses nothing they said; the
/// relative rounding error is below 5·10⁻¹² (0.000000005 %).
pub const PRICE_SIGNIFICANT_DIGITS: u32 = 12;

/// One source's value for a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub source: String,
    pub value: Decimal,
}

/// The aggregated value and which sources it came from (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub value: Decimal,
    pub used: Vec<String>,
    /// Sources dropped as outliers, with their deviation from the first median in percent.
    pub dropped: Vec<(String, Decimal)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    #[error("{have} fresh source(s), quorum is {need}")]
    NoQuorum { have: usize, need: usize },
}

/// The median of `values`: the middle one, or the mean of the two middle ones (exact in
/// `Decimal`, then rounded to [`PRICE_SIGNIFICANT_DIGITS`]). `None` when empty.
pub fn median(values: &[Decimal]) -> Option<Decimal> {
    let mut sorted: Vec<Decimal> = values.to_vec();
    sorted.sort();
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    if n % 2 == 1 {
        return sorted.get(n / 2).copied();
    }
    let a = sorted.get(n / 2 - 1)?;
    let b = sorted.get(n / 2)?;
    let sum = a.checked_add(*b)?;
    sum.checked_div(Decimal::TWO).map(round_price)
}

/// Round a derived price to [`PRICE_SIGNIFICANT_DIGITS`] significant digits (half to even),
/// trailing zeros removed.
pub fn round_price(value: Decimal) -> Decimal {
    value
        .round_sf_with_strategy(
            PRICE_SIGNIFICANT_DIGITS,
            rust_decimal::RoundingStrategy::MidpointNearestEven,
        )
        .unwrap_or(value)
        .normalize()
}

/// `|value − reference| / reference × 100`. `None` if the reference is not positive.
pub fn deviation_percent(value: Decimal, reference: Decimal) -> Option<Decimal> {
    if reference <= Decimal::ZERO {
        return None;
    }
    let diff = (value - reference).abs();
    diff.checked_mul(Decimal::ONE_HUNDRED)?
        .checked_div(reference)
        .map(round_price)
}

/// Median of the candidates after dropping those deviating more than `max_deviation_percent`
/// from the median of all; fewer than `quorum` left (before or after) → error. A quorum of 0
/// is treated as 1: a rate never comes from nothing.
pub fn aggregate(
    candidates: &[Candidate],
    quorum: usize,
    max_deviation_percent: Decimal,
) -> Result<Aggregate, AggregateError> {
    let need = quorum.max(1);
    let valid: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.value > Decimal::ZERO)
        .collect();
    if valid.len() < need {
        return Err(AggregateError::NoQuorum {
            have: valid.len(),
            need,
        });
    }
    let all: Vec<Decimal> = valid.iter().map(|c| c.value).collect();
    let first = median(&all).ok_or(AggregateError::NoQuorum { have: 0, need })?;
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for c in valid {
        match deviation_percent(c.value, first) {
            Some(d) if d <= max_deviation_percent => kept.push(c),
            Some(d) => dropped.push((c.source.clone(), d)),
            None => dropped.push((c.source.clone(), Decimal::ONE_HUNDRED)),
        }
    }
    if kept.len() < need {
        return Err(AggregateError::NoQuorum {
            have: kept.len(),
            need,
        });
    }
    let values: Vec<Decimal> = kept.iter().map(|c| c.value).collect();
    let value = median(&values).ok_or(AggregateError::NoQuorum { have: 0, need })?;
    let mut used: Vec<String> = kept.iter().map(|c| c.source.clone()).collect();
    used.sort();
    dropped.sort();
    Ok(Aggregate {
        value,
        used,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn c(source: &str, v: &str) -> Candidate {
        Candidate {
            source: source.into(),
            value: d(v),
        }
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[d("3")]), Some(d("3")));
        assert_eq!(median(&[d("3"), d("1"), d("2")]), Some(d("2")));
        assert_eq!(median(&[d("4"), d("1"), d("2"), d("3")]), Some(d("2.5")));
        assert_eq!(
            median(&[d("67187.33"), d("67187.34")]),
            Some(d("67187.335"))
        );
    }

    #[test]
    fn outlier_is_dropped_and_median_recomputed() {
        let got = aggregate(
            &[
                c("kraken", "67000"),
                c("coinbase", "67100"),
                c("coingecko", "67050"),
                c("okx", "70000"),
            ],
            2,
            d("2"),
        )
        .unwrap();
        assert_eq!(got.value, d("67050"));
        assert_eq!(got.used, vec!["coinbase", "coingecko", "kraken"]);
        assert_eq!(got.dropped.len(), 1);
        assert_eq!(got.dropped[0].0, "okx");
        // first median 67075; (70000 − 67075) / 67075 × 100 ≈ 4.3608 %
        assert!(got.dropped[0].1 > d("4.36") && got.dropped[0].1 < d("4.37"));
    }

    #[test]
    fn quorum_is_enforced_before_and_after_dropping() {
        assert_eq!(
            aggregate(&[c("a", "1")], 2, d("2")),
            Err(AggregateError::NoQuorum { have: 1, need: 2 })
        );
        // Two sources disagreeing by 10 %: both are 5 % off their mean → both dropped.
        assert_eq!(
            aggregate(&[c("a", "100"), c("b", "110")], 2, d("2")),
            Err(AggregateError::NoQuorum { have: 0, need: 2 })
        );
        assert_eq!(
            aggregate(&[], 0, d("2")),
            Err(AggregateError::NoQuorum { have: 0, need: 1 })
        );
        // Non-positive values never count.
        assert_eq!(
            aggregate(&[c("a", "0"), c("b", "100")], 2, d("2")),
            Err(AggregateError::NoQuorum { have: 1, need: 2 })
        );
    }

    #[test]
    fn deviation_exactly_at_limit_is_kept() {
        let got = aggregate(&[c("a", "98"), c("b", "100"), c("c", "102")], 3, d("2")).unwrap();
        assert_eq!(got.value, d("100"));
        assert!(got.dropped.is_empty());
    }

    fn value() -> impl Strategy<Value = Decimal> {
        (1u64..10_000_000_000, 0u32..10).prop_map(|(m, s)| Decimal::new(m as i64, s))
    }

    proptest! {
        #[test]
        fn median_lies_within_the_kept_values(values in proptest::collection::vec(value(), 1..9)) {
            let candidates: Vec<Candidate> = values.iter().enumerate()
                .map(|(i, v)| Candidate { source: format!("s{i}"), value: *v }).collect();
            match aggregate(&candidates, 1, Decimal::from(5)) {
                Ok(agg) => {
                    let kept: Vec<Decimal> = candidates.iter()
                        .filter(|c| agg.used.contains(&c.source)).map(|c| c.value).collect();
                    let lo = kept.iter().min().copied().unwrap();
                    let hi = kept.iter().max().copied().unwrap();
                    prop_assert!(agg.value >= lo && agg.value <= hi);
                    prop_assert_eq!(agg.used.len() + agg.dropped.len(), candidates.len());
                    let first = median(&values).unwrap();
                    for c in &candidates {
                        let dev = deviation_percent(c.value, first).unwrap();
                        prop_assert_eq!(agg.used.contains(&c.source), dev <= Decimal::from(5));
                    }
                }
                Err(AggregateError::NoQuorum { have, need }) => prop_assert!(have < need),
            }
        }

        #[test]
        fn median_is_order_independent(mut values in proptest::collection::vec(value(), 1..9)) {
            let a = median(&values);
            values.reverse();
            prop_assert_eq!(a, median(&values));
        }
    }
}
