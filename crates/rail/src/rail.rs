//! A rail: one chain kind as a plug-in — its typed `[[chains]]` entry, the chain and assets it
//! configures, and its payment method.

use std::sync::Arc;

use coffer_core::{Asset, Chain, ChainKind};
use coffer_engine::{Engine, PaymentMethod};

use crate::config::{ConfigError, chain_key};
use crate::{RunningWatcher, WatchError};

/// One chain kind (EVM, Bitcoin, …). The binary lists every rail once (`registry.rs`);
/// start-up hands each `[[chains]]` entry to the rail its `kind` names ([`parse_chain`]) and
/// registers each rail's [`method`](Rail::method) with the engine.
pub trait Rail: Send + Sync {
    fn kind(&self) -> ChainKind;

    /// Whether an entry without `kind` belongs to this rail (EVM: a chain of its built-in
    /// catalogue, by `id` or by `chain_id`).
    fn claims_untyped(&self, _id: &str, _chain_id: Option<u64>) -> bool {
        false
    }

    /// Parse the `index`th `[[chains]]` entry: the rail's typed config (deny_unknown_fields),
    /// checked completely, so that start-up stops on any mistake with an error naming
    /// `chains[i].key`.
    fn parse(&self, index: usize, entry: &toml::Value) -> Result<Box<dyn RailChain>, ConfigError>;

    /// The payment method serving this kind's chains.
    fn method(&self) -> Arc<dyn PaymentMethod>;
}

/// One configured chain, parsed and checked by its rail.
pub trait RailChain: Send + Sync {
    fn chain(&self) -> Chain;

    /// The chain's native coin and tokens.
    fn assets(&self) -> Vec<Asset>;

    /// The explorer's transaction page, `{txid}` standing for the transaction id.
    fn explorer_tx(&self) -> Option<String>;

    /// Check what the chain's watcher would read (node URLs, credentials, lag limits) without
    /// building anything, so that `coffer check` and start-up stop on a mistake.
    fn check_watch(&self) -> Result<(), ConfigError>;

    /// The one watcher (`Watcher` over the rail's `ChainSource`) following this chain through
    /// `engine`, or `None` when the entry names no node (pricing and addresses only).
    fn watcher(&self, engine: &Engine) -> Result<Option<Box<dyn RunningWatcher>>, StartError>;
}

/// The one watcher over the source `config` describes, boxed for `coffer serve`; `None` for a
/// chain that is not watched.
pub fn start_watcher<C: crate::SourceConfig>(
    engine: &Engine,
    config: Option<C>,
) -> Result<Option<Box<dyn RunningWatcher>>, StartError> {
    match config {
        None => Ok(None),
        Some(config) => Ok(Some(Box::new(crate::Watcher::new(engine.clone(), config)?))),
    }
}

/// Why a configured chain's watcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Watch(#[from] WatchError),
}

/// Parse the `index`th `[[chains]]` entry by its rail ([`rail_for`]).
pub fn parse_chain(
    rails: &[Arc<dyn Rail>],
    index: usize,
    entry: &toml::Value,
) -> Result<Box<dyn RailChain>, ConfigError> {
    rail_for(rails, index, entry)?.parse(index, entry)
}

/// The rail of the `index`th `[[chains]]` entry: the one whose kind it names, or for an entry
/// without `kind` the one that claims it (a catalogue chain). An unknown kind, or an entry no
/// rail claims, stops start-up naming `chains[i].kind`.
pub fn rail_for<'a>(
    rails: &'a [Arc<dyn Rail>],
    index: usize,
    entry: &toml::Value,
) -> Result<&'a Arc<dyn Rail>, ConfigError> {
    let known = || {
        rails
            .iter()
            .map(|r| r.kind().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kind = match entry.get("kind") {
        None => None,
        Some(toml::Value::String(kind)) if kind.is_empty() => None,
        Some(toml::Value::String(kind)) => Some(kind.as_str()),
        Some(_) => {
            return Err(ConfigError::invalid(
                chain_key(index, "kind"),
                format!("must be a string: one of {}", known()),
            ));
        }
    };
    Ok(match kind {
        Some(kind) => rails
            .iter()
            .find(|r| r.kind().as_str() == kind)
            .ok_or_else(|| {
                ConfigError::invalid(
                    chain_key(index, "kind"),
                    format!("unknown chain kind {kind:?}: this server has {}", known()),
                )
            })?,
        None => {
            let id = entry
                .get("id")
                .and_then(toml::Value::as_str)
                .ok_or_else(|| {
                    ConfigError::invalid(chain_key(index, "id"), "missing: every chain needs an id")
                })?;
            let chain_id = entry
                .get("chain_id")
                .and_then(toml::Value::as_integer)
                .and_then(|n| u64::try_from(n).ok());
            rails
                .iter()
                .find(|r| r.claims_untyped(id, chain_id))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        chain_key(index, "kind"),
                        format!(
                            "missing: {id:?} is not a chain of the built-in catalogue, so say \
                             which kind it is: one of {}",
                            known()
                        ),
                    )
                })?
        }
    })
}
