//! Reads the adapters need (checkout, dialects, API, CLI): the store stays behind the engine.
//! Every merchant-facing read names the merchant; the `find_*` lookups across merchants are
//! for the operator's CLI and for lookups by an unguessable token.

use coffer_core::{ApiCredential, Merchant, MerchantId, Order, OrderId, Payment, TimelineEntry};
use coffer_store::{DeliveryQuery, DeliveryRecord, WalletRecord};

use crate::{Engine, EngineError};

impl Engine {
    /// A merchant (`None` if there is none).
    pub async fn merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, EngineError> {
        Ok(self.store.get_merchant(id).await?)
    }

    /// Every merchant (operator tools).
    pub async fn list_merchants(&self) -> Result<Vec<Merchant>, EngineError> {
        Ok(self.store.list_merchants().await?)
    }

    /// A merchant's API keys (never their secrets).
    pub async fn list_keys(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<ApiCredential>, EngineError> {
        Ok(self.store.list_credentials(merchant).await?)
    }

    /// A merchant's order by the merchant's own order number.
    pub async fn order_by_no(
        &self,
        merchant: &MerchantId,
        order_no: &str,
    ) -> Result<Option<Order>, EngineError> {
        Ok(self.store.get_order_by_no(merchant, order_no).await?)
    }

    /// A merchant's order by Coffer's id (`None` for another merchant's, as for a missing one).
    pub async fn find_merchant_order(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Option<Order>, EngineError> {
        Ok(self.store.get_order(merchant, id).await?)
    }

    /// An order of any merchant (operator tools).
    pub async fn find_order(&self, id: &OrderId) -> Result<Option<Order>, EngineError> {
        Ok(self.store.find_order(id).await?)
    }

    /// The order a checkout token opens.
    pub async fn order_by_checkout_token(&self, token: &str) -> Result<Option<Order>, EngineError> {
        Ok(self.store.find_order_by_token(token).await?)
    }

    /// The payments of an order the caller already holds (it was read scoped to its merchant
    /// or found by its checkout token).
    pub async fn payments_of(&self, order: &Order) -> Result<Vec<Payment>, EngineError> {
        Ok(self.store.payments_for_order(&order.id).await?)
    }

    /// An order's timeline (operator tools).
    pub async fn timeline(&self, id: &OrderId) -> Result<Vec<TimelineEntry>, EngineError> {
        Ok(self.store.timeline(id).await?)
    }

    /// A merchant's wallet on one chain.
    pub async fn wallet(
        &self,
        merchant: &MerchantId,
        chain: &coffer_core::ChainId,
    ) -> Result<Option<WalletRecord>, EngineError> {
        Ok(self.store.get_wallet(merchant, chain).await?)
    }

    /// A merchant's webhook and callback deliveries, newest first (the query is scoped to
    /// `merchant` whatever it says).
    pub async fn list_deliveries(
        &self,
        merchant: &MerchantId,
        mut query: DeliveryQuery,
    ) -> Result<Vec<DeliveryRecord>, EngineError> {
        query.merchant_id = Some(merchant.clone());
        Ok(self.store.list_deliveries(&query).await?)
    }

    /// The newest delivery of `dialect` to a callback URL about `subject` (an order, payout or
    /// deposit id): what a dialect's manual re-send makes due again.
    pub async fn last_callback(
        &self,
        merchant: &MerchantId,
        dialect: &str,
        subject: &str,
    ) -> Result<Option<DeliveryRecord>, EngineError> {
        Ok(self.store.last_callback(merchant, dialect, subject).await?)
    }

    /// Make one of a merchant's deliveries due again now. `false` if it is not the merchant's.
    pub async fn redeliver(
        &self,
        merchant: &MerchantId,
        id: &coffer_core::DeliveryId,
    ) -> Result<bool, EngineError> {
        Ok(self.store.redeliver(merchant, id, self.now()).await?)
    }
}
