//! What the buyer sees, computed from the order, its payments and the configuration: one
//! [`Checkout`] value feeds the HTML page, `GET /pay/{token}/status` and the live updates, so
//! the three never disagree. Pure: no I/O, the clock is an argument.

use std::collections::BTreeMap;

use coffer_core::{
    Asset, BaseUnits, Chain, ChainId, Order, OrderStatus, Payment, PaymentStatus,
};
use coffer_engine::AssetRegistry;
use coffer_engine::view::rfc3339;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Which screen the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// No asset yet (or the buyer asked to change it): the chooser.
    Choose,
    /// Waiting for (the rest of) the payment.
    Pay,
    /// The full amount was seen; waiting for confirmations.
    Processing,
    /// Settled.
    Paid,
    /// The rate lock passed without full payment.
    Expired,
    /// Cancelled, invalidated or refunded by the merchant.
    Closed,
}

impl Screen {
    pub fn as_str(self) -> &'static str {
        match self {
            Screen::Choose => "choose",
            Screen::Pay => "pay",
            Screen::Processing => "processing",
            Screen::Paid => "paid",
            Screen::Expired => "expired",
            Screen::Closed => "closed",
        }
    }

    /// Nothing more will change on this screen by itself.
    pub fn is_final(self) -> bool {
        matches!(self, Screen::Paid | Screen::Expired | Screen::Closed)
    }
}

/// An asset the buyer may choose, with what the order costs in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub asset: Asset,
    /// `None` when no rate is available for it right now.
    pub amount: Option<String>,
}

/// Chain and choices, in chain order.
pub type ChoiceGroups = Vec<(Chain, Vec<Choice>)>;

/// What to pay and where.
#[derive(Debug, Clone, PartialEq)]
pub struct PayTarget {
    pub asset: Asset,
    pub chain: Chain,
    pub address: String,
    pub amount_due: String,
    pub amount_due_units: BaseUnits,
    pub received: String,
    pub received_units: BaseUnits,
    pub remaining: String,
    pub remaining_units: BaseUnits,
    pub uri: Option<String>,
    /// Least confirmations among counted payments still short of the requirement (or the
    /// requirement once all are confirmed); 0 before anything arrived.
    pub confirmations: u32,
    pub confirmations_required: u32,
}

/// A transaction that paid the order, with its explorer link.
#[derive(Debug, Clone, PartialEq)]
pub struct Tx {
    pub txid: String,
    pub amount: String,
    pub confirmations: u32,
    pub url: Option<String>,
}

/// Everything the checkout shows for one order at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkout {
    pub screen: Screen,
    pub order: Order,
    pub merchant_name: String,
    pub target: Option<PayTarget>,
    pub transactions: Vec<Tx>,
    /// The success or expired URL with placeholders filled in, on those screens.
    pub redirect: Option<String>,
    pub now: OffsetDateTime,
}

impl Checkout {
    pub fn build(
        order: Order,
        merchant_name: String,
        payments: &[Payment],
        assets: &AssetRegistry,
        explorers: &BTreeMap<ChainId, String>,
        now: OffsetDateTime,
        want_chooser: bool,
    ) -> Checkout {
        let state = order.evaluate(now);
        let target = order.target.as_ref().and_then(|t| {
            let asset = assets.asset(&t.asset)?.clone();
            let chain = assets.chain(asset.chain())?.clone();
            let received_units = order.totals.seen();
            let remaining_units = t.amount_due.saturating_sub(received_units);
            let required = order.policy.confirmations.unwrap_or(chain.confirmations);
            let counted: Vec<&Payment> = payments
                .iter()
                .filter(|p| p.status != PaymentStatus::Reversed && p.match_status.counts())
                .collect();
            let confirmations = if counted.is_empty() {
                0
            } else {
                counted
                    .iter()
                    .map(|p| {
                        if p.status == PaymentStatus::Confirmed {
                            p.confirmations.max(required)
                        } else {
                            p.confirmations.min(required)
                        }
                    })
                    .min()
                    .unwrap_or(0)
            };
            Some(PayTarget {
                uri: coffer_core::uri::payment_uri(&chain, &asset, &t.address, remaining_or_due(
                    t.amount_due,
                    remaining_units,
                )),
                address: t.address.clone(),
                amount_due: t.amount_due.format(asset.decimals),
                amount_due_units: t.amount_due,
                received: received_units.format(asset.decimals),
                received_units,
                remaining: remaining_units.format(asset.decimals),
                remaining_units,
                confirmations,
                confirmations_required: required,
                asset,
                chain,
            })
        });
        let screen = match state.status {
            OrderStatus::Settled => Screen::Paid,
            OrderStatus::Processing => Screen::Processing,
            OrderStatus::Expired => Screen::Expired,
            OrderStatus::Invalid | OrderStatus::Refunded => Screen::Closed,
            OrderStatus::Pending => {
                let unpaid = order.totals.seen().is_zero();
                if target.is_none() || (want_chooser && unpaid) {
                    Screen::Choose
                } else {
                    Screen::Pay
                }
            }
        };
        let transactions = payments
            .iter()
            .filter(|p| p.status != PaymentStatus::Reversed)
            .map(|p| Tx {
                txid: p.txid.clone(),
                amount: assets
                    .asset(&p.asset)
                    .map(|a| format!("{} {}", p.amount.format(a.decimals), a.symbol()))
                    .unwrap_or_else(|| format!("{} {}", p.amount, p.asset)),
                confirmations: p.confirmations,
                url: explorers
                    .get(p.asset.chain())
                    .map(|template| explorer_url(template, &p.txid)),
            })
            .collect();
        let redirect = match screen {
            Screen::Paid => order.links.success_url.as_deref(),
            Screen::Expired => order.links.expired_url.as_deref(),
            _ => None,
        }
        .and_then(|template| fill_placeholders(template, &order));
        let mut order = order;
        order.state = state;
        Checkout {
            screen,
            order,
            merchant_name,
            target,
            transactions,
            redirect,
            now,
        }
    }

