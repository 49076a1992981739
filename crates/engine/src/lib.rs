//! Coffer's engine: the application services every API (native and dialects) calls.
//!
//! The engine validates input, asks the pure core what should happen, and commits the result
//! — state change, timeline entry, events — as one [`Changeset`]. It owns no business rule of
//! its own that the core could own, and it never talks HTTP.

pub mod branding;
mod clock;
pub mod console;
mod deposit_watch;
pub mod deposits;
pub mod dialect_keys;
mod error;
mod hot;
pub mod idempotency;
pub mod keys;
pub mod live;
pub mod logins;
pub mod method;
pub mod pages;
mod payable;
pub mod payments;
pub mod payouts;
mod rates;
mod reads;
mod registry;
pub mod repair;
pub mod validate;
pub mod view;
mod watch;

use std::sync::Arc;

use coffer_core::order::{DEFAULT_EXPIRES_IN, DEFAULT_MONITOR_FOR, OrderLinks};
use coffer_core::{
    ApiCredential, Asset, AssetId, Cause, Chain, ChainId, CheckoutToken, Event, EventId, EventType,
    KeyId, LockedRate, Merchant, MerchantId, Order, OrderId, OrderState, PaymentTarget, Price,
    RateSource, Scope, SettlementPolicy, TimelineEntry, money,
};
use coffer_store::Unique;
use coffer_store::{
    Changeset, CredentialRecord, OrderQuery, OrderUpdate, Store, StoreError, WalletMark,
    WalletRecord,
};
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

pub use clock::{Clock, ManualClock, SystemClock, random16, random32, truncate_to_ms};
pub use dialect_keys::{
    CredentialShape, DialectCredential, DialectCredentialInfo, NewDialectCredential, SettingKind,
    SettingSpec,
};
pub use error::EngineError;
pub use hot::HOT_TTL;
pub use keys::IssuedKey;
pub use method::{Methods, PaymentMethod, PreparedTarget, TargetRequest};
pub use payments::{Applied, BlockRef, ChainBatch, ObservedTransfer};
pub use payouts::{RefundInput, WithdrawalInput, payout_json};
pub use registry::AssetRegistry;
pub use repair::RepairInput;

/// An asset's price for an order, and the amount due at it.
struct Priced<'a> {
    chain: &'a Chain,
    asset: &'a Asset,
    amount_due: money::BaseUnits,
    price: Price,
    source: String,
    at: OffsetDateTime,
}

/// How often order creation retries after another instance took the same address index.
const ADDRESS_RETRIES: usize = 3;

/// After the retries, a wallet whose next address is still taken: not a server fault but a
/// wallet shared with another merchant (or set again after use), which the operator must fix.
fn address_unavailable(e: StoreError) -> EngineError {
    match e {
        StoreError::Duplicate(Unique::Address) => EngineError::Conflict {
            code: "address_in_use",
            message: "the wallet's next address is already used by another order or deposit \
                      account: is the same xpub set for two merchants?"
                .into(),
        },
        other => other.into(),
    }
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Base URL for links handed to buyers (checkout pages).
    pub public_url: String,
    pub default_expires_in: Duration,
    /// How long after `expires_at` payments are still watched for.
    pub monitor_for: Duration,
    pub max_metadata_bytes: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            default_expires_in: DEFAULT_EXPIRES_IN,
            monitor_for: DEFAULT_MONITOR_FOR,
            max_metadata_bytes: 4096,
        }
    }
}

/// Input for a new order, already decoded from whichever API received it.
#[derive(Debug, Clone, Default)]
pub struct NewOrder {
    pub amount: Decimal,
    pub currency: String,
    pub asset: Option<AssetId>,
    pub order_no: Option<String>,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub links: OrderLinks,
    pub expires_in: Option<Duration>,
    pub fixed_stablecoin_rate: bool,
    /// The API that created it: `native` or a dialect's name.
    pub dialect: String,
    /// Stored on the order as `Order::dialect_data` (a dialect's own fields).
    pub dialect_data: serde_json::Map<String, serde_json::Value>,
    /// The dialect credential the request authenticated with (`Order::credential_id`).
    pub credential_id: Option<String>,
}

