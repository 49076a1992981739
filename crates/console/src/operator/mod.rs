//! The operator's pages, under `/console/op`: the first-run checklist and server facts,
//! merchants, chains, rates, the webhook backlog, operators and the whole audit log.

pub mod chains;
pub mod merchants;
pub mod overview;
pub mod rates;
pub mod users;
