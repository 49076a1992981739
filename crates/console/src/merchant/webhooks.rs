//! Webhook endpoints: create (the signing secret is shown once), rotate the secret (the old
//! one keeps signing for 24 h), enable, disable, delete; each endpoint's delivery log with
//! what was sent and answered, and delivering one again.

use std::str::FromStr;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::{DeliveryId, EventType, WebhookId};
use coffer_engine::EngineError;
use coffer_engine::console::ListCursor;
use coffer_store::DeliveryRecord;
use maud::{Markup, html};

use super::{base, or_refused, service_error};
use crate::auth::{Ctx, Shop, see_other};
use crate::form::Form;
use crate::layout::{
    self, Section, badge, confirm_button, csrf_field, opt_when, post_button, when,
};

const PAGE: u32 = 50;

/// Deliveries as a table, each with a button that delivers it again (posted to `redeliver`).
pub fn deliveries_table(
    ctx: &Ctx,
    shop: &Shop,
    list: &[DeliveryRecord],
    redeliver: &str,
) -> Markup {
    let t = ctx.t;
    let mut head = vec![
        t.created,
        t.url,
        t.status,
        t.attempts,
        t.response,
        t.next_attempt,
    ];
    if shop.write {
        head.push(t.actions);
    }
    layout::table(
        None,
        &head,
        html! {
            @for d in list {
                tr data-delivery=(d.id) {
                    td { (when(d.created_at)) }
                    td.mono.small { (d.url) }
                    td { (badge(d.status.as_str(), t)) }
                    td.num { (d.attempts) }
                    td.small {
                        @if let Some(code) = d.last_status_code { "HTTP " (code) }
                        @if let Some(err) = &d.error { " " (err) }
                        @if d.request_body.is_some() || d.response_excerpt.is_some() {
                            details {
                                summary { (t.show) }
                                @if let Some(body) = &d.request_body { p.small { (t.request) } pre { (body) } }
                                @if let Some(r) = &d.response_excerpt { p.small { (t.response) } pre { (r) } }
                            }
                        }
                    }
                    td { (opt_when(d.next_attempt_at.filter(|_| d.status == coffer_store::DeliveryStatus::Pending))) }
                    @if shop.write {
                        td { (post_button(redeliver, ctx.csrf(), &[("delivery", d.id.as_str())], t.redeliver, Some("quiet"))) }
                    }
                }
            }
        },
    )
}

/// Make one of the merchant's deliveries due again now (endpoint deliveries through the
/// webhook service, which wakes the sender; callbacks through the engine).
pub async fn redeliver_one(
    ctx: &Ctx,
    shop: &Shop,
    raw: Option<&str>,
) -> Result<String, EngineError> {
    let id = raw
        .and_then(|d| DeliveryId::from_str(d).ok())
        .ok_or(EngineError::NotFound("delivery"))?;
    // The delivery's endpoint decides the path; another merchant's delivery is not found.
    let delivery = ctx
        .c
        .engine()
        .delivery(&shop.id, &id)
        .await?
        .ok_or(EngineError::NotFound("delivery"))?;
    match &delivery.endpoint_id {
        Some(endpoint) => {
            ctx.c
                .inner
                .webhooks
                .redeliver(&shop.id, endpoint, &id)
                .await
                .map_err(service_error)?;
        }
        None => {
            // A callback: due now; the sender's next poll takes it.
            if !ctx.c.engine().redeliver(&shop.id, &id).await? {
                return Err(EngineError::NotFound("delivery"));
            }
        }
    }
    Ok(id.to_string())
}

