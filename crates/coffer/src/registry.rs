//! What this server plugs in, listed once: every other part of the binary (routes, error
//! envelopes, callback formatters, chain watchers, the CLI) is wired from these lists. Adding
//! a rail or a dialect is one line here (and its crate).

use std::sync::Arc;

use coffer_dialect::Dialect;
use coffer_rail::Rail;

/// Every chain kind this server can be configured for, one line per rail.
pub fn rails() -> Vec<Arc<dyn Rail>> {
    vec![
        Arc::new(coffer_chain_evm::EvmRail),
        Arc::new(coffer_chain_bitcoin::BitcoinRail),
        Arc::new(coffer_chain_tron::TronRail),
    ]
}

/// The vendor-compatible APIs served next to the native one: one line per dialect.
pub fn dialects() -> Vec<Arc<dyn Dialect>> {
    vec![
        Arc::new(coffer_dialect_aurpay::AurpayDialect),
        Arc::new(coffer_dialect_payprotocol::PayProtocolDialect),
        Arc::new(coffer_dialect_zaepe::ZaepeDialect),
    ]
}
