//! Coffer values ↔ Pay Protocol values: numbers for chains and currencies, status enums, the
//! payment and refund objects.

use coffer_core::{
    AssetId, BaseUnits, Chain, ChainId, Order, OrderState, OrderStatus, Payment, PayoutRequest,
    PayoutStatus, StatusReason,
};
use coffer_engine::{AssetRegistry, Engine};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// Pay Protocol's platform-internal `chainId` for a Coffer chain: the EIP-155 chain id of a
/// chain that has one (EVM: 1 Ethereum, 56 BSC, 31337 anvil); other chains get 900001,
/// 900002, … in the registry's (sorted) order.
pub fn chain_number(assets: &AssetRegistry, chain: &Chain) -> i64 {
    match chain.evm_chain_id {
        Some(id) => i64::try_from(id).unwrap_or(i64::MAX),
        None => {
            let position = assets
                .chains()
                .filter(|c| c.evm_chain_id.is_none())
                .position(|c| c.id == chain.id)
                .unwrap_or(0);
            900_001 + i64::try_from(position).unwrap_or(0)
        }
    }
}

pub fn chain_number_of(assets: &AssetRegistry, chain: &ChainId) -> Option<i64> {
    assets.chain(chain).map(|c| chain_number(assets, c))
}

pub fn chain_by_number(assets: &AssetRegistry, number: i64) -> Option<Chain> {
    assets
        .chains()
        .find(|c| chain_number(assets, c) == number)
        .cloned()
}

/// `currencyId`: the asset's 1-based position in the server's (sorted) asset list.
pub fn currency_number(assets: &AssetRegistry, asset: &AssetId) -> i64 {
    assets
        .assets()
        .position(|a| &a.id == asset)
        .map_or(0, |p| i64::try_from(p).unwrap_or(0) + 1)
}

pub fn asset_by_numbers(assets: &AssetRegistry, chain: i64, currency: i64) -> Option<AssetId> {
    let chain = chain_by_number(assets, chain)?;
    assets
        .assets()
        .find(|a| a.chain() == &chain.id && currency_number(assets, &a.id) == currency)
        .map(|a| a.id.clone())
}

/// The asset a buyer pays with for a quote: the quoted crypto itself, or for a fiat quote the
/// chain's USDT (else its first USD stablecoin).
pub fn asset_for_quote(
    assets: &AssetRegistry,
    chain: &Chain,
    symbol: &str,
    fiat: bool,
) -> Option<AssetId> {
    let on_chain = || assets.assets().filter(|a| a.chain() == &chain.id);
    if fiat {
        on_chain()
            .find(|a| a.symbol().as_str().eq_ignore_ascii_case("USDT"))
            .or_else(|| on_chain().find(|a| a.usd_stablecoin))
            .map(|a| a.id.clone())
    } else {
        on_chain()
            .find(|a| a.symbol().as_str().eq_ignore_ascii_case(symbol))
            .map(|a| a.id.clone())
    }
}

/// `paymentStatus`: 0 paid, 1 pending payment, 2 block confirmation, 3 partially paid,
/// 4 payment failed (expired or invalid), 5 refunded.
pub fn payment_status(state: OrderState) -> u8 {
    match (state.status, state.reason) {
        (OrderStatus::Settled, _) => 0,
        (OrderStatus::Pending, StatusReason::PaidPartial) => 3,
        (OrderStatus::Pending, _) => 1,
        (OrderStatus::Processing, _) => 2,
        (OrderStatus::Expired, StatusReason::PaidPartial) => 3,
        (OrderStatus::Expired, _) | (OrderStatus::Invalid, _) => 4,
        (OrderStatus::Refunded, _) => 5,
    }
}

/// `refundStatus` (and the withdrawal status): 0 success, 1 pending approval, 2 under review,
/// 3 block confirmation, 4 failure, 5 rejected.
pub fn refund_status(status: PayoutStatus) -> u8 {
    match status {
        PayoutStatus::Completed => 0,
        PayoutStatus::Requested => 1,
        PayoutStatus::Approved => 2,
        PayoutStatus::Sent => 3,
        PayoutStatus::Failed => 4,
        PayoutStatus::Rejected => 5,
    }
}

