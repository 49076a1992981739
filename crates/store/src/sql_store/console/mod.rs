//! [`ConsoleStore`] for [`SqlStore`]: accounts (users, sessions, invitations, audit log,
//! suspensions) in [`accounts`], the pages' lists and searches in [`reads`].

mod accounts;
mod reads;

use async_trait::async_trait;
use coffer_core::{Deposit, MerchantId, Order, OrderId, PayoutRequest, PayoutStatus, WebhookId};
use time::OffsetDateTime;

use super::SqlStore;
use crate::backend::Backend;
use crate::{
    AuditRecord, ConsoleInviteRecord, ConsoleOrderQuery, ConsoleSessionRecord, ConsoleStore,
    ConsoleUserRecord, DeliveryRecord, DepositAccountRecord, ListCursor, OrderStatsRow, StoreError,
    StoredEvent, WebhookBacklog,
};

#[async_trait]
impl<B: Backend> ConsoleStore for SqlStore<B> {
    async fn insert_console_user(&self, user: &ConsoleUserRecord) -> Result<(), StoreError> {
        accounts::insert_user(&*self.backend, user).await
    }

    async fn get_console_user(&self, id: &str) -> Result<Option<ConsoleUserRecord>, StoreError> {
        accounts::get_user(&*self.backend, id).await
    }

    async fn find_console_user(
        &self,
        username: &str,
    ) -> Result<Option<ConsoleUserRecord>, StoreError> {
        accounts::find_user(&*self.backend, username).await
    }

    async fn list_console_users(
        &self,
        merchant: Option<&MerchantId>,
    ) -> Result<Vec<ConsoleUserRecord>, StoreError> {
        accounts::list_users(&*self.backend, merchant).await
    }

