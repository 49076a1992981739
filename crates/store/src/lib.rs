//! Coffer's storage: one domain-level [`Store`] trait, implemented for SQLite (the embedded
//! default) and PostgreSQL (for several instances), with migrations for both.
//!
//! Writes are expressed as a [`Changeset`] committed in **one transaction**: the state change,
//! its timeline entries, its events and their outbox rows land together or not at all.

mod backend;
mod codec;
mod sql_store;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::{
    ApiCredential, AssetId, ChainId, Event, EventType, KeyId, Merchant, MerchantId, Order, OrderId,
    OrderStatus, Payment, TimelineEntry,
};
use time::OffsetDateTime;

pub use backend::{PostgresBackend, SqliteBackend};
pub use sql_store::{MAX_GROUP, SqlStore};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was hit (e.g. the merchant's `order_no` exists already).
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// Optimistic concurrency: the row changed since it was read. Re-read and retry.
    #[error("{0} was changed concurrently")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Stored data that does not parse: a bug or manual tampering, never user input.
    #[error("corrupt stored data in {column}: {detail}")]
    Corrupt { column: String, detail: String },
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate("record")
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(err.to_string()),
            _ => StoreError::Database(err.to_string()),
        }
    }
}

/// An order update guarded by the version the caller read.
#[derive(Debug, Clone)]
pub struct OrderUpdate {
    /// The order as it must be stored; its `version` must be `expected_version + 1`.
    pub order: Order,
    pub expected_version: i64,
}

/// Everything one domain operation writes, committed atomically.
#[derive(Debug, Clone, Default)]
pub struct Changeset {
    pub new_merchants: Vec<Merchant>,
    pub new_orders: Vec<Order>,
    pub order_updates: Vec<OrderUpdate>,
    /// Inserted, or updated when the payment id exists.
    pub payments: Vec<Payment>,
    pub timeline: Vec<(OrderId, TimelineEntry)>,
    /// Each event also gets an outbox row, in the same transaction.
    pub events: Vec<Event>,
    /// A chain watcher's new position, written with the payments it found.
    pub cursor: Option<ChainCursor>,
}

impl Changeset {
    pub fn is_empty(&self) -> bool {
        self.new_merchants.is_empty()
            && self.new_orders.is_empty()
            && self.order_updates.is_empty()
            && self.payments.is_empty()
            && self.timeline.is_empty()
            && self.events.is_empty()
            && self.cursor.is_none()
    }
}

/// Where a chain watcher is: the last block applied, and the hashes of the blocks before it
/// (oldest first, ending with `height`) to find the common ancestor after a reorg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCursor {
    pub chain: ChainId,
    pub height: u64,
    pub hash: String,
    pub recent: Vec<(u64, String)>,
    pub updated_at: OffsetDateTime,
}

/// An address a chain watcher must look for, and the order it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedAddress {
    pub address: String,
    pub order_id: OrderId,
    /// The order's current asset (a watcher can skip work no order needs, e.g. native
    /// transfers when every watched order wants a token).
    pub asset: Option<AssetId>,
}

/// Stable position in the order list: newest first, ties broken by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCursor {
    pub created_at: OffsetDateTime,
    pub id: OrderId,
}

#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    /// `None` only for operator tools (CLI); every API query is scoped to a merchant.
    pub merchant_id: Option<MerchantId>,
    pub status: Option<OrderStatus>,
    pub created_from: Option<OffsetDateTime>,
    pub created_to: Option<OffsetDateTime>,
    pub after: Option<OrderCursor>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub merchant_id: Option<MerchantId>,
    pub kind: Option<EventType>,
    pub created_from: Option<OffsetDateTime>,
    /// Return events after this sequence number (exclusive).
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// An event with its position in the global event order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: Event,
}

