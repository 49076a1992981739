//! The merchant's audit log: who did what in the console, newest first.

use axum::extract::Path;
use axum::response::Response;

use crate::auth::Ctx;
use crate::layout::Section;
use crate::operator::overview::audit_list;

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    let shop = match ctx.shop(&m).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let before = ctx.param("before").and_then(|b| b.parse::<i64>().ok());
    match audit_list(&ctx, Some(&shop.id), before).await {
        Ok(body) => ctx.page(ctx.t.audit_log, Section::Audit, Some(&shop), body),
        Err(r) => r,
    }
}
