//! Rates: where prices come from and how fresh each source is, and the price each configured
//! asset would be sold at in USD right now.

use axum::response::Response;
use maud::html;

use crate::auth::Ctx;
use crate::layout::{self, Section, badge, when};

pub async fn page(ctx: Ctx) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    let t = ctx.t;
    let e = ctx.c.engine();
    let now = e.now();
    let health = e.rates().health(now);
    let mut symbols: Vec<String> = e
        .assets()
        .assets()
        .map(|a| a.symbol().to_string())
        .collect();
    symbols.sort();
    symbols.dedup();
    let body = html! {
        h1 { (t.rates) }
        @match &health {
            None => { (layout::warn(t.rates_fixed_only)) p.small { (t.rates_fixed_todo) } }
            Some(h) => {
                p { @if h.ready { (badge("active", t)) } @else { (badge("failed", t)) } " " (t.rates_quorum) }
                (layout::table(None, &[t.source, t.kind, t.status, t.age, t.errors, t.last_error], html! {
                    @for s in &h.sources {
                        tr {
                            td { (s.name) }
                            td { (s.kind) }
                            td { @if s.fresh { (badge("active", t)) } @else { (badge("expired", t)) } }
                            td.num { (s.age_seconds.map_or_else(|| "—".to_owned(), |a| format!("{a} s"))) }
                            td.num { (s.consecutive_errors) }
                            td.small { (s.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }))
            }
        }
        h2 { (t.prices_now) }
        (layout::table(None, &[t.asset, "USD", t.source, t.when], html! {
            @for s in &symbols {
                tr {
                    td { (s) }
                    @match e.rates().quote(s, "USD", now) {
                        Ok(q) => { td.num.mono { (q.price.get().normalize()) } td.mono.small { (q.source) } td { (when(q.at)) } }
                        Err(_) => { td { (t.unavailable_word) } td {} td {} }
                    }
                }
            }
        }))
    };
    ctx.page(t.rates, Section::OpRates, None, body)
}
