//! Payout requests (refunds, withdrawals): approve or reject them and, while Coffer does not
//! send payouts itself, record that the merchant paid one from its wallet (sent, completed,
//! failed, with the transaction hash).

use std::str::FromStr;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::{PayoutId, PayoutRequest, PayoutStatus};
use coffer_engine::console::ListCursor;
use maud::{Markup, html};

use super::{base, or_refused};
use crate::auth::{Ctx, Shop, see_other};
use crate::form::Form;
use crate::layout::{self, Section, badge, csrf_field, when};

const PAGE: u32 = 50;

/// The payout requests as a table; with `actions`, the moves each may make next.
pub fn payouts_table(ctx: &Ctx, shop: &Shop, list: &[PayoutRequest], actions: bool) -> Markup {
    let t = ctx.t;
    let e = ctx.c.engine();
    let b = base(shop);
    let mut head = vec![
        t.created,
        t.kind,
        t.order,
        t.amount,
        t.destination,
        t.status,
        t.transaction,
    ];
    if actions && shop.write {
        head.push(t.actions);
    }
    layout::table(
        None,
        &head,
        html! {
            @for p in list {
                tr {
                    td { (when(p.created_at)) }
                    td { (t.word(p.kind.as_str())) }
                    td { @if let Some(o) = &p.order_id { a.mono href={ (b) "/orders/" (o) } { (o) } } @else { "—" } }
                    td.num.mono {
                        @match (&p.asset, p.amount) {
                            (Some(a), Some(units)) => (layout::amount(e, a, units)),
                            _ => "—",
                        }
                    }
                    td.mono { (p.destination.as_deref().unwrap_or("—")) }
                    td { (badge(p.status.as_str(), t)) }
                    td.mono { (p.txid.as_deref().unwrap_or("")) }
                    @if actions && shop.write {
                        td { (moves(ctx, &b, p)) }
                    }
                }
            }
        },
    )
}

/// The forms moving one request to each status it may go to next.
fn moves(ctx: &Ctx, base: &str, p: &PayoutRequest) -> Markup {
    let t = ctx.t;
    let next: Vec<PayoutStatus> = PayoutStatus::ALL
        .into_iter()
        .filter(|to| coffer_core::payout::check_transition(p.status, *to).is_ok())
        .collect();
    let action = format!("{base}/payouts/{}/status", p.id);
    html! {
        @if !next.is_empty() {
            form method="post" action=(action) {
                (csrf_field(ctx.csrf()))
                @if next.iter().any(|s| matches!(s, PayoutStatus::Sent | PayoutStatus::Completed)) {
                    label for={ "tx-" (p.id) } { (t.transaction) }
                    input id={ "tx-" (p.id) } type="text" name="txid" size="20";
                }
                @for to in &next {
                    @let danger = matches!(to, PayoutStatus::Rejected | PayoutStatus::Failed);
                    button type="submit" name="status" value=(to.as_str()) class=[danger.then_some("danger")] {
                        (t.payout_move(to.as_str()))
                    }
                    " "
                }
            }
        }
    }
}

async fn render(ctx: &Ctx, shop: &Shop, status: StatusCode, message: Option<Markup>) -> Response {
    let t = ctx.t;
    let filter: Option<PayoutStatus> = ctx.param("status").and_then(|s| s.parse().ok());
    let after = ctx.param("after").and_then(|a| {
        let (ms, id) = a.split_once('.')?;
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(ms.parse::<i64>().ok()?) * 1_000_000,
        )
        .ok()?;
        Some(ListCursor {
            created_at: at,
            id: id.to_owned(),
        })
    });
    let paged = after.is_some();
    let mut list = match ctx
        .c
        .engine()
        .console_payouts(&shop.id, filter, None, after.as_ref(), PAGE + 1)
        .await
    {
        Ok(l) => l,
        Err(e) => return ctx.failed(&e),
    };
    let more = list.len() > PAGE as usize;
    list.truncate(PAGE as usize);
    let status_q = filter
        .map(|s| format!("status={}&", s.as_str()))
        .unwrap_or_default();
    let next = more
        .then(|| {
            list.last().map(|p| {
                format!(
                    "?{status_q}after={}.{}",
                    p.created_at.unix_timestamp_nanos() / 1_000_000,
                    p.id
                )
            })
        })
        .flatten();
    let body = html! {
        h1 { (t.payouts) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        (layout::warn(t.payouts_hint))
        form.filters method="get" {
            div {
                label for="status" { (t.status) }
                select #status name="status" {
                    option value="" { (t.any) }
                    @for s in PayoutStatus::ALL {
                        option value=(s.as_str()) selected[filter == Some(s)] { (t.word(s.as_str())) }
                    }
                }
            }
            div { button type="submit" { (t.apply) } }
        }
        @if list.is_empty() { p { (t.no_payouts) } } @else { (payouts_table(ctx, shop, &list, true)) }
        (layout::pager(next, paged.then(|| format!("?{status_q}")), t))
    };
    ctx.page_with(status, t.payouts, Section::Payouts, Some(shop), body)
}

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    match ctx.shop(&m).await {
        Ok(shop) => render(&ctx, &shop, StatusCode::OK, None).await,
        Err(r) => r,
    }
}

pub async fn status(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(id) = PayoutId::from_str(&id) else {
        return ctx.not_found();
    };
    let Some(to) = form
        .get("status")
        .and_then(|s| s.parse::<PayoutStatus>().ok())
    else {
        return render(
            &ctx,
            &shop,
            StatusCode::BAD_REQUEST,
            Some(layout::error(ctx.t.bad_request)),
        )
        .await;
    };
    let txid = form.get("txid").map(str::to_owned);
    match ctx
        .c
        .engine()
        .set_payout_status(&shop.id, &id, to, txid.clone())
        .await
    {
        Ok(p) => {
            ctx.audit(
                Some(&shop.id),
                &format!("payout.{}", to.as_str()),
                Some(p.id.as_str()),
                txid,
            )
            .await;
            see_other(&format!("{}/payouts?ok=saved", base(&shop)))
        }
        Err(e) => or_refused(&ctx, e, |status, m| render(&ctx, &shop, status, Some(m))).await,
    }
}
