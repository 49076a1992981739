//! Coffer objects in Aurpay's shapes (field names exactly as the vendor's).

use coffer_core::{AssetKind, Order, Payment, PaymentStatus};
use coffer_engine::AssetRegistry;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::mapping::{
    aurpay_status, chain_name, code_for_chain, currency_code, fiat_text, naive_time,
};

/// A decimal as a JSON number literal, exactly (no float on the way).
pub fn number(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("0".into()).unwrap_or_default())
}

/// The order's crypto amount due as a decimal string (`None` before a coin is chosen).
pub fn amount_due(order: &Order, assets: &AssetRegistry) -> Option<String> {
    let t = order.target.as_ref()?;
    let asset = assets.asset(&t.asset)?;
    Some(t.amount_due.format(asset.decimals))
}

/// The token contract of the order's asset (`None` for a native coin or no coin yet).
pub fn contract_addr(order: &Order, assets: &AssetRegistry) -> Option<String> {
    let t = order.target.as_ref()?;
    match &assets.asset(&t.asset)?.kind {
        AssetKind::Token { contract } => Some(contract.clone()),
        AssetKind::Native => None,
    }
}

/// The order object of Get Orders, Get Orders Details and the POST callback body.
pub fn order_json(order: &Order, payments: &[Payment], assets: &AssetRegistry) -> Value {
    let target = order.target.as_ref();
    let asset = target.and_then(|t| assets.asset(&t.asset));
    let counted: Vec<&Payment> = payments
        .iter()
        .filter(|p| p.status != PaymentStatus::Reversed)
        .collect();
    let first = counted.first();
    let obtained = match (asset, counted.is_empty()) {
        (Some(a), false) => Some(order.totals.seen().format(a.decimals)),
        _ => None,
    };
    let refund = order.state.status == coffer_core::OrderStatus::Refunded;
    json!({
        "user_id": order.merchant_id.to_string(),
        "order_id": order.id.to_string(),
        "order_type": "ORDER",
        "platform": "AURPAY",
        "status": aurpay_status(order.state),
        "chain": target.map(|t| code_for_chain(t.asset.chain())),
        "chain_name": target.map(|t| chain_name(t.asset.chain(), assets)),
        "currency": target.map(|t| currency_code(&t.asset, assets)),
        "amount": amount_due(order, assets),
        "vs_price": fiat_text(order.amount),
        "vs_currency": order.currency,
        "remark": order.description.clone().unwrap_or_default(),
        "refund": refund,
        "bind_id": null,
        "create_time": naive_time(order.created_at),
        "update_time": naive_time(order.updated_at),
        "tx_id": first.map(|p| p.id.to_string()),
        "tx_type": "ORDER",
        "obtained": obtained,
        "fee": "0",
        "from_addr": first.and_then(|p| p.from_address.clone()),
        "to_addr": target.map(|t| t.address.clone()),
        "tx_hash": first.map(|p| p.txid.clone()),
        "tx_hash_list": counted.iter().map(|p| p.txid.clone()).collect::<Vec<_>>(),
        "contract_id": contract_addr(order, assets),
        "website": null,
    })
}

/// One entry of Get Transaction: a payment, in the transaction-flow vocabulary.
pub fn tx_json(payment: &Payment, assets: &AssetRegistry) -> Value {
    let decimals = assets.asset(&payment.asset).map(|a| a.decimals);
    let amount = decimals.map(|d| payment.amount.format(d));
    let status = match payment.status {
        PaymentStatus::Unconfirmed => "PENDING",
        PaymentStatus::Confirmed => "SUCCESS",
        PaymentStatus::Reversed => "FAILED",
    };
    let tx_type = match payment.match_status {
        coffer_core::MatchStatus::Matched => "ORDER",
        _ => "UNKNOWN",
    };
    json!({
        "user_id": payment.merchant_id.to_string(),
        "tx_id": payment.id.to_string(),
        "tx_type": tx_type,
        "status": status,
        "chain": code_for_chain(payment.asset.chain()),
        "chain_name": chain_name(payment.asset.chain(), assets),
        "currency": currency_code(&payment.asset, assets),
        "amount": amount,
        "obtained": amount,
        "fee": "0",
        "order_id": payment.order_id.to_string(),
        "from_addr": payment.from_address,
        "to_addr": payment.to_address,
        "tx_hash": payment.txid,
        "confirmations": payment.confirmations,
        "create_time": naive_time(payment.detected_at),
        "update_time": naive_time(payment.updated_at),
    })
}
