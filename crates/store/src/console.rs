//! What the web console stores and reads: its users, sessions, invitations and audit log,
//! suspended merchants, and the list, search and dashboard queries of its pages.
//!
//! [`ConsoleStore`] is a supertrait of [`crate::Store`], so every store has it and the engine
//! reaches it through the same `Arc<dyn Store>`; its implementation lives in
//! `sql_store/console/`.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use coffer_core::{AssetId, BaseUnits, MerchantId, Order, OrderId, OrderStatus, StatusReason};
use time::OffsetDateTime;

use crate::{DeliveryRecord, StoreError, StoredEvent};

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsoleRole {
    /// Runs the server: merchants, chains, rates, webhooks backlog; and any merchant's pages.
    Operator,
    /// Runs one merchant: everything on its pages, including its team.
    Owner,
    /// Reads one merchant's pages; changes nothing.
    Staff,
}

impl ConsoleRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleRole::Operator => "operator",
            ConsoleRole::Owner => "owner",
            ConsoleRole::Staff => "staff",
        }
    }
}

impl fmt::Display for ConsoleRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConsoleRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "operator" => Ok(ConsoleRole::Operator),
            "owner" => Ok(ConsoleRole::Owner),
            "staff" => Ok(ConsoleRole::Staff),
            other => Err(format!("unknown console role {other:?}")),
        }
    }
}

/// A console user. Operators have no merchant; owners and staff have exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUserRecord {
    /// `usr_…`.
    pub id: String,
    /// Lower case, unique across all users.
    pub username: String,
    /// An Argon2id PHC string; never the password.
    pub password_hash: String,
    pub role: ConsoleRole,
    pub merchant_id: Option<MerchantId>,
    /// The TOTP secret, sealed with the server master key; `None` without a second factor.
    pub totp_secret: Option<String>,
    /// The last TOTP time step accepted.
    pub totp_last_step: Option<i64>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub disabled_at: Option<OffsetDateTime>,
}

/// How far a session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// Signed in.
    Full,
    /// The password was right; the TOTP code is still to come.
    SecondFactor,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::Full => "full",
            SessionStage::SecondFactor => "second_factor",
        }
    }
}

impl FromStr for SessionStage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(SessionStage::Full),
            "second_factor" => Ok(SessionStage::SecondFactor),
            other => Err(format!("unknown session stage {other:?}")),
        }
    }
}

/// A console session. The cookie holds the token; the store only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    pub token_hash: String,
    pub user_id: String,
    /// The token every form of this session carries.
    pub csrf: String,
    pub stage: SessionStage,
    /// The client it was opened from (address, user agent), shown in the session list.
    pub client: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A one-time invitation to become a console user. The link holds the token; the store only
/// its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleInviteRecord {
    pub token_hash: String,
    pub role: ConsoleRole,
    pub merchant_id: Option<MerchantId>,
    /// The user who invited (`None`: the server's own setup link).
    pub created_by: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Given by the store.
    pub seq: i64,
    pub at: OffsetDateTime,
    pub user_id: Option<String>,
    pub username: String,
    /// The merchant the action concerned (`None`: the server).
    pub merchant_id: Option<MerchantId>,
    /// `key.created`, `order.marked_settled`, …
    pub action: String,
    /// What it was done to (`key_…`, `ord_…`).
    pub subject: Option<String>,
    pub detail: Option<String>,
    pub client: Option<String>,
}

/// Stable position in a newest-first list: `(created_at, id)` of the last row shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at: OffsetDateTime,
    pub id: String,
}

/// The console's orders list: one merchant, any of the filters, newest first. Each filter
/// has an index that starts with the merchant (see `EXPLAIN` in `console_query_plans`).
#[derive(Debug, Clone, Default)]
pub struct ConsoleOrderQuery {
    pub merchant_id: Option<MerchantId>,
    pub status: Option<OrderStatus>,
    pub reason: Option<StatusReason>,
    pub asset: Option<AssetId>,
    pub created_from: Option<OffsetDateTime>,
    pub created_to: Option<OffsetDateTime>,
    pub after: Option<ListCursor>,
    pub limit: u32,
}

