//! Parsing raw blocks and transactions and matching their outputs against the watched
//! scriptPubKeys (a hash set). Pure: no I/O.

use std::collections::HashSet;

use bitcoin::consensus::encode;
use bitcoin::{Block, BlockHash, Script, ScriptBuf, Transaction, Txid};
use coffer_core::money::BaseUnits;

/// The watched output scripts (one per issued address).
pub type WatchedScripts = HashSet<ScriptBuf>;

/// What output scripts are matched against: a plain set, or the watcher's watched set.
pub trait ScriptSet {
    fn contains_script(&self, script: &Script) -> bool;
}

impl ScriptSet for WatchedScripts {
    fn contains_script(&self, script: &Script) -> bool {
        self.contains(script)
    }
}

impl ScriptSet for coffer_rail::WatchSet<ScriptBuf> {
    fn contains_script(&self, script: &Script) -> bool {
        self.contains(script)
    }
}

/// One output paying a watched script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub txid: Txid,
    pub vout: u32,
    pub script_pubkey: ScriptBuf,
    /// Satoshis.
    pub amount: BaseUnits,
    /// Outputs of a coinbase need 100 confirmations before they can be spent.
    pub coinbase: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not valid hex: {0}")]
    Hex(String),
    #[error("cannot decode: {0}")]
    Decode(#[from] encode::Error),
}

/// A parsed block's identity and the transfers it holds for the watched scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedBlock {
    pub hash: BlockHash,
    pub prev_hash: BlockHash,
    pub tx_count: usize,
    pub transfers: Vec<Transfer>,
}

/// Decode a raw block (`getblock <hash> 0`, already hex-decoded).
pub fn parse_block(raw: &[u8]) -> Result<Block, ParseError> {
    Ok(encode::deserialize(raw)?)
}

/// Decode a raw block given as hex.
pub fn parse_block_hex(hex_str: &str) -> Result<Block, ParseError> {
    let raw = hex::decode(hex_str.trim()).map_err(|e| ParseError::Hex(e.to_string()))?;
    parse_block(&raw)
}

/// Decode a raw transaction given as hex (`getrawtransaction <txid>`).
pub fn parse_transaction_hex(hex_str: &str) -> Result<Transaction, ParseError> {
    let raw = hex::decode(hex_str.trim()).map_err(|e| ParseError::Hex(e.to_string()))?;
    Ok(encode::deserialize(&raw)?)
}

/// Every output of `tx` paying a watched script.
pub fn match_transaction(tx: &Transaction, watched: &impl ScriptSet) -> Vec<Transfer> {
    let mut out = Vec::new();
    match_transaction_into(tx, None, watched, &mut out);
    out
}

fn match_transaction_into(
    tx: &Transaction,
    txid: Option<Txid>,
    watched: &impl ScriptSet,
    out: &mut Vec<Transfer>,
) {
    let mut txid = txid;
    let coinbase = tx.is_coinbase();
    for (vout, output) in tx.output.iter().enumerate() {
        if watched.contains_script(output.script_pubkey.as_script()) {
            // Hash the transaction only when one of its outputs matches.
            let id = *txid.get_or_insert_with(|| tx.compute_txid());
            out.push(Transfer {
                txid: id,
                vout: u32::try_from(vout).unwrap_or(u32::MAX),
                script_pubkey: output.script_pubkey.clone(),
                amount: BaseUnits::new(u128::from(output.value.to_sat())),
                coinbase,
            });
        }
    }
}

/// Every output of every transaction of `block` paying a watched script, in block order.
pub fn match_block(block: &Block, watched: &impl ScriptSet) -> Vec<Transfer> {
    let mut out = Vec::new();
    for tx in &block.txdata {
        match_transaction_into(tx, None, watched, &mut out);
    }
    out
}

/// Parse a raw block and match it: what the watcher does for each new block.
pub fn parse_and_match_block(
    raw: &[u8],
    watched: &impl ScriptSet,
) -> Result<MatchedBlock, ParseError> {
    let block = parse_block(raw)?;
    let transfers = match_block(&block, watched);
    Ok(MatchedBlock {
        hash: block.block_hash(),
        prev_hash: block.header.prev_blockhash,
        tx_count: block.txdata.len(),
        transfers,
    })
}

/// Whether `tx` itself signals replaceability (BIP-125: an input with nSequence below
/// 0xfffffffe).
pub fn signals_rbf(tx: &Transaction) -> bool {
    tx.input.iter().any(|input| input.sequence.0 < 0xffff_fffe)
}

/// Whether a mempool transaction may be replaced under BIP-125: it signals itself, or one of
/// its inputs spends an unconfirmed transaction that is replaceable. `unconfirmed_parent`
/// answers, for a parent txid, `Some(replaceable)` when the parent is in the mempool and
/// `None` when it is confirmed (or unknown). A zero-conf payment is acceptable only when this
/// is false.
pub fn is_replaceable(
    tx: &Transaction,
    mut unconfirmed_parent: impl FnMut(&Txid) -> Option<bool>,
) -> bool {
    signals_rbf(tx)
        || tx
            .input
            .iter()
            .any(|input| unconfirmed_parent(&input.previous_output.txid).unwrap_or(false))
}

