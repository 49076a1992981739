//! The orders list: filters (status, reason, asset, dates), search (order id or number,
//! address, transaction hash), keyset pages, and the same list as CSV.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_core::{AssetId, MerchantId, Order, OrderStatus, StatusReason};
use coffer_engine::Engine;
use coffer_engine::console::{ConsoleOrderQuery, ListCursor};
use maud::html;
use time::{Date, Duration, OffsetDateTime};

use super::base;
use crate::auth::Ctx;
use crate::layout::{self, Section, badge, when};

const PAGE: u32 = 50;
/// Rows per database read while exporting.
const EXPORT_BATCH: u32 = 500;

/// The list's filters, as the query string gives them.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: Option<OrderStatus>,
    pub reason: Option<StatusReason>,
    pub asset: Option<AssetId>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub q: Option<String>,
}

fn date(raw: Option<String>) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    raw.and_then(|d| Date::parse(&d, &format).ok())
}

fn midnight(d: Date) -> OffsetDateTime {
    d.midnight().assume_utc()
}

impl Filters {
    pub fn of(ctx: &Ctx) -> Self {
        Filters {
            status: ctx.param("status").and_then(|s| s.parse().ok()),
            reason: ctx.param("reason").and_then(|s| s.parse().ok()),
            asset: ctx.param("asset").and_then(|s| s.parse().ok()),
            from: date(ctx.param("from")),
            to: date(ctx.param("to")),
            q: ctx.param("q"),
        }
    }

    fn query(
        &self,
        merchant: &MerchantId,
        after: Option<ListCursor>,
        limit: u32,
    ) -> ConsoleOrderQuery {
        ConsoleOrderQuery {
            merchant_id: Some(merchant.clone()),
            status: self.status,
            reason: self.reason,
            asset: self.asset.clone(),
            created_from: self.from.map(midnight),
            // `to` is the last day shown, included.
            created_to: self.to.map(|d| midnight(d) + Duration::days(1)),
            after,
            limit,
        }
    }

    /// The filters as a query string (without `after`).
    fn encoded(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if let Some(v) = self.status {
            s.append_pair("status", v.as_str());
        }
        if let Some(v) = self.reason {
            s.append_pair("reason", v.as_str());
        }
        if let Some(v) = &self.asset {
            s.append_pair("asset", &v.to_string());
        }
        if let Some(v) = self.from {
            s.append_pair("from", &v.to_string());
        }
        if let Some(v) = self.to {
            s.append_pair("to", &v.to_string());
        }
        if let Some(v) = &self.q {
            s.append_pair("q", v);
        }
        s.finish()
    }
}

/// `after=<created_at ms>.<order id>`.
fn cursor(raw: Option<String>) -> Option<ListCursor> {
    let raw = raw?;
    let (ms, id) = raw.split_once('.')?;
    let ms: i64 = ms.parse().ok()?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some(ListCursor {
        created_at: at,
        id: id.to_owned(),
    })
}

fn cursor_of(o: &Order) -> String {
    let ms = o.created_at.unix_timestamp_nanos() / 1_000_000;
    format!("{ms}.{}", o.id)
}

/// What an order received so far, in its asset.
pub fn received(e: &Engine, o: &Order) -> String {
    match &o.target {
        Some(t) => layout::amount(e, &t.asset, o.totals.confirmed),
        None => "—".to_owned(),
    }
}

