//! The [`Store`] implementation, written once over any [`Backend`], split by aggregate.
//!
//! The write path: [`plan`] turns a [`Changeset`] into statements, [`commit`] applies one
//! changeset in a transaction, [`group_commit`] applies many concurrent ones in one (SQLite).
//! Each aggregate module holds its statements, the builders that bind them and its reads:
//! [`merchants`], [`orders`], [`payments`], [`wallets`], [`watch`], [`events`],
//! [`idempotency`], [`payouts`], [`deposits`], and the web console's in [`console`]. Webhooks, dialect credentials and branding
//! keep their modules at the crate root, beside their record types.

mod bulk;
mod commit;
mod console;
mod deposits;
mod events;
mod group_commit;
mod hot;
mod idempotency;
mod merchants;
mod orders;
mod payments;
mod payouts;
mod plan;
mod wallets;
mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::{
    ApiCredential, ChainId, DeliveryId, EventId, KeyId, Merchant, MerchantId, Order, OrderId,
    Payment, TimelineEntry, WebhookId,
};
use time::OffsetDateTime;

use crate::backend::{Backend, RowExt};
use crate::dialect;
use crate::webhooks;
use crate::{
    AttemptRecord, ChainCursor, Changeset, ClaimedDelivery, CredentialRecord, DeliveryQuery,
    DeliveryRecord, EventQuery, IdempotencyRecord, NewDelivery, OrderFilter, OrderQuery, Store,
    StoreError, StoredEvent, WalletRecord, WatchedAddress, WebhookEndpointRecord,
};

use group_commit::GroupCommit;
pub use group_commit::MAX_GROUP;
pub use hot::{HotPlan, Probe};
pub use watch::WATCH_PAGE;

/// Largest page any list query returns: the APIs' largest page (500) plus the one row that
/// tells them whether another page follows.
pub const MAX_PAGE: u32 = 501;

pub struct SqlStore<B: Backend> {
    backend: Arc<B>,
    /// Set when commits go through a group-commit writer task instead of each caller opening
    /// its own transaction.
    group: Option<GroupCommit>,
}

impl<B: Backend> SqlStore<B> {
    /// Every `commit` runs its own transaction. Right for PostgreSQL, whose server batches
    /// the WAL flushes of concurrent transactions itself.
    pub fn new(backend: B) -> Self {
        Self {
            backend: Arc::new(backend),
            group: None,
        }
    }

    /// Concurrent `commit`s are queued to one writer task, which applies whatever is queued
    /// (up to `max_group` changesets) in one transaction, each changeset in its own savepoint,
    /// and commits once: one fsync for the whole group. A changeset that fails rolls back to
    /// its savepoint and gets its own error; the others still commit. Every caller is answered
    /// only after the transaction holding its changeset is durable (or has failed).
    ///
    /// Right for SQLite, which has one writer and pays one fsync per transaction. Must be
    /// called inside a tokio runtime; the writer task ends when the store is dropped.
    pub fn with_group_commit(backend: B, max_group: usize) -> Self {
        let backend = Arc::new(backend);
        let group = GroupCommit::start(backend.clone(), max_group);
        Self {
            backend,
            group: Some(group),
        }
    }
}