    /// Changes whenever anything shown changes (not the countdown): live updates compare it.
    pub fn fingerprint(&self) -> String {
        let confirmations: u64 = self
            .transactions
            .iter()
            .map(|t| u64::from(t.confirmations))
            .sum();
        format!(
            "{}.{}.{}.{}",
            self.screen.as_str(),
            self.order.version,
            self.transactions.len(),
            confirmations
        )
    }

    pub fn seconds_left(&self) -> i64 {
        (self.order.expires_at - self.now).whole_seconds().max(0)
    }

    /// The JSON of `GET /pay/{token}/status` and of each live update.
    pub fn status_json(&self) -> Value {
        let payment = self.target.as_ref().map(|t| {
            json!({
                "asset": t.asset.id.to_string(),
                "symbol": t.asset.symbol().as_str(),
                "chain": t.chain.id.as_str(),
                "chain_name": t.chain.name,
                "address": t.address,
                "amount_due": t.amount_due,
                "amount_due_base_units": t.amount_due_units.to_string(),
                "amount_received": t.received,
                "amount_received_base_units": t.received_units.to_string(),
                "amount_remaining": t.remaining,
                "amount_remaining_base_units": t.remaining_units.to_string(),
                "payment_uri": t.uri,
                "confirmations": t.confirmations,
                "confirmations_required": t.confirmations_required,
            })
        });
        let transactions: Vec<Value> = self
            .transactions
            .iter()
            .map(|t| {
                json!({"txid": t.txid, "amount": t.amount, "confirmations": t.confirmations, "explorer_url": t.url})
            })
            .collect();
        json!({
            "object": "checkout_status",
            "screen": self.screen.as_str(),
            "status": self.order.state.status.as_str(),
            "reason": self.order.state.reason.as_str(),
            "order_id": self.order.id.to_string(),
            "order_no": self.order.order_no,
            "amount": self.order.amount.to_string(),
            "currency": self.order.currency,
            "expires_at": rfc3339(self.order.expires_at),
            "seconds_left": self.seconds_left(),
            "payment": payment,
            "transactions": transactions,
            "redirect_url": self.redirect,
            "fingerprint": self.fingerprint(),
        })
    }
}

/// The payment URI asks for what is still owed after a partial payment.
fn remaining_or_due(due: BaseUnits, remaining: BaseUnits) -> BaseUnits {
    if remaining.is_zero() { due } else { remaining }
}

/// `https://bscscan.com/tx/{txid}` with the transaction id filled in.
pub fn explorer_url(template: &str, txid: &str) -> String {
    let safe: String = txid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    template.replace("{txid}", &safe)
}

/// A merchant's redirect URL with `{order_id}` and `{order_no}` filled in (URL-encoded);
/// `None` unless the result is an http(s) URL.
pub fn fill_placeholders(template: &str, order: &Order) -> Option<String> {
    let encode = |s: &str| -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    };
    let id = encode(order.id.as_str());
    let no = encode(order.order_no.as_deref().unwrap_or_default());
    let filled = template
        .replace("{order_id}", &id)
        .replace("%7Border_id%7D", &id)
        .replace("{order_no}", &no)
        .replace("%7Border_no%7D", &no);
    let parsed = url::Url::parse(&filled).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// The merchant's choosable assets (those on chains it has a wallet for), grouped by chain,
/// each with what `order` costs in it.
pub fn choices(
    engine: &coffer_engine::Engine,
    order: &Order,
    wallet_chains: &[ChainId],
) -> ChoiceGroups {
    let mut groups: ChoiceGroups = Vec::new();
    for chain in engine.assets.chains() {
        if !wallet_chains.contains(&chain.id) {
            continue;
        }
        let list: Vec<Choice> = engine
            .assets
            .assets()
            .filter(|a| a.chain() == &chain.id)
            .map(|a| Choice {
                asset: a.clone(),
                amount: engine
                    .quote(order, &a.id)
                    .ok()
                    .map(|units| units.format(a.decimals)),
            })
            .collect();
        if !list.is_empty() {
            groups.push((chain.clone(), list));
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn explorer_template_gets_the_txid_and_nothing_else() {
        assert_eq!(
            explorer_url("https://bscscan.com/tx/{txid}", "0xabc"),
            "https://bscscan.com/tx/0xabc"
        );
        assert_eq!(
            explorer_url("https://x/tx/{txid}", "0xab\"><script>"),
            "https://x/tx/0xabscript"
        );
    }
}