pub async fn page(ctx: Ctx, Path(m): Path<String>) -> Response {
    let shop = match ctx.shop(&m).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = ctx.t;
    let e = ctx.c.engine();
    let f = Filters::of(&ctx);
    let after = cursor(ctx.param("after"));
    let paged = after.is_some();
    let (orders, more) = if let Some(q) = &f.q {
        match e.search_orders(&shop.id, q).await {
            Ok(found) => (found, false),
            Err(err) => return ctx.failed(&err),
        }
    } else {
        match e
            .console_orders(&shop.id, f.query(&shop.id, after, PAGE + 1))
            .await
        {
            Ok(mut list) => {
                let more = list.len() > PAGE as usize;
                list.truncate(PAGE as usize);
                (list, more)
            }
            Err(err) => return ctx.failed(&err),
        }
    };
    let b = base(&shop);
    let filters = f.encoded();
    let sep = if filters.is_empty() { "" } else { "&" };
    let next = more
        .then(|| {
            orders
                .last()
                .map(|o| format!("?{filters}{sep}after={}", layout::enc(&cursor_of(o))))
        })
        .flatten();
    let first = paged.then(|| format!("?{filters}"));
    let assets: Vec<_> = e.assets().assets().collect();
    let body = html! {
        h1 { (t.orders) }
        form.filters method="get" role="search" aria-label=(t.search) {
            div {
                label for="q" { (t.search) }
                input #q type="search" name="q" value=[f.q.as_deref()] placeholder=(t.search_hint) size="34";
            }
            div {
                label for="status" { (t.status) }
                select #status name="status" {
                    option value="" { (t.any) }
                    @for s in OrderStatus::ALL {
                        option value=(s.as_str()) selected[f.status == Some(s)] { (t.word(s.as_str())) }
                    }
                }
            }
            div {
                label for="reason" { (t.reason) }
                select #reason name="reason" {
                    option value="" { (t.any) }
                    @for r in StatusReason::ALL {
                        option value=(r.as_str()) selected[f.reason == Some(r)] { (t.word(r.as_str())) }
                    }
                }
            }
            div {
                label for="asset" { (t.asset) }
                select #asset name="asset" {
                    option value="" { (t.any) }
                    @for a in &assets {
                        option value=(a.id.to_string()) selected[f.asset.as_ref() == Some(&a.id)] { (layout::asset_label(a)) }
                    }
                }
            }
            div {
                label for="from" { (t.from_date) }
                input #from type="date" name="from" value=[f.from.map(|d| d.to_string())];
            }
            div {
                label for="to" { (t.to_date) }
                input #to type="date" name="to" value=[f.to.map(|d| d.to_string())];
            }
            div { button type="submit" { (t.apply) } }
            div { a.btn.quiet href={ (b) "/orders" } { (t.clear) } }
            div { a.btn.quiet href={ (b) "/orders.csv?" (filters) } download { (t.export_csv) } }
        }
        @if f.q.is_some() {
            p.muted { (t.search_results.replace("{n}", &orders.len().to_string())) }
        }
        (orders_table(&ctx, &b, &orders))
        (layout::pager(next, first, t))
    };
    ctx.page(t.orders, Section::Orders, Some(&shop), body)
}

/// The table of orders (the list, the search results).
pub fn orders_table(ctx: &Ctx, base: &str, orders: &[Order]) -> maud::Markup {
    let t = ctx.t;
    let e = ctx.c.engine();
    html! {
        @if orders.is_empty() {
            p { (t.no_orders) }
        } @else {
            (layout::table(None, &[t.created, t.order, t.status, t.price, t.asset, t.received], html! {
                @for o in orders {
                    tr {
                        td { (when(o.created_at)) }
                        td {
                            a href={ (base) "/orders/" (o.id) } {
                                @if let Some(no) = &o.order_no { (no) } @else { span.mono { (o.id) } }
                            }
                        }
                        td {
                            (badge(o.state.status.as_str(), t))
                            @if o.state.reason != StatusReason::None { " " span.small { (t.word(o.state.reason.as_str())) } }
                        }
                        td.num { (o.amount) " " (o.currency) }
                        td { (o.target.as_ref().map(|x| x.asset.to_string()).unwrap_or_else(|| "—".into())) }
                        td.num { (received(e, o)) }
                    }
                }
            }))
        }
    }
}

/// A CSV cell: quoted, and a leading `= + - @` defused so that a spreadsheet does not run it.
fn cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    format!("\"{}\"", v.replace('"', "\"\""))
}

