//! OpenAPI document pieces that are not handlers: response schemas, the security scheme, the
//! document's info, and the self-contained `/docs` page.

#![allow(dead_code)] // schema-only types: read by the OpenAPI generator, never built

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The one error shape.
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `invalid_amount` (see docs/api.md).
    code: String,
    message: String,
    /// The request field at fault, when there is one.
    field: Option<String>,
}

/// What the buyer must send, once the asset is chosen.
#[derive(ToSchema)]
pub struct PaymentInstructions {
    /// `chain:SYMBOL`.
    asset: String,
    address: String,
    /// Amount due in the asset, decimal string.
    amount_due: String,
    /// Amount due in base units (wei, satoshi), integer string.
    amount_due_base_units: String,
    amount_confirmed: String,
    amount_unconfirmed: String,
    /// EIP-681 (EVM) or BIP21 (Bitcoin) URI; null where the chain has no scheme.
    payment_uri: Option<String>,
    derivation_index: Option<u32>,
    rate: LockedRateBody,
}

/// The rate locked on the order: what one unit of the asset costs in the order's currency,
/// and where that price came from.
#[derive(ToSchema)]
#[schema(as = LockedRate)]
pub struct LockedRateBody {
    /// Decimal string: units of the order's currency per one whole unit of the asset.
    price: String,
    /// How the price was obtained, e.g. `median(coinbase,kraken) * median(ecb):USD/EUR`,
    /// `fixed:ETH/USD×ecb:USD/CNY`, `1÷fixed:CNY/USD`, `peg:USDT/USD`, `peg`, `identity`
    /// (docs/rates.md).
    source: String,
    /// RFC 3339: the time of the oldest input.
    at: String,
}

/// An order. Amounts are strings.
#[derive(ToSchema)]
#[schema(as = Order)]
pub struct OrderBody {
    /// `ord_…`
    id: String,
    /// Always `order`.
    object: String,
    order_no: Option<String>,
    /// pending, processing, settled, expired, invalid, refunded.
    status: String,
    /// Detail of the status (none, paid_partial, paid_over, paid_late, marked, …).
    reason: String,
    amount: String,
    currency: String,
    fixed_stablecoin_rate: bool,
    payment: Option<PaymentInstructions>,
    /// Page where the buyer pays.
    checkout_url: String,
    description: Option<String>,
    #[schema(value_type = Object)]
    metadata: (),
    success_url: Option<String>,
    expired_url: Option<String>,
    callback_url: Option<String>,
    /// RFC 3339; the rate lock ends here.
    expires_at: String,
    monitor_until: String,
    created_at: String,
    updated_at: String,
}

/// An on-chain payment to an order's address.
#[derive(ToSchema)]
#[schema(as = Payment)]
pub struct PaymentBody {
    id: String,
    order_id: String,
    asset: String,
    amount: String,
    amount_base_units: String,
    txid: String,
    output_index: u32,
    from_address: Option<String>,
    to_address: String,
    block_height: Option<u64>,
    confirmations: u32,
    /// unconfirmed, confirmed, reversed.
    status: String,
    /// matched, outside_window, wrong_asset, unexpected, accepted.
    match_status: String,
    late: bool,
    occurred_at: String,
}

/// A payout request: a refund or withdrawal awaiting the merchant's approval, then sent
/// from the merchant's own wallet. Amounts are strings.
#[derive(ToSchema)]
#[schema(as = Payout)]
pub struct PayoutBody {
    /// `pout_…`
    id: String,
    /// Always `payout`.
    object: String,
    /// `refund` or `withdrawal`.
    kind: String,
    /// The refunded order (refunds only).
    order_id: Option<String>,
    /// `chain:SYMBOL`.
    asset: Option<String>,
    /// In base units of the asset, integer string.
    amount_base_units: Option<String>,
    fiat_amount: Option<String>,
    fiat_currency: Option<String>,
    /// Where the money goes.
    destination: Option<String>,
    memo: Option<String>,
    /// requested, approved, rejected, sent, completed, failed.
    status: String,
    /// The API that asked (`native` or a dialect's name).
    dialect: String,
    /// The dialect's own reference.
    reference: Option<String>,
    /// The transaction that paid it out, as the merchant recorded it.
    txid: Option<String>,
    created_at: String,
    updated_at: String,
}

/// A page of a list: every list of the API has this envelope (lists that are never paged
/// answer `has_more: false`, `next_cursor: null`).
#[derive(ToSchema)]
#[schema(as = List)]
pub struct ListBody {
    /// Always `list`.
    object: String,
    #[schema(value_type = Vec<Object>)]
    data: (),
    /// Whether another page follows.
    has_more: bool,
    /// Pass as `cursor` to get the next page: a string exactly when `has_more`, else null.
    next_cursor: Option<String>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ck_…")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Coffer merchant API",
        version = "1",
        description = "Native merchant API v1 of Coffer. Authenticate with `Authorization: Bearer ck_…`. Amounts are strings. Errors: `{\"error\":{\"code\",\"message\",\"field\"}}`. POST requests accept `Idempotency-Key`."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, OrderBody, PaymentBody, PayoutBody, ListBody, LockedRateBody))
)]
pub struct ApiDoc;

