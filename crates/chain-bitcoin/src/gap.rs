//! Gap-limit awareness: the pure rule lives in `coffer_core::gap` (the engine and the API use
//! it too); re-exported here where Bitcoin users look for it.

pub use coffer_core::gap::{GAP_LIMIT_WARNING, GapReport, gap_report};
