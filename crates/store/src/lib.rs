//! Coffer's storage: one domain-level [`Store`] trait, implemented for SQLite (the embedded
//! default) and PostgreSQL (for several instances), with migrations for both.
//!
//! Writes are expressed as a [`Changeset`] committed in **one transaction**: the state change,
//! its timeline entries, its events and their outbox rows land together or not at all.

mod backend;
mod branding;
mod codec;
mod console;
mod dialect;
#[doc(hidden)]
pub mod seed;
mod sql_store;
mod unique;
mod webhooks;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::{
    ApiCredential, AssetId, ChainId, DeliveryId, Deposit, DepositId, Event, EventId, EventType,
    KeyId, Merchant, MerchantId, Order, OrderId, OrderState, OrderStatus, Payment, PaymentStatus,
    PayoutId, PayoutKind, PayoutRequest, PayoutStatus, TimelineEntry, WebhookId,
};
use time::OffsetDateTime;

#[doc(hidden)]
pub use backend::Backend;
pub use backend::{PostgresBackend, SqliteBackend, chain_work};
pub use branding::BrandingRecord;
pub use console::{
    AuditRecord, ConsoleInviteRecord, ConsoleOrderQuery, ConsoleRole, ConsoleSessionRecord,
    ConsoleStore, ConsoleUserRecord, ListCursor, OrderStatsRow, SessionStage, WebhookBacklog,
};
pub use dialect::{DialectCredentialRecord, DialectIdentifier, MerchantLoginRecord};
pub use sql_store::{HotPlan, MAX_GROUP, Probe, SqlStore, WATCH_PAGE};
pub use unique::Unique;
pub use webhooks::{
    AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliveryRecord, DeliveryStatus, NewDelivery,
    WebhookEndpointRecord,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was hit (e.g. the merchant's `order_no` exists already).
    #[error("duplicate {0}")]
    Duplicate(Unique),
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

impl StoreError {
    /// The error of a statement whose unique violations mean what `on_duplicate` says.
    pub(crate) fn of_statement(err: sqlx::Error, on_duplicate: unique::OnDuplicate) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate(on_duplicate.rule(db.constraint(), db.message()))
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(err.to_string()),
            _ => StoreError::Database(err.to_string()),
        }
    }
}

/// Outside a statement that says otherwise, a unique violation is [`Unique::Record`].
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::of_statement(err, Unique::Record.into())
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
    /// Idempotency keys to record: reserved (`response: None`, in progress) or answered with
    /// the writes of this changeset (`response: Some`: the key and what it answers commit
    /// together or not at all). An existing key fails the changeset with
    /// `Duplicate(Unique::IdempotencyKey)`, before any of its other writes.
    pub idempotency_reservations: Vec<IdempotencyRecord>,
    /// Responses to store on reserved (still in progress) idempotency keys.
    pub idempotency_responses: Vec<IdempotencyResponse>,
    /// Reserved keys to forget without a response (the request could not be answered).
    pub idempotency_releases: Vec<(MerchantId, String)>,
    /// Derivation indexes used by this changeset's orders: each wallet's `next_index` moves
    /// past them in the same transaction, so an index is durable exactly when its order is.
    pub wallet_marks: Vec<WalletMark>,
    /// A chain watcher's new position, written with the payments it found.
    pub cursor: Option<ChainCursor>,
    /// Payout requests (refunds, withdrawals) to insert; a repeated dialect reference fails
    /// the changeset with `Duplicate(Unique::PayoutReference)`.
    pub new_payouts: Vec<PayoutRequest>,
    /// Payout updates guarded by the version the caller read (`Conflict("payout")` if stale).
    pub payout_updates: Vec<PayoutUpdate>,
    /// Deposit accounts to insert with their addresses; an existing (merchant, uuid) fails
    /// the changeset with `Duplicate(Unique::DepositAccount)`, a used address with
    /// `Duplicate(Unique::Address)`.
    pub new_deposit_accounts: Vec<NewDepositAccount>,
    /// Deposits to insert (`seq` 0) or update (identity columns never change).
    pub deposits: Vec<Deposit>,
}

/// A merchant's deposit account: a user of the merchant (`uuid`, the merchant's own id for
/// it) with one receiving address per chain, paid at any time (Pay Protocol's "recharge").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositAccountRecord {
    /// Small sequential number, unique across merchants (Pay Protocol's `userId`).
    pub seq: i64,
    pub merchant_id: MerchantId,
    pub uuid: String,
    /// The API that created it (`payprotocol`): the format of its deposits' callbacks.
    pub dialect: String,
    pub created_at: OffsetDateTime,
    /// By chain.
    pub addresses: Vec<DepositAddressRecord>,
}