/// A small, self-contained API browser: fetches the document and renders every operation
/// with its parameters, request body and responses. No external scripts or styles.
pub const DOCS_HTML: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Coffer API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
header{background:#1d2330;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
main{max-width:980px;margin:0 auto;padding:16px 24px}
details{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:8px 0}
summary{cursor:pointer;padding:10px 12px;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:56px;font-weight:700;text-transform:uppercase}
.get{color:#0b7a3e}.post{color:#1459c7}.put{color:#a35c00}.delete{color:#b3261e}
.body{padding:0 16px 12px}pre{background:#f0f2f5;padding:8px;overflow:auto;border-radius:4px}
table{border-collapse:collapse}td,th{border:1px solid #dde1e8;padding:4px 8px;text-align:left}
h2{font-size:16px;margin-top:24px}
</style></head><body>
<header><h1 id="title">Coffer API</h1><div id="desc"></div></header>
<main><p>OpenAPI document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p><div id="ops">Loading…</div></main>
<script>
"use strict";
function el(tag, attrs, ...kids){const e=document.createElement(tag);for(const k in attrs||{}){if(k==="class")e.className=attrs[k];else e.setAttribute(k,attrs[k]);}for(const c of kids){e.append(c instanceof Node?c:document.createTextNode(String(c)));}return e;}
function deref(doc, s){while(s&&s.$ref){const name=s.$ref.split("/").pop();s=(doc.components&&doc.components.schemas||{})[name];}return s;}
function schemaText(doc, s, depth){s=deref(doc,s);if(!s)return "any";if(depth>3)return "…";
 if(s.type==="object"||s.properties){const req=new Set(s.required||[]);const lines=Object.entries(s.properties||{}).map(([k,v])=>"  ".repeat(depth+1)+k+(req.has(k)?"":"?")+": "+schemaText(doc,v,depth+1)+(deref(doc,v)&&deref(doc,v).description?"  // "+deref(doc,v).description.split("\n")[0]:""));return lines.length?"{\n"+lines.join("\n")+"\n"+"  ".repeat(depth)+"}":"object";}
 if(s.type==="array")return schemaText(doc,s.items,depth)+"[]";
 if(s.oneOf||s.anyOf)return (s.oneOf||s.anyOf).map(x=>schemaText(doc,x,depth)).join(" | ");
 return Array.isArray(s.type)?s.type.join(" | "):(s.type||"any");}
fetch("/api/v1/openapi.json").then(r=>r.json()).then(doc=>{
 document.getElementById("title").textContent=doc.info.title+" v"+doc.info.version;
 document.getElementById("desc").textContent=doc.info.description||"";
 const ops=document.getElementById("ops");ops.textContent="";
 const byTag={};
 for(const [path,item] of Object.entries(doc.paths||{}))for(const [method,op] of Object.entries(item)){
  if(!["get","post","put","delete","patch"].includes(method))continue;
  const tag=(op.tags&&op.tags[0])||"other";(byTag[tag]=byTag[tag]||[]).push([path,method,op]);}
 for(const [tag,list] of Object.entries(byTag)){ops.append(el("h2",{},tag));
  for(const [path,method,op] of list){const body=el("div",{class:"body"});
   if(op.description)body.append(el("p",{},op.description));
   const sec=(op.security||[]).flatMap(s=>Object.values(s).flat());if(sec.length)body.append(el("p",{},"Scope: "+sec.join(", ")));
   if(op.parameters&&op.parameters.length){const t=el("table",{},el("tr",{},el("th",{},"name"),el("th",{},"in"),el("th",{},"description")));
    for(const p of op.parameters)t.append(el("tr",{},el("td",{},p.name+(p.required?"":"?")),el("td",{},p.in),el("td",{},p.description||"")));body.append(el("h4",{},"Parameters"),t);}
   const rb=op.requestBody&&op.requestBody.content&&op.requestBody.content["application/json"];
   if(rb)body.append(el("h4",{},"Request body"),el("pre",{},schemaText(doc,rb.schema,0)));
   for(const [code,resp] of Object.entries(op.responses||{})){const c=resp.content&&resp.content["application/json"];
    body.append(el("h4",{},code+" "+(resp.description||"")));if(c)body.append(el("pre",{},schemaText(doc,c.schema,0)));}
   ops.append(el("details",{},el("summary",{},el("span",{class:"m "+method},method)," ",path," — ",op.summary||""),body));}}
}).catch(e=>{document.getElementById("ops").textContent="Cannot load the OpenAPI document: "+e;});
</script></body></html>
"##;