/// One group of a merchant's orders created on one day (UTC): how many, and what they
/// received (confirmed, counted payments) in their asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStatsRow {
    /// Days since 1970-01-01.
    pub day: i64,
    pub status: OrderStatus,
    pub asset: Option<AssetId>,
    pub count: u64,
    pub received: BaseUnits,
}

/// The webhook queues at a glance (operator page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookBacklog {
    /// Deliveries waiting for an attempt (or retrying).
    pub pending: u64,
    pub oldest_pending_due: Option<OffsetDateTime>,
    /// Events not yet turned into deliveries.
    pub outbox: u64,
    pub oldest_outbox: Option<OffsetDateTime>,
    /// Endpoints flagged failing.
    pub failing_endpoints: u64,
}

/// The console's storage. Every merchant-facing read names the merchant.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    // ---- users ---------------------------------------------------------------------------

    /// `Duplicate(Unique::Username)` if the username is taken.
    async fn insert_console_user(&self, user: &ConsoleUserRecord) -> Result<(), StoreError>;
    async fn get_console_user(&self, id: &str) -> Result<Option<ConsoleUserRecord>, StoreError>;
    /// By username (lower case).
    async fn find_console_user(
        &self,
        username: &str,
    ) -> Result<Option<ConsoleUserRecord>, StoreError>;
    /// A merchant's users, or with `None` the operators; oldest first.
    async fn list_console_users(
        &self,
        merchant: Option<&MerchantId>,
    ) -> Result<Vec<ConsoleUserRecord>, StoreError>;
    /// Replace a user's password hash, TOTP secret and disabled time. `false` if no such user.
    async fn update_console_user(&self, user: &ConsoleUserRecord) -> Result<bool, StoreError>;
    /// Record `step` as the user's last accepted TOTP step, if it is later than the last one:
    /// `false` for a code used already (on any instance).
    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    /// How many operators can sign in (not disabled).
    async fn count_operators(&self) -> Result<u64, StoreError>;

    // ---- sessions ------------------------------------------------------------------------

    async fn insert_console_session(
        &self,
        session: &ConsoleSessionRecord,
    ) -> Result<(), StoreError>;
    /// The session with this token hash and its user, unless it expired at `now`.
    async fn console_session(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(ConsoleSessionRecord, ConsoleUserRecord)>, StoreError>;
    /// Move a session's last use and expiry.
    async fn touch_console_session(
        &self,
        token_hash: &str,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn delete_console_session(&self, token_hash: &str) -> Result<bool, StoreError>;
    /// End every session of a user (but `except`, if given); how many ended.
    async fn delete_console_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<u64, StoreError>;
    /// A user's sessions not expired at `now`, newest first.
    async fn list_console_sessions(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<ConsoleSessionRecord>, StoreError>;
    /// Delete sessions expired at `now`; how many.
    async fn purge_console_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    // ---- invitations ---------------------------------------------------------------------

    async fn insert_console_invite(&self, invite: &ConsoleInviteRecord) -> Result<(), StoreError>;
    /// The invitation with this token hash, unless it expired at `now`.
    async fn console_invite(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ConsoleInviteRecord>, StoreError>;
    /// In one transaction: use up the invitation (it must exist and not have expired at
    /// `now`) and create `user`. `false` if the invitation is gone (used, expired, revoked);
    /// `Duplicate(Unique::Username)` if the username is taken (the invitation stays).
    async fn accept_console_invite(
        &self,
        token_hash: &str,
        user: &ConsoleUserRecord,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// A merchant's open invitations, or with `None` the operator invitations; newest first.
    async fn list_console_invites(
        &self,
        merchant: Option<&MerchantId>,
        now: OffsetDateTime,
    ) -> Result<Vec<ConsoleInviteRecord>, StoreError>;
    /// Withdraw one invitation (`merchant` must match: `None` for operator invitations).
    async fn delete_console_invite(
        &self,
        merchant: Option<&MerchantId>,
        token_hash: &str,
    ) -> Result<bool, StoreError>;
    /// Withdraw the server's setup links (operator invitations nobody created).
    async fn delete_setup_invites(&self) -> Result<u64, StoreError>;

    // ---- audit log -----------------------------------------------------------------------

    async fn insert_audit(&self, entry: &AuditRecord) -> Result<(), StoreError>;
    /// Newest first, before `before_seq`: one merchant's, or with `None` every entry.
    async fn list_audit(
        &self,
        merchant: Option<&MerchantId>,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    // ---- merchants -----------------------------------------------------------------------

    /// Suspend (`Some(at)`) or resume (`None`) a merchant. `false` if it does not exist.
    async fn set_merchant_suspended(
        &self,
        merchant: &MerchantId,
        at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError>;
    /// Since when a merchant is suspended (`None`: it is not, or does not exist).
    async fn merchant_suspended(
        &self,
        merchant: &MerchantId,
    ) -> Result<Option<OffsetDateTime>, StoreError>;
    /// Every suspended merchant.
    async fn suspended_merchants(&self) -> Result<Vec<(MerchantId, OffsetDateTime)>, StoreError>;
    /// Merchants without any receiving wallet.
    async fn merchants_without_wallet(&self) -> Result<Vec<MerchantId>, StoreError>;

    // ---- the merchant's pages ------------------------------------------------------------

    /// A page of a merchant's orders (`query.merchant_id` is required).
    async fn console_orders(&self, query: &ConsoleOrderQuery) -> Result<Vec<Order>, StoreError>;
    /// A merchant's orders that were ever given `address` (any case).
    async fn orders_by_address(
        &self,
        merchant: &MerchantId,
        address: &str,
    ) -> Result<Vec<Order>, StoreError>;
    /// A merchant's orders paid by transaction `txid` (any case).
    async fn orders_by_txid(
        &self,
        merchant: &MerchantId,
        txid: &str,
    ) -> Result<Vec<Order>, StoreError>;
    /// A merchant's orders created in `[from, to)`, grouped by day, status and asset.
    async fn order_stats(
        &self,
        merchant: &MerchantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<OrderStatsRow>, StoreError>;
    /// The events of one of a merchant's orders, oldest first.
    async fn order_events(
        &self,
        merchant: &MerchantId,
        order: &OrderId,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The webhook and callback deliveries of one of a merchant's orders' events, newest first.
    async fn order_deliveries(
        &self,
        merchant: &MerchantId,
        order: &OrderId,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// A page of one endpoint's deliveries, newest first.
    async fn endpoint_deliveries(
        &self,
        merchant: &MerchantId,
        endpoint: &coffer_core::WebhookId,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// A page of a merchant's payout requests, newest first, optionally of one status or of
    /// one order.
    async fn console_payouts(
        &self,
        merchant: &MerchantId,
        status: Option<coffer_core::PayoutStatus>,
        order: Option<&OrderId>,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<coffer_core::PayoutRequest>, StoreError>;
    /// A page of a merchant's deposit accounts (with addresses), newest first.
    async fn console_deposit_accounts(
        &self,
        merchant: &MerchantId,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::DepositAccountRecord>, StoreError>;
    /// A page of a merchant's deposits, newest first.
    async fn console_deposits(
        &self,
        merchant: &MerchantId,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<coffer_core::Deposit>, StoreError>;

    // ---- the operator's pages ------------------------------------------------------------

    async fn webhook_backlog(&self) -> Result<WebhookBacklog, StoreError>;

    /// `(query, plan)` of each list and search above for `merchant`, with a page cursor and a
    /// dashboard window at `at`, as the database plans it now (`EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN` on PostgreSQL): what the tests and the console benchmark check for
    /// full scans.
    async fn console_query_plans(
        &self,
        merchant: &MerchantId,
        at: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, StoreError>;
}
