//! Operators (and the tables the merchant's team page shares): invite by one-time link,
//! withdraw an invitation, disable or enable a user.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_engine::console::{ConsoleInviteRecord, ConsoleRole, ConsoleUserRecord};
use maud::{Markup, html};

use crate::auth::{Ctx, see_other};
use crate::form::Form;
use crate::i18n::Texts;
use crate::layout::{self, Section, badge, csrf_field, post_button, when};
use crate::merchant::refused;

/// A new invitation's link, shown once.
pub fn invite_link(t: &Texts, link: &str) -> Markup {
    html! {
        h2 { (t.invitation_created) }
        (layout::secret(t.invitation_link, link, t))
        p.warn { (t.invitation_hint) }
    }
}

/// Users with their role, second factor and state; with `write`, disable or enable them
/// (posted to `{base}/{user}/disabled`).
pub fn users_table(ctx: &Ctx, users: &[ConsoleUserRecord], write: bool, base: &str) -> Markup {
    let t = ctx.t;
    let mut head = vec![t.user, t.role, t.two_step, t.created, t.status];
    if write {
        head.push(t.actions);
    }
    layout::table(
        None,
        &head,
        html! {
            @for u in users {
                tr {
                    td { (u.username) }
                    td { (t.word(u.role.as_str())) }
                    td { @if u.totp_secret.is_some() { (t.two_step_on_short) } @else { "—" } }
                    td { (when(u.created_at)) }
                    td { @if u.disabled_at.is_some() { (badge("disabled", t)) } @else { (badge("active", t)) } }
                    @if write {
                        td {
                            @if u.id != ctx.user.id {
                                @if u.disabled_at.is_some() {
                                    (post_button(&format!("{base}/{}/disabled", u.id), ctx.csrf(), &[("disabled", "0")], t.enable, Some("quiet")))
                                } @else {
                                    (post_button(&format!("{base}/{}/disabled", u.id), ctx.csrf(), &[("disabled", "1")], t.disable, Some("danger")))
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Open invitations, each withdrawable (posted to `{base}/{hash}/withdraw`).
pub fn invitations_table(ctx: &Ctx, invites: &[ConsoleInviteRecord], base: &str) -> Markup {
    let t = ctx.t;
    layout::table(
        None,
        &[t.role, t.created, t.expires, t.actions],
        html! {
            @for i in invites {
                tr {
                    td { (t.word(i.role.as_str())) @if i.created_by.is_none() { " (" (t.setup_link) ")" } }
                    td { (when(i.created_at)) }
                    td { (when(i.expires_at)) }
                    td { (post_button(&format!("{base}/{}/withdraw", i.token_hash), ctx.csrf(), &[], t.withdraw, Some("quiet"))) }
                }
            }
        },
    )
}

async fn render(
    ctx: &Ctx,
    status: StatusCode,
    message: Option<Markup>,
    shown_once: Option<Markup>,
) -> Response {
    let t = ctx.t;
    let e = ctx.c.engine();
    let (users, invites) =
        match tokio::try_join!(e.console_users(None), e.console_invitations(None)) {
            Ok(x) => x,
            Err(err) => return ctx.failed(&err),
        };
    let body = html! {
        h1 { (t.operators) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        @if let Some(once) = shown_once { div.card role="status" #shown-once { (once) } }
        (users_table(ctx, &users, true, "/console/op/users"))
        form.card method="post" action="/console/op/users/invite" {
            (csrf_field(ctx.csrf()))
            h2 { (t.invite_operator) }
            p.small.muted { (t.operator_hint) }
            p { button type="submit" { (t.create_invitation) } }
        }
        @if !invites.is_empty() {
            h2 { (t.open_invitations) }
            (invitations_table(ctx, &invites, "/console/op/users/invites"))
        }
    };
    ctx.page_with(status, t.operators, Section::OpUsers, None, body)
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

/// The operator's form, checked: `Err` is the response to give.
fn checked(ctx: &Ctx, body: &[u8]) -> Result<Form, Response> {
    ctx.operator()?;
    let form = Form::urlencoded(body);
    ctx.check(&form)?;
    Ok(form)
}

pub async fn invite(ctx: Ctx, body: axum::body::Bytes) -> Response {
    if let Err(r) = checked(&ctx, &body) {
        return r;
    }
    match ctx
        .c
        .engine()
        .console_invite(&ctx.user, ConsoleRole::Operator, None)
        .await
    {
        Ok(token) => {
            ctx.audit(None, "user.invited", None, Some("operator".into()))
                .await;
            let once = invite_link(ctx.t, &ctx.c.link(&format!("/console/join?token={token}")));
            render(&ctx, StatusCode::OK, None, Some(once)).await
        }
        Err(e) => refuse_or_fail(&ctx, e).await,
    }
}

pub async fn withdraw(ctx: Ctx, Path(hash): Path<String>, body: axum::body::Bytes) -> Response {
    if let Err(r) = checked(&ctx, &body) {
        return r;
    }
    match ctx
        .c
        .engine()
        .withdraw_console_invitation(&ctx.user, None, &hash)
        .await
    {
        Ok(()) => {
            ctx.audit(None, "user.invitation_withdrawn", None, None)
                .await;
            see_other("/console/op/users?ok=withdrawn")
        }
        Err(e) => refuse_or_fail(&ctx, e).await,
    }
}

pub async fn disabled(ctx: Ctx, Path(user): Path<String>, body: axum::body::Bytes) -> Response {
    let form = match checked(&ctx, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let off = form.get("disabled") == Some("1");
    match ctx
        .c
        .engine()
        .set_console_user_disabled(&ctx.user, None, &user, off)
        .await
    {
        Ok(u) => {
            let action = if off { "user.disabled" } else { "user.enabled" };
            ctx.audit(None, action, Some(&u.id), Some(u.username.clone()))
                .await;
            see_other("/console/op/users?ok=saved")
        }
        Err(e) => refuse_or_fail(&ctx, e).await,
    }
}