/// A merchant's receiving wallet on one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRecord {
    pub merchant_id: MerchantId,
    pub chain: ChainId,
    /// Extended public key or output descriptor, as validated by the chain's deriver.
    pub descriptor: String,
    /// Next derivation index to hand out.
    pub next_index: u32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A stored API credential and the hash of its secret.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub credential: ApiCredential,
    /// SHA-256 of the secret, hex. Compared in constant time by the caller.
    pub secret_hash: String,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;

    /// Apply every write of one domain operation in one transaction.
    async fn commit(&self, changes: Changeset) -> Result<(), StoreError>;

    async fn get_merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, StoreError>;
    async fn list_merchants(&self) -> Result<Vec<Merchant>, StoreError>;

    async fn insert_credential(&self, record: CredentialRecord) -> Result<(), StoreError>;
    async fn get_credential(&self, id: &KeyId) -> Result<Option<CredentialRecord>, StoreError>;
    async fn list_credentials(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<ApiCredential>, StoreError>;
    /// Revoke a merchant's key. `false` if no such active key exists for that merchant.
    async fn revoke_credential(
        &self,
        merchant: &MerchantId,
        id: &KeyId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Set (or replace) a merchant's wallet for a chain. Replacing keeps `next_index`
    /// only if the descriptor is unchanged; a new key starts at index 0.
    async fn set_wallet(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
        descriptor: &str,
        at: OffsetDateTime,
    ) -> Result<WalletRecord, StoreError>;
    async fn get_wallet(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<Option<WalletRecord>, StoreError>;
    async fn list_wallets(&self, merchant: &MerchantId) -> Result<Vec<WalletRecord>, StoreError>;
    /// Atomically take the next derivation index of a wallet. An index is never handed out
    /// twice, even across instances; `NotFound("wallet")` if none is set.
    async fn take_address_index(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<(u32, String), StoreError>;

    /// An order of this merchant; another merchant's order is `None`, exactly like a missing one.
    async fn get_order(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<Order>, StoreError>;
    async fn get_order_by_no(
        &self,
        merchant: &MerchantId,
        order_no: &str,
    ) -> Result<Option<Order>, StoreError>;
    /// Operator/internal lookup across merchants (CLI, watchers, checkout by token).
    async fn find_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;
    async fn find_order_by_token(&self, token: &str) -> Result<Option<Order>, StoreError>;
    async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>, StoreError>;
    /// Pending orders whose rate lock lapsed at or before `now`, oldest first.
    async fn orders_due_for_expiry(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError>;
    async fn timeline(&self, order: &OrderId) -> Result<Vec<TimelineEntry>, StoreError>;

    async fn payments_for_order(&self, order: &OrderId) -> Result<Vec<Payment>, StoreError>;

    /// The chain watcher's saved position, if it ever ran.
    async fn chain_cursor(&self, chain: &ChainId) -> Result<Option<ChainCursor>, StoreError>;
    /// Every address ever assigned to an order on `chain` whose monitoring window is open.
    async fn watched_addresses(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, StoreError>;
    /// The orders an address on `chain` was ever assigned to (normally one).
    async fn orders_for_address(
        &self,
        chain: &ChainId,
        address: &str,
    ) -> Result<Vec<Order>, StoreError>;
    /// Payments on `chain` that are not reversed and either unconfirmed or in a block at or
    /// above `from_height`: those whose confirmations can still change or that a reorg from
    /// that height would remove.
    async fn open_payments(
        &self,
        chain: &ChainId,
        from_height: u64,
    ) -> Result<Vec<Payment>, StoreError>;

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;
    /// Outbox rows not yet dispatched, oldest first.
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;
}

/// Open the configured database: PostgreSQL when `database_url` is given, otherwise the
/// embedded SQLite file `coffer.db` in `data_dir` (created if missing).
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
    max_connections: u32,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let backend = PostgresBackend::connect(url, max_connections).await?;
            Ok(Arc::new(SqlStore::new(backend)))
        }
        Some(url) => Err(StoreError::Unavailable(format!(
            "unsupported database URL scheme in {:?}: expected postgres:// (leave it unset for the embedded SQLite database)",
            url.split(':').next().unwrap_or_default()
        ))),
        None => {
            std::fs::create_dir_all(data_dir).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create data directory {}: {e}",
                    data_dir.display()
                ))
            })?;
            let backend = SqliteBackend::open(&data_dir.join("coffer.db")).await?;
            // One writer and one fsync per transaction: concurrent commits share both.
            Ok(Arc::new(SqlStore::with_group_commit(backend, MAX_GROUP)))
        }
    }
}
