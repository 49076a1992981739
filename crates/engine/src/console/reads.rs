//! What the console's pages read and the settings only the console changes: the orders
//! list and search, the dashboard's figures, an order's events and deliveries, wallet
//! previews, the webhook backlog and the first-run checklist's facts.

use std::collections::{BTreeMap, BTreeSet};

use coffer_core::{
    AssetId, BaseUnits, ChainId, Deposit, MerchantId, Order, OrderId, OrderStatus, PayoutRequest,
    PayoutStatus, WebhookId,
};
use coffer_store::{
    ConsoleOrderQuery, DeliveryRecord, DepositAccountRecord, ListCursor, StoredEvent,
    WebhookBacklog,
};
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

use crate::{Engine, EngineError};

/// The longest window the dashboard sums over.
pub const MAX_DASHBOARD_DAYS: i64 = 90;
/// Addresses shown when a wallet is set, to compare with the merchant's wallet app.
pub const PREVIEW_ADDRESSES: u32 = 3;

/// The dashboard's figures over a window of whole days (UTC), ending today.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dashboard {
    /// Days since 1970-01-01, oldest first, every day of the window.
    pub days: Vec<i64>,
    /// Orders created in the window by status.
    pub counts: BTreeMap<&'static str, u64>,
    /// Orders created per day (aligned with `days`).
    pub orders_per_day: Vec<u64>,
    /// Per asset: what settled orders received, per day (aligned with `days`) and in all.
    pub volume: BTreeMap<AssetId, AssetVolume>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetVolume {
    pub per_day: Vec<BaseUnits>,
    pub total: BaseUnits,
    pub settled_orders: u64,
}

/// The first addresses of a wallet, as the merchant's wallet app should show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletPreview {
    pub chain: ChainId,
    /// The wallet as it will be stored (validated, canonical).
    pub descriptor: String,
    /// `(index, address, derivation path)`.
    pub addresses: Vec<(u32, String, Option<String>)>,
}

/// Facts the operator's first-run checklist is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupFacts {
    pub chains: usize,
    pub merchants: usize,
    pub merchants_without_wallet: Vec<MerchantId>,
    /// Prices come only from the configured table (no market source).
    pub fixed_rates_only: bool,
}

fn day_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(86_400)
}

impl Engine {
    /// A page of a merchant's orders, newest first, filtered (the query's merchant is forced
    /// to `merchant`).
    pub async fn console_orders(
        &self,
        merchant: &MerchantId,
        mut query: ConsoleOrderQuery,
    ) -> Result<Vec<Order>, EngineError> {
        query.merchant_id = Some(merchant.clone());
        Ok(self.store.console_orders(&query).await?)
    }

    /// The merchant's orders matching `text`: an order id, the merchant's order number, an
    /// address an order was given, or a transaction that paid one. Each is an indexed lookup;
    /// nothing is a substring scan.
    pub async fn search_orders(
        &self,
        merchant: &MerchantId,
        text: &str,
    ) -> Result<Vec<Order>, EngineError> {
        let text = text.trim();
        if text.is_empty() || text.len() > 256 {
            return Ok(Vec::new());
        }
        let mut found: Vec<Order> = Vec::new();
        if let Ok(id) = text.parse::<OrderId>()
            && let Some(o) = self.store.get_order(merchant, &id).await?
        {
            found.push(o);
        }
        if let Some(o) = self.store.get_order_by_no(merchant, text).await? {
            found.push(o);
        }
        found.extend(self.store.orders_by_address(merchant, text).await?);
        found.extend(self.store.orders_by_txid(merchant, text).await?);
        let mut seen = BTreeSet::new();
        found.retain(|o| seen.insert(o.id.clone()));
        found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(found)
    }

    /// The dashboard over the last `days` days (1 to [`MAX_DASHBOARD_DAYS`], today included):
    /// one indexed range of the merchant's orders by creation time, grouped in the database.
    /// Its cost grows with the orders in the window, never with the merchant's whole history.
    pub async fn console_dashboard(
        &self,
        merchant: &MerchantId,
        days: i64,
    ) -> Result<Dashboard, EngineError> {
        let days = days.clamp(1, MAX_DASHBOARD_DAYS);
        let today = day_of(self.now());
        let first = today - days + 1;
        let from = OffsetDateTime::UNIX_EPOCH + Duration::days(first);
        let to = OffsetDateTime::UNIX_EPOCH + Duration::days(today + 1);
        let rows = self.store.order_stats(merchant, from, to).await?;
        let span: Vec<i64> = (first..=today).collect();
        let slot = |day: i64| {
            usize::try_from(day - first)
                .ok()
                .filter(|i| *i < span.len())
        };
        let mut d = Dashboard {
            orders_per_day: vec![0; span.len()],
            ..Dashboard::default()
        };
        for status in OrderStatus::ALL {
            d.counts.insert(status.as_str(), 0);
        }
        for r in &rows {
            *d.counts.entry(r.status.as_str()).or_default() += r.count;
            if let Some(i) = slot(r.day) {
                d.orders_per_day[i] += r.count;
            }
            let (Some(asset), OrderStatus::Settled) = (&r.asset, r.status) else {
                continue;
            };
            let v = d
                .volume
                .entry(asset.clone())
                .or_insert_with(|| AssetVolume {
                    per_day: vec![BaseUnits::ZERO; span.len()],
                    ..AssetVolume::default()
                });
            v.settled_orders += r.count;
            v.total = v.total.checked_add(r.received).unwrap_or(v.total);
            if let Some(i) = slot(r.day) {
                v.per_day[i] = v.per_day[i].checked_add(r.received).unwrap_or(v.per_day[i]);
            }
        }
        d.days = span;
        Ok(d)
    }