/// One receiving address of a deposit account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositAddressRecord {
    pub chain: ChainId,
    pub address: String,
    pub derivation_index: u32,
}

/// A deposit account to create (its `seq` is given by the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDepositAccount {
    pub merchant_id: MerchantId,
    pub uuid: String,
    pub dialect: String,
    pub created_at: OffsetDateTime,
    pub addresses: Vec<DepositAddressRecord>,
}

/// Whose a deposit address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositAddressOwner {
    pub merchant_id: MerchantId,
    pub account_uuid: String,
    pub account_seq: i64,
    pub dialect: String,
    pub derivation_index: u32,
}

/// Filters for deposits, newest first.
#[derive(Debug, Clone, Default)]
pub struct DepositQuery {
    pub merchant_id: Option<MerchantId>,
    pub account_seq: Option<i64>,
    pub account_uuid: Option<String>,
    pub chain: Option<ChainId>,
    pub status: Option<PaymentStatus>,
    /// Deposits numbered below this (the next page after a cursor).
    pub before_seq: Option<i64>,
    pub offset: u32,
    pub limit: u32,
}

/// Filters for a merchant's deposit accounts, newest first.
#[derive(Debug, Clone, Default)]
pub struct DepositAccountQuery {
    pub merchant_id: Option<MerchantId>,
    pub uuid: Option<String>,
    pub seq: Option<i64>,
    /// Accounts with an address on this chain.
    pub chain: Option<ChainId>,
    /// Accounts numbered below this (the next page after a cursor).
    pub before_seq: Option<i64>,
    pub offset: u32,
    pub limit: u32,
}

/// A payout request update guarded by the version the caller read.
#[derive(Debug, Clone)]
pub struct PayoutUpdate {
    /// The payout as it must be stored; its `version` must be `expected_version + 1`.
    pub payout: PayoutRequest,
    pub expected_version: i64,
}

/// Filters for a merchant's payout requests, newest first. Paging by `offset` (dialects with
/// page numbers) or by `after` (a cursor: the last request's `seq`, exclusive).
#[derive(Debug, Clone, Default)]
pub struct PayoutQuery {
    pub merchant_id: Option<MerchantId>,
    pub kind: Option<PayoutKind>,
    pub order_id: Option<OrderId>,
    pub status: Option<PayoutStatus>,
    pub dialect: Option<String>,
    /// Requests with a smaller `seq` than this (the next page after a cursor).
    pub before_seq: Option<i64>,
    pub offset: u32,
    pub limit: u32,
}

/// "Index `index` of this wallet is used": advances the wallet's `next_index` to at least
/// `index + 1`. Fails the changeset with `Conflict("wallet")` if the wallet's descriptor is no
/// longer `descriptor` (the merchant replaced the key meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletMark {
    pub merchant_id: MerchantId,
    pub chain: ChainId,
    pub descriptor: String,
    pub index: u32,
}

impl Changeset {
    pub fn is_empty(&self) -> bool {
        self.new_merchants.is_empty()
            && self.new_orders.is_empty()
            && self.order_updates.is_empty()
            && self.payments.is_empty()
            && self.timeline.is_empty()
            && self.events.is_empty()
            && self.idempotency_reservations.is_empty()
            && self.idempotency_responses.is_empty()
            && self.idempotency_releases.is_empty()
            && self.wallet_marks.is_empty()
            && self.cursor.is_none()
            && self.new_payouts.is_empty()
            && self.payout_updates.is_empty()
            && self.new_deposit_accounts.is_empty()
            && self.deposits.is_empty()
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

/// An address a chain watcher must look for: an order's, or a deposit account's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedAddress {
    pub address: String,
    /// The order it belongs to; `None` for a deposit account's standing address.
    pub order_id: Option<OrderId>,
    /// The order's current asset (a watcher can skip work no order needs, e.g. native
    /// transfers when every watched order wants a token); `None` for any asset.
    pub asset: Option<AssetId>,
    /// The end of the order's monitoring window ([`DEPOSIT_WATCH_UNTIL`] for deposit
    /// addresses, which never close).
    pub monitor_until: OffsetDateTime,
}

/// How long a deposit address is watched: as long as the account exists (year 9999).
pub const DEPOSIT_WATCH_UNTIL_MS: i64 = 253_402_300_799_000;

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

/// Which of a merchant's orders a page-numbered list shows (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFilter {
    pub merchant_id: MerchantId,
    /// Created at or after.
    pub created_from: Option<OffsetDateTime>,
    /// Created before.
    pub created_to: Option<OffsetDateTime>,
    /// Orders whose coin is on this chain (orders without a coin yet never match).
    pub chain: Option<ChainId>,
    /// Orders in one of these states (`Some(empty)` matches none).
    pub states: Option<Vec<OrderState>>,
    /// Orders with a payment in this transaction (compared as given and lower-cased).
    pub txid: Option<String>,
}