/// Result of creating an order: a replay of the same `order_no` returns the existing order.
#[derive(Debug, Clone)]
pub struct Created {
    pub order: Order,
    pub created: bool,
}

/// The application services. Adapters (APIs, checkout, dialects, watchers) reach storage only
/// through its methods; the store itself stays private.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    rates: Arc<dyn RateSource>,
    assets: Arc<AssetRegistry>,
    methods: Methods,
    clock: Arc<dyn Clock>,
    settings: Arc<EngineSettings>,
    live: Arc<live::LiveOrders>,
    /// What every order reads, remembered (see `hot.rs` for how it stays coherent).
    hot: Arc<hot::Hot>,
}

/// What an [`Engine`] is built from.
pub struct EngineParts {
    pub store: Arc<dyn Store>,
    pub rates: Arc<dyn RateSource>,
    pub assets: Arc<AssetRegistry>,
    pub methods: Methods,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<EngineSettings>,
}

impl Engine {
    pub fn new(parts: EngineParts) -> Self {
        let EngineParts {
            store,
            rates,
            assets,
            methods,
            clock,
            settings,
        } = parts;
        Self {
            store,
            rates,
            assets,
            methods,
            clock,
            settings,
            live: Arc::default(),
            hot: Arc::default(),
        }
    }

    /// Follow an order's committed changes (the checkout's live-update streams).
    pub fn follow(&self, order: &OrderId) -> live::OrderSignal {
        self.live.follow(order)
    }

    /// Orders followed now.
    pub fn followed_orders(&self) -> usize {
        self.live.followed()
    }

    /// Commit `changes` in one transaction, then wake the followers of the orders it touched.
    /// Every write of the engine goes through here.
    async fn commit(&self, changes: Changeset) -> Result<(), StoreError> {
        let touched = live::Touched::of(&changes);
        self.store.commit(changes).await?;
        self.live.committed(&touched);
        Ok(())
    }

    /// The same engine pricing with `rates` (the server swaps in the market providers once
    /// their refresher is set up).
    pub fn with_rates(mut self, rates: Arc<dyn RateSource>) -> Self {
        self.rates = rates;
        self
    }

    /// The chains and assets this server is configured for.
    pub fn assets(&self) -> &Arc<AssetRegistry> {
        &self.assets
    }