async fn render(
    ctx: &Ctx,
    shop: &Shop,
    status: StatusCode,
    message: Option<Markup>,
    shown_once: Option<Markup>,
) -> Response {
    let t = ctx.t;
    let list = match ctx.c.inner.webhooks.list(&shop.id).await {
        Ok(l) => l,
        Err(e) => return ctx.failed(&service_error(e)),
    };
    let b = base(shop);
    let body = html! {
        h1 { (t.webhooks) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        @if let Some(once) = shown_once { div.card role="status" #shown-once { (once) p.warn { (t.shown_once) } } }
        @if list.is_empty() { p { (t.no_endpoints) } } @else {
            (layout::table(None, &[t.url, t.events, t.status, t.created], html! {
                @for w in &list {
                    tr {
                        td { a.mono href={ (b) "/webhooks/" (w.id) } { (w.url) } }
                        td.small { @if w.events.is_empty() { (t.all_events) } @else { (w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")) } }
                        td {
                            @if !w.enabled { (badge("disabled", t)) }
                            @else if w.failing_since.is_some() { (badge("failed", t)) }
                            @else { (badge("active", t)) }
                        }
                        td { (when(w.created_at)) }
                    }
                }
            }))
        }
        @if shop.write {
            form.card method="post" action={ (b) "/webhooks" } {
                (csrf_field(ctx.csrf()))
                h2 { (t.new_endpoint) }
                label for="hook-url" { (t.url) }
                input #hook-url type="url" name="url" required placeholder="https://shop.example/coffer-webhook";
                details {
                    summary { (t.choose_events) }
                    p.small.muted { (t.all_events_hint) }
                    @for e in EventType::ALL {
                        label.check { input type="checkbox" name="events" value=(e.as_str()); span.mono { (e.as_str()) } }
                    }
                }
                p { button type="submit" { (t.create_endpoint) } }
            }
        }
    };
    ctx.page_with(status, t.webhooks, Section::Webhooks, Some(shop), body)
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
    let events: Vec<String> = form.all("events").into_iter().map(str::to_owned).collect();
    let url = form.get("url").unwrap_or_default();
    match ctx
        .c
        .inner
        .webhooks
        .create(&shop.id, url, &events, true)
        .await
    {
        Ok((endpoint, secret)) => {
            ctx.audit(
                Some(&shop.id),
                "webhook.created",
                Some(endpoint.id.as_str()),
                Some(endpoint.url.clone()),
            )
            .await;
            let once = html! {
                h2 { (ctx.t.endpoint_created) }
                (layout::secret(ctx.t.signing_secret, &secret, ctx.t))
            };
            render(&ctx, &shop, StatusCode::OK, None, Some(once)).await
        }
        Err(e) => {
            or_refused(&ctx, service_error(e), |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}

async fn endpoint_page(
    ctx: &Ctx,
    shop: &Shop,
    id: &WebhookId,
    status: StatusCode,
    message: Option<Markup>,
    shown_once: Option<Markup>,
) -> Response {
    let t = ctx.t;
    let endpoint = match ctx.c.inner.webhooks.get(&shop.id, id).await {
        Ok(e) => e,
        Err(coffer_webhooks::ServiceError::NotFound(_)) => return ctx.not_found(),
        Err(e) => return ctx.failed(&service_error(e)),
    };
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
    let mut deliveries = match ctx
        .c
        .engine()
        .endpoint_deliveries(&shop.id, id, after.as_ref(), PAGE + 1)
        .await
    {
        Ok(d) => d,
        Err(e) => return ctx.failed(&e),
    };
    let more = deliveries.len() > PAGE as usize;
    deliveries.truncate(PAGE as usize);
    let next = more
        .then(|| {
            deliveries.last().map(|d| {
                format!(
                    "?after={}.{}",
                    d.created_at.unix_timestamp_nanos() / 1_000_000,
                    d.id
                )
            })
        })
        .flatten();
    let here = format!("{}/webhooks/{}", base(shop), id);
    let body = html! {
        p.small { a href={ (base(shop)) "/webhooks" } { "« " (t.webhooks) } }
        h1 { (t.endpoint) }
        (ctx.notice())
        @if let Some(m) = message { (m) }
        @if let Some(once) = shown_once { div.card role="status" #shown-once { (once) p.warn { (t.shown_once) } } }
        div.card {
            p.mono { (endpoint.url) }
            p.small {
                @if endpoint.events.is_empty() { (t.all_events) } @else { (endpoint.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")) }
            }
            p {
                @if !endpoint.enabled { (badge("disabled", t)) } @else { (badge("active", t)) }
                @if let Some(since) = endpoint.failing_since { " " (t.failing_since) " " (when(since)) }
            }
            @if let Some(until) = endpoint.previous_secret_expires_at { p.small.muted { (t.previous_secret_until) " " (when(until)) } }
            @if shop.write {
                p.row {
                    (post_button(&format!("{here}/rotate"), ctx.csrf(), &[], t.rotate_secret, Some("quiet")))
                    " "
                    @if endpoint.enabled {
                        (post_button(&format!("{here}/enabled"), ctx.csrf(), &[("enabled", "0")], t.disable, Some("quiet")))
                    } @else {
                        (post_button(&format!("{here}/enabled"), ctx.csrf(), &[("enabled", "1")], t.enable, None))
                    }
                }
                (confirm_button(&format!("{here}/delete"), ctx.csrf(), t.delete, t.delete_endpoint))
            }
        }
        h2 { (t.deliveries) }
        @if deliveries.is_empty() { p { (t.no_deliveries) } } @else {
            (deliveries_table(ctx, shop, &deliveries, &format!("{here}/redeliver")))
        }
        (layout::pager(next, paged.then(|| "?".to_owned()), t))
    };
    ctx.page_with(status, t.endpoint, Section::Webhooks, Some(shop), body)
}

fn webhook_id(raw: &str) -> Option<WebhookId> {
    WebhookId::from_str(raw).ok()
}

pub async fn endpoint(ctx: Ctx, Path((m, id)): Path<(String, String)>) -> Response {
    let shop = match ctx.shop(&m).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id) = webhook_id(&id) else {
        return ctx.not_found();
    };
    endpoint_page(&ctx, &shop, &id, StatusCode::OK, None, None).await
}

pub async fn rotate(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id) = webhook_id(&id) else {
        return ctx.not_found();
    };
    match ctx.c.inner.webhooks.rotate(&shop.id, &id).await {
        Ok((_, secret)) => {
            ctx.audit(
                Some(&shop.id),
                "webhook.secret_rotated",
                Some(id.as_str()),
                None,
            )
            .await;
            let once = html! {
                h2 { (ctx.t.secret_rotated) }
                (layout::secret(ctx.t.signing_secret, &secret, ctx.t))
            };
            endpoint_page(&ctx, &shop, &id, StatusCode::OK, None, Some(once)).await
        }
        Err(e) => {
            or_refused(&ctx, service_error(e), |status, m| {
                endpoint_page(&ctx, &shop, &id, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn enabled(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id) = webhook_id(&id) else {
        return ctx.not_found();
    };
    let on = form.get("enabled") == Some("1");
    let patch = coffer_webhooks::service::EndpointPatch {
        enabled: Some(on),
        ..Default::default()
    };
    match ctx.c.inner.webhooks.update(&shop.id, &id, patch).await {
        Ok(_) => {
            let action = if on {
                "webhook.enabled"
            } else {
                "webhook.disabled"
            };
            ctx.audit(Some(&shop.id), action, Some(id.as_str()), None)
                .await;
            see_other(&format!("{}/webhooks/{id}?ok=saved", base(&shop)))
        }
        Err(e) => {
            or_refused(&ctx, service_error(e), |status, m| {
                endpoint_page(&ctx, &shop, &id, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn delete(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id) = webhook_id(&id) else {
        return ctx.not_found();
    };
    match ctx.c.inner.webhooks.delete(&shop.id, &id).await {
        Ok(()) => {
            ctx.audit(Some(&shop.id), "webhook.deleted", Some(id.as_str()), None)
                .await;
            see_other(&format!("{}/webhooks?ok=deleted", base(&shop)))
        }
        Err(e) => {
            or_refused(&ctx, service_error(e), |status, m| {
                render(&ctx, &shop, status, Some(m), None)
            })
            .await
        }
    }
}

pub async fn redeliver(
    ctx: Ctx,
    Path((m, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::urlencoded(&body);
    let shop = match ctx.shop_to_change(&m, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id) = webhook_id(&id) else {
        return ctx.not_found();
    };
    match redeliver_one(&ctx, &shop, form.get("delivery")).await {
        Ok(d) => {
            ctx.audit(Some(&shop.id), "webhook.redelivered", Some(&d), None)
                .await;
            see_other(&format!("{}/webhooks/{id}?ok=redelivered", base(&shop)))
        }
        Err(e) => {
            or_refused(&ctx, e, |status, m| {
                endpoint_page(&ctx, &shop, &id, status, Some(m), None)
            })
            .await
        }
    }
}
