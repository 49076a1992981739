//! The payment-method seam: what a way to pay (a chain kind's rail) plugs into the engine.
//!
//! A [`PaymentMethod`] validates a merchant's wallet, prepares what the buyer pays to (an
//! address derived from the wallet today; an invoice or a counterfactual contract address
//! tomorrow), builds the payment URI a wallet opens, and owns the chain's confirmation rule
//! and the confirmation policies a merchant may pick. [`Methods`] registers one per chain
//! kind and hands out wallet derivation indexes. The engine asks the method; it never
//! branches on the chain kind itself, and the core state machine knows no method at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use coffer_core::order::Derivation;
use coffer_core::{Asset, BaseUnits, Chain, ChainId, ChainKind, MerchantId, Order, PaymentTarget};
use serde_json::{Map, Value};

use crate::EngineError;

/// One way to pay on one kind of chain. Chain crates implement it (`EvmMethod`,
/// `BitcoinMethod`); `coffer serve` registers each in [`Methods`] by chain kind.
#[async_trait]
pub trait PaymentMethod: Send + Sync {
    /// Validate a merchant's wallet for `chain` and return its canonical form, or an
    /// `invalid_wallet` error naming what is wrong.
    fn normalize_wallet(&self, chain: &Chain, descriptor: &str) -> Result<String, EngineError>;

    /// Whether targets consume a wallet derivation index (addresses: yes; invoices: no).
    /// When they do, the engine hands the wallet and its next index to
    /// [`prepare_target`](Self::prepare_target) and makes the index durable with the order.
    fn uses_wallet_index(&self) -> bool {
        true
    }

    /// Prepare what the buyer pays to: derive an address today; create an invoice or a
    /// counterfactual contract address tomorrow. May do I/O. Whatever the method needs to
    /// remember goes into [`PreparedTarget::details`], stored with the order.
    async fn prepare_target(&self, req: TargetRequest<'_>) -> Result<PreparedTarget, EngineError>;

    /// The standing address at `index` of a wallet, for deposit accounts (no order, no
    /// amount). Asked only of methods that [use wallet indexes](Self::uses_wallet_index).
    fn standing_address(
        &self,
        chain: &Chain,
        _descriptor: &str,
        _index: u32,
    ) -> Result<PreparedTarget, EngineError> {
        Err(EngineError::invalid(
            "chain_unsupported",
            "chain",
            format!(
                "deposit addresses on {} chains are not supported",
                chain.kind.as_str()
            ),
        ))
    }

    /// The URI a wallet opens (EIP-681, BIP21, lightning:, tron:) to pay
    /// `target.amount_due` of `asset`, if the method has one.
    fn payment_uri(&self, chain: &Chain, asset: &Asset, target: &PaymentTarget) -> Option<String>;

    /// Whether `n` is an acceptable confirmation policy on this chain (Bitcoin: 0, 1, 2, 6);
    /// the error is the message shown to the merchant.
    fn check_confirmations(&self, chain: &Chain, n: u32) -> Result<(), String>;

    /// The confirmation rule: does a payment with `confirmations` count as confirmed under a
    /// policy asking for `required`? `replaceable` is false only for a mempool transaction
    /// the chain's watcher knows cannot be replaced. By default the blockchain rule
    /// ([`payment_confirmed`](coffer_core::order::payment_confirmed)): `required` blocks, and
    /// zero only for what cannot be replaced; a rail that settles at once (Lightning) says so
    /// here.
    fn is_confirmed(&self, required: u32, confirmations: u32, replaceable: bool) -> bool {
        coffer_core::order::payment_confirmed(required, confirmations, replaceable)
    }

    /// Whether wallets on this chain have a gap limit worth reporting (Bitcoin).
    fn has_gap_limit(&self) -> bool {
        false
    }
}

/// What a method is asked to prepare a target for.
#[derive(Debug, Clone, Copy)]
pub struct TargetRequest<'a> {
    pub chain: &'a Chain,
    pub asset: &'a Asset,
    /// What the buyer owes at the locked rate, in the asset's base units.
    pub amount_due: BaseUnits,
    pub order: &'a Order,
    /// The merchant's wallet (its canonical descriptor) and the index handed out for this
    /// target; `None` for methods that use no wallet index.
    pub wallet: Option<(&'a str, u32)>,
}

impl<'a> TargetRequest<'a> {
    /// The wallet and the index handed out, which the engine always gives a method that
    /// [uses wallet indexes](PaymentMethod::uses_wallet_index).
    pub fn wallet_index(&self) -> Result<(&'a str, u32), EngineError> {
        self.wallet.ok_or_else(|| {
            EngineError::invalid(
                "wallet_not_configured",
                "asset",
                "no wallet index was handed out for this target",
            )
        })
    }
}

/// What the buyer pays to, as a method prepared it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreparedTarget {
    pub address: String,
    pub derivation: Option<Derivation>,
    /// Method-specific facts kept with the order (`PaymentTarget::details`): an invoice's
    /// payment hash, a contract's salt. Empty for plain addresses.
    pub details: Map<String, Value>,
}