/// The vendor's names for the engine's input fields, for error messages.
pub fn field_name(field: &'static str) -> &'static str {
    match field {
        "amount" => "quoteAmount",
        "currency" => "quoteCurrencySymbol",
        "order_no" => "outTradeNo",
        "description" => "description",
        "callback_url" => "notifyUrl",
        "success_url" => "redirectionUrl",
        "destination" => "transferAddress",
        "asset" => "chainId",
        other => other,
    }
}

/// `outPaymentNo`: `yyyyMMddHHmmss` (UTC) + 7 random digits, 21 digits like the vendor's.
pub fn out_payment_no(now: OffsetDateTime, random: [u8; 16]) -> String {
    let stamp = now
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default();
    let n = u128::from_le_bytes(random) % 10_000_000;
    format!("{stamp}{n:07}")
}

pub fn out_payment_no_of(order: &Order) -> String {
    order
        .dialect_data
        .get("outPaymentNo")
        .and_then(Value::as_str)
        .map_or_else(|| order.id.to_string(), str::to_owned)
}

/// `saltHash`: Coffer has no sub-contracts; an opaque 32-byte value tied to the order's
/// address (SHA-256 of order id and address), so it changes whenever the address does.
pub fn salt_hash(order: &Order) -> String {
    let mut h = Sha256::new();
    h.update(order.id.as_str().as_bytes());
    if let Some(t) = &order.target {
        h.update(t.address.as_bytes());
    }
    format!("0x{}", hex::encode(h.finalize()))
}

/// `orgId`: a stable number for the merchant (first 31 bits of SHA-256 of its id).
pub fn org_id(order: &Order) -> i64 {
    let digest = Sha256::digest(order.merchant_id.as_str().as_bytes());
    i64::from(u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) >> 1)
}

/// `"2024-03-28 11:43:05"`, in UTC.
pub fn time_text(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

/// The payment object of detail, list and the payment callback.
pub fn payment_json(order: &Order, payments: &[Payment], assets: &AssetRegistry) -> Value {
    let target = order.target.as_ref();
    let counted: Vec<&Payment> = payments
        .iter()
        .filter(|p| p.match_status.counts() && p.status != coffer_core::PaymentStatus::Reversed)
        .collect();
    let last = counted.last();
    let legal = order
        .dialect_data
        .get("isLegalTender")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| i64::from(coffer_core::fiat::fiat_currency(&order.currency).is_some()));
    json!({
        "chainId": target.and_then(|t| chain_number_of(assets, t.asset.chain())).unwrap_or(0),
        "orgId": org_id(order),
        "outTradeNo": order.order_no.clone().unwrap_or_default(),
        "outPaymentNo": out_payment_no_of(order),
        "description": order.description.clone().unwrap_or_default(),
        "isLegalTender": legal,
        "quoteCurrencySymbol": order.currency,
        "quoteAmount": coffer_dialect::amount_as_sent(order, "quoteAmount"),
        "paymentStatus": payment_status(order.state),
        "paymentType": 1,
        "expectedAmount": target.map(|t| t.amount_due.to_string()).unwrap_or_else(|| "0".into()),
        "settlementAmount": order.totals.confirmed.to_string(),
        "settlementCurrencySymbol": target.map(|t| t.asset.symbol().as_str().to_owned()).unwrap_or_default(),
        "transferHash": last.map(|p| p.txid.clone()).unwrap_or_default(),
        "userWalletAddress": target.map(|t| t.address.clone()).unwrap_or_default(),
        "fromAddress": last.and_then(|p| p.from_address.clone()).unwrap_or_default(),
        "createTime": time_text(order.created_at),
        "blockTime": last.map_or(0, |p| p.occurred_at.unix_timestamp()),
    })
}

/// The refund object of refund detail, list and the refund callback.
pub fn refund_json(r: &PayoutRequest, order: Option<&Order>, assets: &AssetRegistry) -> Value {
    json!({
        "chainId": r.asset.as_ref().and_then(|a| chain_number_of(assets, a.chain())).unwrap_or(0),
        "currencyId": r.asset.as_ref().map_or(0, |a| currency_number(assets, a)),
        "refundId": r.seq,
        "outTradeNo": order.and_then(|o| o.order_no.clone()).unwrap_or_default(),
        "outPaymentNo": order.map(out_payment_no_of).unwrap_or_default(),
        "refundAddress": r.destination.clone().unwrap_or_default(),
        "refundAmount": r.amount.unwrap_or(BaseUnits::ZERO).to_string(),
        "refundFee": "0",
        "refundStatus": refund_status(r.status),
        "refundTime": time_text(r.created_at),
        "transferHash": r.txid.clone().unwrap_or_default(),
    })
}

