//! The operator's overview (the first-run checklist, each item with what to do, and facts
//! about the server), the webhook backlog and the audit log.

use axum::response::Response;
use coffer_core::MerchantId;
use maud::{Markup, html};

use crate::auth::Ctx;
use crate::layout::{self, Section, when};

const AUDIT_PAGE: u32 = 100;

/// One checklist line: done or to do, what it is, and what to do about it.
fn item(done: bool, text: &str, todo: Option<Markup>) -> Markup {
    html! {
        li class=(if done { "done" } else { "todo" }) {
            (text)
            @if let Some(m) = todo { @if !done { div.small.muted { (m) } } }
        }
    }
}

pub async fn page(ctx: Ctx) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    let t = ctx.t;
    let e = ctx.c.engine();
    let (facts, merchants) = match tokio::try_join!(e.setup_facts(), e.list_merchants()) {
        Ok(x) => x,
        Err(err) => return ctx.failed(&err),
    };
    let health = (ctx.c.settings().health)();
    let watched: Vec<String> = health
        .iter()
        .filter_map(|(name, _, _)| name.strip_prefix("chain:").map(str::to_owned))
        .collect();
    let unwatched: Vec<_> = e
        .assets()
        .chains()
        .filter(|c| !watched.iter().any(|w| w == c.id.as_str()))
        .collect();
    let name_of = |id: &MerchantId| {
        merchants
            .iter()
            .find(|m| &m.id == id)
            .map_or_else(|| id.to_string(), |m| m.name.clone())
    };
    let server = &ctx.c.settings().server;
    let now = e.now();
    let up = now - server.started_at;
    let body = html! {
        h1 { (t.overview) }
        div.card {
            h2 { (t.checklist) }
            ul.check-list #checklist {
                (item(facts.chains > 0,
                    &if facts.chains > 0 { t.chains_configured.replace("{n}", &facts.chains.to_string()) } else { t.no_chain.to_owned() },
                    Some(html! { (t.no_chain_todo) " " code { "[[chains]]" } })))
                @for c in &unwatched {
                    (item(false, &t.chain_without_node.replace("{chain}", c.id.as_str()), Some(html! { (t.chain_without_node_todo) })))
                }
                (item(facts.merchants > 0,
                    &if facts.merchants > 0 { t.merchants_exist.replace("{n}", &facts.merchants.to_string()) } else { t.no_merchant.to_owned() },
                    Some(html! { a href="/console/op/merchants" { (t.create_merchant) } })))
                @if facts.merchants > 0 {
                    @if facts.merchants_without_wallet.is_empty() {
                        (item(true, t.every_merchant_has_wallet, None))
                    }
                    @for m in &facts.merchants_without_wallet {
                        (item(false, &t.merchant_without_wallet.replace("{merchant}", &name_of(m)),
                            Some(html! { a href={ "/console/m/" (m) "/wallets" } { (t.set_wallet) } })))
                    }
                }
                (item(!facts.fixed_rates_only,
                    if facts.fixed_rates_only { t.rates_fixed_only } else { t.rates_from_market },
                    Some(html! { (t.rates_fixed_todo) })))
                (item(ctx.user.totp_secret.is_some(), t.operator_two_step,
                    Some(html! { a href="/console/account#totp" { (t.set_up_two_step) } })))
            }
        }
        div.card {
            h2 { (t.server) }
            (layout::table(None, &[t.field, t.value], html! {
                tr { td { (t.version) } td { (server.version) } }
                tr { td { (t.database) } td { (e.database_kind()) } }
                tr { td { (t.listening_on) } td.mono { (server.listen) } }
                tr { td { (t.public_url) } td.mono { (ctx.c.settings().public_url) } }
                tr { td { (t.started) } td { (when(server.started_at)) " (" (up.whole_hours()) " h " (up.whole_minutes() % 60) " min)" } }
                tr { td { (t.chains) } td { (facts.chains) } }
                tr { td { (t.merchants) } td { (facts.merchants) } }
            }))
        }
    };
    ctx.page(t.overview, Section::OpOverview, None, body)
}

pub async fn webhooks(ctx: Ctx) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    let t = ctx.t;
    let backlog = match ctx.c.engine().webhook_backlog().await {
        Ok(b) => b,
        Err(err) => return ctx.failed(&err),
    };
    let body = html! {
        h1 { (t.webhook_backlog) }
        p.muted { (t.webhook_backlog_hint) }
        div.grid {
            div.stat { span.muted { (t.pending_deliveries) } b #pending { (backlog.pending) } }
            div.stat { span.muted { (t.undispatched_events) } b { (backlog.outbox) } }
            div.stat { span.muted { (t.failing_endpoints) } b { (backlog.failing_endpoints) } }
        }
        (layout::table(None, &[t.field, t.value], html! {
            tr { td { (t.oldest_due) } td { (layout::opt_when(backlog.oldest_pending_due)) } }
            tr { td { (t.oldest_undispatched) } td { (layout::opt_when(backlog.oldest_outbox)) } }
        }))
    };
    ctx.page(t.webhook_backlog, Section::OpWebhooks, None, body)
}

/// The audit log, newest first (one merchant's, or everything for operators).
pub async fn audit_list(
    ctx: &Ctx,
    merchant: Option<&MerchantId>,
    before: Option<i64>,
) -> Result<Markup, Response> {
    let t = ctx.t;
    let mut list = match ctx
        .c
        .engine()
        .console_audit_log(merchant, before, AUDIT_PAGE + 1)
        .await
    {
        Ok(l) => l,
        Err(err) => return Err(ctx.failed(&err)),
    };
    let more = list.len() > AUDIT_PAGE as usize;
    list.truncate(AUDIT_PAGE as usize);
    let next = more
        .then(|| list.last().map(|a| format!("?before={}", a.seq)))
        .flatten();
    Ok(html! {
        h1 { (t.audit_log) }
        @if list.is_empty() { p { (t.nothing_yet) } } @else {
            (layout::table(None, &[t.when, t.user, t.action, t.subject, t.detail, t.client], html! {
                @for a in &list {
                    tr {
                        td { (when(a.at)) }
                        td { (a.username) }
                        td.mono { (a.action) }
                        td.mono.small { (a.subject.as_deref().unwrap_or("")) @if merchant.is_none() { @if let Some(m) = &a.merchant_id { div { a href={ "/console/m/" (m) } { (m) } } } } }
                        td.small { (a.detail.as_deref().unwrap_or("")) }
                        td.small { (a.client.as_deref().unwrap_or("")) }
                    }
                }
            }))
        }
        (layout::pager(next, before.map(|_| "?".to_owned()), t))
    })
}

pub async fn audit(ctx: Ctx) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    let before = ctx.param("before").and_then(|b| b.parse::<i64>().ok());
    match audit_list(&ctx, None, before).await {
        Ok(body) => ctx.page(ctx.t.audit_log, Section::OpAudit, None, body),
        Err(r) => r,
    }
}
