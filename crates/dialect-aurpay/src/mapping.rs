//! Translations between Coffer's values and Aurpay's: order status, chain and currency codes,
//! amounts and times. The status table here is the one in docs/compat/README.md.

use coffer_core::{AssetId, AssetKind, ChainId, OrderState, OrderStatus, StatusReason};
use coffer_engine::AssetRegistry;
use rust_decimal::Decimal;
use time::OffsetDateTime;

/// Coffer status + reason → Aurpay order status (`PENDING, OVERDUE, SUCCESS, RESOLVED,
/// PARTIAL, TERMINATED, REFUNDED`).
pub fn aurpay_status(state: OrderState) -> &'static str {
    match (state.status, state.reason) {
        (OrderStatus::Pending, StatusReason::PaidPartial) => "PARTIAL",
        (OrderStatus::Pending | OrderStatus::Processing, _) => "PENDING",
        (OrderStatus::Settled, StatusReason::Resolved) => "RESOLVED",
        (OrderStatus::Settled, _) => "SUCCESS",
        (OrderStatus::Expired, _) => "OVERDUE",
        (OrderStatus::Invalid, _) => "TERMINATED",
        (OrderStatus::Refunded, _) => "REFUNDED",
    }
}

/// Every Aurpay status value, in the order the docs list them.
pub const AURPAY_STATUSES: [&str; 7] = [
    "PENDING",
    "OVERDUE",
    "SUCCESS",
    "RESOLVED",
    "PARTIAL",
    "TERMINATED",
    "REFUNDED",
];

/// Aurpay chain codes and the Coffer chain ids they name (the ids of the built-in catalogues).
const CHAINS: &[(&str, &str, &str)] = &[
    // (Aurpay code, Coffer chain id, token suffix)
    ("ETH", "eth", "ERC20"),
    ("BNB", "bsc", "BEP20"),
    ("BSC", "bsc", "BEP20"),
    ("TRX", "tron", "TRC20"),
    ("BTC", "btc", "OMNI"),
    ("MATIC", "polygon", "POLYGON"),
    ("POLYGON", "polygon", "POLYGON"),
    ("ARB", "arbitrum", "ARB"),
    ("OP", "optimism", "OP"),
    ("BASE", "base", "BASE"),
    ("AVAX", "avalanche", "AVAX"),
    ("LTC", "ltc", "LTC"),
];

/// The Coffer chain an Aurpay chain code names: the table above, else the code itself as a
/// Coffer chain id (lowercased), so any configured chain can be used (e.g. `ANVIL`).
pub fn chain_for_code(code: &str, assets: &AssetRegistry) -> Option<ChainId> {
    let upper = code.trim().to_ascii_uppercase();
    let mut candidates: Vec<String> = CHAINS
        .iter()
        .filter(|(c, _, _)| *c == upper)
        .map(|(_, id, _)| (*id).to_owned())
        .collect();
    if upper == "BTC" {
        candidates.push("bitcoin".into());
    }
    candidates.push(upper.to_ascii_lowercase());
    candidates
        .iter()
        .filter_map(|c| ChainId::parse(c).ok())
        .find(|id| assets.chain(id).is_some())
}

/// Aurpay's code of a Coffer chain (`ETH`, `TRX`, …, else the id upper-cased).
pub fn code_for_chain(chain: &ChainId) -> String {
    CHAINS
        .iter()
        .find(|(_, id, _)| *id == chain.as_str())
        .map_or_else(
            || chain.as_str().to_ascii_uppercase(),
            |(c, _, _)| (*c).to_owned(),
        )
}

fn token_suffix(chain: &ChainId) -> Option<&'static str> {
    CHAINS
        .iter()
        .find(|(_, id, _)| *id == chain.as_str())
        .map(|(_, _, s)| *s)
}