fn csv_line(e: &Engine, o: &Order) -> String {
    let target = o.target.as_ref();
    let due = target.map(|t| layout::amount(e, &t.asset, t.amount_due));
    let fields = [
        o.id.to_string(),
        o.order_no.clone().unwrap_or_default(),
        coffer_engine::view::rfc3339(o.created_at),
        o.state.status.as_str().to_owned(),
        o.state.reason.as_str().to_owned(),
        o.amount.to_string(),
        o.currency.clone(),
        target.map(|t| t.asset.to_string()).unwrap_or_default(),
        due.unwrap_or_default(),
        received(e, o),
        target.map(|t| t.address.clone()).unwrap_or_default(),
        o.description.clone().unwrap_or_default(),
    ];
    let mut line = fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

const CSV_HEADER: &str = "id,order_no,created_at,status,reason,amount,currency,asset,amount_due,received,address,description\r\n";

/// The filtered list (or the search's results) as CSV, streamed in batches off the same
/// keyset pages: a million orders never sit in memory at once.
pub async fn csv(ctx: Ctx, Path(m): Path<String>) -> Response {
    let shop = match ctx.shop(&m).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let e = ctx.c.engine().clone();
    let f = Filters::of(&ctx);
    ctx.audit(Some(&shop.id), "orders.exported", None, Some(f.encoded()))
        .await;
    let filename = format!("orders-{}-{}.csv", shop.id, e.now().date());
    let stream = if let Some(q) = f.q.clone() {
        let found = match e.search_orders(&shop.id, &q).await {
            Ok(found) => found,
            Err(err) => return ctx.failed(&err),
        };
        let mut text = String::from(CSV_HEADER);
        for o in &found {
            text.push_str(&csv_line(&e, o));
        }
        futures_util::stream::iter(vec![Ok::<_, std::io::Error>(text)]).boxed_stream()
    } else {
        let merchant = shop.id.clone();
        let state = (Some(CSV_HEADER.to_owned()), None::<ListCursor>, false);
        futures_util::stream::unfold(state, move |(header, after, done)| {
            let e = e.clone();
            let f = f.clone();
            let merchant = merchant.clone();
            async move {
                if let Some(h) = header {
                    return Some((Ok(h), (None, after, done)));
                }
                if done {
                    return None;
                }
                match e
                    .console_orders(&merchant, f.query(&merchant, after, EXPORT_BATCH))
                    .await
                {
                    Ok(batch) => {
                        let last = batch.last().map(|o| ListCursor {
                            created_at: o.created_at,
                            id: o.id.to_string(),
                        });
                        let finished = batch.len() < EXPORT_BATCH as usize;
                        if batch.is_empty() {
                            return None;
                        }
                        let text: String = batch.iter().map(|o| csv_line(&e, o)).collect();
                        Some((Ok(text), (None, last, finished)))
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "orders export failed midway");
                        Some((
                            Err(std::io::Error::other(err.to_string())),
                            (None, None, true),
                        ))
                    }
                }
            }
        })
        .boxed_stream()
    };
    let mut r = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

trait Boxed:
    futures_util::Stream<Item = Result<String, std::io::Error>> + Send + Sized + 'static
{
    fn boxed_stream(
        self,
    ) -> futures_util::stream::BoxStream<'static, Result<String, std::io::Error>> {
        Box::pin(self)
    }
}

impl<S> Boxed for S where
    S: futures_util::Stream<Item = Result<String, std::io::Error>> + Send + 'static
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "\"plain\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1"), "\"'-1\"");
    }

    #[test]
    fn cursors_round_trip() {
        let c = cursor(Some("1772366400123.ord_abc".into())).unwrap();
        assert_eq!(c.id, "ord_abc");
        assert_eq!(
            c.created_at.unix_timestamp_nanos(),
            1_772_366_400_123_000_000
        );
        assert!(cursor(Some("x.ord".into())).is_none());
        assert!(cursor(Some("123".into())).is_none());
    }
}
