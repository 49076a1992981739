//! Payout requests (refunds, withdrawals) and single-use nonces: services the dialects share.
//!
//! Payouts are only recorded here, awaiting the merchant's approval; executing them on chain
//! is a later issue. Every request commits its `refund.requested` / `withdrawal.requested`
//! event in the same transaction.

use coffer_core::payout::{self, PayoutError};
use coffer_core::{
    AssetId, BaseUnits, Event, EventId, EventType, MerchantId, OrderId, PayoutId, PayoutKind,
    PayoutRequest, PayoutStatus,
};
use coffer_store::{Changeset, OrderUpdate, PayoutQuery, PayoutUpdate, StoreError, Unique};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::view::rfc3339;
use crate::{Engine, EngineError, random16};

/// A refund asked for one order.
#[derive(Debug, Clone, Default)]
pub struct RefundInput {
    /// In base units of the order's asset; `None` refunds everything still refundable.
    pub amount: Option<BaseUnits>,
    /// `None`: the address the (first) payment came from.
    pub destination: Option<String>,
    pub memo: Option<String>,
    pub dialect: String,
    /// The dialect's own reference; a repeated one returns the first request.
    pub reference: Option<String>,
    pub dialect_data: Map<String, Value>,
}

/// A withdrawal of the merchant's funds to an address.
#[derive(Debug, Clone)]
pub struct WithdrawalInput {
    pub asset: AssetId,
    pub amount: BaseUnits,
    pub destination: String,
    pub memo: Option<String>,
    pub dialect: String,
    pub reference: Option<String>,
    pub dialect_data: Map<String, Value>,
}

