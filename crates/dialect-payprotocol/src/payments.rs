//! Payment orders (`/api/mer/payment/…`): Coffer's orders under Pay Protocol's names.

use axum::extract::State;
use coffer_core::order::OrderLinks;
use coffer_core::{MerchantId, Order, OrderState};
use coffer_dialect::{Json, LenientDecimal, LenientInt, LenientText, Maybe, Query};
use coffer_engine::NewOrder;
use coffer_store::OrderFilter;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{Api, DIALECT, PpError, Res, Signed, list_json, mapping, ok, page_params, positive};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateBody {
    chain_id: LenientInt,
    description: LenientText,
    out_trade_no: LenientText,
    is_legal_tender: LenientInt,
    quote_currency_symbol: LenientText,
    quote_amount: LenientDecimal,
    notify_url: LenientText,
    redirection_url: Maybe<LenientText>,
}

pub(crate) async fn create_payment_order(
    State(api): State<Api>,
    signed: Signed<Json<CreateBody>>,
) -> Res {
    let Json(b) = signed.payload;
    let chain_id = b.chain_id.0;
    let legal = b.is_legal_tender.0;
    if legal != 0 && legal != 1 {
        return Err(PpError::bad("isLegalTender must be 0 or 1"));
    }
    let symbol = b.quote_currency_symbol.as_str();
    if symbol != symbol.to_ascii_uppercase() {
        return Err(PpError::bad("quoteCurrencySymbol must be upper case"));
    }
    let amount = positive("quoteAmount", &b.quote_amount)?;
    let notify_url = b.notify_url.as_str();
    let chain = mapping::chain_by_number(api.engine.assets(), chain_id)
        .ok_or_else(|| PpError::bad(format!("chainId {chain_id} is not enabled")))?;
    let asset = mapping::asset_for_quote(api.engine.assets(), &chain, symbol, legal == 1)
        .ok_or_else(|| {
            PpError::bad(format!(
                "quoteCurrencySymbol {symbol} cannot be paid on chainId {chain_id}"
            ))
        })?;
    let now = api.engine.now();
    let mut data = Map::new();
    data.insert(
        "outPaymentNo".into(),
        mapping::out_payment_no(now, coffer_engine::random16()).into(),
    );
    data.insert("notifyUrl".into(), notify_url.into());
    data.insert("isLegalTender".into(), legal.into());
    data.insert("quoteCurrencySymbol".into(), symbol.into());
    // Echoed exactly as sent ("18.00" stays "18.00").
    data.insert("quoteAmount".into(), b.quote_amount.as_sent().into());
    let created = api
        .engine
        .create_order(
            &signed.merchant,
            NewOrder {
                amount,
                currency: symbol.to_owned(),
                asset: Some(asset),
                order_no: Some(b.out_trade_no.0),
                description: Some(b.description.0),
                links: OrderLinks {
                    success_url: b.redirection_url.text(),
                    expired_url: None,
                    callback_url: Some(notify_url.to_owned()),
                },
                dialect: DIALECT.into(),
                dialect_data: data,
                credential_id: Some(signed.credential.id.clone()),
                ..NewOrder::default()
            },
        )
        .await?;
    let o = created.order;
    let target = o.target.as_ref();
    Ok(ok(json!({
        "outPaymentNo": mapping::out_payment_no_of(&o),
        "paymentUrl": format!("/pay/{}", o.checkout_token),
        "userWalletAddress": target.map(|t| t.address.clone()).unwrap_or_default(),
        "saltHash": mapping::salt_hash(&o),
    })))
}

