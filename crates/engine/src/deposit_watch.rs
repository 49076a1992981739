//! Deposits found by a chain watcher: transfers to deposit accounts' standing addresses,
//! recorded in the same transaction as the rest of the watcher's batch (see
//! [`crate::payments`]). A deposit has no order: every amount counts, nothing expires. Its
//! status follows the chain like a payment's: confirmations from the merchant's policy,
//! reversal when its block is orphaned or its mempool transaction dropped, and one event per
//! change (core `transfer_news`).

use std::collections::{BTreeMap, HashMap};

use coffer_core::{
    Chain, Deposit, DepositId, Event, EventId, EventType, MerchantId, PaymentStatus, TransferNews,
    transfer_news,
};
use coffer_store::Changeset;
use serde_json::json;
use time::OffsetDateTime;

use crate::payments::{Applied, BlockRef, ChainBatch, ObservedTransfer};
use crate::{Engine, EngineError, random16, view};

/// The news of a move from `was` to `now`, each with the status just before it (a transfer
/// seen and confirmed at once was unconfirmed just before its confirmation).
fn news_from(
    was: Option<PaymentStatus>,
    now: PaymentStatus,
) -> Vec<(TransferNews, Option<PaymentStatus>)> {
    let mut previous = was;
    transfer_news(was, now)
        .iter()
        .map(|n| {
            let item = (*n, previous);
            previous = Some(match n {
                TransferNews::Detected => PaymentStatus::Unconfirmed,
                TransferNews::Confirmed => PaymentStatus::Confirmed,
                TransferNews::Reversed => now,
            });
            item
        })
        .collect()
}

/// A deposit being planned: as it will be stored, what it announces, whether it changed.
struct Planned {
    deposit: Deposit,
    /// What it announces, each with the status it had just before.
    news: Vec<(TransferNews, Option<PaymentStatus>)>,
    changed: bool,
}

