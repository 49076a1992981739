//! What chain watchers read: their cursor, the addresses to look for, and the payments whose
//! confirmations can still change. Writes go through [`Engine::apply_chain_batch`].

use coffer_core::{ChainId, Payment};
use coffer_store::{ChainCursor, WatchedAddress};
use time::OffsetDateTime;

use crate::{Engine, EngineError};

impl Engine {
    /// The watcher's saved position on `chain`, if it ever ran.
    pub async fn chain_cursor(&self, chain: &ChainId) -> Result<Option<ChainCursor>, EngineError> {
        Ok(self.store.chain_cursor(chain).await?)
    }

    /// Every address on `chain` whose monitoring window is open at `now`.
    pub async fn watched_addresses(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, EngineError> {
        Ok(self.store.watched_addresses(chain, now).await?)
    }

    /// The watched addresses of orders and accounts changed at or after `since`.
    pub async fn watched_addresses_since(
        &self,
        chain: &ChainId,
        now: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Vec<WatchedAddress>, EngineError> {
        Ok(self
            .store
            .watched_addresses_since(chain, now, since)
            .await?)
    }

    /// Payments on `chain` whose confirmations can still change, or that a reorg from
    /// `from_height` would remove, or that can still vanish from the mempool.
    pub async fn open_payments(
        &self,
        chain: &ChainId,
        from_height: u64,
    ) -> Result<Vec<Payment>, EngineError> {
        Ok(self.store.open_payments(chain, from_height).await?)
    }
}