/// The asset an Aurpay (`chain`, `currency`) pair names: `USDT-ERC20` on `ETH` is `eth:USDT`;
/// a plain symbol (`ETH`, `USDT`) is taken as is.
pub fn asset_for(chain: &str, currency: &str, assets: &AssetRegistry) -> Option<AssetId> {
    let chain = chain_for_code(chain, assets)?;
    let currency = currency.trim().to_ascii_uppercase();
    let symbol = currency.split('-').next().unwrap_or_default();
    let id: AssetId = format!("{}:{symbol}", chain.as_str()).parse().ok()?;
    assets.asset(&id).map(|a| a.id.clone())
}

/// Aurpay's currency code of an asset: the symbol for a chain's native coin, `SYMBOL-SUFFIX`
/// for a token on a chain with a known suffix (`USDT-ERC20`, `USDT-TRC20`), else the symbol.
pub fn currency_code(asset: &AssetId, assets: &AssetRegistry) -> String {
    let symbol = asset.symbol().as_str().to_owned();
    let is_token = assets
        .asset(asset)
        .is_some_and(|a| matches!(a.kind, AssetKind::Token { .. }));
    match token_suffix(asset.chain()) {
        Some(suffix) if is_token => format!("{symbol}-{suffix}"),
        _ => symbol,
    }
}

/// A chain's display name (`Ethereum`, `Tron`, …) as configured.
pub fn chain_name(chain: &ChainId, assets: &AssetRegistry) -> String {
    assets
        .chain(chain)
        .map_or_else(|| chain.as_str().to_owned(), |c| c.name.clone())
}

/// Aurpay's timestamps: ISO-8601 in UTC without a zone (`2025-02-06T00:00:00`).
pub fn naive_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Fiat amounts as Aurpay prints them: at least one fractional digit (`"19.0"`, `"100.5"`).
pub fn fiat_text(amount: Decimal) -> String {
    let n = amount.normalize();
    if n.scale() == 0 {
        format!("{n}.0")
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: OrderStatus, reason: StatusReason) -> OrderState {
        OrderState { status, reason }
    }

    #[test]
    fn every_state_maps_to_a_documented_status() {
        use StatusReason as R;
        let reasons = [
            R::None,
            R::PaidPartial,
            R::PaidOver,
            R::PaidLate,
            R::Marked,
            R::Resolved,
            R::Reversed,
        ];
        for status in OrderStatus::ALL {
            for reason in reasons {
                assert!(AURPAY_STATUSES.contains(&aurpay_status(state(status, reason))));
            }
        }
        assert_eq!(
            aurpay_status(state(OrderStatus::Pending, R::None)),
            "PENDING"
        );
        assert_eq!(
            aurpay_status(state(OrderStatus::Pending, R::PaidPartial)),
            "PARTIAL"
        );
        assert_eq!(
            aurpay_status(state(OrderStatus::Processing, R::None)),
            "PENDING"
        );
        assert_eq!(
            aurpay_status(state(OrderStatus::Settled, R::PaidOver)),
            "SUCCESS"
        );
        assert_eq!(
            aurpay_status(state(OrderStatus::Settled, R::Resolved)),
            "RESOLVED"
        );
        assert_eq!(
            aurpay_status(state(OrderStatus::Expired, R::PaidPartial)),
            "OVERDUE"
        );
        assert_eq!(
            aurpay_status(state(OrderStatus::Invalid, R::Marked)),
            "TERMINATED"
        );
        assert_eq!(
            aurpay_status(state(OrderStatus::Refunded, R::None)),
            "REFUNDED"
        );
    }

    #[test]
    fn amounts_and_times() {
        use std::str::FromStr;
        assert_eq!(fiat_text(Decimal::from_str("19").unwrap()), "19.0");
        assert_eq!(fiat_text(Decimal::from_str("19.00").unwrap()), "19.0");
        assert_eq!(fiat_text(Decimal::from_str("100.50").unwrap()), "100.5");
        assert_eq!(
            naive_time(time::macros::datetime!(2025-02-06 00:00:00.9 UTC)),
            "2025-02-06T00:00:00"
        );
    }
}
