//! Chain-agnostic payment application: what a chain watcher saw, applied to orders.
//!
//! A watcher (EVM, Bitcoin, …) hands over one [`ChainBatch`]: the transfers it observed to
//! watched addresses, the chain tip, an optional reorg (blocks from some height were
//! orphaned) and its new cursor. [`Engine::apply_chain_batch`] finds the orders, classifies
//! new payments (core `classify_payment`), upserts payments, recomputes totals (`totals_of`),
//! re-evaluates orders (`Order::evaluate`) and writes payments, timeline entries, events and
//! the cursor in **one** transaction: a crash anywhere leaves either all of it or none, and
//! the watcher rescans from its old cursor.

use std::collections::{BTreeMap, HashSet};

use coffer_core::order::{classify_payment, totals_of};
use coffer_core::{
    AssetId, BaseUnits, Cause, Chain, ChainId, Event, EventId, EventType, Order, OrderId, Payment,
    PaymentId, PaymentStatus, TimelineEntry,
};
use coffer_store::{ChainCursor, Changeset, OrderUpdate, StoreError};
use serde_json::json;
use time::OffsetDateTime;

use crate::{Engine, EngineError, random16, view};

/// The block a transfer was mined in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    pub height: u64,
    pub hash: String,
    pub time: OffsetDateTime,
}

/// One transfer to a watched address, as the chain shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTransfer {
    pub asset: AssetId,
    /// The address exactly as it was handed out (as the store's watched list gives it).
    pub to: String,
    pub amount: BaseUnits,
    pub txid: String,
    /// Log index (EVM token), 0 (EVM native) or output index (Bitcoin).
    pub index: u32,
    pub from: Option<String>,
    /// `None` while in the mempool.
    pub block: Option<BlockRef>,
}

/// Everything one watcher step found, applied atomically.
#[derive(Debug, Clone)]
pub struct ChainBatch {
    pub chain: ChainId,
    pub transfers: Vec<ObservedTransfer>,
    /// Blocks at and above this height were orphaned: payments in them that the batch does not
    /// see again are reversed.
    pub orphaned_from: Option<u64>,
    /// Height of the chain tip: confirmations are `tip - height + 1`.
    pub tip: u64,
    pub cursor: Option<ChainCursor>,
    /// Mempool transactions that vanished without being mined (replaced, double spent,
    /// evicted): their payments still without a block are reversed. Empty on EVM.
    pub dropped_txids: Vec<String>,
    /// Mempool transactions that cannot be replaced (no BIP-125 signal, none inherited): only
    /// these may count as confirmed with zero confirmations, under a policy of 0. Empty on
    /// EVM (every mempool transaction there counts as replaceable).
    pub non_replaceable_txids: Vec<String>,
}

/// What a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub detected: usize,
    pub confirmed: usize,
    pub reversed: usize,
    pub orders_changed: usize,
}

/// Attempts when a concurrent change (expiry sweep, merchant action) wins the order's version.
const ATTEMPTS: usize = 5;

