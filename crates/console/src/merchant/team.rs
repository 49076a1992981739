//! The merchant's console users: owners (change everything) and staff (read only);
//! invitations as one-time links; disabling a user ends their sessions.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_engine::console::ConsoleRole;
use maud::{Markup, html};

use super::{base, or_refused};
use crate::auth::{Ctx, Shop, see_other};
use crate::form::Form;
use crate::layout::{Section, csrf_field};
use crate::operator::users::{invitations_table, invite_link, users_table};

async fn render(
    ctx: &Ctx,
    shop: &Shop,
    status: StatusCode,
    message: Option<Markup>,
    shown_once: Option<Markup>,
) -> Response {
    let t = ctx.t;
    let e = ctx.c.engine();
    let loaded = tokio::try_join!(
        e.console_users(Some(&shop.id)),
        e.console_invitations(Some(&shop.id))
    );
    let (users, invites) = match loaded {
        Ok(x) => x,
        Err(err) => return ctx.failed(&err),
    };
    let b = base(shop);
    let body = html! {
        h1 { (t.team) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        @if let Some(once) = shown_once { div.card role="status" #shown-once { (once) } }
        (users_table(ctx, &users, shop.write, &format!("{b}/team")))
        @if shop.write {
            form.card method="post" action={ (b) "/team/invite" } {
                (csrf_field(ctx.csrf()))
                h2 { (t.invite_someone) }
                label for="role" { (t.role) }
                select #role name="role" {
                    option value="staff" { (t.word("staff")) " — " (t.staff_hint) }
                    option value="owner" { (t.word("owner")) " — " (t.owner_hint) }
                }
                p { button type="submit" { (t.create_invitation) } }
            }
            @if !invites.is_empty() {
                h2 { (t.open_invitations) }
                (invitations_table(ctx, &invites, &format!("{b}/team/invites")))
            }
        }
    };
    ctx.page_with(status, t.team, Section::Team, Some(shop), body)
}

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    match ctx.shop(&m).await {
        Ok(shop) => render(&ctx, &shop, StatusCode::OK, None, None).await,
        Err(r) => r,
    }
}

pub async fn invite(ctx: Ctx, Path(m): Path<String>, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let role = match form.get("role") {
        Some("owner") => ConsoleRole::Owner,
        _ => ConsoleRole::Staff,
    };
    match ctx
        .c
        .engine()
        .console_invite(&ctx.user, role, Some(&shop.id))
        .await
    {
        Ok(token) => {
            ctx.audit(
                Some(&shop.id),
                "user.invited",
                None,
                Some(role.as_str().to_owned()),
            )
            .await;
            let once = invite_link(ctx.t, &ctx.c.link(&format!("/console/join?token={token}")));
            render(&ctx, &shop, StatusCode::OK, None, Some(once)).await
        }
        Err(e) => {
            or_refused(&ctx, e, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn withdraw(
    ctx: Ctx,
    Path((m, hash)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match ctx
        .c
        .engine()
        .withdraw_console_invitation(&ctx.user, Some(&shop.id), &hash)
        .await
    {
        Ok(()) => {
            ctx.audit(Some(&shop.id), "user.invitation_withdrawn", None, None)
                .await;
            see_other(&format!("{}/team?ok=withdrawn", base(&shop)))
        }
        Err(e) => {
            or_refused(&ctx, e, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn disabled(
    ctx: Ctx,
    Path((m, user)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let off = form.get("disabled") == Some("1");
    match ctx
        .c
        .engine()
        .set_console_user_disabled(&ctx.user, Some(&shop.id), &user, off)
        .await
    {
        Ok(u) => {
            let action = if off { "user.disabled" } else { "user.enabled" };
            ctx.audit(
                Some(&shop.id),
                action,
                Some(&u.id),
                Some(u.username.clone()),
            )
            .await;
            see_other(&format!("{}/team?ok=saved", base(&shop)))
        }
        Err(e) => {
            or_refused(&ctx, e, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}
