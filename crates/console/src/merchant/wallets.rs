//! Receiving wallets, one per chain: set an account xpub (or descriptor) after comparing the
//! first three addresses Coffer derives from it with the merchant's wallet app; the gap-limit
//! warning on Bitcoin chains.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_engine::console::WalletPreview;
use maud::{Markup, html};

use super::{base, or_refused};
use crate::auth::{Ctx, Shop, see_other};
use crate::form::Form;
use crate::layout::{self, Section, csrf_field, when};

fn preview_table(ctx: &Ctx, p: &WalletPreview) -> Markup {
    let t = ctx.t;
    layout::table(
        None,
        &["#", t.address, t.path],
        html! {
            @for (i, address, path) in &p.addresses {
                tr { td.num { (i) } td.mono.preview-address { (address) } td.mono { (path.as_deref().unwrap_or("")) } }
            }
        },
    )
}

async fn render(
    ctx: &Ctx,
    shop: &Shop,
    status: StatusCode,
    message: Option<Markup>,
    pending: Option<&WalletPreview>,
) -> Response {
    let t = ctx.t;
    let e = ctx.c.engine();
    let wallets = match e.list_wallets(&shop.id).await {
        Ok(w) => w,
        Err(err) => return ctx.failed(&err),
    };
    let mut gaps = Vec::new();
    for w in &wallets {
        if e.chain_has_gap_limit(&w.chain) {
            match e.wallet_gap(&shop.id, &w.chain).await {
                Ok(Some(report)) => gaps.push((w.chain.clone(), report)),
                Ok(None) => {}
                Err(err) => return ctx.failed(&err),
            }
        }
    }
    let chains: Vec<_> = e.assets().chains().collect();
    let b = base(shop);
    let body = html! {
        h1 { (t.wallets) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        @if chains.is_empty() { (layout::warn(t.no_chains_for_wallets)) }
        @if let Some(p) = pending {
            div.card #wallet-preview {
                h2 { (t.check_addresses) }
                p { (t.check_addresses_hint) }
                p.small { (t.chain) ": " strong { (p.chain) } }
                (preview_table(ctx, p))
                @if shop.write {
                    form method="post" action={ (b) "/wallets" } {
                        (csrf_field(ctx.csrf()))
                        input type="hidden" name="chain" value=(p.chain);
                        input type="hidden" name="xpub" value=(p.descriptor);
                        button type="submit" { (t.save_wallet) } " "
                        a.btn.quiet href={ (b) "/wallets" } { (t.cancel) }
                    }
                }
            }
        }
        @for w in &wallets {
            div.card {
                h2 { (e.assets().chain(&w.chain).map_or_else(|| w.chain.to_string(), |c| c.name.clone())) " · " span.mono { (w.chain) } }
                p.mono.small { (w.descriptor) }
                p.small.muted { (t.next_index) ": " (w.next_index) " · " (t.updated) " " (when(w.updated_at)) }
                @match e.wallet_preview(w.chain.as_str(), &w.descriptor) {
                    Ok(p) => { details { summary { (t.first_addresses) } (preview_table(ctx, &p)) } }
                    Err(err) => { (layout::error(&t.engine_error(&err))) }
                }
                @for (chain, report) in &gaps {
                    @if chain == &w.chain && report.warn {
                        (layout::warn(&t.gap_warning.replace("{n}", &report.longest_run.to_string()).replace("{start}", &report.run_start.to_string())))
                    }
                }
            }
        }
        @if shop.write && !chains.is_empty() {
            form.card method="post" action={ (b) "/wallets/preview" } {
                (csrf_field(ctx.csrf()))
                h2 { (t.set_wallet) }
                label for="chain" { (t.chain) }
                select #chain name="chain" {
                    @for c in &chains { option value=(c.id) { (c.name) " (" (c.id) ")" } }
                }
                label for="xpub" { (t.xpub) }
                input #xpub type="text" name="xpub" required autocomplete="off" spellcheck="false";
                p.small.muted { (t.xpub_hint) }
                p { button type="submit" { (t.preview_addresses) } }
            }
        }
    };
    ctx.page_with(status, t.wallets, Section::Wallets, Some(shop), body)
}

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    match ctx.shop(&m).await {
        Ok(shop) => render(&ctx, &shop, StatusCode::OK, None, None).await,
        Err(r) => r,
    }
}

/// Derive and show the first addresses; nothing is saved yet.
pub async fn preview(ctx: Ctx, Path(m): Path<String>, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let chain = form.get("chain").unwrap_or_default();
    match ctx
        .c
        .engine()
        .wallet_preview(chain, form.get("xpub").unwrap_or_default())
    {
        Ok(p) => render(&ctx, &shop, StatusCode::OK, None, Some(&p)).await,
        Err(e) => {
            or_refused(&ctx, e, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn save(ctx: Ctx, Path(m): Path<String>, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let chain = form.get("chain").unwrap_or_default();
    match ctx
        .c
        .engine()
        .set_wallet(&shop.id, chain, form.get("xpub").unwrap_or_default())
        .await
    {
        Ok(w) => {
            ctx.audit(
                Some(&shop.id),
                "wallet.set",
                Some(w.chain.as_str()),
                Some(w.descriptor.clone()),
            )
            .await;
            see_other(&format!("{}/wallets?ok=saved", base(&shop)))
        }
        Err(e) => {
            or_refused(&ctx, e, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}
