//! Refunds (`/api/mer/refund/…`) and withdrawals (`/api/mer/withdraw/apply`): Coffer's payout
//! requests under Pay Protocol's names. `refundId` and `withdrawId` are the payout's number.

use axum::extract::State;
use coffer_core::{BaseUnits, MerchantId, OrderId, PayoutKind, PayoutRequest};
use coffer_dialect::{Json, LenientDecimal, LenientInt, LenientText, Maybe, Query};
use coffer_engine::{RefundInput, WithdrawalInput};
use coffer_store::PayoutQuery;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::payments::order_by_trade_no;
use crate::{
    Api, DIALECT, PpError, Res, Signed, list_json, mapping, offset_limit, ok, page_params, positive,
};

/// A callback URL given with a payout: refused when it can never be called.
fn notify_data(url: Maybe<LenientText>) -> Result<Map<String, Value>, PpError> {
    let mut data = Map::new();
    if let Some(url) = url.text() {
        coffer_engine::validate::url("notifyUrl", &url)?;
        data.insert("notifyUrl".into(), url.into());
    }
    Ok(data)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundBody {
    out_trade_no: LenientText,
    out_payment_no: Maybe<LenientText>,
    amount: Option<LenientDecimal>,
    transfer_address: Maybe<LenientText>,
    notify_url: Maybe<LenientText>,
}

pub(crate) async fn create_refund(State(api): State<Api>, signed: Signed<Json<RefundBody>>) -> Res {
    let Json(b) = signed.payload;
    let m = &signed.merchant;
    let payment_no = b.out_payment_no.text();
    let order = order_by_trade_no(&api, m, b.out_trade_no.as_str(), payment_no.as_deref()).await?;
    let amount = match &b.amount {
        None => None,
        Some(a) => {
            let value = positive("amount", a)?;
            let asset = order
                .target
                .as_ref()
                .and_then(|t| api.engine.assets().asset(&t.asset))
                .ok_or_else(|| PpError::bad("the order has no currency to refund in"))?;
            Some(
                BaseUnits::from_decimal(value, asset.decimals)
                    .map_err(|e| PpError::bad(format!("amount: {e}")))?,
            )
        }
    };
    let refund = api
        .engine
        .request_refund(
            m,
            &order.id,
            RefundInput {
                amount,
                destination: b.transfer_address.text(),
                dialect: DIALECT.into(),
                dialect_data: notify_data(b.notify_url)?,
                ..RefundInput::default()
            },
        )
        .await?;
    Ok(ok(json!({"refundId": refund.seq})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundQuery {
    out_trade_no: Maybe<LenientText>,
    refund_id: Maybe<LenientInt>,
    page: Maybe<LenientInt>,
    size: Maybe<LenientInt>,
}

impl RefundQuery {
    /// The order named by `outTradeNo`, if given.
    async fn order(&self, api: &Api, m: &MerchantId) -> Result<Option<OrderId>, PpError> {
        Ok(match self.out_trade_no.as_ref() {
            Some(no) => Some(order_by_trade_no(api, m, no.as_str(), None).await?.id),
            None => None,
        })
    }
}

async fn refund_json(api: &Api, m: &MerchantId, r: &PayoutRequest) -> Result<Value, PpError> {
    let order = match &r.order_id {
        Some(id) => Some(api.engine.get_order(m, id).await?),
        None => None,
    };
    Ok(mapping::refund_json(r, order.as_ref(), api.engine.assets()))
}

/// The refund named by `refundId` and/or `outTradeNo` (the order's newest refund), or 404.
async fn find_refund(api: &Api, m: &MerchantId, q: &RefundQuery) -> Result<PayoutRequest, PpError> {
    let by_order = q.order(api, m).await?;
    Ok(match (q.refund_id.as_ref(), &by_order) {
        (None, None) => return Err(PpError::bad("outTradeNo or refundId is required")),
        (Some(seq), _) => {
            let r = api.engine.get_payout_by_seq(m, seq.0).await?;
            let fits = r.kind == PayoutKind::Refund
                && by_order
                    .as_ref()
                    .is_none_or(|o| r.order_id.as_ref() == Some(o));
            if !fits {
                return Err(PpError::not_found("refund"));
            }
            r
        }
        (None, Some(order)) => api
            .engine
            .list_payouts(
                m,
                PayoutQuery {
                    kind: Some(PayoutKind::Refund),
                    order_id: Some(order.clone()),
                    limit: 1,
                    ..PayoutQuery::default()
                },
            )
            .await?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| PpError::not_found("refund"))?,
    })
}

pub(crate) async fn refund_detail(
    State(api): State<Api>,
    signed: Signed<Query<RefundQuery>>,
) -> Res {
    let refund = find_refund(&api, &signed.merchant, &signed.payload.0).await?;
    Ok(ok(refund_json(&api, &signed.merchant, &refund).await?))
}

/// Manual re-trigger of a refund callback (query `refundId` and/or `outTradeNo`, like
/// `refund/detail`): the refund's last callback delivery is made due again, like
/// `payment/notify`. 404 while none was sent (refunds call back on a final status only).
pub(crate) async fn refund_notify(
    State(api): State<Api>,
    signed: Signed<Query<RefundQuery>>,
) -> Res {
    let refund = find_refund(&api, &signed.merchant, &signed.payload.0).await?;
    crate::redeliver_last(&api, &signed.merchant, refund.id.as_str()).await?;
    Ok(ok(Value::Null))
}

pub(crate) async fn refund_list(State(api): State<Api>, signed: Signed<Query<RefundQuery>>) -> Res {
    let q = signed.payload.0;
    let m = &signed.merchant;
    let (page, size) = page_params(&q.page, &q.size)?;
    let (offset, limit) = offset_limit(page, size);
    let (items, count) = api
        .engine
        .list_payouts(
            m,
            PayoutQuery {
                kind: Some(PayoutKind::Refund),
                order_id: q.order(&api, m).await?,
                offset,
                limit,
                ..PayoutQuery::default()
            },
        )
        .await?;
    let mut list = Vec::with_capacity(items.len());
    for r in &items {
        list.push(refund_json(&api, m, r).await?);
    }
    Ok(list_json(count, page, size, list))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WithdrawBody {
    chain_id: LenientInt,
    currency_id: LenientInt,
    withdraw_address: LenientText,
    withdraw_amount: LenientDecimal,
    /// Optional, but never blank when given.
    out_trade_no: Option<LenientText>,
    notify_url: Maybe<LenientText>,
}

pub(crate) async fn withdraw_apply(
    State(api): State<Api>,
    signed: Signed<Json<WithdrawBody>>,
) -> Res {
    let Json(b) = signed.payload;
    let address = b.withdraw_address.as_str();
    if address.contains(',') {
        return Err(PpError::bad(
            "withdrawAddress: comma-separated batch withdrawals (Merchant Pro) are not supported",
        ));
    }
    let amount = positive("withdrawAmount", &b.withdraw_amount)?;
    let asset = mapping::asset_by_numbers(api.engine.assets(), b.chain_id.0, b.currency_id.0)
        .ok_or_else(|| PpError::bad("chainId/currencyId is not an enabled currency"))?;
    let decimals = api
        .engine
        .assets()
        .asset(&asset)
        .map(|a| a.decimals)
        .ok_or_else(|| PpError::bad("currencyId is not enabled"))?;
    let amount = BaseUnits::from_decimal(amount, decimals)
        .map_err(|e| PpError::bad(format!("withdrawAmount: {e}")))?;
    let w = api
        .engine
        .request_withdrawal(
            &signed.merchant,
            WithdrawalInput {
                asset,
                amount,
                destination: address.to_owned(),
                memo: None,
                dialect: DIALECT.into(),
                reference: b.out_trade_no.map(|t| t.0),
                dialect_data: notify_data(b.notify_url)?,
            },
        )
        .await?;
    Ok(ok(json!({"withdrawId": w.seq})))
}