fn rows<R, T>(rows: Vec<R>, f: impl Fn(&R) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

fn first<R, T>(
    rows: Vec<R>,
    f: impl Fn(&R) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    rows.first().map(f).transpose()
}

/// The `n` of a `SELECT COUNT(*) AS n` (0 without a row).
fn count_of<R: RowExt>(rows: Vec<R>) -> Result<u64, StoreError> {
    match rows.first() {
        Some(r) => Ok(u64::try_from(r.int("n")?).unwrap_or(0)),
        None => Ok(0),
    }
}

fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrate().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    async fn commit(&self, changes: Changeset) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        match &self.group {
            Some(queue) => queue.commit(changes).await,
            None => commit::commit_alone(&*self.backend, &changes).await,
        }
    }

    async fn get_merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, StoreError> {
        merchants::get(&*self.backend, id).await
    }

    async fn list_merchants(&self) -> Result<Vec<Merchant>, StoreError> {
        merchants::list(&*self.backend).await
    }

    async fn insert_credential(&self, record: CredentialRecord) -> Result<(), StoreError> {
        merchants::insert_credential(&*self.backend, record).await
    }

    async fn get_credential(&self, id: &KeyId) -> Result<Option<CredentialRecord>, StoreError> {
        merchants::get_credential(&*self.backend, id).await
    }

    async fn list_credentials(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<ApiCredential>, StoreError> {
        merchants::list_credentials(&*self.backend, merchant).await
    }

    async fn set_merchant_policy(
        &self,
        id: &MerchantId,
        policy: &coffer_core::SettlementPolicy,
    ) -> Result<bool, StoreError> {
        merchants::set_policy(&*self.backend, id, policy).await
    }

    async fn revoke_credential(
        &self,
        merchant: &MerchantId,
        id: &KeyId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        merchants::revoke_credential(&*self.backend, merchant, id, at).await
    }

    async fn set_wallet(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
        descriptor: &str,
        at: OffsetDateTime,
    ) -> Result<WalletRecord, StoreError> {
        wallets::set(&*self.backend, merchant, chain, descriptor, at).await
    }

    async fn get_wallet(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<Option<WalletRecord>, StoreError> {
        wallets::get(&*self.backend, merchant, chain).await
    }

    async fn list_wallets(&self, merchant: &MerchantId) -> Result<Vec<WalletRecord>, StoreError> {
        wallets::list(&*self.backend, merchant).await
    }

    async fn take_address_index(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<(u32, String), StoreError> {
        wallets::take_index(&*self.backend, merchant, chain).await
    }

    async fn get_order(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<Order>, StoreError> {
        orders::get(&*self.backend, merchant, id).await
    }

    async fn get_order_by_no(
        &self,
        merchant: &MerchantId,
        order_no: &str,
    ) -> Result<Option<Order>, StoreError> {
        orders::get_by_no(&*self.backend, merchant, order_no).await
    }

    async fn find_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        orders::find(&*self.backend, id).await
    }

    async fn find_order_by_token(&self, token: &str) -> Result<Option<Order>, StoreError> {
        orders::find_by_token(&*self.backend, token).await
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>, StoreError> {
        orders::list(&*self.backend, query).await
    }

    async fn orders_due_for_expiry(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        orders::due_for_expiry(&*self.backend, now, limit).await
    }

    async fn orders_changed_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(OrderId, OffsetDateTime)>, StoreError> {
        orders::changed_since(&*self.backend, since, limit).await
    }

    async fn timeline(&self, order: &OrderId) -> Result<Vec<TimelineEntry>, StoreError> {
        orders::timeline(&*self.backend, order).await
    }

    async fn payments_for_order(&self, order: &OrderId) -> Result<Vec<Payment>, StoreError> {
        payments::for_order(&*self.backend, order).await
    }

    async fn get_idempotency(
        &self,
        merchant: &MerchantId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        idempotency::get(&*self.backend, merchant, key).await
    }

    async fn chain_cursor(&self, chain: &ChainId) -> Result<Option<ChainCursor>, StoreError> {
        watch::cursor(&*self.backend, chain).await
    }

    async fn watched_addresses(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, StoreError> {
        watch::watched(&*self.backend, chain, now).await
    }

    async fn watched_addresses_since(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, StoreError> {
        watch::watched_since(&*self.backend, chain, now, since).await
    }

    async fn purge_idempotency(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        idempotency::purge(&*self.backend, before).await
    }

    async fn orders_for_address(
        &self,
        chain: &ChainId,
        address: &str,
    ) -> Result<Vec<Order>, StoreError> {
        orders::for_address(&*self.backend, chain, address).await
    }

    async fn open_payments(
        &self,
        chain: &ChainId,
        from_height: u64,
    ) -> Result<Vec<Payment>, StoreError> {
        payments::open(&*self.backend, chain, from_height).await
    }

    async fn address_usage(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<Vec<(u32, bool)>, StoreError> {
        wallets::address_usage(&*self.backend, merchant, chain).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        events::list(&*self.backend, query).await
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        events::pending_outbox(&*self.backend, limit).await
    }

    async fn insert_webhook(&self, endpoint: &WebhookEndpointRecord) -> Result<(), StoreError> {
        webhooks::insert_endpoint(&*self.backend, endpoint).await
    }

    async fn get_webhook(
        &self,
        merchant: Option<&MerchantId>,
        id: &WebhookId,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        webhooks::get_endpoint(&*self.backend, merchant, id).await
    }

    async fn list_webhooks(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<WebhookEndpointRecord>, StoreError> {
        webhooks::list_endpoints(&*self.backend, merchant).await
    }

    async fn update_webhook(&self, endpoint: &WebhookEndpointRecord) -> Result<bool, StoreError> {
        webhooks::update_endpoint(&*self.backend, endpoint).await
    }

    async fn delete_webhook(
        &self,
        merchant: &MerchantId,
        id: &WebhookId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        webhooks::delete_endpoint(&*self.backend, merchant, id, at).await
    }

    async fn set_webhook_failing(
        &self,
        id: &WebhookId,
        failing_since: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        webhooks::set_endpoint_failing(&*self.backend, id, failing_since).await
    }

    async fn dispatch_outbox(
        &self,
        batch: &[(EventId, Vec<NewDelivery>)],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        webhooks::dispatch_outbox(&*self.backend, batch, at).await
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        webhooks::claim_deliveries(&*self.backend, now, lease_until, limit).await
    }

    async fn release_deliveries(
        &self,
        ids: &[DeliveryId],
        due_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        webhooks::release_deliveries(&*self.backend, ids, due_at).await
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<usize, StoreError> {
        webhooks::record_attempts(&*self.backend, attempts).await
    }

    async fn get_delivery(
        &self,
        merchant: &MerchantId,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        webhooks::get_delivery(&*self.backend, merchant, id).await
    }

    async fn list_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        webhooks::list_deliveries(&*self.backend, query).await
    }

    async fn last_callback(
        &self,
        merchant: &MerchantId,
        dialect: &str,
        subject: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        webhooks::last_callback(&*self.backend, merchant, dialect, subject).await
    }

    async fn redeliver(
        &self,
        merchant: &MerchantId,
        id: &DeliveryId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        webhooks::redeliver(&*self.backend, merchant, id, at).await
    }

    async fn insert_dialect_credential(
        &self,
        record: &crate::DialectCredentialRecord,
    ) -> Result<(), StoreError> {
        dialect::insert_credential(&*self.backend, record).await
    }

    async fn find_dialect_credential(
        &self,
        dialect_name: &str,
        by: crate::DialectIdentifier,
        hash: &str,
    ) -> Result<Option<crate::DialectCredentialRecord>, StoreError> {
        dialect::find_credential(&*self.backend, dialect_name, by, hash).await
    }

    async fn list_dialect_credentials(
        &self,
        merchant: &MerchantId,
        dialect_name: Option<&str>,
    ) -> Result<Vec<crate::DialectCredentialRecord>, StoreError> {
        dialect::list_credentials(&*self.backend, merchant, dialect_name).await
    }

    async fn revoke_dialect_credential(
        &self,
        merchant: &MerchantId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        dialect::revoke_credential(&*self.backend, merchant, id, at).await
    }

    async fn set_merchant_login(
        &self,
        record: &crate::MerchantLoginRecord,
    ) -> Result<(), StoreError> {
        dialect::set_login(&*self.backend, record).await
    }

    async fn find_merchant_login(
        &self,
        username: &str,
    ) -> Result<Option<crate::MerchantLoginRecord>, StoreError> {
        dialect::find_login(&*self.backend, username).await
    }

    async fn get_payout(
        &self,
        merchant: &MerchantId,
        id: &coffer_core::PayoutId,
    ) -> Result<Option<coffer_core::PayoutRequest>, StoreError> {
        payouts::get(&*self.backend, merchant, id).await
    }

    async fn get_payout_by_seq(
        &self,
        merchant: &MerchantId,
        seq: i64,
    ) -> Result<Option<coffer_core::PayoutRequest>, StoreError> {
        payouts::get_by_seq(&*self.backend, merchant, seq).await
    }

    async fn get_payout_by_reference(
        &self,
        merchant: &MerchantId,
        kind: coffer_core::PayoutKind,
        dialect: &str,
        reference: &str,
    ) -> Result<Option<coffer_core::PayoutRequest>, StoreError> {
        payouts::get_by_reference(&*self.backend, merchant, kind, dialect, reference).await
    }

    async fn list_payouts(
        &self,
        query: &crate::PayoutQuery,
    ) -> Result<Vec<coffer_core::PayoutRequest>, StoreError> {
        payouts::list(&*self.backend, query).await
    }

    async fn count_payouts(&self, query: &crate::PayoutQuery) -> Result<u64, StoreError> {
        payouts::count(&*self.backend, query).await
    }

    async fn seen_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        idempotency::seen_nonce(&*self.backend, scope, nonce, expires_at, now).await
    }

    async fn count_orders(&self, merchant: &MerchantId) -> Result<u64, StoreError> {
        orders::count(&*self.backend, merchant).await
    }

    async fn orders_matching(
        &self,
        filter: &OrderFilter,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        orders::matching(&*self.backend, filter, offset, limit).await
    }

    async fn count_orders_matching(&self, filter: &OrderFilter) -> Result<u64, StoreError> {
        orders::count_matching(&*self.backend, filter).await
    }

    async fn merchant_payments(
        &self,
        merchant: &MerchantId,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        payments::of_merchant(&*self.backend, merchant, offset, limit).await
    }

    async fn count_merchant_payments(&self, merchant: &MerchantId) -> Result<u64, StoreError> {
        payments::count_of_merchant(&*self.backend, merchant).await
    }

    async fn get_branding(
        &self,
        merchant: &MerchantId,
    ) -> Result<Option<crate::BrandingRecord>, StoreError> {
        crate::branding::get(&*self.backend, merchant).await
    }

    async fn set_branding(&self, branding: &crate::BrandingRecord) -> Result<(), StoreError> {
        crate::branding::set(&*self.backend, branding).await
    }

    async fn list_deposit_accounts(
        &self,
        query: &crate::DepositAccountQuery,
    ) -> Result<Vec<crate::DepositAccountRecord>, StoreError> {
        deposits::list(&*self.backend, query).await
    }

    async fn count_deposit_accounts(
        &self,
        query: &crate::DepositAccountQuery,
    ) -> Result<u64, StoreError> {
        deposits::count(&*self.backend, query).await
    }

    async fn deposit_address_owner(
        &self,
        chain: &ChainId,
        address: &str,
    ) -> Result<Option<crate::DepositAddressOwner>, StoreError> {
        deposits::address_owner(&*self.backend, chain, address).await
    }

    async fn deposit_for_transfer(
        &self,
        chain: &ChainId,
        txid: &str,
        output_index: u32,
        asset: &coffer_core::AssetId,
    ) -> Result<Option<coffer_core::Deposit>, StoreError> {
        deposits::find_transfer(&*self.backend, chain, txid, output_index, asset).await
    }

    async fn open_deposits(
        &self,
        chain: &ChainId,
        from_height: u64,
    ) -> Result<Vec<coffer_core::Deposit>, StoreError> {
        deposits::open_deposits(&*self.backend, chain, from_height).await
    }

    async fn get_deposit(
        &self,
        merchant: Option<&MerchantId>,
        id: Option<&coffer_core::DepositId>,
        seq: Option<i64>,
    ) -> Result<Option<coffer_core::Deposit>, StoreError> {
        deposits::get_deposit(&*self.backend, merchant, id, seq).await
    }

    async fn list_deposits(
        &self,
        query: &crate::DepositQuery,
    ) -> Result<Vec<coffer_core::Deposit>, StoreError> {
        deposits::list_deposits(&*self.backend, query).await
    }

    async fn count_deposits(&self, query: &crate::DepositQuery) -> Result<u64, StoreError> {
        deposits::count_deposits(&*self.backend, query).await
    }

    async fn dialect_settings(
        &self,
        merchant: &MerchantId,
        dialect: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        dialect::settings(&*self.backend, merchant, dialect).await
    }

    async fn set_dialect_settings(
        &self,
        merchant: &MerchantId,
        dialect: &str,
        settings: &[(&str, Option<&str>)],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        dialect::set_settings(&*self.backend, merchant, dialect, settings, at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_ascend_in_order_of_first_use() {
        // SQLite numbers `$n` parameters by first appearance; keeping them ascending makes the
        // same SQL bind identically on both databases.
        for sql in [
            orders::SELECT_ORDERS_PAGE,
            orders::INSERT_ORDER,
            orders::UPDATE_ORDER,
            payments::UPSERT_PAYMENT,
            wallets::MARK_WALLET_INDEX,
            orders::INSERT_TRANSITION,
            events::SELECT_EVENTS,
        ] {
            let mut seen = Vec::new();
            let bytes = sql.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'$' {
                    let digits: String = sql[i + 1..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let n: usize = digits.parse().unwrap();
                    if !seen.contains(&n) {
                        assert_eq!(n, seen.len() + 1, "{sql}");
                        seen.push(n);
                    }
                    i += digits.len();
                }
                i += 1;
            }
        }
    }

    /// The `$n` placeholders of `sql`, in order of appearance.
    pub(super) fn placeholders(sql: &str) -> Vec<usize> {
        sql.split('$')
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap()
            })
            .collect()
    }
}