    /// The events of one of the merchant's orders, oldest first.
    pub async fn order_events(
        &self,
        merchant: &MerchantId,
        order: &OrderId,
    ) -> Result<Vec<StoredEvent>, EngineError> {
        Ok(self.store.order_events(merchant, order).await?)
    }

    /// The webhook and callback deliveries of one of the merchant's orders, newest first.
    pub async fn order_deliveries(
        &self,
        merchant: &MerchantId,
        order: &OrderId,
    ) -> Result<Vec<DeliveryRecord>, EngineError> {
        Ok(self.store.order_deliveries(merchant, order).await?)
    }

    /// One of the merchant's deliveries (another merchant's: `None`).
    pub async fn delivery(
        &self,
        merchant: &MerchantId,
        id: &coffer_core::DeliveryId,
    ) -> Result<Option<DeliveryRecord>, EngineError> {
        Ok(self.store.get_delivery(merchant, id).await?)
    }

    /// A page of one of the merchant's endpoints' deliveries, newest first.
    pub async fn endpoint_deliveries(
        &self,
        merchant: &MerchantId,
        endpoint: &WebhookId,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, EngineError> {
        Ok(self
            .store
            .endpoint_deliveries(merchant, endpoint, after, limit)
            .await?)
    }

    /// A page of the merchant's payout requests, newest first.
    pub async fn console_payouts(
        &self,
        merchant: &MerchantId,
        status: Option<PayoutStatus>,
        order: Option<&OrderId>,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<PayoutRequest>, EngineError> {
        Ok(self
            .store
            .console_payouts(merchant, status, order, after, limit)
            .await?)
    }

    /// A page of the merchant's deposit accounts, newest first.
    pub async fn console_deposit_accounts(
        &self,
        merchant: &MerchantId,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DepositAccountRecord>, EngineError> {
        Ok(self
            .store
            .console_deposit_accounts(merchant, before_seq, limit)
            .await?)
    }

    /// A page of the merchant's deposits, newest first.
    pub async fn console_deposits(
        &self,
        merchant: &MerchantId,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Deposit>, EngineError> {
        Ok(self
            .store
            .console_deposits(merchant, before_seq, limit)
            .await?)
    }

    /// Validate a wallet for `chain` and derive its first [`PREVIEW_ADDRESSES`] receiving
    /// addresses, for the merchant to compare with its wallet app before saving it.
    pub fn wallet_preview(
        &self,
        chain: &str,
        descriptor: &str,
    ) -> Result<WalletPreview, EngineError> {
        let chain = ChainId::parse(chain.trim())
            .ok()
            .and_then(|id| self.assets.chain(&id).cloned())
            .ok_or_else(|| {
                EngineError::invalid(
                    "unknown_chain",
                    "chain",
                    format!("chain {:?} is not configured on this server", chain.trim()),
                )
            })?;
        let method = self.methods.get(&chain)?;
        let normalized = method.normalize_wallet(&chain, descriptor.trim())?;
        let mut addresses = Vec::new();
        for index in 0..PREVIEW_ADDRESSES {
            let a = method.standing_address(&chain, &normalized, index)?;
            addresses.push((index, a.address, a.derivation.map(|d| d.path)));
        }
        Ok(WalletPreview {
            chain: chain.id,
            descriptor: normalized,
            addresses,
        })
    }

    /// Whether wallets on `chain` have a gap limit to watch (Bitcoin).
    pub fn chain_has_gap_limit(&self, chain: &ChainId) -> bool {
        self.assets
            .chain(chain)
            .and_then(|c| self.methods.get(c).ok())
            .is_some_and(|m| m.has_gap_limit())
    }

    /// Set the merchant's underpayment tolerance for new orders: a shortfall up to this
    /// percentage of the amount due still settles (0 to 50, two decimals at most).
    pub async fn set_underpayment_tolerance(
        &self,
        merchant: &MerchantId,
        percent: Decimal,
    ) -> Result<coffer_core::Merchant, EngineError> {
        let percent = percent.normalize();
        if percent.is_sign_negative() || percent > Decimal::from(50) || percent.scale() > 2 {
            return Err(EngineError::invalid(
                "invalid_tolerance",
                "underpayment_tolerance_percent",
                "the underpayment tolerance must be 0 to 50 percent, with at most two decimals",
            ));
        }
        let mut m = self
            .store
            .get_merchant(merchant)
            .await?
            .ok_or(EngineError::NotFound("merchant"))?;
        m.policy.underpayment_tolerance_percent = percent;
        if !self.store.set_merchant_policy(&m.id, &m.policy).await? {
            return Err(EngineError::NotFound("merchant"));
        }
        self.hot.merchants.forget(&m.id);
        Ok(m)
    }

    /// The webhook queues at a glance.
    pub async fn webhook_backlog(&self) -> Result<WebhookBacklog, EngineError> {
        Ok(self.store.webhook_backlog().await?)
    }

    /// What the first-run checklist needs to know.
    pub async fn setup_facts(&self) -> Result<SetupFacts, EngineError> {
        Ok(SetupFacts {
            chains: self.assets.chains().count(),
            merchants: self.store.list_merchants().await?.len(),
            merchants_without_wallet: self.store.merchants_without_wallet().await?,
            fixed_rates_only: self.rates.health(self.now()).is_none(),
        })
    }
}
