//! Live order signals. Every changeset the engine commits wakes whoever follows the orders it
//! touched (an order update, a payment, a timeline entry) — the checkout's live-update
//! streams — so a stream waits on a signal instead of re-reading its order on a timer: an
//! idle stream costs no database read and no render.
//!
//! Signals are in-process: they reach the streams of the instance that made the change. With
//! several instances on one database (PostgreSQL), each instance also asks the database once
//! per interval which orders changed ([`Engine::resync_live`], on the `orders_updated`
//! index) and wakes the followers of those — one query per instance, not one per stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use coffer_core::OrderId;
use coffer_store::Changeset;
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

use crate::{Engine, EngineError};

/// Changes read per resync; more than this in one interval wakes every follower instead.
const RESYNC_BATCH: u32 = 5_000;

/// How far back each resync looks again: commits land with their writer's clock, which may
/// run behind this instance's, and a transaction may commit after a later one.
const RESYNC_OVERLAP: Duration = Duration::seconds(5);

/// The orders someone follows, each with a counter bumped on every committed change.
#[derive(Debug, Default)]
pub struct LiveOrders {
    followed: Mutex<HashMap<OrderId, watch::Sender<u64>>>,
}

impl LiveOrders {
    /// Follow `order`: the returned signal's [`changed`](OrderSignal::changed) resolves after
    /// each committed change to it.
    pub fn follow(self: &Arc<Self>, order: &OrderId) -> OrderSignal {
        let mut followed = self.followed.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = followed
            .entry(order.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        OrderSignal {
            live: self.clone(),
            order: order.clone(),
            receiver,
        }
    }

    /// Orders followed now (entries exist only while someone follows them).
    pub fn followed(&self) -> usize {
        self.followed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Wake the followers of every order `changes` touched (after it committed).
    pub(crate) fn committed(&self, changes: &Touched) {
        if changes.0.is_empty() {
            return;
        }
        let followed = self.followed.lock().unwrap_or_else(PoisonError::into_inner);
        if followed.is_empty() {
            return;
        }
        for order in &changes.0 {
            if let Some(sender) = followed.get(order) {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

impl LiveOrders {
    fn wake_all(&self) {
        let followed = self.followed.lock().unwrap_or_else(PoisonError::into_inner);
        for sender in followed.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// Where [`Engine::resync_live`] left off: the newest change seen, and the changes already
/// passed on within the look-back (so that looking back again wakes nobody twice).
#[derive(Debug)]
pub struct ResyncCursor {
    since: OffsetDateTime,
    seen: HashMap<OrderId, OffsetDateTime>,
}

impl ResyncCursor {
    /// Start with the changes from `since` on.
    pub fn new(since: OffsetDateTime) -> Self {
        Self {
            since,
            seen: HashMap::new(),
        }
    }
}

impl Engine {
    /// One round of live updates across instances: wake the followers of the orders changed
    /// (by any instance) since the last round. No query at all while nobody here follows an
    /// order.
    pub async fn resync_live(&self, cursor: &mut ResyncCursor) -> Result<(), EngineError> {
        if self.live.followed() == 0 {
            cursor.since = cursor.since.max(self.clock.now() - RESYNC_OVERLAP);
            cursor.seen.clear();
            return Ok(());
        }
        let from = cursor.since - RESYNC_OVERLAP;
        let changed = self.store.orders_changed_since(from, RESYNC_BATCH).await?;
        if changed.len() >= RESYNC_BATCH as usize {
            // A burst (a sale): rather than page through it, let every stream look once.
            self.live.wake_all();
            cursor.since = cursor.since.max(self.clock.now());
            cursor.seen.clear();
            return Ok(());
        }
        let mut news = Vec::new();
        for (id, at) in changed {
            // Instances' clocks differ by less than the look-back (they run NTP, as
            // operations.md asks of a PostgreSQL deployment).
            cursor.since = cursor.since.max(at);
            if cursor.seen.get(&id) != Some(&at) {
                cursor.seen.insert(id.clone(), at);
                news.push(id);
            }
        }
        let from = cursor.since - RESYNC_OVERLAP;
        cursor.seen.retain(|_, at| *at >= from);
        self.live.committed(&Touched(news));
        Ok(())
    }
}

/// The orders a changeset touches, taken before it is handed to the store.
#[derive(Debug, Default)]
pub(crate) struct Touched(Vec<OrderId>);

impl Touched {
    pub(crate) fn of(changes: &Changeset) -> Self {
        let mut orders: Vec<OrderId> = changes
            .order_updates
            .iter()
            .map(|u| u.order.id.clone())
            .chain(changes.payments.iter().map(|p| p.order_id.clone()))
            .chain(changes.timeline.iter().map(|(id, _)| id.clone()))
            .collect();
        orders.sort_unstable();
        orders.dedup();
        Self(orders)
    }
}

/// One follower of one order; stops following when dropped.
#[derive(Debug)]
pub struct OrderSignal {
    live: Arc<LiveOrders>,
    order: OrderId,
    receiver: watch::Receiver<u64>,
}

impl OrderSignal {
    /// Resolves once the order changed since the last call (or since following it).
    pub async fn changed(&mut self) {
        if self.receiver.changed().await.is_err() {
            // The sender lives as long as a follower does; never reached, but never spin.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for OrderSignal {
    fn drop(&mut self) {
        let mut followed = self
            .live
            .followed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // This receiver is still alive here: the last follower sees a count of one.
        if followed
            .get(&self.order)
            .is_some_and(|s| s.receiver_count() <= 1)
        {
            followed.remove(&self.order);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> OrderId {
        OrderId::from_random([n; 16])
    }

    #[tokio::test]
    async fn followers_are_woken_by_their_orders_only_and_forgotten_when_gone() {
        let live = Arc::new(LiveOrders::default());
        let mut a1 = live.follow(&id(0));
        let mut a2 = live.follow(&id(0));
        let mut b = live.follow(&id(1));
        assert_eq!(live.followed(), 2);
        live.committed(&Touched(vec![id(0), id(2)]));
        tokio::time::timeout(std::time::Duration::from_secs(1), a1.changed())
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), a2.changed())
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), b.changed())
                .await
                .is_err(),
            "another order's change does not wake b"
        );
        drop(a1);
        assert_eq!(live.followed(), 2, "a2 still follows order 0");
        drop(a2);
        drop(b);
        assert_eq!(live.followed(), 0);
    }
}
