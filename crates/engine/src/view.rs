//! The order object as APIs return it and as events carry it.

use coffer_core::Order;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::{AssetRegistry, Engine, EngineSettings};

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn checkout_url(order: &Order, settings: &EngineSettings) -> String {
    format!(
        "{}/pay/{}",
        settings.public_url.trim_end_matches('/'),
        order.checkout_token
    )
}

/// Amounts are strings; base-unit integers are given beside human decimals so a client never
/// has to do decimal arithmetic to compare with the chain.
pub fn order_json(order: &Order, engine: &Engine) -> Value {
    let (settings, assets) = (engine.settings(), engine.assets());
    let payment = order.target.as_ref().map(|t| {
        let decimals = assets.asset(&t.asset).map(|a| a.decimals);
        let uri = engine.payment_uri(t);
        let human = |units: coffer_core::BaseUnits| decimals.map(|d| units.format(d));
        json!({
            "asset": t.asset.to_string(),
            "address": t.address,
            "amount_due": human(t.amount_due),
            "amount_due_base_units": t.amount_due.to_string(),
            "amount_confirmed": human(order.totals.confirmed),
            "amount_unconfirmed": human(order.totals.unconfirmed),
            "payment_uri": uri,
            "derivation_index": t.derivation.as_ref().map(|d| d.index),
            "rate": {
                "price": t.rate.price.get().to_string(),
                "source": t.rate.source,
                "at": rfc3339(t.rate.at),
            },
        })
    });
    json!({
        "id": order.id.to_string(),
        "object": "order",
        "order_no": order.order_no,
        "status": order.state.status.as_str(),
        "reason": order.state.reason.as_str(),
        "amount": order.amount.to_string(),
        "currency": order.currency,
        "fixed_stablecoin_rate": order.fixed_stablecoin_rate,
        "payment": payment,
        "checkout_url": checkout_url(order, settings),
        "description": order.description,
        "metadata": order.metadata,
        "success_url": order.links.success_url,
        "expired_url": order.links.expired_url,
        "callback_url": order.links.callback_url,
        "expires_at": rfc3339(order.expires_at),
        "monitor_until": rfc3339(order.monitor_until),
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
    })
}

/// A payment as APIs return it and as `payment.*` events carry it: amounts as strings, in
/// base units and as decimals.
pub fn payment_json(payment: &coffer_core::Payment, assets: &AssetRegistry) -> Value {
    let decimals = assets.asset(&payment.asset).map(|a| a.decimals);
    json!({
        "id": payment.id.to_string(),
        "object": "payment",
        "order_id": payment.order_id.to_string(),
        "asset": payment.asset.to_string(),
        "amount": decimals.map(|d| payment.amount.format(d)),
        "amount_base_units": payment.amount.to_string(),
        "txid": payment.txid,
        "output_index": payment.output_index,
        "from_address": payment.from_address,
        "to_address": payment.to_address,
        "block_height": payment.block_height,
        "block_hash": payment.block_hash,
        "confirmations": payment.confirmations,
        "status": payment.status.as_str(),
        "match_status": payment.match_status.as_str(),
        "late": payment.late,
        "occurred_at": rfc3339(payment.occurred_at),
        "detected_at": rfc3339(payment.detected_at),
        "updated_at": rfc3339(payment.updated_at),
    })
}

/// A deposit (a transfer to a deposit account's standing address) as events carry it.
pub fn deposit_json(deposit: &coffer_core::Deposit, assets: &AssetRegistry) -> Value {
    let decimals = assets.asset(&deposit.asset).map(|a| a.decimals);
    json!({
        "id": deposit.id.to_string(),
        "object": "deposit",
        "account": {
            "number": deposit.account_seq,
            "reference": deposit.account_uuid,
        },
        "asset": deposit.asset.to_string(),
        "amount": decimals.map(|d| deposit.amount.format(d)),
        "amount_base_units": deposit.amount.to_string(),
        "txid": deposit.txid,
        "output_index": deposit.output_index,
        "from_address": deposit.from_address,
        "to_address": deposit.to_address,
        "block_height": deposit.block_height,
        "block_hash": deposit.block_hash,
        "confirmations": deposit.confirmations,
        "status": deposit.status.as_str(),
        "occurred_at": rfc3339(deposit.occurred_at),
        "detected_at": rfc3339(deposit.detected_at),
        "confirmed_at": deposit.confirmed_at.map(rfc3339),
        "updated_at": rfc3339(deposit.updated_at),
    })
}

/// A deposit account (a merchant's user with standing addresses) as the native API shows it.
pub fn deposit_account_json(account: &coffer_store::DepositAccountRecord) -> Value {
    let addresses: Vec<Value> = account
        .addresses
        .iter()
        .map(|a| {
            json!({
                "chain": a.chain.as_str(),
                "address": a.address,
                "derivation_index": a.derivation_index,
            })
        })
        .collect();
    json!({
        "object": "deposit_account",
        "number": account.seq,
        "reference": account.uuid,
        "addresses": addresses,
        "created_at": rfc3339(account.created_at),
    })
}