    pub fn settings(&self) -> &Arc<EngineSettings> {
        &self.settings
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The payment methods by chain kind (payment URIs, confirmation rules).
    pub fn methods(&self) -> &Methods {
        &self.methods
    }

    /// The URI a wallet opens to pay `target` (EIP-681, BIP21, …), if its method has one.
    pub fn payment_uri(&self, target: &PaymentTarget) -> Option<String> {
        let asset = self.assets.asset(&target.asset)?;
        let chain = self.assets.chain(asset.chain())?;
        self.methods.payment_uri(chain, asset, target)
    }

    /// The rate source orders are priced from (its health for readiness).
    pub fn rates(&self) -> &Arc<dyn RateSource> {
        &self.rates
    }

    /// `sqlite` or `postgres`.
    pub fn database_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), EngineError> {
        Ok(self.store.ping().await?)
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    // ---- merchants and keys ------------------------------------------------------------

    /// Set (`Some`) or clear (`None`) the confirmations a merchant's new orders need on one
    /// chain. Bitcoin chains accept 0, 1, 2 or 6 (0 = zero-conf, which still waits for one
    /// confirmation when the transaction signals RBF); other chains 1 to 1000. Orders already
    /// created keep the policy they were created with.
    pub async fn set_chain_confirmations(
        &self,
        merchant: &MerchantId,
        chain: &str,
        confirmations: Option<u32>,
    ) -> Result<Merchant, EngineError> {
        let chain_id = ChainId::parse(chain)
            .ok()
            .and_then(|id| self.assets.chain(&id).cloned())
            .ok_or_else(|| {
                EngineError::invalid(
                    "unknown_chain",
                    "chain",
                    format!("chain {chain:?} is not configured"),
                )
            })?;
        if let Some(n) = confirmations {
            self.methods
                .get(&chain_id)?
                .check_confirmations(&chain_id, n)
                .map_err(|message| {
                    EngineError::invalid("invalid_confirmations", "confirmations", message)
                })?;
        }
        let mut m = self
            .store
            .get_merchant(merchant)
            .await?
            .ok_or(EngineError::NotFound("merchant"))?;
        match confirmations {
            Some(n) => m
                .policy
                .chain_confirmations
                .insert(chain_id.id.to_string(), n),
            None => m.policy.chain_confirmations.remove(chain_id.id.as_str()),
        };
        if !self.store.set_merchant_policy(&m.id, &m.policy).await? {
            return Err(EngineError::NotFound("merchant"));
        }
        self.hot.merchants.forget(&m.id);
        Ok(m)
    }

    /// Create a merchant and its first key (scope `admin`).
    pub async fn create_merchant(&self, name: &str) -> Result<(Merchant, IssuedKey), EngineError> {
        let name = validate::merchant_name(name)?;
        let merchant = Merchant {
            id: MerchantId::from_random(random16()),
            name,
            policy: SettlementPolicy::default(),
            created_at: self.now(),
        };
        self.commit(Changeset {
            new_merchants: vec![merchant.clone()],
            ..Changeset::default()
        })
        .await?;
        let key = self
            .create_key(&merchant.id, "default", vec![Scope::Admin], None)
            .await?;
        Ok((merchant, key))
    }

    pub async fn create_key(
        &self,
        merchant: &MerchantId,
        label: &str,
        scopes: Vec<Scope>,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<IssuedKey, EngineError> {
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(EngineError::NotFound("merchant"));
        }
        if scopes.is_empty() {
            return Err(EngineError::invalid(
                "invalid_scopes",
                "scopes",
                "at least one scope is required",
            ));
        }
        let now = self.now();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(EngineError::invalid(
                "invalid_expiry",
                "expires_at",
                "the key's expiry must be in the future",
            ));
        }
        let id = KeyId::from_random(random16());
        let (token, secret_hash) = keys::make_token(&id, random32());
        let credential = ApiCredential {
            id,
            merchant_id: merchant.clone(),
            label: validate::label(label)?,
            scopes,
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.store
            .insert_credential(CredentialRecord {
                credential: credential.clone(),
                secret_hash,
            })
            .await?;
        Ok(IssuedKey { credential, token })
    }

    /// Verify a presented API key. Every failure looks the same to the caller.
    pub async fn authenticate(&self, token: &str) -> Result<ApiCredential, EngineError> {
        let (id, secret) = keys::parse_token(token).ok_or(EngineError::Unauthorized)?;
        let record = match self.hot.credentials.get(&id) {
            Some(record) => record,
            None => {
                let epoch = self.hot.credentials.epoch();
                let record = self
                    .store
                    .get_credential(&id)
                    .await?
                    .ok_or(EngineError::Unauthorized)?;
                self.hot.credentials.put(epoch, id, record.clone());
                record
            }
        };
        if !keys::secret_matches(secret, &record.secret_hash)
            || !record.credential.is_active(self.now())
        {
            return Err(EngineError::Unauthorized);
        }
        self.refuse_suspended(&record.credential.merchant_id)
            .await?;
        Ok(record.credential)
    }

    pub async fn revoke_key(&self, merchant: &MerchantId, id: &KeyId) -> Result<(), EngineError> {
        if self
            .store
            .revoke_credential(merchant, id, self.now())
            .await?
        {
            self.hot.credentials.forget(id);
            Ok(())
        } else {
            Err(EngineError::NotFound("key"))
        }
    }

    // ---- orders ------------------------------------------------------------------------

    pub async fn create_order(
        &self,
        merchant_id: &MerchantId,
        input: NewOrder,
    ) -> Result<Created, EngineError> {
        self.create_order_answering(merchant_id, input, None)
            .await
            .map(|(created, _)| created)
    }

    /// Create an order; with `answer`, the request's idempotency key and its response are
    /// stored in the order's own changeset, so the order and its key commit together or not
    /// at all. The flag says whether the key was stored (an existing `order_no` answered
    /// with its order writes nothing, so the caller stores the response itself). A key
    /// another request stored first fails with `Duplicate(IdempotencyKey)` and writes
    /// nothing: replay that request's response.
    pub async fn create_order_answering(
        &self,
        merchant_id: &MerchantId,
        input: NewOrder,
        answer: Option<idempotency::Answer<'_>>,
    ) -> Result<(Created, bool), EngineError> {
        let merchant = self.merchant_for_order(merchant_id).await?;
        let now = self.now();
        let checked = validate::new_order(&input, &self.assets, &self.settings)?;

        if let Some(order_no) = &checked.order_no
            && let Some(existing) = self.store.get_order_by_no(merchant_id, order_no).await?
        {
            return same_order_or_conflict(existing, &input, &checked).map(|c| (c, false));
        }
        // With an asset, pricing it below says what is missing; without one, the buyer
        // chooses on the checkout, which must have something to offer.
        if input.asset.is_none() {
            self.require_payable(merchant_id).await?;
        }

        let expires_in = input.expires_in.unwrap_or(self.settings.default_expires_in);
        let expires_at = now + expires_in;
        let mut order = Order {
            id: OrderId::from_random(random16()),
            merchant_id: merchant.id.clone(),
            order_no: checked.order_no.clone(),
            checkout_token: CheckoutToken::from_random(random32()),
            state: OrderState::NEW,
            amount: checked.amount,
            currency: checked.currency.clone(),
            fixed_stablecoin_rate: input.fixed_stablecoin_rate,
            target: None,
            totals: Default::default(),
            policy: merchant.policy.clone(),
            description: checked.description.clone(),
            metadata: input.metadata.clone(),
            links: input.links.clone(),
            dialect: if input.dialect.is_empty() {
                "native".into()
            } else {
                input.dialect.clone()
            },
            dialect_data: input.dialect_data.clone(),
            credential_id: input.credential_id.clone(),
            expires_at,
            monitor_until: expires_at + self.settings.monitor_for,
            created_at: now,
            updated_at: now,
            version: 1,
            lock_window: expires_in,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut wallet_marks = Vec::new();
            if let Some(asset) = &input.asset {
                let (target, mark) = self.price_and_target(&order, asset, now).await?;
                order.target = Some(target);
                wallet_marks.extend(mark);
            }
            let event = self.event(&order, EventType::OrderCreated, None, now);
            let idempotency_reservations = answer
                .as_ref()
                .map(|a| a.record(merchant_id, &order, now))
                .into_iter()
                .collect();
            let changes = Changeset {
                idempotency_reservations,
                new_orders: vec![order.clone()],
                timeline: vec![(
                    order.id.clone(),
                    TimelineEntry {
                        at: now,
                        from: None,
                        to: order.state,
                        cause: Cause::Created,
                        note: None,
                    },
                )],
                events: vec![event],
                wallet_marks: wallet_marks.clone(),
                ..Changeset::default()
            };
            match self.commit(changes).await {
                Ok(()) => {
                    let created = Created {
                        order,
                        created: true,
                    };
                    return Ok((created, answer.is_some()));
                }
                // Lost a race with an identical request: answer like the replay it is.
                Err(StoreError::Duplicate(Unique::OrderNo)) => {
                    let order_no = checked.order_no.as_deref().unwrap_or_default();
                    let existing = self
                        .store
                        .get_order_by_no(merchant_id, order_no)
                        .await?
                        .ok_or(EngineError::NotFound("order"))?;
                    return same_order_or_conflict(existing, &input, &checked).map(|c| (c, false));
                }
                Err(
                    e @ (StoreError::Duplicate(Unique::Address) | StoreError::Conflict("wallet")),
                ) => {
                    self.forget_marks(&wallet_marks);
                    if attempt >= ADDRESS_RETRIES {
                        return Err(address_unavailable(e));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The merchant whose settlement policy a new order snapshots (remembered).
    async fn merchant_for_order(&self, id: &MerchantId) -> Result<Merchant, EngineError> {
        if let Some(merchant) = self.hot.merchants.get(id) {
            return Ok(merchant);
        }
        let epoch = self.hot.merchants.epoch();
        let merchant = self
            .store
            .get_merchant(id)
            .await?
            .ok_or(EngineError::NotFound("merchant"))?;
        self.hot.merchants.put(epoch, id.clone(), merchant.clone());
        Ok(merchant)
    }

    /// A merchant's wallets (remembered: an order without an asset asks which chains it can
    /// be paid on).
    async fn wallets_of(
        &self,
        merchant: &MerchantId,
    ) -> Result<Arc<Vec<WalletRecord>>, EngineError> {
        if let Some(wallets) = self.hot.wallets.get(merchant) {
            return Ok(wallets);
        }
        let epoch = self.hot.wallets.epoch();
        let wallets = Arc::new(self.store.list_wallets(merchant).await?);
        self.hot
            .wallets
            .put(epoch, merchant.clone(), wallets.clone());
        Ok(wallets)
    }

    fn forget_marks(&self, marks: &[WalletMark]) {
        for mark in marks {
            self.methods.forget(&mark.merchant_id, &mark.chain);
        }
    }

    /// What `order` would cost in `asset` now (the amount due, in base units), without
    /// choosing it: for a checkout page's chooser.
    pub fn quote(
        &self,
        order: &Order,
        asset_id: &AssetId,
    ) -> Result<money::BaseUnits, EngineError> {
        self.price(order, asset_id, self.now())
            .map(|priced| priced.amount_due)
    }

    /// The rate for `asset` and the amount due at it.
    fn price(
        &self,
        order: &Order,
        asset_id: &AssetId,
        now: OffsetDateTime,
    ) -> Result<Priced<'_>, EngineError> {
        let asset = self.assets.asset(asset_id).ok_or_else(|| {
            EngineError::invalid(
                "unknown_asset",
                "asset",
                format!("asset {asset_id} is not enabled on this server"),
            )
        })?;
        let chain = self.assets.chain(asset.chain()).ok_or_else(|| {
            EngineError::invalid(
                "unknown_asset",
                "asset",
                format!("chain of {asset_id} is not configured"),
            )
        })?;
        let symbol = asset.symbol().as_str();
        let (price, source, at) = if order.currency.eq_ignore_ascii_case(symbol) {
            (Price::new(Decimal::ONE), "identity".to_owned(), now)
        } else if order.fixed_stablecoin_rate && asset.usd_stablecoin && order.currency == "USD" {
            (Price::new(Decimal::ONE), "peg".to_owned(), now)
        } else {
            let quote = self.rates.quote(symbol, &order.currency, now).map_err(
                |coffer_core::RateError::Unavailable { base, quote }| {
                    EngineError::RateUnavailable { base, quote }
                },
            )?;
            (Ok(quote.price), quote.source, quote.at)
        };
        let price = price.map_err(|_| EngineError::RateUnavailable {
            base: symbol.to_owned(),
            quote: order.currency.clone(),
        })?;
        let amount_due = money::crypto_due(order.amount, price, asset.decimals).map_err(|e| {
            EngineError::invalid(
                "invalid_amount",
                "amount",
                format!("cannot price this amount: {e}"),
            )
        })?;
        Ok(Priced {
            chain,
            asset,
            amount_due,
            price,
            source,
            at,
        })
    }

    /// Lock a rate for `asset` and have the chain's payment method prepare what the buyer
    /// pays to; the mark (if the method used a wallet index) makes the index durable with the
    /// order.
    async fn price_and_target(
        &self,
        order: &Order,
        asset_id: &AssetId,
        now: OffsetDateTime,
    ) -> Result<(PaymentTarget, Option<WalletMark>), EngineError> {
        let Priced {
            chain,
            asset,
            amount_due,
            price,
            source,
            at,
        } = self.price(order, asset_id, now)?;
        let method = self.methods.get(chain)?;
        let mark = if method.uses_wallet_index() {
            Some(self.take_wallet_index(&order.merchant_id, chain).await?)
        } else {
            None
        };
        let prepared = method
            .prepare_target(TargetRequest {
                chain,
                asset,
                amount_due,
                order,
                wallet: mark.as_ref().map(|m| (m.descriptor.as_str(), m.index)),
            })
            .await?;
        let target = PaymentTarget {
            asset: asset.id.clone(),
            amount_due,
            address: prepared.address,
            derivation: prepared.derivation,
            rate: LockedRate {
                price,
                source,
                at: truncate_to_ms(at),
            },
            details: prepared.details,
        };
        Ok((target, mark))
    }

    /// The next index of the merchant's wallet on `chain`, as the mark that makes it durable
    /// with whatever uses it.
    async fn take_wallet_index(
        &self,
        merchant: &MerchantId,
        chain: &Chain,
    ) -> Result<WalletMark, EngineError> {
        let key = (merchant.clone(), chain.id.clone());
        let (descriptor, index) = match self.methods.take(&key) {
            Some(taken) => taken,
            None => {
                let wallet = self.store.get_wallet(merchant, &chain.id).await?.ok_or_else(|| {
                    EngineError::invalid(
                        "wallet_not_configured",
                        "asset",
                        format!(
                            "no wallet is set for chain {}: set one with PUT /api/v1/wallets/{}",
                            chain.id, chain.id
                        ),
                    )
                })?;
                self.methods
                    .seed_and_take(key, wallet.descriptor, wallet.next_index)
            }
        };
        Ok(WalletMark {
            merchant_id: merchant.clone(),
            chain: chain.id.clone(),
            descriptor,
            index,
        })
    }

    /// Set a merchant's receiving wallet (xpub or descriptor) for a chain.
    pub async fn set_wallet(
        &self,
        merchant: &MerchantId,
        chain: &str,
        descriptor: &str,
    ) -> Result<WalletRecord, EngineError> {
        let chain = ChainId::parse(chain)
            .ok()
            .and_then(|id| self.assets.chain(&id).cloned())
            .ok_or_else(|| {
                EngineError::invalid(
                    "unknown_chain",
                    "chain",
                    format!("chain {chain:?} is not configured on this server"),
                )
            })?;
        let normalized = self
            .methods
            .get(&chain)?
            .normalize_wallet(&chain, descriptor.trim())?;
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(EngineError::NotFound("merchant"));
        }
        let record = match self
            .store
            .set_wallet(merchant, &chain.id, &normalized, self.now())
            .await
        {
            Err(StoreError::Duplicate(Unique::WalletKey)) => {
                return Err(EngineError::Conflict {
                    code: "wallet_in_use",
                    message: format!(
                        "another merchant uses this wallet on {}: each merchant needs its own \
                         key, or both would be given the same addresses",
                        chain.id
                    ),
                });
            }
            other => other?,
        };
        self.methods.forget(merchant, &chain.id);
        self.hot.wallets.forget(merchant);
        Ok(record)
    }

    pub async fn list_wallets(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<WalletRecord>, EngineError> {
        Ok(self.store.list_wallets(merchant).await?)
    }

    /// The gap-limit report of a merchant's wallet on a Bitcoin chain (`None` on other
    /// chains, whose wallets have no gap limit): the longest run of issued but unpaid
    /// addresses, warned about above [`coffer_core::gap::GAP_LIMIT_WARNING`].
    pub async fn wallet_gap(
        &self,
        merchant: &MerchantId,
        chain: &ChainId,
    ) -> Result<Option<coffer_core::gap::GapReport>, EngineError> {
        let Some(c) = self.assets.chain(chain) else {
            return Ok(None);
        };
        if !self.methods.get(c).is_ok_and(|m| m.has_gap_limit()) {
            return Ok(None);
        }
        let usage = self.store.address_usage(merchant, chain).await?;
        let issued: std::collections::BTreeSet<u32> = usage.iter().map(|(i, _)| *i).collect();
        let paid: std::collections::BTreeSet<u32> =
            usage.iter().filter(|(_, p)| *p).map(|(i, _)| *i).collect();
        Ok(Some(coffer_core::gap::gap_report(
            &issued,
            &paid,
            coffer_core::gap::GAP_LIMIT_WARNING,
        )))
    }

    /// Choose or change the asset of a pending order that has received nothing yet: a new
    /// address and amount, and the rate lock starts again for the order's original window.
    pub async fn choose_asset(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
        asset: &AssetId,
    ) -> Result<Order, EngineError> {
        let order = self.get_order(merchant, id).await?;
        let now = self.now();
        let payable = order.state.status == coffer_core::OrderStatus::Pending
            && order.totals.seen().is_zero()
            && now < order.expires_at;
        if !payable {
            return Err(EngineError::Conflict {
                code: "invalid_state",
                message: format!(
                    "the asset can only be chosen while the order is pending and unpaid; it is {} ({})",
                    order.state.status, order.state.reason
                ),
            });
        }
        if order.target.as_ref().is_some_and(|t| &t.asset == asset) {
            return Ok(order);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut next = order.clone();
            let (target, mark) = self.price_and_target(&order, asset, now).await?;
            next.target = Some(target);
            next.expires_at = now + order.lock_window;
            next.monitor_until = next.expires_at + self.settings.monitor_for;
            next.updated_at = now;
            next.version = order.version + 1;
            let changes = Changeset {
                order_updates: vec![OrderUpdate {
                    order: next.clone(),
                    expected_version: order.version,
                }],
                wallet_marks: mark.iter().cloned().collect(),
                ..Changeset::default()
            };
            match self.commit(changes).await {
                Ok(()) => return Ok(next),
                Err(
                    e @ (StoreError::Duplicate(Unique::Address) | StoreError::Conflict("wallet")),
                ) => {
                    self.forget_marks(mark.as_slice());
                    if attempt >= ADDRESS_RETRIES {
                        return Err(address_unavailable(e));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn get_order(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Order, EngineError> {
        self.store
            .get_order(merchant, id)
            .await?
            .ok_or(EngineError::NotFound("order"))
    }

    /// The payments seen for one of this merchant's orders (another merchant's: not found).
    pub async fn order_payments(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
    ) -> Result<Vec<coffer_core::Payment>, EngineError> {
        let order = self.get_order(merchant, id).await?;
        Ok(self.store.payments_for_order(&order.id).await?)
    }

    pub async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>, EngineError> {
        Ok(self.store.list_orders(query).await?)
    }

    /// Move an order to `to` for `cause`, writing the timeline entry and the event with it.
    /// `extra` carries other writes of the same operation (payments) into the transaction.
    pub async fn transition(
        &self,
        order: &Order,
        to: OrderState,
        cause: Cause,
        note: Option<String>,
        mut extra: Changeset,
    ) -> Result<Order, EngineError> {
        coffer_core::state::check(order.state, to, cause)?;
        let now = self.now();
        let mut next = order.clone();
        next.state = to;
        next.updated_at = now;
        next.version = order.version + 1;
        extra.timeline.push((
            order.id.clone(),
            TimelineEntry {
                at: now,
                from: Some(order.state),
                to,
                cause,
                note,
            },
        ));
        extra.events.push(self.event(
            &next,
            EventType::for_order_state(to),
            Some(order.state),
            now,
        ));
        extra.order_updates.push(OrderUpdate {
            order: next.clone(),
            expected_version: order.version,
        });
        self.commit(extra).await?;
        Ok(next)
    }

    /// A merchant's manual action (mark settled/invalid, cancel, resolve).
    pub async fn manual_action(
        &self,
        merchant: &MerchantId,
        id: &OrderId,
        cause: Cause,
        note: Option<String>,
    ) -> Result<Order, EngineError> {
        let order = self.get_order(merchant, id).await?;
        let to = coffer_core::state::manual_target(order.state, cause)?;
        self.transition(&order, to, cause, note, Changeset::default())
            .await
    }

    /// Expire pending orders whose rate lock has lapsed. Returns how many moved.
    pub async fn expire_due(&self, limit: u32) -> Result<usize, EngineError> {
        let now = self.now();
        let due = self.store.orders_due_for_expiry(now, limit).await?;
        let mut moved = 0;
        for order in due {
            let to = order.evaluate(now);
            if to == order.state {
                continue;
            }
            let cause = if coffer_core::state::is_legal(order.state, to, Cause::Expiry) {
                Cause::Expiry
            } else {
                Cause::Payment
            };
            match self
                .transition(&order, to, cause, None, Changeset::default())
                .await
            {
                Ok(_) => moved += 1,
                // Another instance or a payment got there first; the next sweep re-reads.
                Err(EngineError::Store(StoreError::Conflict(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    fn event(
        &self,
        order: &Order,
        kind: EventType,
        previous: Option<OrderState>,
        at: OffsetDateTime,
    ) -> Event {
        let mut data = serde_json::Map::new();
        data.insert("object".into(), view::order_json(order, self));
        data.insert(
            "previous_status".into(),
            previous.map_or(serde_json::Value::Null, |s| s.status.as_str().into()),
        );
        data.insert(
            "previous_reason".into(),
            previous.map_or(serde_json::Value::Null, |s| s.reason.as_str().into()),
        );
        // The same state with the same counted amount is the same fact (an order settled
        // again by the same payment after a reorg); see docs/webhooks.md.
        let counted = order.totals.seen().to_string();
        data.insert(
            coffer_core::event::DEDUPE_KEY.into(),
            coffer_core::event::dedupe_key(order.id.as_str(), kind, Some(&counted)).into(),
        );
        data.insert(coffer_core::event::RESTORED.into(), false.into());
        Event {
            id: EventId::from_random(random16()),
            merchant_id: order.merchant_id.clone(),
            kind,
            subject: order.id.to_string(),
            data: serde_json::Value::Object(data),
            created_at: at,
        }
    }
}

fn same_order_or_conflict(
    existing: Order,
    input: &NewOrder,
    checked: &validate::CheckedOrder,
) -> Result<Created, EngineError> {
    let same = existing.amount == checked.amount
        && existing.currency == checked.currency
        && (input.asset.is_none()
            || existing.target.as_ref().map(|t| &t.asset) == input.asset.as_ref())
        && existing.description == checked.description
        && existing.metadata == input.metadata
        && existing.links == input.links
        && existing.fixed_stablecoin_rate == input.fixed_stablecoin_rate;
    if same {
        Ok(Created {
            order: existing,
            created: false,
        })
    } else {
        Err(EngineError::Conflict {
            code: "order_no_conflict",
            message: format!(
                "order_no {:?} already exists with different fields",
                existing.order_no.unwrap_or_default()
            ),
        })
    }
}
