//! The checkout's branding (name, colour, logo) and the settlement settings of new orders
//! (confirmations per chain, underpayment tolerance). Orders already created keep the
//! settings they were created with.

use std::str::FromStr;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use coffer_engine::branding::Branding;
use maud::{Markup, html};
use rust_decimal::Decimal;

use super::{base, or_refused};
use crate::auth::{Ctx, Shop, see_other};
use crate::form::Form;
use crate::layout::{self, Section, csrf_field};

async fn render(ctx: &Ctx, shop: &Shop, status: StatusCode, message: Option<Markup>) -> Response {
    let t = ctx.t;
    let e = ctx.c.engine();
    let loaded = tokio::try_join!(e.merchant(&shop.id), e.branding(&shop.id));
    let (merchant, branding) = match loaded {
        Ok((Some(m), b)) => (m, b),
        Ok((None, _)) => return ctx.not_found(),
        Err(err) => return ctx.failed(&err),
    };
    let b = base(shop);
    let write = shop.write;
    let policy = &merchant.policy;
    let body = html! {
        h1 { (t.settings) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        form.card method="post" action={ (b) "/settings/branding" } enctype="multipart/form-data" {
            (csrf_field(ctx.csrf()))
            h2 { (t.branding) }
            p.small.muted { (t.branding_hint) }
            label for="display-name" { (t.display_name) }
            input #display-name type="text" name="display_name" maxlength="100"
                value=[branding.as_ref().and_then(|b| b.display_name.as_deref())] placeholder=(merchant.name) disabled[!write];
            label for="color" { (t.brand_color) }
            input #color type="text" name="color" pattern="#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?" size="8"
                value=[branding.as_ref().and_then(|b| b.color.as_deref())] placeholder="#1d4ed8" disabled[!write];
            @if let Some(logo) = branding.as_ref().and_then(|b| b.logo.as_deref()).filter(|l| l.starts_with("data:image/")) {
                p { img src=(logo) alt=(t.current_logo) width="48" height="48"; }
                label.check { input type="checkbox" name="remove_logo" value="1" disabled[!write]; (t.remove_logo) }
            }
            label for="logo" { (t.logo) }
            input #logo type="file" name="logo" accept="image/png,image/jpeg,image/webp,image/gif,image/svg+xml" disabled[!write];
            p.small.muted { (t.logo_hint) }
            @if write { p { button type="submit" { (t.save) } } }
        }
        form.card method="post" action={ (b) "/settings/confirmations" } {
            (csrf_field(ctx.csrf()))
            h2 { (t.confirmations) }
            p.small.muted { (t.confirmations_hint) }
            @for c in e.assets().chains() {
                @let current = policy.chain_confirmations.get(c.id.as_str());
                label for={ "conf-" (c.id) } { (c.name) " (" (c.id) ")" }
                input id={ "conf-" (c.id) } type="number" name={ "conf." (c.id) } min="0" max="1000"
                    value=[current] placeholder={ (t.default_word) ": " (c.confirmations) } disabled[!write];
            }
            @if write { p { button type="submit" { (t.save) } } }
        }
        form.card method="post" action={ (b) "/settings/tolerance" } {
            (csrf_field(ctx.csrf()))
            h2 { (t.underpayment) }
            p.small.muted { (t.underpayment_hint) }
            label for="tolerance" { (t.tolerance_percent) }
            input #tolerance type="text" inputmode="decimal" name="percent" size="6"
                value=(policy.underpayment_tolerance_percent.normalize()) disabled[!write];
            @if write { p { button type="submit" { (t.save) } } }
        }
    };
    ctx.page_with(status, t.settings, Section::Settings, Some(shop), body)
}

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    match ctx.shop(&m).await {
        Ok(shop) => render(&ctx, &shop, StatusCode::OK, None).await,
        Err(r) => r,
    }
}

/// The image type of an uploaded logo: what the browser said, else its first bytes.
fn image_type(declared: &str, bytes: &[u8]) -> Option<&'static str> {
    let by_name = match declared {
        "image/png" => Some("png"),
        "image/jpeg" => Some("jpeg"),
        "image/webp" => Some("webp"),
        "image/gif" => Some("gif"),
        "image/svg+xml" => Some("svg+xml"),
        _ => None,
    };
    by_name.or_else(|| {
        if bytes.starts_with(b"\x89PNG") {
            Some("png")
        } else if bytes.starts_with(&[0xff, 0xd8]) {
            Some("jpeg")
        } else if bytes.starts_with(b"GIF8") {
            Some("gif")
        } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some("webp")
        } else if bytes.starts_with(b"<svg") || bytes.starts_with(b"<?xml") {
            Some("svg+xml")
        } else {
            None
        }
    })
}

