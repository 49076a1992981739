//! Page-numbered lists (`page`, `size`, `total`) for the dialects whose APIs use them.

use coffer_core::{MerchantId, Order, Payment};
use coffer_store::{OrderCursor, OrderQuery};

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
    /// Page `page` (1-based) of `size` of a merchant's orders, newest first. Walks the keyset
    /// cursor up to the page, so deep pages cost more; fine for dashboards and plugins.
    pub async fn orders_page(
        &self,
        merchant: &MerchantId,
        page: u32,
        size: u32,
    ) -> Result<Page<Order>, EngineError> {
        let size = size.clamp(1, MAX_PAGE_SIZE);
        let total = self.store.count_orders(merchant).await?;
        let mut skip = u64::from(page.max(1) - 1) * u64::from(size);
        let mut after: Option<OrderCursor> = None;
        loop {
            let want = if skip > 0 {
                u32::try_from(skip.min(u64::from(MAX_PAGE_SIZE))).unwrap_or(MAX_PAGE_SIZE)
            } else {
                size
            };
            let batch = self
                .store
                .list_orders(&OrderQuery {
                    merchant_id: Some(merchant.clone()),
                    after: after.clone(),
                    limit: want,
                    ..OrderQuery::default()
                })
                .await?;
            if skip == 0 {
                return Ok(Page {
                    items: batch,
                    total,
                });
            }
            let Some(last) = batch.last() else {
                return Ok(Page {
                    items: Vec::new(),
                    total,
                });
            };
            after = Some(OrderCursor {
                created_at: last.created_at,
                id: last.id.clone(),
            });
            skip = skip.saturating_sub(batch.len() as u64);
            if batch.len() < want as usize {
                return Ok(Page {
                    items: Vec::new(),
                    total,
                });
            }
        }
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