/// The payment methods this server has, by chain kind, and the next derivation index of
/// each wallet in use. Indexes are handed out from memory and become durable with the order
/// that uses them (a `WalletMark` in its changeset), so creating an order costs no extra
/// transaction and an order that fails leaves no gap; a unique index on addresses catches
/// two instances handing out the same index, and the loser retries.
#[derive(Clone, Default)]
pub struct Methods {
    kinds: HashMap<ChainKind, Arc<dyn PaymentMethod>>,
    next: Arc<Mutex<NextIndexes>>,
}

/// Per wallet (merchant, chain): its descriptor and the next index to hand out.
type NextIndexes = HashMap<(MerchantId, ChainId), (String, u32)>;

impl Methods {
    /// Register `method` for the chains of `kind` (a later registration replaces it).
    pub fn with(mut self, kind: ChainKind, method: Arc<dyn PaymentMethod>) -> Self {
        self.kinds.insert(kind, method);
        self
    }

    /// The method serving `chain`, or a `chain_unsupported` error.
    pub fn get(&self, chain: &Chain) -> Result<&Arc<dyn PaymentMethod>, EngineError> {
        self.kinds.get(&chain.kind).ok_or_else(|| {
            EngineError::invalid(
                "chain_unsupported",
                "chain",
                format!(
                    "receiving on {} chains is not supported by this server",
                    chain.kind.as_str()
                ),
            )
        })
    }

    /// The URI a wallet opens to pay `target`, if `chain`'s method has one.
    pub fn payment_uri(
        &self,
        chain: &Chain,
        asset: &Asset,
        target: &PaymentTarget,
    ) -> Option<String> {
        self.get(chain).ok()?.payment_uri(chain, asset, target)
    }

    fn slots(&self) -> MutexGuard<'_, NextIndexes> {
        // A poisoned lock only means another task panicked mid-update of a plain map entry.
        self.next.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take the next index of a wallet already known here.
    pub(crate) fn take(&self, key: &(MerchantId, ChainId)) -> Option<(String, u32)> {
        let mut slots = self.slots();
        let (descriptor, next) = slots.get_mut(key)?;
        let taken = *next;
        *next = next.saturating_add(1);
        Some((descriptor.clone(), taken))
    }

    /// Learn a wallet's durable position (unless another task did first), then take from it.
    pub(crate) fn seed_and_take(
        &self,
        key: (MerchantId, ChainId),
        descriptor: String,
        next: u32,
    ) -> (String, u32) {
        let mut slots = self.slots();
        let (descriptor, next) = slots.entry(key).or_insert((descriptor, next));
        let taken = *next;
        *next = next.saturating_add(1);
        (descriptor.clone(), taken)
    }

    /// Forget what is known of a wallet: it changed, or another instance used an index.
    pub(crate) fn forget(&self, merchant: &MerchantId, chain: &ChainId) {
        self.slots().remove(&(merchant.clone(), chain.clone()));
    }
}
