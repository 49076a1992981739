//! What the buyer sees, computed from the order, its payments and the configuration: one
//! [`Checkout`] value feeds the HTML page, `GET /pay/{token}/status` and the live updates, so
//! the three never disagree. Pure: no I/O, the clock is an argument.

use std::collections::BTreeMap;

use coffer_core::{
    Asset, BaseUnits, Chain, ChainId, Order, OrderStatus, Payment, PaymentStatus, PaymentTarget,
};
use coffer_engine::view::rfc3339;
use coffer_engine::{AssetRegistry, Methods};
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
    /// The locked rate: price of one unit of the asset in the order's currency, and how it
    /// was obtained (`fixed:ETH/USD×ecb:USD/CNY`, `median(…)`, `peg`).
    pub rate: coffer_core::LockedRate,
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

/// What a checkout is built against: the server's chains and assets, their payment methods
/// (payment URIs) and explorer links.
#[derive(Clone, Copy)]
pub struct Chains<'a> {
    pub assets: &'a AssetRegistry,
    pub methods: &'a Methods,
    pub explorers: &'a BTreeMap<ChainId, String>,
}

impl Checkout {
    pub fn build(
        order: Order,
        merchant_name: String,
        payments: &[Payment],
        chains: Chains<'_>,
        now: OffsetDateTime,
        want_chooser: bool,
    ) -> Checkout {
        let Chains {
            assets,
            methods,
            explorers,
        } = chains;
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
            // The wallet link asks for what is left to pay.
            let still_due = PaymentTarget {
                amount_due: remaining_or_due(t.amount_due, remaining_units),
                ..t.clone()
            };
            Some(PayTarget {
                uri: methods.payment_uri(&chain, &asset, &still_due),
                address: t.address.clone(),
                amount_due: t.amount_due.format(asset.decimals),
                amount_due_units: t.amount_due,
                received: received_units.format(asset.decimals),
                received_units,
                remaining: remaining_units.format(asset.decimals),
                remaining_units,
                confirmations,
                confirmations_required: required,
                rate: t.rate.clone(),
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
                "rate": {
                    "price": t.rate.price.get().normalize().to_string(),
                    "source": t.rate.source,
                    "at": rfc3339(t.rate.at),
                },
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
    let safe: String = txid.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    template.replace("{txid}", &safe)
}

/// A merchant's redirect URL with `{order_id}` and `{order_no}` filled in (URL-encoded);
/// `None` unless the result is an http(s) URL.
pub fn fill_placeholders(template: &str, order: &Order) -> Option<String> {
    let encode =
        |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
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
    payable_chains: &[ChainId],
) -> ChoiceGroups {
    let mut groups: ChoiceGroups = Vec::new();
    for chain in engine.assets().chains() {
        if !payable_chains.contains(&chain.id) {
            continue;
        }
        let list: Vec<Choice> = engine
            .assets()
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

    use std::str::FromStr;

    use coffer_core::order::{LockedRate, OrderLinks, PaymentTarget};
    use coffer_core::{
        AssetId, AssetKind, ChainKind, CheckoutToken, Decimals, MatchStatus, MerchantId, Network,
        OrderId, OrderState, PaymentId, Price, SettlementPolicy, StatusReason,
    };
    use rust_decimal::Decimal;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    fn registry() -> AssetRegistry {
        let chain = Chain {
            id: ChainId::parse("bsc").unwrap(),
            kind: ChainKind::Evm,
            network: Network::Mainnet,
            name: "BNB Smart Chain".into(),
            confirmations: 15,
            evm_chain_id: Some(56),
        };
        let usdt = Asset {
            id: AssetId::from_str("bsc:USDT").unwrap(),
            kind: AssetKind::Token {
                contract: "0x55d398326f99059fF775485246999027B3197955".into(),
            },
            decimals: Decimals::new(18).unwrap(),
            display_decimals: 4,
            usd_stablecoin: true,
        };
        AssetRegistry::new(vec![chain], vec![usdt]).unwrap()
    }

    fn order(target: bool) -> Order {
        Order {
            id: OrderId::from_random([1; 16]),
            merchant_id: MerchantId::from_random([2; 16]),
            order_no: Some("A 1/2&3".into()),
            checkout_token: CheckoutToken::from_random([3; 32]),
            state: OrderState::NEW,
            amount: Decimal::new(1000, 2),
            currency: "USD".into(),
            fixed_stablecoin_rate: true,
            target: target.then(|| PaymentTarget {
                asset: AssetId::from_str("bsc:USDT").unwrap(),
                amount_due: BaseUnits::new(10_000_000_000_000_000_000),
                address: "0x1111111111111111111111111111111111111111".into(),
                derivation: None,
                rate: LockedRate {
                    price: Price::new(Decimal::ONE).unwrap(),
                    source: "peg".into(),
                    at: T0,
                },
                details: Default::default(),
            }),
            totals: Default::default(),
            policy: SettlementPolicy::default(),
            description: None,
            metadata: Default::default(),
            links: OrderLinks {
                success_url: Some("https://shop.example/ok?o={order_id}&n={order_no}".into()),
                expired_url: Some("https://shop.example/expired".into()),
                callback_url: None,
            },
            dialect: "native".into(),
            dialect_data: Default::default(),
            credential_id: None,
            expires_at: T0 + time::Duration::minutes(30),
            monitor_until: T0 + time::Duration::hours(24),
            created_at: T0,
            updated_at: T0,
            version: 1,
            lock_window: time::Duration::minutes(30),
        }
    }

    fn payment(o: &Order, amount: u128, confirmations: u32, status: PaymentStatus) -> Payment {
        Payment {
            id: PaymentId::from_random([4; 16]),
            order_id: o.id.clone(),
            merchant_id: o.merchant_id.clone(),
            asset: AssetId::from_str("bsc:USDT").unwrap(),
            amount: BaseUnits::new(amount),
            txid: "0xabc".into(),
            output_index: 0,
            from_address: None,
            to_address: "0x1111111111111111111111111111111111111111".into(),
            block_height: Some(1),
            block_hash: None,
            confirmations,
            status,
            match_status: MatchStatus::Matched,
            late: false,
            occurred_at: T0,
            detected_at: T0,
            updated_at: T0,
            details: Default::default(),
        }
    }

    fn explorers() -> BTreeMap<ChainId, String> {
        BTreeMap::from([(
            ChainId::parse("bsc").unwrap(),
            "https://bscscan.com/tx/{txid}".to_owned(),
        )])
    }

    fn build(o: Order, payments: &[Payment], now: OffsetDateTime, chooser: bool) -> Checkout {
        Checkout::build(
            o,
            "Shop".into(),
            payments,
            Chains {
                assets: &registry(),
                methods: &Methods::default().with(
                    ChainKind::Evm,
                    std::sync::Arc::new(coffer_chain_evm::EvmMethod),
                ),
                explorers: &explorers(),
            },
            now,
            chooser,
        )
    }

    #[test]
    fn a_shop_with_nothing_to_offer_gets_a_notice_not_an_empty_chooser() {
        let now = T0 + time::Duration::minutes(1);
        let view = build(order(false), &[], now, false);
        let brand = crate::page::Brand {
            name: "Shop".into(),
            logo: None,
            color: None,
        };
        let lang = crate::i18n::Lang::En;
        let empty = crate::page::checkout_main(&view, Some(&Vec::new()), &brand, lang, false);
        assert!(empty.contains("nothing-to-choose"), "{empty}");
        assert!(empty.contains(crate::i18n::EN.nothing_to_choose));
        assert!(!empty.contains("<form"), "{empty}");
        let groups = vec![(
            registry().chains().next().unwrap().clone(),
            registry()
                .assets()
                .map(|a| Choice {
                    asset: a.clone(),
                    amount: Some("1".into()),
                })
                .collect(),
        )];
        let offered = crate::page::checkout_main(&view, Some(&groups), &brand, lang, false);
        assert!(!offered.contains("nothing-to-choose") && offered.contains("<form"));
    }

    #[test]
    fn screens_follow_the_order() {
        let now = T0 + time::Duration::minutes(1);
        assert_eq!(build(order(false), &[], now, false).screen, Screen::Choose);
        assert_eq!(build(order(true), &[], now, false).screen, Screen::Pay);
        assert_eq!(build(order(true), &[], now, true).screen, Screen::Choose);
        // the clock alone expires a pending order, before any sweep ran
        let late = T0 + time::Duration::minutes(31);
        let expired = build(order(true), &[], late, false);
        assert_eq!(expired.screen, Screen::Expired);
        assert_eq!(
            expired.redirect.as_deref(),
            Some("https://shop.example/expired")
        );
        assert_eq!(expired.seconds_left(), 0);
        let mut closed = order(true);
        closed.state = OrderState::new(OrderStatus::Invalid, StatusReason::Marked);
        assert_eq!(build(closed, &[], now, false).screen, Screen::Closed);
    }

    #[test]
    fn partial_payment_shows_the_remainder_and_keeps_the_chooser_away() {
        let mut o = order(true);
        let p = payment(&o, 4_000_000_000_000_000_000, 2, PaymentStatus::Unconfirmed);
        o.totals = coffer_core::order::totals_of([&p]);
        o.state = OrderState::new(OrderStatus::Pending, StatusReason::PaidPartial);
        let c = build(o, &[p], T0, true);
        assert_eq!(
            c.screen,
            Screen::Pay,
            "no changing the asset once paid into"
        );
        let t = c.target.as_ref().unwrap();
        assert_eq!(t.received, "4");
        assert_eq!(t.remaining, "6");
        assert_eq!(t.confirmations, 2);
        assert_eq!(t.confirmations_required, 15);
        // the wallet link asks for the rest only
        assert!(
            t.uri
                .as_deref()
                .unwrap()
                .ends_with("uint256=6000000000000000000")
        );
        let json = c.status_json();
        assert_eq!(
            json["payment"]["amount_remaining_base_units"],
            "6000000000000000000"
        );
        assert_eq!(
            json["transactions"][0]["explorer_url"],
            "https://bscscan.com/tx/0xabc"
        );
    }

    #[test]
    fn processing_then_paid_with_redirect_placeholders_filled() {
        let mut o = order(true);
        let mut p = payment(
            &o,
            10_000_000_000_000_000_000,
            1,
            PaymentStatus::Unconfirmed,
        );
        o.totals = coffer_core::order::totals_of([&p]);
        o.state = OrderState::new(OrderStatus::Processing, StatusReason::None);
        o.version = 2;
        let processing = build(o.clone(), std::slice::from_ref(&p), T0, false);
        assert_eq!(processing.screen, Screen::Processing);
        assert_eq!(processing.redirect, None);
        // one more confirmation changes what the page shows, hence the fingerprint
        p.confirmations = 2;
        let later = build(o.clone(), std::slice::from_ref(&p), T0, false);
        assert_ne!(processing.fingerprint(), later.fingerprint());
        assert_eq!(later.target.as_ref().unwrap().confirmations, 2);
        p.confirmations = 15;
        p.status = PaymentStatus::Confirmed;
        o.totals = coffer_core::order::totals_of([&p]);
        o.state = OrderState::new(OrderStatus::Settled, StatusReason::None);
        o.version = 3;
        let paid = build(o.clone(), &[p], T0, false);
        assert_eq!(paid.screen, Screen::Paid);
        assert_eq!(paid.target.as_ref().unwrap().confirmations, 15);
        assert_eq!(
            paid.redirect.as_deref(),
            Some(format!("https://shop.example/ok?o={}&n=A+1%2F2%263", o.id).as_str())
        );
    }

    /// The buyer (and the status JSON) see the locked rate and how it was derived.
    #[test]
    fn the_locked_rate_and_its_derivation_are_shown() {
        let mut o = order(true);
        o.currency = "CNY".into();
        o.amount = Decimal::new(7209, 2);
        if let Some(t) = o.target.as_mut() {
            t.rate = LockedRate {
                price: Price::new(Decimal::from_str("7.20881456158").unwrap()).unwrap(),
                source: "peg:USDT/USD×ecb:USD/CNY".into(),
                at: T0,
            };
        }
        let c = build(o, &[], T0, false);
        let json = c.status_json();
        assert_eq!(json["payment"]["rate"]["price"], "7.20881456158");
        assert_eq!(
            json["payment"]["rate"]["source"],
            "peg:USDT/USD×ecb:USD/CNY"
        );
        let html = crate::page::checkout_main(
            &c,
            None,
            &crate::page::Brand::default(),
            crate::i18n::Lang::En,
            false,
        );
        assert!(html.contains("Rate: 1 USDT = 7.20881456158 CNY"), "{html}");
        assert!(html.contains("peg:USDT/USD×ecb:USD/CNY"), "{html}");
    }

    #[test]
    fn only_http_redirects_are_followed() {
        let mut o = order(true);
        for (url, ok) in [
            ("https://x.example/{order_id}", true),
            ("http://x.example/?n={order_no}", true),
            ("javascript:alert(1)", false),
            ("data:text/html,hi", false),
            ("not a url", false),
        ] {
            o.links.success_url = Some(url.into());
            assert_eq!(fill_placeholders(url, &o).is_some(), ok, "{url}");
        }
    }

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
