//! What a merchant's buyers can pay with here: the configured chains whose payment method
//! can prepare a target for this merchant (a wallet is set, or the method needs none). An
//! order with no asset is refused at creation when this is empty, and the checkout offers
//! only these chains, so no buyer ever meets an empty chooser.

use coffer_core::{Chain, MerchantId};

use crate::{Engine, EngineError};

impl Engine {
    /// The chains `merchant` can be paid on now, in the registry's order.
    pub async fn payable_chains(&self, merchant: &MerchantId) -> Result<Vec<Chain>, EngineError> {
        let wallets = self.wallets_of(merchant).await?;
        Ok(self
            .assets
            .chains()
            .filter(|chain| {
                self.assets.assets().any(|a| a.chain() == &chain.id)
                    && self.methods.get(chain).is_ok_and(|method| {
                        !method.uses_wallet_index() || wallets.iter().any(|w| w.chain == chain.id)
                    })
            })
            .cloned()
            .collect())
    }

    /// Refuse an order whose buyer would have nothing to choose from: no chain is configured
    /// on this server, or the merchant has no wallet on any of them yet.
    pub(crate) async fn require_payable(&self, merchant: &MerchantId) -> Result<(), EngineError> {
        if !self.payable_chains(merchant).await?.is_empty() {
            return Ok(());
        }
        let configured: Vec<&str> = self
            .assets
            .chains()
            .filter(|c| self.methods.get(c).is_ok())
            .map(|c| c.id.as_str())
            .collect();
        Err(if configured.is_empty() {
            EngineError::invalid(
                "no_chain_configured",
                "asset",
                "no chain is configured on this server, so no order can be paid: the operator \
                 adds a [[chains]] entry to the configuration and restarts",
            )
        } else {
            EngineError::invalid(
                "wallet_not_configured",
                "asset",
                format!(
                    "the merchant has no wallet yet, so no order can be paid: set one with \
                     PUT /api/v1/wallets/{{chain}} (or in the console) on one of: {}",
                    configured.join(", ")
                ),
            )
        })
    }
}
