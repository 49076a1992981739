//! Order repair: a payment outside the auto-match window (Pay Protocol's 0.5×–1.2× rule) is
//! recorded but not counted; the merchant accepts it here, by transaction hash or all at once,
//! and may accept what was received as payment in full.

use coffer_core::{Cause, MatchStatus, MerchantId, Order, OrderId, OrderState, PaymentStatus};
use coffer_store::{Changeset, OrderUpdate};

use crate::{Engine, EngineError};

/// What to repair.
#[derive(Debug, Clone, Default)]
pub struct RepairInput {
    /// Accept the payments of this transaction (`None`: every payment outside the window).
    pub txid: Option<String>,
    /// Also settle the order with what it received, even if short of the amount due.
    pub accept_amount: bool,
    pub note: Option<String>,
}

impl Engine {
    /// Accept payments recorded outside the match window, in one transaction with the order's
    /// new totals, its state change, timeline entry and event.
    pub async fn repair_order(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
        input: RepairInput,
    ) -> Result<Order, EngineError> {
        let order = self.get_order(merchant, id).await?;
        let txid = input
            .txid
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if txid.is_some_and(|t| t.len() > 128 || !t.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Err(EngineError::invalid(
                "invalid_txid",
                "txid",
                "txid must be a transaction hash (letters and digits)",
            ));
        }
        let mut payments = self.store.payments_for_order(&order.id).await?;
        if let Some(t) = txid
            && !payments.iter().any(|p| p.txid.eq_ignore_ascii_case(t))
        {
            return Err(EngineError::NotFound("payment"));
        }
        let now = self.now();
        let mut accepted = Vec::new();
        for p in &mut payments {
            let chosen = txid.is_none_or(|t| p.txid.eq_ignore_ascii_case(t));
            if chosen
                && p.match_status == MatchStatus::OutsideWindow
                && p.status != PaymentStatus::Reversed
            {
                p.match_status = MatchStatus::Accepted;
                p.updated_at = now;
                accepted.push(p.clone());
            }
        }
        if accepted.is_empty() && !input.accept_amount {
            return Err(EngineError::Conflict {
                code: "nothing_to_repair",
                message: "no payment outside the match window to accept".into(),
            });
        }
        let mut repaired = order.clone();
        repaired.totals = coffer_core::order::totals_of(&payments);
        let evaluated = repaired.evaluate(now);
        let (to, cause) =
            if input.accept_amount && evaluated.status != coffer_core::OrderStatus::Settled {
                if repaired.totals.seen().is_zero() {
                    return Err(EngineError::Conflict {
                        code: "nothing_to_repair",
                        message: "the order received nothing to accept".into(),
                    });
                }
                (
                    OrderState::new(
                        coffer_core::OrderStatus::Settled,
                        coffer_core::StatusReason::Marked,
                    ),
                    Cause::MarkSettled,
                )
            } else {
                (evaluated, Cause::Payment)
            };
        let extra = Changeset {
            payments: accepted,
            ..Changeset::default()
        };
        if to == order.state {
            // Only the totals change: no new state, no event.
            let mut next = repaired;
            next.updated_at = now;
            next.version = order.version + 1;
            let mut changes = extra;
            changes.order_updates.push(OrderUpdate {
                order: next.clone(),
                expected_version: order.version,
            });
            self.commit(changes).await?;
            return Ok(next);
        }
        self.transition(&repaired, to, cause, input.note, extra)
            .await
    }
}