/// The payout object as APIs return it and as events carry it.
pub fn payout_json(p: &PayoutRequest) -> Value {
    json!({
        "id": p.id.as_str(),
        "kind": p.kind.as_str(),
        "order_id": p.order_id.as_ref().map(OrderId::as_str),
        "asset": p.asset.as_ref().map(ToString::to_string),
        "amount_base_units": p.amount.map(|a| a.to_string()),
        "fiat_amount": p.fiat_amount.map(|a| a.to_string()),
        "fiat_currency": p.fiat_currency,
        "destination": p.destination,
        "memo": p.memo,
        "status": p.status.as_str(),
        "dialect": p.dialect,
        "reference": p.reference,
        "txid": p.txid,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

fn payout_error(err: PayoutError) -> EngineError {
    match err {
        PayoutError::NotRefundable { .. } | PayoutError::IllegalTransition { .. } => {
            EngineError::Conflict {
                code: "invalid_state",
                message: err.to_string(),
            }
        }
        PayoutError::ZeroAmount | PayoutError::ExceedsReceived { .. } => {
            EngineError::invalid("invalid_amount", "amount", err.to_string())
        }
        PayoutError::UnknownValue(_) => {
            EngineError::invalid("invalid_value", "status", err.to_string())
        }
        PayoutError::TxidNotAllowed { .. } | PayoutError::InvalidTxid => {
            EngineError::invalid("invalid_txid", "txid", err.to_string())
        }
    }
}

fn check_text(field: &'static str, value: Option<&str>, max: usize) -> Result<(), EngineError> {
    match value {
        Some(v) if v.trim().is_empty() || v.len() > max || v.chars().any(char::is_control) => {
            Err(EngineError::invalid(
                "invalid_field",
                field,
                format!("{field} must be 1 to {max} printable characters"),
            ))
        }
        _ => Ok(()),
    }
}

fn check_address(value: &str) -> Result<(), EngineError> {
    let ok =
        !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(EngineError::invalid(
            "invalid_address",
            "destination",
            "the destination must be an address (1 to 128 letters and digits)",
        ))
    }
}

impl Engine {
    fn payout_event(&self, payout: &PayoutRequest, kind: EventType, at: OffsetDateTime) -> Event {
        Event {
            id: EventId::from_random(random16()),
            merchant_id: payout.merchant_id.clone(),
            kind,
            subject: payout.id.to_string(),
            data: json!({
                "object": payout_json(payout),
                "previous_status": Value::Null,
                coffer_core::event::DEDUPE_KEY: coffer_core::event::dedupe_key(
                    payout.id.as_str(),
                    kind,
                    Some(payout.status.as_str()),
                ),
            }),
            created_at: at,
        }
    }

    async fn existing_reference(
        &self,
        merchant: &MerchantId,
        kind: PayoutKind,
        dialect: &str,
        reference: Option<&str>,
    ) -> Result<Option<PayoutRequest>, EngineError> {
        match reference {
            Some(r) => Ok(self
                .store
                .get_payout_by_reference(merchant, kind, dialect, r)
                .await?),
            None => Ok(None),
        }
    }

    /// Record a refund request for one of the merchant's orders. The order must have been
    /// paid (core rules: settled, or expired after a partial payment), and the order's active
    /// refunds never add up to more than it received. A repeated `reference` returns the
    /// first request unchanged.
    pub async fn request_refund(
        &self,
        merchant: &MerchantId,
        order_id: &OrderId,
        input: RefundInput,
    ) -> Result<PayoutRequest, EngineError> {
        let dialect = dialect_name(&input.dialect);
        check_text("reference", input.reference.as_deref(), 64)?;
        check_text("memo", input.memo.as_deref(), 256)?;
        if let Some(existing) = self
            .existing_reference(
                merchant,
                PayoutKind::Refund,
                &dialect,
                input.reference.as_deref(),
            )
            .await?
        {
            return Ok(existing);
        }
        let order = self.get_order(merchant, order_id).await?;
        let target = order.target.as_ref().ok_or_else(|| EngineError::Conflict {
            code: "invalid_state",
            message: "the order has received nothing to refund".into(),
        })?;
        let active = self
            .store
            .list_payouts(&PayoutQuery {
                merchant_id: Some(merchant.clone()),
                kind: Some(PayoutKind::Refund),
                order_id: Some(order.id.clone()),
                limit: 500,
                ..PayoutQuery::default()
            })
            .await?;
        let already = BaseUnits::checked_sum(
            active
                .iter()
                .filter(|p| p.status.is_active())
                .filter_map(|p| p.amount),
        )
        .unwrap_or(BaseUnits::new(u128::MAX));
        let amount =
            payout::refund_amount(order.state, order.totals.confirmed, already, input.amount)
                .map_err(payout_error)?;
        let destination = match input.destination {
            Some(d) => Some(d),
            None => self
                .store
                .payments_for_order(&order.id)
                .await?
                .into_iter()
                .find_map(|p| p.from_address),
        };
        if let Some(d) = &destination {
            check_address(d)?;
        }
        let now = self.now();
        let payout = PayoutRequest {
            id: PayoutId::from_random(random16()),
            seq: 0,
            merchant_id: merchant.clone(),
            kind: PayoutKind::Refund,
            order_id: Some(order.id.clone()),
            asset: Some(target.asset.clone()),
            amount: Some(amount),
            fiat_amount: None,
            fiat_currency: None,
            destination,
            memo: input.memo,
            status: PayoutStatus::Requested,
            dialect: dialect.clone(),
            reference: input.reference.clone(),
            dialect_data: input.dialect_data,
            txid: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        // Bumping the order's version serialises refunds of one order: of two concurrent
        // requests that together exceed what was received, one fails with a conflict.
        let mut touched = order.clone();
        touched.version = order.version + 1;
        let changes = Changeset {
            new_payouts: vec![payout.clone()],
            order_updates: vec![OrderUpdate {
                order: touched,
                expected_version: order.version,
            }],
            events: vec![self.payout_event(&payout, EventType::RefundRequested, now)],
            ..Changeset::default()
        };
        self.commit_payout(merchant, payout, changes).await
    }

    /// Record a withdrawal request of the merchant's funds.
    pub async fn request_withdrawal(
        &self,
        merchant: &MerchantId,
        input: WithdrawalInput,
    ) -> Result<PayoutRequest, EngineError> {
        let dialect = dialect_name(&input.dialect);
        check_text("reference", input.reference.as_deref(), 64)?;
        check_text("memo", input.memo.as_deref(), 256)?;
        if let Some(existing) = self
            .existing_reference(
                merchant,
                PayoutKind::Withdrawal,
                &dialect,
                input.reference.as_deref(),
            )
            .await?
        {
            return Ok(existing);
        }
        if self.assets.asset(&input.asset).is_none() {
            return Err(EngineError::invalid(
                "unknown_asset",
                "asset",
                format!("asset {} is not enabled on this server", input.asset),
            ));
        }
        if input.amount.is_zero() {
            return Err(payout_error(PayoutError::ZeroAmount));
        }
        check_address(&input.destination)?;
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(EngineError::NotFound("merchant"));
        }
        let now = self.now();
        let payout = PayoutRequest {
            id: PayoutId::from_random(random16()),
            seq: 0,
            merchant_id: merchant.clone(),
            kind: PayoutKind::Withdrawal,
            order_id: None,
            asset: Some(input.asset),
            amount: Some(input.amount),
            fiat_amount: None,
            fiat_currency: None,
            destination: Some(input.destination),
            memo: input.memo,
            status: PayoutStatus::Requested,
            dialect,
            reference: input.reference,
            dialect_data: input.dialect_data,
            txid: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let changes = Changeset {
            new_payouts: vec![payout.clone()],
            events: vec![self.payout_event(&payout, EventType::WithdrawalRequested, now)],
            ..Changeset::default()
        };
        self.commit_payout(merchant, payout, changes).await
    }

    async fn commit_payout(
        &self,
        merchant: &MerchantId,
        payout: PayoutRequest,
        changes: Changeset,
    ) -> Result<PayoutRequest, EngineError> {
        match self.commit(changes).await {
            // Re-read: the store assigns `seq`.
            Ok(()) => self.get_payout(merchant, &payout.id).await,
            // Lost a race with the same reference: answer like the replay it is.
            Err(StoreError::Duplicate(Unique::PayoutReference)) => {
                let reference = payout.reference.as_deref().unwrap_or_default();
                self.store
                    .get_payout_by_reference(merchant, payout.kind, &payout.dialect, reference)
                    .await?
                    .ok_or(EngineError::NotFound("payout"))
            }
            Err(StoreError::Conflict(_)) => Err(EngineError::Conflict {
                code: "concurrent_update",
                message: "the order changed while the refund was requested; retry".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_payout(
        &self,
        merchant: &MerchantId,
        id: &PayoutId,
    ) -> Result<PayoutRequest, EngineError> {
        self.store
            .get_payout(merchant, id)
            .await?
            .ok_or(EngineError::NotFound("payout"))
    }

    pub async fn get_payout_by_seq(
        &self,
        merchant: &MerchantId,
        seq: i64,
    ) -> Result<PayoutRequest, EngineError> {
        self.store
            .get_payout_by_seq(merchant, seq)
            .await?
            .ok_or(EngineError::NotFound("payout"))
    }

    /// A merchant's payout requests (the query's merchant is forced to `merchant`) and how
    /// many match in all.
    pub async fn list_payouts(
        &self,
        merchant: &MerchantId,
        mut query: PayoutQuery,
    ) -> Result<(Vec<PayoutRequest>, u64), EngineError> {
        query.merchant_id = Some(merchant.clone());
        let items = self.store.list_payouts(&query).await?;
        let total = self.store.count_payouts(&query).await?;
        Ok((items, total))
    }

    /// Move a payout request along its lifecycle: the merchant approves or rejects it, and
    /// (paying from its own wallet until Coffer executes payouts) marks it sent, completed or
    /// failed. `txid`, the transaction that paid it out, may be given with `sent` or
    /// `completed` only; without one an earlier txid is kept.
    pub async fn set_payout_status(
        &self,
        merchant: &MerchantId,
        id: &PayoutId,
        to: PayoutStatus,
        txid: Option<String>,
    ) -> Result<PayoutRequest, EngineError> {
        if let Some(t) = &txid {
            payout::check_txid(to, t).map_err(payout_error)?;
        }
        let current = self.get_payout(merchant, id).await?;
        payout::check_transition(current.status, to).map_err(payout_error)?;
        let now = self.now();
        let mut next = current.clone();
        next.status = to;
        if txid.is_some() {
            next.txid = txid;
        }
        next.updated_at = now;
        next.version = current.version + 1;
        let kind = match next.kind {
            PayoutKind::Refund => EventType::RefundUpdated,
            PayoutKind::Withdrawal => EventType::WithdrawalUpdated,
        };
        let mut event = self.payout_event(&next, kind, now);
        if let Value::Object(data) = &mut event.data {
            data.insert("previous_status".into(), current.status.as_str().into());
        }
        let changes = Changeset {
            payout_updates: vec![PayoutUpdate {
                payout: next.clone(),
                expected_version: current.version,
            }],
            events: vec![event],
            ..Changeset::default()
        };
        match self.commit(changes).await {
            Ok(()) => Ok(next),
            // Another move of the same payout won: this one was decided on a stale status.
            Err(StoreError::Conflict(_)) => Err(EngineError::Conflict {
                code: "concurrent_update",
                message: "the payout changed while its status was set; read it again".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Single-use nonce check for dialects (Zaepe's `X-Nonce`): `Ok(())` the first time
    /// `(scope, nonce)` is presented, `Err(Conflict{code: "nonce_reused"})` on a replay until
    /// `expires_at`.
    pub async fn use_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), EngineError> {
        if self
            .store
            .seen_nonce(scope, nonce, expires_at, self.now())
            .await?
        {
            Err(EngineError::Conflict {
                code: "nonce_reused",
                message: "this nonce was used already".into(),
            })
        } else {
            Ok(())
        }
    }
}

fn dialect_name(dialect: &str) -> String {
    if dialect.is_empty() {
        "native".into()
    } else {
        dialect.to_owned()
    }
}