/// The withdrawal object of the withdrawal callback. The vendor's key names were not captured
/// (only the fields' meanings): named like the rest of the dialect, see
/// `docs/compat/payprotocol.md`.
pub fn withdrawal_json(w: &PayoutRequest, assets: &AssetRegistry) -> Value {
    json!({
        "chainId": w.asset.as_ref().and_then(|a| chain_number_of(assets, a.chain())).unwrap_or(0),
        "currencyId": w.asset.as_ref().map_or(0, |a| currency_number(assets, a)),
        "withdrawId": w.seq,
        "outTradeNo": w.reference.clone().unwrap_or_default(),
        "withdrawAmount": w.amount.unwrap_or(BaseUnits::ZERO).to_string(),
        "withdrawAddress": w.destination.clone().unwrap_or_default(),
        "withdrawStatus": refund_status(w.status),
        "applyTime": time_text(w.created_at),
        "transferHash": w.txid.clone().unwrap_or_default(),
    })
}

pub fn chains_json(assets: &AssetRegistry) -> Value {
    Value::Array(
        assets
            .chains()
            .map(|c| {
                json!({
                    "chainId": chain_number(assets, c),
                    "chainName": c.name,
                    "chainCode": c.id.as_str(),
                })
            })
            .collect(),
    )
}

pub fn currencies_json(engine: &Engine, chain: Option<i64>) -> Value {
    let assets = engine.assets();
    let now = engine.now();
    Value::Array(
        assets
            .assets()
            .filter(|a| chain.is_none() || chain_number_of(assets, a.chain()) == chain)
            .map(|a| {
                let contract = match &a.kind {
                    coffer_core::AssetKind::Token { contract } => contract.clone(),
                    _ => String::new(),
                };
                // "Real-time exchange rate from USDT to this currency".
                let rate = if a.symbol().as_str().eq_ignore_ascii_case("USDT") {
                    Some("1".to_owned())
                } else {
                    // USDT taken at 1 USD: units of the asset one USD buys.
                    engine
                        .rates()
                        .quote(a.symbol().as_str(), "USD", now)
                        .ok()
                        .and_then(|q| rust_decimal::Decimal::ONE.checked_div(q.price.get()))
                        .map(|r| r.round_dp(8).normalize().to_string())
                };
                json!({
                    "currencyId": currency_number(assets, &a.id),
                    "chainId": chain_number_of(assets, a.chain()).unwrap_or(0),
                    "name": a.symbol().as_str(),
                    "symbol": a.symbol().as_str(),
                    "address": contract,
                    "decimals": a.decimals.get(),
                    "createTime": "",
                    "icon": "",
                    "exchangeRate": rate.unwrap_or_default(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_maps_to_a_documented_value() {
        for s in OrderState::all_valid() {
            assert!(payment_status(s) <= 5, "{s}");
        }
        assert_eq!(
            payment_status(OrderState::new(
                OrderStatus::Settled,
                StatusReason::PaidOver
            )),
            0
        );
        assert_eq!(
            payment_status(OrderState::new(
                OrderStatus::Pending,
                StatusReason::PaidPartial
            )),
            3
        );
        assert_eq!(payment_status(OrderState::NEW), 1);
        let mut seen: Vec<u8> = PayoutStatus::ALL.into_iter().map(refund_status).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            vec![0, 1, 2, 3, 4, 5],
            "one vendor value per payout status"
        );
    }

    #[test]
    fn out_payment_numbers() {
        let no = out_payment_no(time::macros::datetime!(2023-12-18 10:35:35 UTC), [7; 16]);
        assert_eq!(no.len(), 21);
        assert!(no.starts_with("20231218103535"));
        assert!(no.bytes().all(|b| b.is_ascii_digit()));
    }
}