/// What changed in the mempool between two polls of `getrawmempool`, for the watched txids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MempoolDiff {
    /// In the new snapshot but not the previous one: fetch with `getrawtransaction` and match.
    pub added: Vec<Txid>,
    /// Watched transactions no longer in the mempool: mined, replaced or dropped; the watcher
    /// decides which by looking at the next blocks (not mined → `payment.reversed`).
    pub gone: Vec<Txid>,
}

/// Compare a previous and a current mempool snapshot. `watched_pending` are the txids of
/// unconfirmed payments being followed.
pub fn mempool_diff(
    previous: &HashSet<Txid>,
    current: &[Txid],
    watched_pending: &HashSet<Txid>,
) -> MempoolDiff {
    let now: HashSet<&Txid> = current.iter().collect();
    let mut added: Vec<Txid> = current
        .iter()
        .filter(|txid| !previous.contains(*txid))
        .copied()
        .collect();
    added.dedup();
    let mut gone: Vec<Txid> = watched_pending
        .iter()
        .filter(|txid| !now.contains(txid))
        .copied()
        .collect();
    gone.sort();
    MempoolDiff { added, gone }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::hashes::Hash;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, Sequence, TxIn, TxOut, Witness};

    fn script(n: u8) -> ScriptBuf {
        let mut s = vec![0x00, 0x14];
        s.extend_from_slice(&[n; 20]);
        ScriptBuf::from_bytes(s)
    }

    fn tx(sequences: &[u32], outputs: &[(u8, u64)]) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: sequences
                .iter()
                .enumerate()
                .map(|(i, s)| TxIn {
                    previous_output: OutPoint {
                        txid: Txid::from_byte_array([u8::try_from(i).unwrap() + 1; 32]),
                        vout: 0,
                    },
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence(*s),
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs
                .iter()
                .map(|(n, sat)| TxOut {
                    value: Amount::from_sat(*sat),
                    script_pubkey: script(*n),
                })
                .collect(),
        }
    }

    #[test]
    fn matches_every_watched_output_with_vout_and_amount() {
        let t = tx(&[u32::MAX], &[(1, 1000), (2, 2000), (1, 3000), (3, 4000)]);
        let watched: WatchedScripts = [script(1), script(3)].into_iter().collect();
        let found = match_transaction(&t, &watched);
        let summary: Vec<(u32, u128)> = found.iter().map(|t| (t.vout, t.amount.get())).collect();
        assert_eq!(summary, [(0, 1000), (2, 3000), (3, 4000)]);
        assert!(
            found
                .iter()
                .all(|f| f.txid == t.compute_txid() && !f.coinbase)
        );
        assert!(match_transaction(&t, &WatchedScripts::new()).is_empty());
    }

    #[test]
    fn block_round_trip_through_raw_bytes() {
        let block = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest);
        let raw = encode::serialize(&block);
        let watched: WatchedScripts = [block.txdata[0].output[0].script_pubkey.clone()]
            .into_iter()
            .collect();
        let m = parse_and_match_block(&raw, &watched).unwrap();
        assert_eq!(
            m.hash.to_string(),
            "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
        );
        assert_eq!(m.transfers.len(), 1);
        assert!(m.transfers[0].coinbase);
        assert_eq!(m.transfers[0].amount, BaseUnits::new(5_000_000_000));
        assert!(parse_block(&raw[..raw.len() - 1]).is_err());
        assert!(parse_block_hex("zz").is_err());
        assert_eq!(
            parse_block_hex(&hex::encode(&raw)).unwrap().block_hash(),
            m.hash
        );
    }

    #[test]
    fn bip125_signalling() {
        assert!(!signals_rbf(&tx(&[u32::MAX], &[])));
        assert!(!signals_rbf(&tx(&[0xffff_fffe, u32::MAX], &[])));
        assert!(signals_rbf(&tx(&[u32::MAX, 0xffff_fffd], &[])));
        assert!(signals_rbf(&tx(&[0], &[])));
        // Inherited: a non-signalling child of a replaceable unconfirmed parent.
        let child = tx(&[u32::MAX], &[]);
        assert!(!is_replaceable(&child, |_| None));
        assert!(!is_replaceable(&child, |_| Some(false)));
        assert!(is_replaceable(&child, |_| Some(true)));
    }

    #[test]
    fn mempool_diff_reports_new_and_vanished() {
        let a = Txid::from_byte_array([1; 32]);
        let b = Txid::from_byte_array([2; 32]);
        let c = Txid::from_byte_array([3; 32]);
        let previous: HashSet<Txid> = [a, b].into_iter().collect();
        let pending: HashSet<Txid> = [a, b].into_iter().collect();
        let diff = mempool_diff(&previous, &[b, c], &pending);
        assert_eq!(diff.added, [c]);
        assert_eq!(diff.gone, [a]);
    }
}
