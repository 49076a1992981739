//! One order: what it is, its timeline, its payments (with explorer links and
//! confirmations), refunds, events and their webhook deliveries; and what the merchant can do
//! with it (mark settled or invalid, cancel, accept an underpayment, refund, accept payments
//! outside the match window, deliver a webhook again).

use std::str::FromStr;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::state::manual_target;
use coffer_core::{BaseUnits, Cause, MatchStatus, Order, OrderId, PaymentStatus, StatusReason};
use coffer_engine::{RefundInput, RepairInput};
use maud::{Markup, html};
use rust_decimal::Decimal;

use super::{base, or_refused};
use crate::auth::{Ctx, Shop, see_other};
use crate::form::Form;
use crate::layout::{self, Section, badge, csrf_field, when};
use crate::merchant::orders::received;

/// The explorer link of a transaction on `chain`, if the chain has one.
fn explorer(ctx: &Ctx, chain: &coffer_core::ChainId, txid: &str) -> Option<String> {
    ctx.c
        .settings()
        .explorers
        .get(chain)
        .map(|tpl| tpl.replace("{txid}", &layout::enc(txid)))
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

async fn render(
    ctx: &Ctx,
    shop: &Shop,
    order: Order,
    status: StatusCode,
    message: Option<Markup>,
) -> Response {
    let t = ctx.t;
    let e = ctx.c.engine();
    let loaded = tokio::try_join!(
        e.timeline(&order.id),
        e.payments_of(&order),
        e.order_events(&shop.id, &order.id),
        e.order_deliveries(&shop.id, &order.id),
        e.console_payouts(&shop.id, None, Some(&order.id), None, 50),
    );
    let (timeline, payments, events, deliveries, refunds) = match loaded {
        Ok(x) => x,
        Err(err) => return ctx.failed(&err),
    };
    let b = base(shop);
    let here = format!("{b}/orders/{}", order.id);
    let can = |cause: Cause| manual_target(order.state, cause).is_ok();
    let outside: Vec<_> = payments
        .iter()
        .filter(|p| {
            p.match_status == MatchStatus::OutsideWindow && p.status != PaymentStatus::Reversed
        })
        .collect();
    let refundable = coffer_core::payout::order_is_refundable(order.state);
    let target = order.target.as_ref();
    let asset = target.and_then(|x| e.assets().asset(&x.asset));
    let checkout = coffer_engine::view::checkout_url(&order, e.settings());
    let title = order
        .order_no
        .clone()
        .unwrap_or_else(|| order.id.to_string());
    let body = html! {
        p.small { a href={ (b) "/orders" } { "« " (t.orders) } }
        h1 { (t.order) " " (title) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        div.card {
            p {
                (badge(order.state.status.as_str(), t))
                @if order.state.reason != StatusReason::None { " " (t.word(order.state.reason.as_str())) }
            }
            (layout::table(None, &[t.field, t.value], html! {
                tr { td { "id" } td.mono { (order.id) } }
                @if let Some(no) = &order.order_no { tr { td { (t.order_no) } td { (no) } } }
                tr { td { (t.price) } td { (order.amount) " " (order.currency) } }
                @if let Some(x) = target {
                    tr { td { (t.asset) } td { (x.asset) } }
                    tr { td { (t.amount_due) } td.mono { (layout::amount(e, &x.asset, x.amount_due)) } }
                    tr { td { (t.address) } td.mono #order-address { (x.address) } }
                    tr { td { (t.rate) } td { (x.rate.price.get().normalize()) " · " span.mono { (x.rate.source) } } }
                }
                tr { td { (t.received) } td.mono { (received(e, &order)) } }
                @if !order.totals.unconfirmed.is_zero() {
                    tr { td { (t.unconfirmed) } td.mono { (target.map(|x| layout::amount(e, &x.asset, order.totals.unconfirmed)).unwrap_or_default()) } }
                }
                @if let Some(d) = &order.description { tr { td { (t.description) } td { (d) } } }
                tr { td { (t.created) } td { (when(order.created_at)) } }
                tr { td { (t.expires) } td { (when(order.expires_at)) } }
                tr { td { (t.watched_until) } td { (when(order.monitor_until)) } }
                tr { td { (t.checkout_page) } td { a.mono href=(checkout) rel="noreferrer" { (t.open) } } }
                tr { td { "API" } td { (order.dialect) } }
            }))
        }
        @if shop.write {
            h2 { (t.actions) }
            div.card {
                @if can(Cause::MarkSettled) || can(Cause::MarkInvalid) || can(Cause::Cancel) || can(Cause::Resolve) {
                    form method="post" action={ (here) "/action" } {
                        (csrf_field(ctx.csrf()))
                        label for="note" { (t.note) }
                        input #note type="text" name="note" maxlength="500";
                        p.row {
                            @if can(Cause::MarkSettled) { button type="submit" name="action" value="mark_settled" { (t.mark_settled) } " " }
                            @if can(Cause::Resolve) { button type="submit" name="action" value="resolve" { (t.resolve) } " " }
                            @if can(Cause::Cancel) { button.danger type="submit" name="action" value="cancel" { (t.cancel_order) } " " }
                            @if can(Cause::MarkInvalid) && !can(Cause::Cancel) { button.danger type="submit" name="action" value="mark_invalid" { (t.mark_invalid) } }
                        }
                    }
                }
                @if refundable {
                    form method="post" action={ (here) "/refund" } {
                        (csrf_field(ctx.csrf()))
                        fieldset {
                            legend { (t.refund) }
                            label for="refund-amount" { (t.amount) " (" (asset.map(|a| a.symbol().to_string()).unwrap_or_default()) ")" }
                            input #refund-amount type="text" name="amount" inputmode="decimal" placeholder=(t.refund_all);
                            label for="refund-to" { (t.destination) }
                            input #refund-to type="text" name="destination" placeholder=(t.refund_to_sender);
                            label for="refund-memo" { (t.memo) }
                            input #refund-memo type="text" name="memo" maxlength="256";
                            p { button type="submit" { (t.request_refund) } }
                            p.small.muted { (t.refund_hint) }
                        }
                    }
                }
                @if !outside.is_empty() {
                    form method="post" action={ (here) "/repair" } {
                        (csrf_field(ctx.csrf()))
                        fieldset {
                            legend { (t.repair) }
                            p.small { (t.repair_hint) }
                            label for="repair-tx" { (t.transaction) }
                            select #repair-tx name="txid" {
                                option value="" { (t.all_outside) }
                                @for p in &outside { option value=(p.txid) { (p.txid) } }
                            }
                            label.check { input type="checkbox" name="accept_amount" value="1"; (t.accept_amount) }
                            p { button type="submit" { (t.accept_payments) } }
                        }
                    }
                }
            }
        }
        h2 { (t.timeline) }
        (layout::table(None, &[t.when, t.from, t.to, t.cause, t.note], html! {
            @for x in &timeline {
                tr {
                    td { (when(x.at)) }
                    td { (x.from.map(|s| format!("{} / {}", t.word(s.status.as_str()), t.word(s.reason.as_str()))).unwrap_or_else(|| "—".into())) }
                    td { (t.word(x.to.status.as_str())) " / " (t.word(x.to.reason.as_str())) }
                    td { (t.word(x.cause.as_str())) }
                    td { (x.note.as_deref().unwrap_or("")) }
                }
            }
        }))
        h2 { (t.payments) }
        @if payments.is_empty() { p { (t.no_payments) } } @else {
            (layout::table(None, &[t.detected, t.transaction, t.amount, t.confirmations, t.status, t.matching], html! {
                @for p in &payments {
                    tr {
                        td { (when(p.detected_at)) }
                        td.mono {
                            @if let Some(url) = explorer(ctx, p.asset.chain(), &p.txid) {
                                a.txlink href=(url) rel="noopener noreferrer" target="_blank" { (p.txid) }
                            } @else { (p.txid) }
                        }
                        td.num.mono { (layout::amount(e, &p.asset, p.amount)) }
                        td.num { (p.confirmations) }
                        td { (badge(p.status.as_str(), t)) @if p.late { " " (t.word("paid_late")) } }
                        td { (t.word(p.match_status.as_str())) }
                    }
                }
            }))
        }
        @if !refunds.is_empty() {
            h2 { (t.refunds) }
            (super::payouts::payouts_table(ctx, shop, &refunds, false))
        }
        h2 { (t.events) }
        (layout::table(None, &[t.when, t.event, t.data], html! {
            @for ev in &events {
                tr {
                    td { (when(ev.event.created_at)) }
                    td.mono { (ev.event.kind.as_str()) }
                    td { details { summary { (t.show) } pre { (serde_json::to_string_pretty(&ev.event.data).unwrap_or_default()) } } }
                }
            }
        }))
        h2 { (t.deliveries) }
        @if deliveries.is_empty() { p { (t.no_deliveries) } } @else {
            (super::webhooks::deliveries_table(ctx, shop, &deliveries, &format!("{here}/redeliver")))
        }
    };
    ctx.page_with(
        status,
        &format!("{} {title}", t.order),
        Section::Orders,
        Some(shop),
        body,
    )
}

async fn load(ctx: &Ctx, shop: &Shop, id: &str) -> Result<Order, Response> {
    let Ok(id) = OrderId::from_str(id) else {
        return Err(ctx.not_found());
    };
    match ctx.c.engine().find_merchant_order(&shop.id, &id).await {
        Ok(Some(o)) => Ok(o),
        Ok(None) => Err(ctx.not_found()),
        Err(e) => Err(ctx.failed(&e)),
    }
}

pub async fn page(ctx: Ctx, Path((m, id)): Path<(String, String)>) -> Response {
    let shop = match ctx.shop(&m).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match load(&ctx, &shop, &id).await {
        Ok(order) => render(&ctx, &shop, order, StatusCode::OK, None).await,
        Err(r) => r,
    }
}

/// Run a change and go back to the order, or show why it was refused.
macro_rules! change {
    ($ctx:expr, $m:expr, $id:expr, $body:expr, |$shop:ident, $order:ident, $form:ident| $act:expr) => {{
        let $form = Form::urlencoded(&$body);
        let $shop = match $ctx.shop_to_change(&$m, &$form).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        let $order = match load(&$ctx, &$shop, &$id).await {
            Ok(o) => o,
            Err(r) => return r,
        };
        match $act {
            Ok((ok, action, detail)) => {
                $ctx.audit(Some(&$shop.id), action, Some($order.id.as_str()), detail)
                    .await;
                see_other(&format!("{}/orders/{}?ok={ok}", base(&$shop), $order.id))
            }
            Err(e) => {
                let fresh = load(&$ctx, &$shop, &$id).await;
                match fresh {
                    Ok(o) => {
                        or_refused(&$ctx, e, |status, m| {
                            render(&$ctx, &$shop, o, status, Some(m))
                        })
                        .await
                    }
                    Err(r) => r,
                }
            }
        }
    }};
}

pub async fn action(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    change!(ctx, m, id, body, |shop, order, form| {
        let cause = match form.get("action") {
            Some("mark_settled") => Some(Cause::MarkSettled),
            Some("mark_invalid") => Some(Cause::MarkInvalid),
            Some("cancel") => Some(Cause::Cancel),
            Some("resolve") => Some(Cause::Resolve),
            _ => None,
        };
        match cause {
            None => Err(coffer_engine::EngineError::invalid(
                "invalid_action",
                "action",
                "unknown action",
            )),
            Some(cause) => ctx
                .c
                .engine()
                .manual_action(
                    &shop.id,
                    &order.id,
                    cause,
                    form.get("note").map(str::to_owned),
                )
                .await
                .map(|_| {
                    (
                        "saved",
                        match cause {
                            Cause::MarkSettled => "order.marked_settled",
                            Cause::MarkInvalid => "order.marked_invalid",
                            Cause::Cancel => "order.cancelled",
                            _ => "order.resolved",
                        },
                        form.get("note").map(str::to_owned),
                    )
                }),
        }
    })
}

/// A human amount of the order's asset in base units (`None` if left empty).
fn refund_units(
    ctx: &Ctx,
    order: &Order,
    raw: Option<&str>,
) -> Result<Option<BaseUnits>, coffer_engine::EngineError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let bad = || {
        coffer_engine::EngineError::invalid(
            "invalid_amount",
            "amount",
            "the amount must be a number in the order's asset, with no more decimals than it has",
        )
    };
    let asset = order
        .target
        .as_ref()
        .and_then(|t| ctx.c.engine().assets().asset(&t.asset))
        .ok_or_else(bad)?;
    let d = Decimal::from_str(raw).map_err(|_| bad())?;
    BaseUnits::from_decimal(d, asset.decimals)
        .map(Some)
        .map_err(|_| bad())
}

pub async fn refund(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    change!(ctx, m, id, body, |shop, order, form| {
        match refund_units(&ctx, &order, form.get("amount")) {
            Err(e) => Err(e),
            Ok(amount) => ctx
                .c
                .engine()
                .request_refund(
                    &shop.id,
                    &order.id,
                    RefundInput {
                        amount,
                        destination: form.get("destination").map(str::to_owned),
                        memo: form.get("memo").map(str::to_owned),
                        dialect: "native".into(),
                        ..RefundInput::default()
                    },
                )
                .await
                .map(|p| {
                    (
                        "refund_requested",
                        "refund.requested",
                        Some(format!(
                            "{} {}",
                            p.id,
                            p.amount.map(|a| a.to_string()).unwrap_or_default()
                        )),
                    )
                }),
        }
    })
}

pub async fn repair(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    change!(ctx, m, id, body, |shop, order, form| {
        ctx.c
            .engine()
            .repair_order(
                &shop.id,
                &order.id,
                RepairInput {
                    txid: form.get("txid").map(str::to_owned),
                    accept_amount: form.has("accept_amount"),
                    note: None,
                },
            )
            .await
            .map(|_| {
                (
                    "saved",
                    "order.repaired",
                    form.get("txid").map(str::to_owned),
                )
            })
    })
}

pub async fn redeliver(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    change!(ctx, m, id, body, |shop, order, form| {
        let _ = &order;
        super::webhooks::redeliver_one(&ctx, &shop, form.get("delivery"))
            .await
            .map(|d| ("redelivered", "webhook.redelivered", Some(d)))
    })
}
