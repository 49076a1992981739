//! One's own account: password, two-step sign-in (TOTP), open sessions.

use axum::http::StatusCode;
use axum::response::Response;
use coffer_engine::EngineError;
use coffer_engine::console::totp;
use maud::{Markup, PreEscaped, html};

use crate::auth::{Ctx, see_other};
use crate::form::Form;
use crate::layout::{self, Section, csrf_field, when};

/// The account page, optionally with a notice and a TOTP enrolment in progress.
async fn render(
    ctx: &Ctx,
    status: StatusCode,
    message: Option<Markup>,
    enrol: Option<&str>,
) -> Response {
    let t = ctx.t;
    let sessions = match ctx.c.engine().console_sessions(&ctx.user.id).await {
        Ok(s) => s,
        Err(e) => return ctx.failed(&e),
    };
    let role = t.word(ctx.user.role.as_str());
    let body = html! {
        h1 { (t.account) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        div.card {
            p { strong { (ctx.user.username) } " · " (role) }
        }
        h2 { (t.change_password) }
        form.card method="post" action="/console/account/password" {
            (csrf_field(ctx.csrf()))
            label for="current" { (t.current_password) }
            input #current type="password" name="current_password" autocomplete="current-password" required;
            label for="new" { (t.new_password) }
            input #new type="password" name="new_password" autocomplete="new-password" required minlength="12";
            label for="new2" { (t.repeat_password) }
            input #new2 type="password" name="new_password2" autocomplete="new-password" required minlength="12";
            p.small.muted { (t.password_rule) }
            p { button type="submit" { (t.change_password) } }
        }
        h2 #totp { (t.two_step) }
        div.card {
            @if ctx.user.totp_secret.is_some() {
                p { span.badge.b-active { (t.two_step_on) } }
                form method="post" action="/console/account/totp/disable" {
                    (csrf_field(ctx.csrf()))
                    label for="off-code" { (t.code) }
                    input #off-code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength="7";
                    p { button.danger type="submit" { (t.turn_off) } }
                }
            } @else if let Some(secret) = enrol {
                div #shown-once {
                p { (t.scan_hint) }
                @let uri = totp::otpauth_uri(&format!("Coffer ({})", host(&ctx.c.settings().public_url)), &ctx.user.username, secret);
                @if let Some(svg) = coffer_checkout::qr::svg(&uri, t.qr_label) { (PreEscaped(svg)) }
                (layout::secret(t.secret_key, secret, t))
                form method="post" action="/console/account/totp/enable" {
                    (csrf_field(ctx.csrf()))
                    input type="hidden" name="secret" value=(secret);
                    label for="on-code" { (t.code_from_app) }
                    input #on-code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength="7" autofocus;
                    p { button type="submit" { (t.turn_on) } }
                }
                }
            } @else {
                p { (t.two_step_off) }
                form method="post" action="/console/account/totp/new" {
                    (csrf_field(ctx.csrf()))
                    button type="submit" { (t.set_up_two_step) }
                }
            }
        }
        h2 { (t.sessions) }
        (layout::table(None, &[t.client, t.signed_in_at, t.last_seen], html! {
            @for s in &sessions {
                tr {
                    td { (s.client.as_deref().unwrap_or("—"))
                        @if s.token_hash == ctx.session.token_hash { " " span.badge.b-active { (t.this_session) } } }
                    td { (when(s.created_at)) }
                    td { (when(s.last_seen_at)) }
                }
            }
        }))
        form method="post" action="/console/logout-everywhere" {
            (csrf_field(ctx.csrf()))
            button.danger type="submit" { (t.sign_out_everywhere) }
        }
    };
    ctx.page_with(status, t.account, Section::Account, None, body)
}

fn host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "console".to_owned())
}

pub async fn page(ctx: Ctx) -> Response {
    render(&ctx, StatusCode::OK, None, None).await
}

fn invalid(ctx: &Ctx, e: &EngineError) -> Option<Markup> {
    match e {
        EngineError::Invalid { .. } | EngineError::Conflict { .. } => {
            Some(layout::error(&ctx.t.engine_error(e)))
        }
        _ => None,
    }
}

pub async fn password(ctx: Ctx, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    if form.raw("new_password") != form.raw("new_password2") {
        let m = layout::error(ctx.t.passwords_differ);
        return render(&ctx, StatusCode::BAD_REQUEST, Some(m), None).await;
    }
    let changed = ctx
        .c
        .engine()
        .change_console_password(
            &ctx.user,
            &ctx.session.token_hash,
            form.raw("current_password"),
            form.raw("new_password"),
        )
        .await;
    match changed {
        Ok(()) => {
            ctx.audit(
                ctx.user.merchant_id.as_ref(),
                "user.password_changed",
                Some(&ctx.user.id),
                None,
            )
            .await;
            see_other("/console/account?ok=password_changed")
        }
        Err(e) => match invalid(&ctx, &e) {
            Some(m) => render(&ctx, StatusCode::BAD_REQUEST, Some(m), None).await,
            None => ctx.failed(&e),
        },
    }
}

pub async fn totp_new(ctx: Ctx, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    let secret = ctx.c.engine().new_totp_secret();
    render(&ctx, StatusCode::OK, None, Some(&secret)).await
}

pub async fn totp_enable(ctx: Ctx, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    let secret = form.get("secret").unwrap_or_default().to_owned();
    let enabled = ctx
        .c
        .engine()
        .enable_console_totp(&ctx.c.inner.master, &ctx.user, &secret, form.raw("code"))
        .await;
    match enabled {
        Ok(()) => {
            ctx.audit(
                ctx.user.merchant_id.as_ref(),
                "user.totp_enabled",
                Some(&ctx.user.id),
                None,
            )
            .await;
            see_other("/console/account?ok=totp_on#totp")
        }
        Err(e) => match invalid(&ctx, &e) {
            Some(m) => render(&ctx, StatusCode::BAD_REQUEST, Some(m), Some(&secret)).await,
            None => ctx.failed(&e),
        },
    }
}

pub async fn totp_disable(ctx: Ctx, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    if let Err(r) = ctx.check(&form) {
        return r;
    }
    let disabled = ctx
        .c
        .engine()
        .disable_console_totp(&ctx.c.inner.master, &ctx.user, form.raw("code"))
        .await;
    match disabled {
        Ok(()) => {
            ctx.audit(
                ctx.user.merchant_id.as_ref(),
                "user.totp_disabled",
                Some(&ctx.user.id),
                None,
            )
            .await;
            see_other("/console/account?ok=totp_off#totp")
        }
        Err(e) => match invalid(&ctx, &e) {
            Some(m) => render(&ctx, StatusCode::BAD_REQUEST, Some(m), None).await,
            None => ctx.failed(&e),
        },
    }
}
