//! Page-numbered lists (`page`, `size`, `total`) for the dialects whose APIs use them.

use coffer_core::{MerchantId, Order, Payment};
use coffer_store::OrderFilter;

use crate::{Engine, EngineError};

/// Largest page size a page-numbered list returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// One page of a list, and how many items there are in all.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

impl Engine {
    /// Page `page` (1-based) of `size` of a merchant's orders, newest first.
    pub async fn orders_page(
        &self,
        merchant: &MerchantId,
        page: u32,
        size: u32,
    ) -> Result<Page<Order>, EngineError> {
        self.orders_page_matching(&OrderFilter::merchant(merchant.clone()), page, size)
            .await
    }

    /// Page `page` (1-based) of `size` of the orders matching `filter`, newest first, and
    /// how many match in all: one query each, in the database.
    pub async fn orders_page_matching(
        &self,
        filter: &OrderFilter,
        page: u32,
        size: u32,
    ) -> Result<Page<Order>, EngineError> {
        let size = size.clamp(1, MAX_PAGE_SIZE);
        let offset = u64::from(page.max(1) - 1) * u64::from(size);
        let items = self.store.orders_matching(filter, offset, size).await?;
        let total = self.store.count_orders_matching(filter).await?;
        Ok(Page { items, total })
    }

    /// Page `page` (1-based) of `size` of a merchant's payments over all its orders, newest
    /// first.
    pub async fn payments_page(
        &self,
        merchant: &MerchantId,
        page: u32,
        size: u32,
    ) -> Result<Page<Payment>, EngineError> {
        let size = size.clamp(1, MAX_PAGE_SIZE);
        let offset = u64::from(page.max(1) - 1) * u64::from(size);
        let items = self.store.merchant_payments(merchant, offset, size).await?;
        let total = self.store.count_merchant_payments(merchant).await?;
        Ok(Page { items, total })
    }
}
