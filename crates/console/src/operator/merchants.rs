//! Merchants: create one (its first API key is shown once), invite its first owner, suspend
//! or resume it, open its pages.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::MerchantId;
use coffer_engine::console::ConsoleRole;
use maud::{Markup, html};

use crate::auth::{Ctx, see_other};
use crate::form::Form;
use crate::layout::{self, Section, badge, csrf_field, post_button, when};
use crate::merchant::refused;
use crate::operator::users::invite_link;

async fn render(
    ctx: &Ctx,
    status: StatusCode,
    message: Option<Markup>,
    shown_once: Option<Markup>,
) -> Response {
    let t = ctx.t;
    let e = ctx.c.engine();
    let (merchants, suspended) = match tokio::try_join!(e.list_merchants(), e.suspended_merchants())
    {
        Ok(x) => x,
        Err(err) => return ctx.failed(&err),
    };
    let body = html! {
        h1 { (t.merchants) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        @if let Some(once) = shown_once { div.card role="status" #shown-once { (once) } }
        @if merchants.is_empty() { p { (t.no_merchant) } } @else {
            (layout::table(None, &[t.name, "id", t.created, t.status, t.actions], html! {
                @for m in &merchants {
                    @let since = suspended.iter().find(|(id, _)| id == &m.id).map(|(_, at)| *at);
                    tr {
                        td { a href={ "/console/m/" (m.id) } { (m.name) } }
                        td.mono.small { (m.id) }
                        td { (when(m.created_at)) }
                        td { @if let Some(at) = since { (badge("disabled", t)) " " span.small { (when(at)) } } @else { (badge("active", t)) } }
                        td {
                            (post_button(&format!("/console/op/merchants/{}/invite", m.id), ctx.csrf(), &[], t.invite_owner, Some("quiet")))
                            " "
                            @if since.is_some() {
                                (post_button(&format!("/console/op/merchants/{}/suspended", m.id), ctx.csrf(), &[("suspended", "0")], t.resume, None))
                            } @else {
                                (confirm_button_with(ctx, &m.id, t.suspend, t.suspend_now))
                            }
                        }
                    }
                }
            }))
        }
        form.card method="post" action="/console/op/merchants" {
            (csrf_field(ctx.csrf()))
            h2 { (t.create_merchant) }
            label for="merchant-name" { (t.name) }
            input #merchant-name type="text" name="name" required maxlength="100";
            p { button type="submit" { (t.create_merchant) } }
        }
    };
    ctx.page_with(status, t.merchants, Section::OpMerchants, None, body)
}

fn confirm_button_with(ctx: &Ctx, id: &MerchantId, opener: &str, label: &str) -> Markup {
    html! {
        details {
            summary { (opener) }
            p.small { (ctx.t.suspend_hint) }
            (post_button(&format!("/console/op/merchants/{id}/suspended"), ctx.csrf(), &[("suspended", "1")], label, Some("danger")))
        }
    }
}

pub async fn page(ctx: Ctx) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    render(&ctx, StatusCode::OK, None, None).await
}

async fn refuse_or_fail(ctx: &Ctx, e: coffer_engine::EngineError) -> Response {
    match refused(ctx, &e) {
        Some((status, m)) => render(ctx, status, Some(m), None).await,
        None => ctx.failed(&e),
    }
}

pub async fn create(ctx: Ctx, body: axum::body::Bytes) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    let t = ctx.t;
    match ctx
        .c
        .engine()
        .create_merchant(form.get("name").unwrap_or_default())
        .await
    {
        Ok((m, key)) => {
            ctx.audit(
                Some(&m.id),
                "merchant.created",
                Some(m.id.as_str()),
                Some(m.name.clone()),
            )
            .await;
            let once = html! {
                h2 { (t.merchant_created.replace("{name}", &m.name)) }
                (layout::secret(t.api_key, &key.token, t))
                p.warn { (t.shown_once) }
                p {
                    a.btn href={ "/console/m/" (m.id) } { (t.open_console) } " "
                    (post_button(&format!("/console/op/merchants/{}/invite", m.id), ctx.csrf(), &[], t.invite_owner, Some("quiet")))
                }
            };
            render(&ctx, StatusCode::OK, None, Some(once)).await
        }
        Err(e) => refuse_or_fail(&ctx, e).await,
    }
}

fn merchant_id(raw: &str) -> Option<MerchantId> {
    raw.parse().ok()
}

pub async fn suspended(ctx: Ctx, Path(m): Path<String>, body: axum::body::Bytes) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    let Some(id) = merchant_id(&m) else {
        return ctx.not_found();
    };
    let on = form.get("suspended") == Some("1");
    match ctx.c.engine().set_merchant_suspended(&id, on).await {
        Ok(()) => {
            let action = if on {
                "merchant.suspended"
            } else {
                "merchant.resumed"
            };
            ctx.audit(Some(&id), action, Some(id.as_str()), None).await;
            see_other("/console/op/merchants?ok=saved")
        }
        Err(e) => refuse_or_fail(&ctx, e).await,
    }
}

pub async fn invite(ctx: Ctx, Path(m): Path<String>, body: axum::body::Bytes) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    let Some(id) = merchant_id(&m) else {
        return ctx.not_found();
    };
    match ctx
        .c
        .engine()
        .console_invite(&ctx.user, ConsoleRole::Owner, Some(&id))
        .await
    {
        Ok(token) => {
            ctx.audit(Some(&id), "user.invited", None, Some("owner".into()))
                .await;
            let once = invite_link(ctx.t, &ctx.c.link(&format!("/console/join?token={token}")));
            render(&ctx, StatusCode::OK, None, Some(once)).await
        }
        Err(e) => refuse_or_fail(&ctx, e).await,
    }
}
