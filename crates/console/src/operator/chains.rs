//! Chains: what is configured, and how each watcher is doing (tip, cursor, lag, node health)
//! as `/readyz` reports it.

use axum::response::Response;
use maud::html;

use crate::auth::Ctx;
use crate::layout::{self, Section, badge};

/// A readiness fact as text (`null` as a dash).
fn fact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn page(ctx: Ctx) -> Response {
    if let Err(r) = ctx.operator() {
        return r;
    }
    let t = ctx.t;
    let e = ctx.c.engine();
    let health = (ctx.c.settings().health)();
    let chains: Vec<_> = e.assets().chains().collect();
    let body = html! {
        h1 { (t.chains) }
        @if chains.is_empty() { (layout::warn(t.no_chain)) p { (t.no_chain_todo) " " code { "[[chains]]" } } }
        @for c in &chains {
            @let check = health.iter().find(|(n, _, _)| n.strip_prefix("chain:") == Some(c.id.as_str()));
            div.card {
                h2 { (c.name) " · " span.mono { (c.id) } " "
                    @match check {
                        Some((_, true, _)) => (badge("active", t)),
                        Some((_, false, _)) => (badge("failed", t)),
                        None => (badge("disabled", t)),
                    }
                }
                p.small.muted {
                    (c.kind.as_str()) " · " (c.network.as_str()) " · " (t.confirmations) ": " (c.confirmations)
                }
                p.small { (t.assets) ": "
                    (e.assets().assets().filter(|a| a.id.chain() == &c.id).map(|a| a.symbol().to_string()).collect::<Vec<_>>().join(", "))
                }
                @match check {
                    Some((_, _, serde_json::Value::Object(facts))) => {
                        (layout::table(None, &[t.field, t.value], html! {
                            @for (k, v) in facts { tr { td.mono { (k) } td.mono { (fact(v)) } } }
                        }))
                    }
                    Some(_) => {}
                    None => { (layout::warn(&t.chain_without_node.replace("{chain}", c.id.as_str()))) }
                }
            }
        }
    };
    ctx.page(t.chains, Section::OpChains, None, body)
}
