//! What this build of Coffer plugs in. Adding a rail is one line here (and its crate).

use std::sync::Arc;

use coffer_rail::Rail;

/// Every chain kind this server can be configured for, one line per rail.
pub fn rails() -> Vec<Arc<dyn Rail>> {
    vec![
        Arc::new(coffer_chain_evm::EvmRail),
        Arc::new(coffer_chain_bitcoin::BitcoinRail),
    ]
}