pub async fn branding(
    ctx: Ctx,
    Path(m): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let form = Form::multipart(content_type, &body).unwrap_or_else(|| Form::urlencoded(&body));
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let e = ctx.c.engine();
    let current = match e.branding(&shop.id).await {
        Ok(b) => b,
        Err(err) => return ctx.failed(&err),
    };
    let logo = match form.file("logo") {
        Some((ct, bytes)) => match image_type(ct, bytes) {
            Some(kind) => Some(format!(
                "data:image/{kind};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )),
            None => {
                let m = layout::error(ctx.t.logo_hint);
                return render(&ctx, &shop, StatusCode::BAD_REQUEST, Some(m)).await;
            }
        },
        None if form.has("remove_logo") => None,
        None => current.and_then(|b| b.logo),
    };
    let branding = Branding {
        display_name: form.get("display_name").map(str::to_owned),
        color: form.get("color").map(str::to_owned),
        logo,
    };
    match e.set_branding(&shop.id, branding).await {
        Ok(_) => {
            ctx.audit(Some(&shop.id), "branding.set", None, None).await;
            see_other(&format!("{}/settings?ok=saved", base(&shop)))
        }
        Err(err) => or_refused(&ctx, err, |status, m| render(&ctx, &shop, status, Some(m))).await,
    }
}

pub async fn confirmations(ctx: Ctx, Path(m): Path<String>, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let e = ctx.c.engine();
    let merchant = match e.merchant(&shop.id).await {
        Ok(Some(m)) => m,
        Ok(None) => return ctx.not_found(),
        Err(err) => return ctx.failed(&err),
    };
    let mut changed = Vec::new();
    for c in e.assets().chains() {
        let field = format!("conf.{}", c.id);
        let wanted = match form.get(&field) {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    let err = coffer_engine::EngineError::invalid(
                        "invalid_confirmations",
                        "confirmations",
                        format!("confirmations on {} must be a whole number", c.id),
                    );
                    return or_refused(&ctx, err, |status, m| render(&ctx, &shop, status, Some(m)))
                        .await;
                }
            },
        };
        if merchant
            .policy
            .chain_confirmations
            .get(c.id.as_str())
            .copied()
            == wanted
        {
            continue;
        }
        if let Err(err) = e
            .set_chain_confirmations(&shop.id, c.id.as_str(), wanted)
            .await
        {
            return or_refused(&ctx, err, |status, m| render(&ctx, &shop, status, Some(m))).await;
        }
        changed.push(format!(
            "{}={}",
            c.id,
            wanted.map_or_else(|| "default".to_owned(), |n| n.to_string())
        ));
    }
    if !changed.is_empty() {
        ctx.audit(
            Some(&shop.id),
            "settings.confirmations",
            None,
            Some(changed.join(" ")),
        )
        .await;
    }
    see_other(&format!("{}/settings?ok=saved", base(&shop)))
}

pub async fn tolerance(ctx: Ctx, Path(m): Path<String>, body: axum::body::Bytes) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let raw = form.get("percent").unwrap_or("0");
    let result = match Decimal::from_str(raw) {
        Ok(p) => ctx.c.engine().set_underpayment_tolerance(&shop.id, p).await,
        Err(_) => Err(coffer_engine::EngineError::invalid(
            "invalid_tolerance",
            "underpayment_tolerance_percent",
            "the underpayment tolerance must be a number of percent, e.g. 0.5",
        )),
    };
    match result {
        Ok(m) => {
            ctx.audit(
                Some(&shop.id),
                "settings.underpayment_tolerance",
                None,
                Some(m.policy.underpayment_tolerance_percent.to_string()),
            )
            .await;
            see_other(&format!("{}/settings?ok=saved", base(&shop)))
        }
        Err(err) => or_refused(&ctx, err, |status, m| render(&ctx, &shop, status, Some(m))).await,
    }
}
