//! The merchant's dashboard: what to set up next, orders by status, orders per day and what
//! settled orders received per asset and day, over a window of 7, 30 or 90 days.

use axum::extract::Path;
use axum::response::Response;
use coffer_core::BaseUnits;
use maud::html;

use super::base;
use crate::auth::Ctx;
use crate::chart;
use crate::layout::{self, Section};

fn day_label(day: i64) -> String {
    let d = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(day);
    format!("{:02}-{:02}", u8::from(d.month()), d.day())
}

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    let shop = match ctx.shop(&m).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = ctx.t;
    let e = ctx.c.engine();
    let days = ctx
        .param("days")
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| [7, 30, 90].contains(d))
        .unwrap_or(30);
    let (dash, wallets, keys, creds, hooks) = match tokio::try_join!(
        e.console_dashboard(&shop.id, days),
        e.list_wallets(&shop.id),
        e.list_keys(&shop.id),
        e.list_dialect_credentials(&shop.id, None),
        async {
            ctx.c
                .inner
                .webhooks
                .list(&shop.id)
                .await
                .map_err(super::service_error)
        },
    ) {
        Ok(x) => x,
        Err(err) => return ctx.failed(&err),
    };
    let now = e.now();
    let has_key =
        keys.iter().any(|k| k.is_active(now)) || creds.iter().any(|c| c.revoked_at.is_none());
    let b = base(&shop);
    let labels: Vec<String> = dash.days.iter().map(|d| day_label(*d)).collect();
    let order_tips: Vec<String> = dash
        .days
        .iter()
        .zip(&dash.orders_per_day)
        .map(|(d, n)| format!("{}: {n}", day_label(*d)))
        .collect();
    let orders_per_day: Vec<u128> = dash.orders_per_day.iter().map(|n| u128::from(*n)).collect();
    let body = html! {
        h1 { (t.dashboard) }
        @if wallets.is_empty() || !has_key {
            div.card {
                h2 { (t.next_steps) }
                ul.check-list {
                    li class=(if wallets.is_empty() { "todo" } else { "done" }) {
                        @if wallets.is_empty() { a href={ (b) "/wallets" } { (t.step_wallet) } } @else { (t.step_wallet) }
                    }
                    li class=(if has_key { "done" } else { "todo" }) {
                        @if has_key { (t.step_key) } @else { a href={ (b) "/keys" } { (t.step_key) } }
                    }
                    li class=(if hooks.is_empty() { "todo" } else { "done" }) {
                        a href={ (b) "/webhooks" } { (t.step_webhook) }
                    }
                }
            }
        }
        nav.pager aria-label=(t.window) {
            @for d in [7, 30, 90] {
                a href={ "?days=" (d) } aria-current=[(d == days).then_some("true")] { (t.last_days.replace("{n}", &d.to_string())) }
            }
        }
        h2 { (t.orders_by_status) " · " (t.last_days.replace("{n}", &days.to_string())) }
        div.grid {
            @for (status, n) in &dash.counts {
                a.stat href={ (b) "/orders?status=" (status) } {
                    span.muted { (t.word(status)) }
                    b { (n) }
                }
            }
        }
        h2 { (t.orders_per_day) }
        div.card { (chart::bars(&orders_per_day, &labels, &order_tips, t.orders_per_day)) }
        h2 { (t.volume) }
        p.muted.small { (t.volume_hint) }
        @if dash.volume.is_empty() {
            p { (t.nothing_yet) }
        }
        @for (asset, v) in &dash.volume {
            @let label = e.assets().asset(asset).map_or_else(|| asset.to_string(), layout::asset_label);
            div.card {
                h3 { (label) " · " (layout::amount(e, asset, v.total)) " · " (v.settled_orders) " " (t.orders_word) }
                @let per_day: Vec<u128> = v.per_day.iter().map(|u| u.get()).collect();
                @let tips: Vec<String> = dash.days.iter().zip(&v.per_day).map(|(d, u)| format!("{}: {}", day_label(*d), layout::amount(e, asset, *u))).collect();
                (chart::bars(&per_day, &labels, &tips, &format!("{} · {}", t.volume, label)))
                details {
                    summary { (t.show_numbers) }
                    (layout::table(None, &[t.day, t.received], html! {
                        @for (d, u) in dash.days.iter().zip(&v.per_day) {
                            @if *u != BaseUnits::ZERO {
                                tr { td { (day_label(*d)) } td.num { (layout::amount(e, asset, *u)) } }
                            }
                        }
                    }))
                }
            }
        }
    };
    ctx.page(t.dashboard, Section::Dashboard, Some(&shop), body)
}