impl OrderFilter {
    /// All of a merchant's orders.
    pub fn merchant(merchant: MerchantId) -> Self {
        Self {
            merchant_id: merchant,
            created_from: None,
            created_to: None,
            chain: None,
            states: None,
            txid: None,
        }
    }
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

/// A stored response of an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The response body (JSON text).
    pub body: String,
}

/// An idempotency key of one merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub merchant_id: MerchantId,
    pub key: String,
    /// Identifies the request (method, path, SHA-256 of the body).
    pub fingerprint: String,
    /// `None` while the first request is still in progress.
    pub response: Option<StoredResponse>,
    pub created_at: OffsetDateTime,
}

/// The response for a reserved idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyResponse {
    pub merchant_id: MerchantId,
    pub key: String,
    pub response: StoredResponse,
    pub at: OffsetDateTime,
}

/// A stored API credential and the hash of its secret.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub credential: ApiCredential,
    /// SHA-256 of the secret, hex. Compared in constant time by the caller.
    pub secret_hash: String,
}

/// The console's queries are the supertrait [`ConsoleStore`] (its own module, so that it
/// grows without touching this list).
#[async_trait]
pub trait Store: ConsoleStore + Send + Sync {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;

    /// Apply every write of one domain operation atomically: all of it or none of it. Returns
    /// once the writes are durable. On SQLite, concurrent commits are grouped into one
    /// transaction and one fsync, each changeset in its own savepoint, so one that fails (a
    /// duplicate `order_no`, a stale version) fails alone with its own error.
    async fn commit(&self, changes: Changeset) -> Result<(), StoreError>;

    async fn get_merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, StoreError>;
    async fn list_merchants(&self) -> Result<Vec<Merchant>, StoreError>;
    /// Replace a merchant's settlement defaults (new orders snapshot them); `false` if the
    /// merchant does not exist.
    async fn set_merchant_policy(
        &self,
        id: &MerchantId,
        policy: &coffer_core::SettlementPolicy,
    ) -> Result<bool, StoreError>;

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

    /// Set (or replace) a merchant's wallet for a chain. The same key keeps its `next_index`;
    /// a key set before continues where it stopped, a new one starts at index 0.
    /// `Duplicate(Unique::WalletKey)` if another merchant ever set this key on the chain.
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
    /// Orders changed at or after `since` with their change time, oldest first (live
    /// updates across instances).
    async fn orders_changed_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(OrderId, OffsetDateTime)>, StoreError>;
    async fn timeline(&self, order: &OrderId) -> Result<Vec<TimelineEntry>, StoreError>;

    async fn payments_for_order(&self, order: &OrderId) -> Result<Vec<Payment>, StoreError>;

    /// A merchant's checkout branding, if it set one.
    async fn get_branding(
        &self,
        merchant: &MerchantId,
    ) -> Result<Option<BrandingRecord>, StoreError>;
    /// Set (or replace) a merchant's checkout branding.
    async fn set_branding(&self, branding: &BrandingRecord) -> Result<(), StoreError>;