/// The merchant's order `outTradeNo`; with `outPaymentNo` also given, it must match.
pub(crate) async fn order_by_trade_no(
    api: &Api,
    m: &MerchantId,
    out_trade_no: &str,
    out_payment_no: Option<&str>,
) -> Result<Order, PpError> {
    let order = api
        .engine
        .order_by_no(m, out_trade_no)
        .await?
        .ok_or_else(|| PpError::not_found("payment order"))?;
    if let Some(p) = out_payment_no
        && mapping::out_payment_no_of(&order) != p
    {
        return Err(PpError::not_found("payment order"));
    }
    Ok(order)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DetailQuery {
    out_trade_no: LenientText,
    out_payment_no: Maybe<LenientText>,
}

impl DetailQuery {
    async fn order(self, api: &Api, m: &MerchantId) -> Result<Order, PpError> {
        let payment_no = self.out_payment_no.text();
        order_by_trade_no(api, m, self.out_trade_no.as_str(), payment_no.as_deref()).await
    }
}

pub(crate) async fn payment_detail(
    State(api): State<Api>,
    signed: Signed<Query<DetailQuery>>,
) -> Res {
    let order = signed.payload.0.order(&api, &signed.merchant).await?;
    let payments = api.engine.payments_of(&order).await?;
    Ok(ok(mapping::payment_json(
        &order,
        &payments,
        api.engine.assets(),
    )))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    page: Maybe<LenientInt>,
    size: Maybe<LenientInt>,
    chain_id: Maybe<LenientInt>,
    payment_status: Maybe<LenientInt>,
    transfer_hash: Maybe<LenientText>,
    start_time: Maybe<LenientInt>,
    end_time: Maybe<LenientInt>,
}

/// A Unix time parameter.
fn unix_time(field: &str, v: &Maybe<LenientInt>) -> Result<Option<time::OffsetDateTime>, PpError> {
    v.as_ref()
        .map(|t| time::OffsetDateTime::from_unix_timestamp(t.0))
        .transpose()
        .map_err(|_| PpError::bad(format!("{field} is out of range")))
}

/// The merchant's orders matching the filters, newest first, a page at a time: filtered,
/// counted and paged by the database.
pub(crate) async fn payment_list(State(api): State<Api>, signed: Signed<Query<ListQuery>>) -> Res {
    let q = signed.payload.0;
    let (page, size) = page_params(&q.page, &q.size)?;
    let assets = api.engine.assets();
    let mut filter = OrderFilter::merchant(signed.merchant.clone());
    filter.created_from = unix_time("startTime", &q.start_time)?;
    filter.created_to = unix_time("endTime", &q.end_time)?;
    filter.txid = q.transfer_hash.text();
    if let Some(number) = q.chain_id.as_ref() {
        let Some(chain) = mapping::chain_by_number(assets, number.0) else {
            // No such chain: no order is on it.
            return Ok(list_json(0, page, size, Vec::new()));
        };
        filter.chain = Some(chain.id);
    }
    if let Some(status) = q.payment_status.as_ref() {
        // The states shown as this `paymentStatus` (none for a value the vendor does not have).
        let states = OrderState::all_valid()
            .filter(|s| i64::from(mapping::payment_status(*s)) == status.0)
            .collect();
        filter.states = Some(states);
    }
    let found = api
        .engine
        .orders_page_matching(
            &filter,
            u32::try_from(page).unwrap_or(u32::MAX),
            u32::try_from(size).unwrap_or(500),
        )
        .await?;
    let mut list = Vec::with_capacity(found.items.len());
    for order in &found.items {
        let payments = api.engine.payments_of(order).await?;
        list.push(mapping::payment_json(order, &payments, assets));
    }
    Ok(list_json(found.total, page, size, list))
}

pub(crate) async fn pay_info(State(api): State<Api>, signed: Signed<Query<DetailQuery>>) -> Res {
    let mut q = signed.payload.0;
    q.out_payment_no = Maybe(None);
    let order = q.order(&api, &signed.merchant).await?;
    let merchant = api
        .engine
        .merchant(&signed.merchant)
        .await?
        .ok_or_else(|| PpError::not_found("merchant"))?;
    let left = (order.expires_at - api.engine.now()).whole_seconds().max(0);
    Ok(ok(json!({
        "countDown": left,
        "orgName": merchant.name,
        "userWalletAddress": order.target.as_ref().map(|t| t.address.clone()).unwrap_or_default(),
        "saltHash": mapping::salt_hash(&order),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateBody {
    chain_id: LenientInt,
    currency_id: LenientInt,
    out_trade_no: LenientText,
}

pub(crate) async fn pay_info_update(
    State(api): State<Api>,
    signed: Signed<Json<UpdateBody>>,
) -> Res {
    let Json(b) = signed.payload;
    let m = &signed.merchant;
    let asset = mapping::asset_by_numbers(api.engine.assets(), b.chain_id.0, b.currency_id.0)
        .ok_or_else(|| PpError::bad("chainId/currencyId is not an enabled currency"))?;
    let order = order_by_trade_no(&api, m, b.out_trade_no.as_str(), None).await?;
    let order = api.engine.choose_asset(m, &order.id, &asset).await?;
    let target = order.target.as_ref();
    Ok(ok(json!({
        "expectedAmount": target.map(|t| t.amount_due.to_string()).unwrap_or_default(),
        "userWalletAddress": target.map(|t| t.address.clone()).unwrap_or_default(),
        "saltHash": mapping::salt_hash(&order),
    })))
}

/// Manual re-trigger: the order's last callback delivery is made due again, through the
/// outbox's delivery log (a new attempt, same signed body rules).
pub(crate) async fn payment_notify(
    State(api): State<Api>,
    signed: Signed<Query<DetailQuery>>,
) -> Res {
    let mut q = signed.payload.0;
    q.out_payment_no = Maybe(None);
    let order = q.order(&api, &signed.merchant).await?;
    // Its payment callbacks (a refund's callback is about the refund).
    crate::redeliver_last(&api, &signed.merchant, order.id.as_str()).await?;
    Ok(ok(Value::Null))
}
