//! API keys and vendor-dialect credentials: create (the secret is shown once, here, and
//! never again), list, revoke.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::{KeyId, Scope};
use maud::{Markup, html};
use time::Duration;

use super::{base, or_refused};
use crate::auth::{Ctx, Shop, see_other};
use crate::form::Form;
use crate::layout::{self, Section, badge, confirm_button, csrf_field, opt_when, when};

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
        e.list_keys(&shop.id),
        e.list_dialect_credentials(&shop.id, None)
    );
    let (keys, creds) = match loaded {
        Ok(x) => x,
        Err(err) => return ctx.failed(&err),
    };
    let now = e.now();
    let b = base(shop);
    let body = html! {
        h1 { (t.keys) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        @if let Some(once) = shown_once {
            div.card role="status" #shown-once {
                (once)
                p.warn { (t.shown_once) }
            }
        }
        h2 { (t.api_keys) }
        @if keys.is_empty() { p { (t.nothing_yet) } } @else {
            (layout::table(None, &["id", t.label, t.scopes, t.created, t.expires, t.status, ""], html! {
                @for k in &keys {
                    @let state = if k.revoked_at.is_some() { "revoked" } else if k.is_active(now) { "active" } else { "expired" };
                    tr {
                        td.mono { (k.id) }
                        td { (k.label) }
                        td.small { (k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (when(k.created_at)) }
                        td { (opt_when(k.expires_at)) }
                        td { (badge(state, t)) }
                        td { @if shop.write && state == "active" {
                            (confirm_button(&format!("{b}/keys/{}/revoke", k.id), ctx.csrf(), t.revoke, &t.revoke_now.replace("{id}", k.id.as_str())))
                        } }
                    }
                }
            }))
        }
        @if shop.write {
            form.card method="post" action={ (b) "/keys" } {
                (csrf_field(ctx.csrf()))
                h3 { (t.new_api_key) }
                label for="key-label" { (t.label) }
                input #key-label type="text" name="label" maxlength="100";
                fieldset {
                    legend { (t.scopes) }
                    @for s in Scope::ALL {
                        label.check { input type="checkbox" name="scopes" value=(s.as_str()); span.mono { (s.as_str()) } }
                    }
                }
                label for="key-days" { (t.expires_in_days) }
                input #key-days type="number" name="expires_in_days" min="1" max="3650";
                p { button type="submit" { (t.create_key) } }
            }
        }
        h2 { (t.dialect_credentials) }
        p.muted.small { (t.dialect_credentials_hint) }
        @if creds.is_empty() { p { (t.nothing_yet) } } @else {
            (layout::table(None, &["id", "API", t.key_starts, t.created, t.status, ""], html! {
                @for c in &creds {
                    @let state = if c.revoked_at.is_some() { "revoked" } else { "active" };
                    tr {
                        td.mono { (c.id) }
                        td { (c.dialect) }
                        td.mono { (c.key_prefix) "…" }
                        td { (when(c.created_at)) }
                        td { (badge(state, t)) }
                        td { @if shop.write && state == "active" {
                            (confirm_button(&format!("{b}/credentials/{}/revoke", c.id), ctx.csrf(), t.revoke, &t.revoke_now.replace("{id}", &c.id)))
                        } }
                    }
                }
            }))
        }
        @if shop.write {
            form.card method="post" action={ (b) "/credentials" } {
                (csrf_field(ctx.csrf()))
                h3 { (t.new_dialect_credential) }
                label for="dialect" { "API" }
                select #dialect name="dialect" {
                    @for shape in &ctx.c.settings().credentials { option value=(shape.dialect) { (shape.dialect) } }
                }
                p { button type="submit" { (t.create_credential) } }
            }
        }
    };
    ctx.page_with(status, t.keys, Section::Keys, Some(shop), body)
}

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    match ctx.shop(&m).await {
        Ok(shop) => render(&ctx, &shop, StatusCode::OK, None, None).await,
        Err(r) => r,
    }
}

pub async fn create(ctx: Ctx, Path(m): Path<String>, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let scopes = match coffer_core::merchant::parse_scopes(&form.all("scopes").join(",")) {
        Ok(s) => s,
        Err(e) => {
            let m = layout::error(&e.to_string());
            return render(&ctx, &shop, StatusCode::BAD_REQUEST, Some(m), None).await;
        }
    };
    let e = ctx.c.engine();
    let expires_at = form
        .get("expires_in_days")
        .and_then(|d| d.parse::<i64>().ok())
        .map(|d| e.now() + Duration::days(d.clamp(1, 3650)));
    let label = form.get("label").unwrap_or("console");
    match e.create_key(&shop.id, label, scopes, expires_at).await {
        Ok(key) => {
            ctx.audit(
                Some(&shop.id),
                "key.created",
                Some(key.credential.id.as_str()),
                Some(
                    key.credential
                        .scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            )
            .await;
            let once = html! {
                h2 { (ctx.t.key_created) }
                (layout::secret(ctx.t.api_key, &key.token, ctx.t))
            };
            render(&ctx, &shop, StatusCode::OK, None, Some(once)).await
        }
        Err(err) => {
            or_refused(&ctx, err, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn revoke(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(key) = id.parse::<KeyId>() else {
        return ctx.not_found();
    };
    match ctx.c.engine().revoke_key(&shop.id, &key).await {
        Ok(()) => {
            ctx.audit(Some(&shop.id), "key.revoked", Some(key.as_str()), None)
                .await;
            see_other(&format!("{}/keys?ok=revoked", base(&shop)))
        }
        Err(err) => {
            or_refused(&ctx, err, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn create_credential(
    ctx: Ctx,
    Path(m): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let dialect = form.get("dialect").unwrap_or_default();
    let t = ctx.t;
    let Some(shape) = ctx
        .c
        .settings()
        .credentials
        .iter()
        .find(|s| s.dialect == dialect)
        .copied()
    else {
        let m = layout::error(&format!(
            "dialect: {dialect:?} is not an API of this server"
        ));
        return render(&ctx, &shop, StatusCode::UNPROCESSABLE_ENTITY, Some(m), None).await;
    };
    match ctx
        .c
        .engine()
        .create_dialect_credential(&ctx.c.inner.master, &shop.id, &shape)
        .await
    {
        Ok(c) => {
            ctx.audit(
                Some(&shop.id),
                "credential.created",
                Some(&c.id),
                Some(c.dialect.clone()),
            )
            .await;
            let once = html! {
                h2 { (t.credential_created) " · " span.mono { (c.id) } }
                @for (label, value) in shape.labelled(&c) { (layout::secret(label, &value, t)) }
            };
            render(&ctx, &shop, StatusCode::OK, None, Some(once)).await
        }
        Err(err) => {
            or_refused(&ctx, err, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn revoke_credential(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
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
        .revoke_dialect_credential(&shop.id, &id)
        .await
    {
        Ok(()) => {
            ctx.audit(Some(&shop.id), "credential.revoked", Some(&id), None)
                .await;
            see_other(&format!("{}/keys?ok=revoked", base(&shop)))
        }
        Err(err) => {
            or_refused(&ctx, err, |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}