impl Engine {
    /// Plan the deposits of a batch: `transfers` are those to addresses of no order. Adds the
    /// deposit rows and their events to `changes`.
    pub(crate) async fn plan_deposits(
        &self,
        chain: &Chain,
        batch: &ChainBatch,
        transfers: &[&ObservedTransfer],
        changes: &mut Changeset,
        applied: &mut Applied,
        now: OffsetDateTime,
    ) -> Result<(), EngineError> {
        let method = self.methods.get(chain)?;
        let mut planned: BTreeMap<DepositId, Planned> = BTreeMap::new();
        for d in self
            .store
            .open_deposits(&chain.id, batch.orphaned_from.unwrap_or(u64::MAX))
            .await?
        {
            planned.insert(
                d.id.clone(),
                Planned {
                    deposit: d,
                    news: Vec::new(),
                    changed: false,
                },
            );
        }
        if planned.is_empty() && transfers.is_empty() {
            return Ok(());
        }
        let mut required: HashMap<MerchantId, u32> = HashMap::new();
        let confirmations_at = |block: Option<&BlockRef>| -> u32 {
            block.map_or(0, |b| {
                u32::try_from(batch.tip.saturating_add(1).saturating_sub(b.height))
                    .unwrap_or(u32::MAX)
            })
        };
        let mut seen: Vec<DepositId> = Vec::new();

        for t in transfers {
            // Anyone can make a token "transfer" of nothing to any address: not a deposit.
            if t.amount.is_zero() {
                continue;
            }
            let Some(owner) = self.store.deposit_address_owner(&chain.id, &t.to).await? else {
                tracing::debug!(chain = %chain.id, to = %t.to, "transfer to an unknown address");
                continue;
            };
            let need = self
                .deposit_confirmations(&mut required, &owner.merchant_id, chain)
                .await?;
            let confirmations = confirmations_at(t.block.as_ref());
            let replaceable = !batch.non_replaceable_txids.iter().any(|x| x == &t.txid);
            let status = if method.is_confirmed(need, confirmations, replaceable) {
                PaymentStatus::Confirmed
            } else {
                PaymentStatus::Unconfirmed
            };
            let same =
                |d: &Deposit| d.txid == t.txid && d.output_index == t.index && d.asset == t.asset;
            let known = match planned.values().find(|p| same(&p.deposit)) {
                Some(p) => Some(p.deposit.id.clone()),
                None => match self
                    .store
                    .deposit_for_transfer(&chain.id, &t.txid, t.index, &t.asset)
                    .await?
                {
                    Some(d) => {
                        let id = d.id.clone();
                        planned.insert(
                            id.clone(),
                            Planned {
                                deposit: d,
                                news: Vec::new(),
                                changed: false,
                            },
                        );
                        Some(id)
                    }
                    None => None,
                },
            };
            let block_height = t.block.as_ref().map(|b| b.height);
            let block_hash = t.block.as_ref().map(|b| b.hash.clone());
            let id = match known {
                Some(id) => {
                    let Some(p) = planned.get_mut(&id) else {
                        continue;
                    };
                    seen.push(id.clone());
                    let d = &mut p.deposit;
                    if d.status == status
                        && d.block_hash == block_hash
                        && d.confirmations == confirmations
                    {
                        continue;
                    }
                    p.news.extend(news_from(Some(d.status), status));
                    d.block_height = block_height;
                    d.block_hash = block_hash;
                    d.confirmations = confirmations;
                    d.status = status;
                    d.updated_at = now;
                    p.changed = true;
                    id
                }
                None => {
                    let deposit = Deposit {
                        id: DepositId::from_random(random16()),
                        seq: 0,
                        merchant_id: owner.merchant_id.clone(),
                        account_uuid: owner.account_uuid.clone(),
                        account_seq: owner.account_seq,
                        dialect: owner.dialect.clone(),
                        asset: t.asset.clone(),
                        amount: t.amount,
                        txid: t.txid.clone(),
                        output_index: t.index,
                        from_address: t.from.clone(),
                        to_address: t.to.clone(),
                        derivation_index: owner.derivation_index,
                        block_height,
                        block_hash,
                        confirmations,
                        status,
                        occurred_at: t.block.as_ref().map_or(now, |b| b.time),
                        detected_at: now,
                        confirmed_at: None,
                        updated_at: now,
                    };
                    let id = deposit.id.clone();
                    planned.insert(
                        id.clone(),
                        Planned {
                            deposit,
                            news: news_from(None, status),
                            changed: true,
                        },
                    );
                    seen.push(id.clone());
                    id
                }
            };
            if let Some(p) = planned.get_mut(&id)
                && p.deposit.status == PaymentStatus::Confirmed
                && p.deposit.confirmed_at.is_none()
            {
                p.deposit.confirmed_at = Some(now);
            }
        }

        // Deposits the batch did not see: orphaned, dropped, or one block deeper.
        for (id, p) in &mut planned {
            if seen.contains(id) {
                continue;
            }
            let d = &mut p.deposit;
            let orphaned = match (batch.orphaned_from, d.block_height) {
                (Some(from), Some(h)) => h >= from,
                _ => false,
            };
            let dropped = d.block_height.is_none() && batch.dropped_txids.contains(&d.txid);
            if orphaned || dropped {
                p.news
                    .extend(news_from(Some(d.status), PaymentStatus::Reversed));
                d.status = PaymentStatus::Reversed;
                d.updated_at = now;
                p.changed = true;
                continue;
            }
            let (PaymentStatus::Unconfirmed, Some(height)) = (d.status, d.block_height) else {
                continue;
            };
            let confirmations = u32::try_from(batch.tip.saturating_add(1).saturating_sub(height))
                .unwrap_or(u32::MAX);
            if confirmations == d.confirmations {
                continue;
            }
            let need = self
                .deposit_confirmations(&mut required, &d.merchant_id, chain)
                .await?;
            d.confirmations = confirmations;
            d.updated_at = now;
            p.changed = true;
            if method.is_confirmed(need, confirmations, true) {
                p.news.extend(news_from(
                    Some(PaymentStatus::Unconfirmed),
                    PaymentStatus::Confirmed,
                ));
                d.status = PaymentStatus::Confirmed;
                d.confirmed_at = d.confirmed_at.or(Some(now));
            }
        }

        for p in planned.into_values().filter(|p| p.changed) {
            for (news, previous) in &p.news {
                let kind = match news {
                    TransferNews::Detected => {
                        applied.detected += 1;
                        EventType::DepositDetected
                    }
                    TransferNews::Confirmed => {
                        applied.confirmed += 1;
                        EventType::DepositConfirmed
                    }
                    TransferNews::Reversed => {
                        applied.reversed += 1;
                        EventType::DepositReversed
                    }
                };
                changes.events.push(Event {
                    id: EventId::from_random(random16()),
                    merchant_id: p.deposit.merchant_id.clone(),
                    kind,
                    subject: p.deposit.id.to_string(),
                    data: json!({
                        "object": view::deposit_json(&p.deposit, &self.assets),
                        "previous_status": previous.map(PaymentStatus::as_str),
                        coffer_core::event::DEDUPE_KEY: coffer_core::event::dedupe_key(
                            p.deposit.id.as_str(),
                            kind,
                            None,
                        ),
                    }),
                    created_at: now,
                });
            }
            changes.deposits.push(p.deposit);
        }
        Ok(())
    }

    /// The confirmations a merchant's policy asks for on `chain` (cached per batch).
    async fn deposit_confirmations(
        &self,
        cache: &mut HashMap<MerchantId, u32>,
        merchant: &MerchantId,
        chain: &Chain,
    ) -> Result<u32, EngineError> {
        if let Some(n) = cache.get(merchant) {
            return Ok(*n);
        }
        let n = self
            .store
            .get_merchant(merchant)
            .await?
            .and_then(|m| m.policy.confirmations_for(chain.id.as_str()))
            .unwrap_or(chain.confirmations);
        cache.insert(merchant.clone(), n);
        Ok(n)
    }
}
