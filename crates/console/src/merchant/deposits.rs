//! Deposit accounts (a merchant's users with standing addresses, e.g. Pay Protocol's
//! recharge users) and the deposits received at them, newest first.

use axum::extract::Path;
use axum::response::Response;
use maud::html;

use crate::auth::Ctx;
use crate::layout::{self, Section, badge, when};

const PAGE: u32 = 50;

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    let shop = match ctx.shop(&m).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = ctx.t;
    let e = ctx.c.engine();
    let before_account = ctx
        .param("accounts_before")
        .and_then(|v| v.parse::<i64>().ok());
    let before_deposit = ctx
        .param("deposits_before")
        .and_then(|v| v.parse::<i64>().ok());
    let loaded = tokio::try_join!(
        e.console_deposit_accounts(&shop.id, before_account, PAGE + 1),
        e.console_deposits(&shop.id, before_deposit, PAGE + 1),
    );
    let (mut accounts, mut deposits) = match loaded {
        Ok(x) => x,
        Err(err) => return ctx.failed(&err),
    };
    let more_accounts = accounts.len() > PAGE as usize;
    accounts.truncate(PAGE as usize);
    let more_deposits = deposits.len() > PAGE as usize;
    deposits.truncate(PAGE as usize);
    let next_accounts = more_accounts
        .then(|| {
            accounts
                .last()
                .map(|a| format!("?accounts_before={}", a.seq))
        })
        .flatten();
    let next_deposits = more_deposits
        .then(|| {
            deposits
                .last()
                .map(|d| format!("?deposits_before={}", d.seq))
        })
        .flatten();
    let body = html! {
        h1 { (t.deposits) }
        p.muted { (t.deposits_hint) }
        h2 { (t.deposits) }
        @if deposits.is_empty() { p { (t.nothing_yet) } } @else {
            (layout::table(None, &["#", t.detected, t.account_word, t.amount, t.transaction, t.confirmations, t.status], html! {
                @for d in &deposits {
                    tr {
                        td.num { (d.seq) }
                        td { (when(d.detected_at)) }
                        td { (d.account_uuid) " (#" (d.account_seq) ")" }
                        td.num.mono { (layout::amount(e, &d.asset, d.amount)) }
                        td.mono { (d.txid) }
                        td.num { (d.confirmations) }
                        td { (badge(d.status.as_str(), t)) }
                    }
                }
            }))
        }
        (layout::pager(next_deposits, before_deposit.map(|_| "?".to_owned()), t))
        h2 { (t.accounts) }
        @if accounts.is_empty() { p { (t.nothing_yet) } } @else {
            (layout::table(None, &["#", t.created, t.account_word, "API", t.addresses], html! {
                @for a in &accounts {
                    tr {
                        td.num { (a.seq) }
                        td { (when(a.created_at)) }
                        td { (a.uuid) }
                        td { (a.dialect) }
                        td { @for x in &a.addresses { div { (x.chain) ": " span.mono { (x.address) } } } }
                    }
                }
            }))
        }
        (layout::pager(next_accounts, before_account.map(|_| "?".to_owned()), t))
    };
    ctx.page(t.deposits, Section::Deposits, Some(&shop), body)
}
