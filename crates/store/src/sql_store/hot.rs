//! The statements that must hold at volume, with real arguments, for plan checks (tests and
//! benchmarks, hidden from the docs): a chain watcher's reads and writes, and what creating
//! an order reads and writes. Each is built by the function the store itself runs it with.

use coffer_core::{AssetId, ChainId, KeyId, Order};
use time::OffsetDateTime;

use super::plan::plan;
use super::{SqlStore, deposits, idempotency, merchants, orders, payments, wallets, watch};
use crate::backend::{Backend, Query};
use crate::codec::ms;
use crate::{Changeset, StoreError};

/// Real keys to ask the statements about.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Probe {
    /// The chain watched.
    pub chain: ChainId,
    pub now: OffsetDateTime,
    /// Where an incremental load of the watched set starts.
    pub since: OffsetDateTime,
    /// The height a watcher's open payments and deposits start at.
    pub height: u64,
    /// An order with an address on `chain`.
    pub order: Order,
    pub credential: KeyId,
    pub idempotency_key: String,
    pub deposit_address: String,
    /// A deposit transfer: txid and asset.
    pub deposit_transfer: (String, AssetId),
    /// What creating an order and applying a chain batch write: each planned write is
    /// explained (nothing is written).
    pub writes: Vec<Changeset>,
}

/// One statement and the plan the database chose for it.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct HotPlan {
    /// What runs it (`watched_addresses_since: changed orders`, `write Order`, …).
    pub name: String,
    pub sql: String,
    /// One line per plan node.
    pub plan: Vec<String>,
}

impl<B: Backend> SqlStore<B> {
    /// The plans of the statements a chain watcher and order creation run, asked with
    /// `probe`'s keys. Nothing is written.
    #[doc(hidden)]
    pub async fn explain_hot(&self, probe: &Probe) -> Result<Vec<HotPlan>, StoreError> {
        let mut out = Vec::new();
        for (name, q) in hot_reads(probe) {
            out.push(self.explain_one(name.to_owned(), q).await?);
        }
        for changes in &probe.writes {
            for w in plan(changes)? {
                out.push(
                    self.explain_one(format!("write {:?}", w.kind), w.query)
                        .await?,
                );
            }
        }
        Ok(out)
    }

    async fn explain_one(&self, name: String, q: Query) -> Result<HotPlan, StoreError> {
        let sql = q.sql.to_string();
        let plan = self.backend.explain(q).await?;
        Ok(HotPlan { name, sql, plan })
    }
}

fn hot_reads(p: &Probe) -> Vec<(&'static str, Query)> {
    let now = ms(p.now);
    let since = ms(p.since);
    let o = &p.order;
    let address = o.target.as_ref().map_or("", |t| t.address.as_str());
    vec![
        // The watcher.
        ("chain_cursor", watch::cursor_query(&p.chain)),
        (
            "watched_addresses: open orders",
            watch::open_page_query((now, ""), &p.chain),
        ),
        (
            "watched_addresses: deposit addresses",
            watch::deposit_page_query(&p.chain, ""),
        ),
        (
            "watched_addresses_since: changed orders",
            watch::changed_page_query((since, ""), now, &p.chain),
        ),
        (
            "watched_addresses_since: new deposit addresses",
            watch::new_deposit_page_query(&p.chain, (since, "")),
        ),
        (
            "orders_for_address",
            orders::for_address_query(&p.chain, address),
        ),
        ("payments_for_order", payments::for_order_query(&o.id)),
        ("open_payments", payments::open_query(&p.chain, p.height)),
        (
            "open_deposits",
            deposits::open_deposits_query(&p.chain, p.height),
        ),
        (
            "deposit_address_owner",
            deposits::owner_query(&p.chain, &p.deposit_address),
        ),
        (
            "deposit_for_transfer",
            deposits::transfer_query(&p.chain, &p.deposit_transfer.0, 0, &p.deposit_transfer.1),
        ),
        // Creating an order (and the checkout page reading it).
        ("get_credential", merchants::credential_query(&p.credential)),
        ("get_merchant", merchants::get_query(&o.merchant_id)),
        (
            "get_idempotency",
            idempotency::get_query(&o.merchant_id, &p.idempotency_key),
        ),
        (
            "get_order_by_no",
            orders::by_no_query(&o.merchant_id, o.order_no.as_deref().unwrap_or("")),
        ),
        (
            "orders_changed_since",
            orders::changed_since_query(p.since, 5_000),
        ),
        ("get_wallet", wallets::get_query(&o.merchant_id, &p.chain)),
        ("get_order", orders::get_query(&o.merchant_id, &o.id)),
        (
            "find_order_by_token",
            orders::by_token_query(o.checkout_token.as_str()),
        ),
    ]
}