    async fn get_idempotency(
        &self,
        merchant: &MerchantId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Delete idempotency keys created before `before`; returns how many.
    async fn purge_idempotency(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
    /// The chain watcher's saved position, if it ever ran.
    async fn chain_cursor(&self, chain: &ChainId) -> Result<Option<ChainCursor>, StoreError>;
    /// Every address ever assigned to an order on `chain` whose monitoring window is open.
    async fn watched_addresses(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, StoreError>;
    /// Like [`Store::watched_addresses`], restricted to orders updated (created, given another
    /// address, …) at or after `since`: a watcher's incremental reload.
    async fn watched_addresses_since(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, StoreError> {
        let _ = since;
        self.watched_addresses(chain, now).await
    }
    /// The orders an address on `chain` was ever assigned to (normally one).
    async fn orders_for_address(
        &self,
        chain: &ChainId,
        address: &str,
    ) -> Result<Vec<Order>, StoreError>;
    /// Payments on `chain` that are not reversed and either unconfirmed, still in the mempool
    /// (no block: a zero-conf payment counted as confirmed) or in a block at or above
    /// `from_height`: those whose confirmations can still change, that a reorg from that
    /// height would remove, or that can vanish from the mempool.
    async fn open_payments(
        &self,
        chain: &ChainId,
        from_height: u64,
    ) -> Result<Vec<Payment>, StoreError>;

    /// The derivation indexes a merchant's orders and deposit accounts hold on `chain`, each
    /// with whether a payment or deposit (not reversed) arrived there: what the gap-limit
    /// report needs.
    async fn address_usage(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<Vec<(u32, bool)>, StoreError>;

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;
    /// Outbox rows not yet dispatched, oldest first.
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

    // ---- webhooks ------------------------------------------------------------------------

    async fn insert_webhook(&self, endpoint: &WebhookEndpointRecord) -> Result<(), StoreError>;
    /// A merchant's endpoint (deleted ones and other merchants' are `None`). With no merchant,
    /// the internal lookup across merchants.
    async fn get_webhook(
        &self,
        merchant: Option<&MerchantId>,
        id: &WebhookId,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError>;
    /// A merchant's endpoints (not deleted), oldest first.
    async fn list_webhooks(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<WebhookEndpointRecord>, StoreError>;
    /// Replace the mutable fields of an endpoint. `false` if it does not exist for the merchant.
    async fn update_webhook(&self, endpoint: &WebhookEndpointRecord) -> Result<bool, StoreError>;
    /// Delete an endpoint and give up its pending deliveries. `false` if it does not exist.
    async fn delete_webhook(
        &self,
        merchant: &MerchantId,
        id: &WebhookId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Flag an endpoint as failing (keeps the first time), or clear the flag with `None`.
    async fn set_webhook_failing(
        &self,
        id: &WebhookId,
        failing_since: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;
    /// In one transaction: create the deliveries of each event (a (event, destination) pair
    /// that exists already is skipped) and mark its outbox row dispatched. Idempotent, so two
    /// dispatchers racing on the same rows create each delivery once.
    async fn dispatch_outbox(
        &self,
        batch: &[(EventId, Vec<NewDelivery>)],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Claim up to `limit` pending deliveries due at `now`, oldest due first, by moving their
    /// due time to `lease_until`. A claimed row is not claimed again before then, by any
    /// instance; no lock is held once this returns.
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// Hand claimed deliveries back unattempted, due at `due_at`.
    async fn release_deliveries(
        &self,
        ids: &[DeliveryId],
        due_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Record attempt outcomes in one transaction; returns how many applied (an outcome for a
    /// row that moved on meanwhile is dropped).
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<usize, StoreError>;
    async fn get_delivery(
        &self,
        merchant: &MerchantId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>, StoreError>;
    /// Deliveries, newest first.
    async fn list_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// The newest delivery of `dialect` to a callback URL (not an endpoint) about `subject`
    /// (the id of the order, payout or deposit its event is about).
    async fn last_callback(
        &self,
        merchant: &MerchantId,
        dialect: &str,
        subject: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError>;
    /// Make a delivery due again now (whatever its status). `false` if not the merchant's.
    async fn redeliver(
        &self,
        merchant: &MerchantId,
        id: &DeliveryId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    // ---- dialect credentials and console logins -------------------------------------------

    /// Insert a dialect credential; `Duplicate(Unique::DialectCredential)` if an identifier
    /// hash exists.
    async fn insert_dialect_credential(
        &self,
        record: &DialectCredentialRecord,
    ) -> Result<(), StoreError>;
    /// The credential of `dialect` whose key (or token) hashes to `hash`, revoked or not.
    async fn find_dialect_credential(
        &self,
        dialect: &str,
        by: DialectIdentifier,
        hash: &str,
    ) -> Result<Option<DialectCredentialRecord>, StoreError>;
    /// A merchant's dialect credentials (all dialects, or one), oldest first.
    async fn list_dialect_credentials(
        &self,
        merchant: &MerchantId,
        dialect: Option<&str>,
    ) -> Result<Vec<DialectCredentialRecord>, StoreError>;
    /// Revoke a merchant's dialect credential. `false` if no such active one exists.
    async fn revoke_dialect_credential(
        &self,
        merchant: &MerchantId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Create or replace a merchant's console login; `Duplicate(Unique::Username)` if another
    /// merchant has the username.
    async fn set_merchant_login(&self, record: &MerchantLoginRecord) -> Result<(), StoreError>;
    async fn find_merchant_login(
        &self,
        username: &str,
    ) -> Result<Option<MerchantLoginRecord>, StoreError>;

    // ---- payout requests, nonces (dialects) ----------------------------------------------

    /// A merchant's payout request (another merchant's is `None`).
    async fn get_payout(
        &self,
        merchant: &MerchantId,
        id: &PayoutId,
    ) -> Result<Option<PayoutRequest>, StoreError>;
    /// A merchant's payout request by its store sequence number.
    async fn get_payout_by_seq(
        &self,
        merchant: &MerchantId,
        seq: i64,
    ) -> Result<Option<PayoutRequest>, StoreError>;
    /// A merchant's payout request by the reference a dialect gave it.
    async fn get_payout_by_reference(
        &self,
        merchant: &MerchantId,
        kind: PayoutKind,
        dialect: &str,
        reference: &str,
    ) -> Result<Option<PayoutRequest>, StoreError>;
    /// Payout requests matching `query`, newest first.
    async fn list_payouts(&self, query: &PayoutQuery) -> Result<Vec<PayoutRequest>, StoreError>;
    /// How many payout requests match `query` (ignoring its paging).
    async fn count_payouts(&self, query: &PayoutQuery) -> Result<u64, StoreError>;
    /// Record a single-use nonce: `true` if `(scope, nonce)` was seen before and has not yet
    /// expired (a replay), `false` if it is new (it is now recorded until `expires_at`).
    /// Rows expired at `now` are pruned on the way.
    async fn seen_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    // ---- page-numbered lists (the dialects' `page`/`size` APIs) ----------------------------

    /// How many orders a merchant has.
    async fn count_orders(&self, merchant: &MerchantId) -> Result<u64, StoreError>;
    /// A page of the orders matching `filter`, newest first, skipping `offset`.
    async fn orders_matching(
        &self,
        filter: &OrderFilter,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError>;
    /// How many orders match `filter`.
    async fn count_orders_matching(&self, filter: &OrderFilter) -> Result<u64, StoreError>;
    /// A merchant's payments over all its orders, newest first, skipping `offset`.
    async fn merchant_payments(
        &self,
        merchant: &MerchantId,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError>;
    /// How many payments a merchant has.
    async fn count_merchant_payments(&self, merchant: &MerchantId) -> Result<u64, StoreError>;

    // ---- deposit accounts ------------------------------------------------------------------

    /// Deposit accounts matching `query` (with their addresses), newest first.
    async fn list_deposit_accounts(
        &self,
        query: &DepositAccountQuery,
    ) -> Result<Vec<DepositAccountRecord>, StoreError>;
    /// How many deposit accounts match `query` (ignoring its paging).
    async fn count_deposit_accounts(&self, query: &DepositAccountQuery) -> Result<u64, StoreError>;
    /// Whose deposit address `address` on `chain` is (`None`: not a deposit address).
    async fn deposit_address_owner(
        &self,
        chain: &ChainId,
        address: &str,
    ) -> Result<Option<DepositAddressOwner>, StoreError>;
    /// The deposit recorded for one transfer (chain, txid, output index, asset).
    async fn deposit_for_transfer(
        &self,
        chain: &ChainId,
        txid: &str,
        output_index: u32,
        asset: &AssetId,
    ) -> Result<Option<Deposit>, StoreError>;
    /// Deposits whose confirmations may change or that a reorg from `from_height` removes.
    async fn open_deposits(
        &self,
        chain: &ChainId,
        from_height: u64,
    ) -> Result<Vec<Deposit>, StoreError>;
    /// A deposit by id or by number (`None` for both: `None`); with `merchant`, only that
    /// merchant's.
    async fn get_deposit(
        &self,
        merchant: Option<&MerchantId>,
        id: Option<&DepositId>,
        seq: Option<i64>,
    ) -> Result<Option<Deposit>, StoreError>;
    /// Deposits matching `query`, newest first.
    async fn list_deposits(&self, query: &DepositQuery) -> Result<Vec<Deposit>, StoreError>;
    /// How many deposits match `query` (ignoring its paging).
    async fn count_deposits(&self, query: &DepositQuery) -> Result<u64, StoreError>;

    // ---- dialect settings ------------------------------------------------------------------

    /// A merchant's settings of one dialect (name → value).
    async fn dialect_settings(
        &self,
        merchant: &MerchantId,
        dialect: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError>;
    /// Set (`Some`) or clear (`None`) settings of one dialect, all in one transaction.
    async fn set_dialect_settings(
        &self,
        merchant: &MerchantId,
        dialect: &str,
        settings: &[(&str, Option<&str>)],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
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
