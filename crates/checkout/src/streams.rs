//! Caps on open live-update streams, per order and per client address: the checkout token is
//! public (it is in every payment link), so without them anyone could hold any number of
//! streams open.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use coffer_core::OrderId;

/// Which cap a refused stream hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    PerOrder,
    PerClient,
}

/// Open streams, counted per order and per client address. Entries exist only while
/// streams are open, so the tables are as large as the number of open streams at most.
#[derive(Debug)]
pub struct StreamCaps {
    per_order: usize,
    per_client: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    orders: HashMap<OrderId, usize>,
    clients: HashMap<IpAddr, usize>,
}

impl StreamCaps {
    pub fn new(per_order: usize, per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            per_order,
            per_client,
            open: Mutex::default(),
        })
    }

    /// A place for one more stream of `order` from `client` (no address: counted per order
    /// only), held until the slot is dropped.
    pub fn open(
        self: &Arc<Self>,
        order: &OrderId,
        client: Option<IpAddr>,
    ) -> Result<StreamSlot, Refused> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.orders.get(order).copied().unwrap_or(0) >= self.per_order {
            return Err(Refused::PerOrder);
        }
        if let Some(client) = client
            && open.clients.get(&client).copied().unwrap_or(0) >= self.per_client
        {
            return Err(Refused::PerClient);
        }
        *open.orders.entry(order.clone()).or_default() += 1;
        if let Some(client) = client {
            *open.clients.entry(client).or_default() += 1;
        }
        Ok(StreamSlot {
            caps: self.clone(),
            order: order.clone(),
            client,
        })
    }

    /// Streams open now.
    pub fn count(&self) -> usize {
        self.open
            .lock()
            .map(|o| o.orders.values().sum())
            .unwrap_or_default()
    }
}

/// One open stream's place under the caps.
#[derive(Debug)]
pub struct StreamSlot {
    caps: Arc<StreamCaps>,
    order: OrderId,
    client: Option<IpAddr>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .caps
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        release(&mut open.orders, &self.order);
        if let Some(client) = &self.client {
            release(&mut open.clients, client);
        }
    }
}

fn release<K: Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: u8) -> OrderId {
        OrderId::from_random([n; 16])
    }

    #[test]
    fn caps_per_order_and_per_client() {
        let caps = StreamCaps::new(2, 3);
        let (a, b) = (order(1), order(2));
        let (x, y): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let a1 = caps.open(&a, Some(x)).unwrap();
        let _a2 = caps.open(&a, Some(y)).unwrap();
        assert_eq!(caps.open(&a, Some(y)).unwrap_err(), Refused::PerOrder);
        let _b1 = caps.open(&b, Some(x)).unwrap();
        let _b2 = caps.open(&b, Some(x)).unwrap();
        assert_eq!(
            caps.open(&order(3), Some(x)).unwrap_err(),
            Refused::PerClient
        );
        assert_eq!(caps.count(), 4);
        drop(a1);
        let _a3 = caps.open(&a, Some(x)).unwrap();
        assert_eq!(caps.count(), 4);
    }

    #[test]
    fn closed_streams_leave_nothing_behind() {
        let caps = StreamCaps::new(10, 10);
        for n in 0..=255 {
            let _slot = caps
                .open(&order(n), Some("192.0.2.1".parse().unwrap()))
                .unwrap();
        }
        let open = caps.open.lock().unwrap();
        assert!(open.orders.is_empty() && open.clients.is_empty());
    }
}