    async fn update_console_user(&self, user: &ConsoleUserRecord) -> Result<bool, StoreError> {
        accounts::update_user(&*self.backend, user).await
    }

    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        accounts::use_totp_step(&*self.backend, user_id, step).await
    }

    async fn count_operators(&self) -> Result<u64, StoreError> {
        accounts::count_operators(&*self.backend).await
    }

    async fn insert_console_session(
        &self,
        session: &ConsoleSessionRecord,
    ) -> Result<(), StoreError> {
        accounts::insert_session(&*self.backend, session).await
    }

    async fn console_session(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(ConsoleSessionRecord, ConsoleUserRecord)>, StoreError> {
        accounts::session(&*self.backend, token_hash, now).await
    }

    async fn touch_console_session(
        &self,
        token_hash: &str,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        accounts::touch_session(&*self.backend, token_hash, last_seen_at, expires_at).await
    }

    async fn delete_console_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        accounts::delete_session(&*self.backend, token_hash).await
    }

    async fn delete_console_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<u64, StoreError> {
        accounts::delete_sessions(&*self.backend, user_id, except).await
    }

    async fn list_console_sessions(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<ConsoleSessionRecord>, StoreError> {
        accounts::list_sessions(&*self.backend, user_id, now).await
    }

    async fn purge_console_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        accounts::purge_sessions(&*self.backend, now).await
    }

    async fn insert_console_invite(&self, invite: &ConsoleInviteRecord) -> Result<(), StoreError> {
        accounts::insert_invite(&*self.backend, invite).await
    }

    async fn console_invite(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ConsoleInviteRecord>, StoreError> {
        accounts::invite(&*self.backend, token_hash, now).await
    }

    async fn accept_console_invite(
        &self,
        token_hash: &str,
        user: &ConsoleUserRecord,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        accounts::accept_invite(&*self.backend, token_hash, user, now).await
    }

    async fn list_console_invites(
        &self,
        merchant: Option<&MerchantId>,
        now: OffsetDateTime,
    ) -> Result<Vec<ConsoleInviteRecord>, StoreError> {
        accounts::list_invites(&*self.backend, merchant, now).await
    }

    async fn delete_console_invite(
        &self,
        merchant: Option<&MerchantId>,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        accounts::delete_invite(&*self.backend, merchant, token_hash).await
    }

    async fn delete_setup_invites(&self) -> Result<u64, StoreError> {
        accounts::delete_setup_invites(&*self.backend).await
    }

    async fn insert_audit(&self, entry: &AuditRecord) -> Result<(), StoreError> {
        accounts::insert_audit(&*self.backend, entry).await
    }

    async fn list_audit(
        &self,
        merchant: Option<&MerchantId>,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        accounts::list_audit(&*self.backend, merchant, before_seq, limit).await
    }

    async fn set_merchant_suspended(
        &self,
        merchant: &MerchantId,
        at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        accounts::set_suspended(&*self.backend, merchant, at).await
    }

    async fn merchant_suspended(
        &self,
        merchant: &MerchantId,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        accounts::suspended(&*self.backend, merchant).await
    }

    async fn suspended_merchants(&self) -> Result<Vec<(MerchantId, OffsetDateTime)>, StoreError> {
        accounts::suspended_list(&*self.backend).await
    }

    async fn merchants_without_wallet(&self) -> Result<Vec<MerchantId>, StoreError> {
        accounts::without_wallet(&*self.backend).await
    }

    async fn console_orders(&self, query: &ConsoleOrderQuery) -> Result<Vec<Order>, StoreError> {
        reads::orders(&*self.backend, query).await
    }

    async fn orders_by_address(
        &self,
        merchant: &MerchantId,
        address: &str,
    ) -> Result<Vec<Order>, StoreError> {
        reads::fetch_orders(&*self.backend, reads::by_address_query(merchant, address)).await
    }

    async fn orders_by_txid(
        &self,
        merchant: &MerchantId,
        txid: &str,
    ) -> Result<Vec<Order>, StoreError> {
        reads::fetch_orders(&*self.backend, reads::by_txid_query(merchant, txid)).await
    }

    async fn order_stats(
        &self,
        merchant: &MerchantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<OrderStatsRow>, StoreError> {
        reads::stats(&*self.backend, merchant, from, to).await
    }

    async fn order_events(
        &self,
        merchant: &MerchantId,
        order: &OrderId,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        reads::events(&*self.backend, merchant, order).await
    }

    async fn order_deliveries(
        &self,
        merchant: &MerchantId,
        order: &OrderId,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        reads::deliveries(
            &*self.backend,
            reads::order_deliveries_query(merchant, order),
        )
        .await
    }

    async fn endpoint_deliveries(
        &self,
        merchant: &MerchantId,
        endpoint: &WebhookId,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let q = reads::endpoint_deliveries_query(merchant, endpoint, after, limit);
        reads::deliveries(&*self.backend, q).await
    }

    async fn console_payouts(
        &self,
        merchant: &MerchantId,
        status: Option<PayoutStatus>,
        order: Option<&OrderId>,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<PayoutRequest>, StoreError> {
        let q = reads::payouts_query(merchant, status, order, after, limit);
        reads::payouts(&*self.backend, q).await
    }

    async fn console_deposit_accounts(
        &self,
        merchant: &MerchantId,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DepositAccountRecord>, StoreError> {
        let q = reads::deposit_accounts_query(merchant, before_seq, limit);
        reads::deposit_accounts(&*self.backend, q).await
    }

    async fn console_deposits(
        &self,
        merchant: &MerchantId,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Deposit>, StoreError> {
        reads::deposits(
            &*self.backend,
            reads::deposits_query(merchant, before_seq, limit),
        )
        .await
    }

    async fn webhook_backlog(&self) -> Result<WebhookBacklog, StoreError> {
        reads::backlog(&*self.backend).await
    }

    async fn console_query_plans(
        &self,
        merchant: &MerchantId,
        at: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, StoreError> {
        reads::plans(&*self.backend, merchant, at).await
    }
}
