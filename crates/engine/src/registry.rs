use std::collections::BTreeMap;

use coffer_core::{Asset, AssetId, Chain, ChainId};

/// The chains and assets this server is configured for.
#[derive(Debug, Clone, Default)]
pub struct AssetRegistry {
    chains: BTreeMap<ChainId, Chain>,
    assets: BTreeMap<AssetId, Asset>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("asset {0} refers to chain {1}, which is not configured")]
    UnknownChain(AssetId, ChainId),
    #[error("chain {0} is configured twice")]
    DuplicateChain(ChainId),
    #[error("asset {0} is configured twice")]
    DuplicateAsset(AssetId),
}

impl AssetRegistry {
    pub fn new(chains: Vec<Chain>, assets: Vec<Asset>) -> Result<Self, RegistryError> {
        let mut registry = AssetRegistry::default();
        for chain in chains {
            if registry.chains.contains_key(&chain.id) {
                return Err(RegistryError::DuplicateChain(chain.id));
            }
            registry.chains.insert(chain.id.clone(), chain);
        }
        for asset in assets {
            if !registry.chains.contains_key(asset.chain()) {
                return Err(RegistryError::UnknownChain(
                    asset.id.clone(),
                    asset.chain().clone(),
                ));
            }
            if registry.assets.contains_key(&asset.id) {
                return Err(RegistryError::DuplicateAsset(asset.id));
            }
            registry.assets.insert(asset.id.clone(), asset);
        }
        Ok(registry)
    }

    pub fn chain(&self, id: &ChainId) -> Option<&Chain> {
        self.chains.get(id)
    }

    pub fn asset(&self, id: &AssetId) -> Option<&Asset> {
        self.assets.get(id)
    }

    pub fn chains(&self) -> impl Iterator<Item = &Chain> {
        self.chains.values()
    }

    pub fn assets(&self) -> impl Iterator<Item = &Asset> {
        self.assets.values()
    }

    /// Any configured asset with this symbol (e.g. pricing an order in `USDT`).
    pub fn by_symbol(&self, symbol: &str) -> Option<&Asset> {
        self.assets
            .values()
            .find(|a| a.symbol().as_str().eq_ignore_ascii_case(symbol))
    }
}