impl Engine {
    /// Apply a watcher's batch: payments, totals, order states, events and the cursor, in one
    /// transaction. Idempotent: applying the same batch twice changes nothing the second time
    /// (payments are keyed by chain + txid + index).
    pub async fn apply_chain_batch(&self, batch: &ChainBatch) -> Result<Applied, EngineError> {
        let chain = self.assets.chain(&batch.chain).cloned().ok_or_else(|| {
            EngineError::invalid(
                "unknown_chain",
                "chain",
                format!("chain {} is not configured", batch.chain),
            )
        })?;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let (changes, applied) = self.plan_batch(&chain, batch).await?;
            match self.commit(changes).await {
                Ok(()) => return Ok(applied),
                Err(StoreError::Conflict(what)) => last = Some(StoreError::Conflict(what)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or(StoreError::Conflict("order")).into())
    }

    async fn plan_batch(
        &self,
        chain: &Chain,
        batch: &ChainBatch,
    ) -> Result<(Changeset, Applied), EngineError> {
        let now = self.now();
        let method = self.methods.get(chain)?;
        let mut orders: BTreeMap<OrderId, (Order, Vec<Payment>)> = BTreeMap::new();
        // Payments whose confirmations may change, or that the reorg may remove.
        let open = self
            .store
            .open_payments(&chain.id, batch.orphaned_from.unwrap_or(u64::MAX))
            .await?;
        for p in open {
            self.load_order(&mut orders, &p.order_id).await?;
        }
        let mut routed: BTreeMap<OrderId, Vec<&ObservedTransfer>> = BTreeMap::new();
        // Transfers to no order's address: deposit accounts' standing addresses (or unknown).
        let mut unrouted: Vec<&ObservedTransfer> = Vec::new();
        for t in &batch.transfers {
            let candidates = self.store.orders_for_address(&chain.id, &t.to).await?;
            // Indexes are never reused, so one order per address; prefer the one currently
            // pointing at it if history says otherwise.
            let Some(order) = candidates
                .iter()
                .rev()
                .find(|o| o.target.as_ref().is_some_and(|x| x.address == t.to))
                .or_else(|| candidates.last())
            else {
                unrouted.push(t);
                continue;
            };
            self.load_order(&mut orders, &order.id).await?;
            routed.entry(order.id.clone()).or_default().push(t);
        }

        let mut changes = Changeset {
            cursor: batch.cursor.clone(),
            ..Changeset::default()
        };
        let mut applied = Applied::default();
        for (order_id, (order, mut payments)) in orders {
            let required = order
                .policy
                .confirmations_for(chain.id.as_str())
                .unwrap_or(chain.confirmations);
            let replaceable = |txid: &str| !batch.non_replaceable_txids.iter().any(|t| t == txid);
            let confirmations_at = |block: Option<&BlockRef>| -> u32 {
                block.map_or(0, |b| {
                    u32::try_from(batch.tip.saturating_add(1).saturating_sub(b.height))
                        .unwrap_or(u32::MAX)
                })
            };
            let mut working = order.clone();
            working.totals = totals_of(&payments);
            let mut touched: HashSet<PaymentId> = HashSet::new();
            let mut changed: Vec<(usize, Option<EventType>)> = Vec::new();

            for t in routed.get(&order_id).into_iter().flatten() {
                let confirmations = confirmations_at(t.block.as_ref());
                let status = if method.is_confirmed(required, confirmations, replaceable(&t.txid)) {
                    PaymentStatus::Confirmed
                } else {
                    PaymentStatus::Unconfirmed
                };
                let existing = payments.iter().position(|p| {
                    p.txid == t.txid && p.output_index == t.index && p.asset.chain() == &chain.id
                });
                match existing {
                    Some(i) => {
                        let p = &mut payments[i];
                        touched.insert(p.id.clone());
                        let was = p.status;
                        let block_height = t.block.as_ref().map(|b| b.height);
                        let block_hash = t.block.as_ref().map(|b| b.hash.clone());
                        if was == status
                            && p.block_hash == block_hash
                            && p.confirmations == confirmations
                        {
                            continue;
                        }
                        p.block_height = block_height;
                        p.block_hash = block_hash;
                        p.confirmations = confirmations;
                        p.status = status;
                        p.updated_at = now;
                        let event = match (was, status) {
                            (PaymentStatus::Reversed, _) => Some(EventType::PaymentDetected),
                            (PaymentStatus::Unconfirmed, PaymentStatus::Confirmed) => {
                                Some(EventType::PaymentConfirmed)
                            }
                            // Counted as confirmed, now back below the policy (its block was
                            // reorged out and it waits in the mempool again): say so.
                            (PaymentStatus::Confirmed, PaymentStatus::Unconfirmed) => {
                                Some(EventType::PaymentReversed)
                            }
                            _ => None,
                        };
                        if was == PaymentStatus::Reversed && status == PaymentStatus::Confirmed {
                            changed.push((i, Some(EventType::PaymentDetected)));
                            changed.push((i, Some(EventType::PaymentConfirmed)));
                        } else {
                            changed.push((i, event));
                        }
                    }
                    None => {
                        let occurred_at = t.block.as_ref().map_or(now, |b| b.time);
                        let (match_status, late) =
                            classify_payment(&working, &t.asset, t.amount, occurred_at);
                        let payment = Payment {
                            id: PaymentId::from_random(random16()),
                            order_id: order.id.clone(),
                            merchant_id: order.merchant_id.clone(),
                            asset: t.asset.clone(),
                            amount: t.amount,
                            txid: t.txid.clone(),
                            output_index: t.index,
                            from_address: t.from.clone(),
                            to_address: t.to.clone(),
                            block_height: t.block.as_ref().map(|b| b.height),
                            block_hash: t.block.as_ref().map(|b| b.hash.clone()),
                            confirmations,
                            status,
                            match_status,
                            late,
                            occurred_at,
                            detected_at: now,
                            updated_at: now,
                            details: serde_json::Map::new(),
                        };
                        touched.insert(payment.id.clone());
                        payments.push(payment);
                        let i = payments.len() - 1;
                        changed.push((i, Some(EventType::PaymentDetected)));
                        if status == PaymentStatus::Confirmed {
                            changed.push((i, Some(EventType::PaymentConfirmed)));
                        }
                    }
                }
                working.totals = totals_of(&payments);
            }

            for (i, p) in payments.iter_mut().enumerate() {
                if touched.contains(&p.id) || p.status == PaymentStatus::Reversed {
                    continue;
                }
                let orphaned = match (batch.orphaned_from, p.block_height) {
                    (Some(from), Some(h)) => h >= from,
                    _ => false,
                };
                let dropped = p.block_height.is_none() && batch.dropped_txids.contains(&p.txid);
                if orphaned || dropped {
                    p.status = PaymentStatus::Reversed;
                    p.updated_at = now;
                    changed.push((i, Some(EventType::PaymentReversed)));
                    continue;
                }
                if let (PaymentStatus::Unconfirmed, Some(height)) = (p.status, p.block_height) {
                    let confirmations =
                        u32::try_from(batch.tip.saturating_add(1).saturating_sub(height))
                            .unwrap_or(u32::MAX);
                    if confirmations == p.confirmations {
                        continue;
                    }
                    p.confirmations = confirmations;
                    p.updated_at = now;
                    if method.is_confirmed(required, confirmations, true) {
                        p.status = PaymentStatus::Confirmed;
                        changed.push((i, Some(EventType::PaymentConfirmed)));
                    } else {
                        changed.push((i, None));
                    }
                }
            }
            if changed.is_empty() {
                continue;
            }

            let mut seen = HashSet::new();
            for (i, event) in &changed {
                let p = &payments[*i];
                if seen.insert(*i) {
                    changes.payments.push(p.clone());
                }
                if let Some(kind) = event {
                    match kind {
                        EventType::PaymentDetected => applied.detected += 1,
                        EventType::PaymentConfirmed => applied.confirmed += 1,
                        EventType::PaymentReversed => applied.reversed += 1,
                        _ => {}
                    }
                    changes.events.push(self.payment_event(p, *kind, now));
                }
            }

            let mut next = order.clone();
            next.totals = totals_of(&payments);
            let to = next.evaluate(now);
            let moves =
                to != order.state && coffer_core::state::is_legal(order.state, to, Cause::Payment);
            if next.totals == order.totals && !moves {
                continue;
            }
            if moves {
                next.state = to;
                changes.timeline.push((
                    order.id.clone(),
                    TimelineEntry {
                        at: now,
                        from: Some(order.state),
                        to,
                        cause: Cause::Payment,
                        note: None,
                    },
                ));
                applied.orders_changed += 1;
            }
            next.updated_at = now;
            next.version = order.version + 1;
            if moves {
                let mut event = self.event(
                    &next,
                    EventType::for_order_state(to),
                    Some(order.state),
                    now,
                );
                // Back in a state it had been in (a reorg undid it, the chain redid it): the
                // fact was announced before. Vendor dialects do not call back again.
                let timeline = self.store.timeline(&order.id).await?;
                if timeline.iter().any(|entry| entry.to == to)
                    && let serde_json::Value::Object(data) = &mut event.data
                {
                    data.insert(coffer_core::event::RESTORED.into(), true.into());
                }
                changes.events.push(event);
            }
            changes.order_updates.push(OrderUpdate {
                order: next,
                expected_version: order.version,
            });
        }
        self.plan_deposits(chain, batch, &unrouted, &mut changes, &mut applied, now)
            .await?;
        Ok((changes, applied))
    }

    async fn load_order(
        &self,
        orders: &mut BTreeMap<OrderId, (Order, Vec<Payment>)>,
        id: &OrderId,
    ) -> Result<(), EngineError> {
        if orders.contains_key(id) {
            return Ok(());
        }
        let Some(order) = self.store.find_order(id).await? else {
            return Ok(());
        };
        let payments = self.store.payments_for_order(id).await?;
        orders.insert(id.clone(), (order, payments));
        Ok(())
    }

    fn payment_event(&self, p: &Payment, kind: EventType, at: OffsetDateTime) -> Event {
        Event {
            id: EventId::from_random(random16()),
            merchant_id: p.merchant_id.clone(),
            kind,
            subject: p.id.to_string(),
            data: json!({
                "object": view::payment_json(p, &self.assets),
                coffer_core::event::DEDUPE_KEY:
                    coffer_core::event::dedupe_key(p.id.as_str(), kind, None),
            }),
            created_at: at,
        }
    }
}

impl Engine {
    /// The cursor of a chain watched for the first time, at `height` (block `hash`), committed
    /// so that a restart resumes from it.
    pub async fn start_cursor(
        &self,
        chain: &ChainId,
        height: u64,
        hash: String,
    ) -> Result<ChainCursor, EngineError> {
        let cursor = ChainCursor {
            chain: chain.clone(),
            height,
            hash: hash.clone(),
            recent: vec![(height, hash)],
            updated_at: self.now(),
        };
        self.commit(Changeset {
            cursor: Some(cursor.clone()),
            ..Changeset::default()
        })
        .await?;
        Ok(cursor)
    }
}

/// Whether a payment counts toward its order (helper for reports and tests).
pub fn counts(p: &Payment) -> bool {
    p.status != PaymentStatus::Reversed && p.match_status.counts()
}
