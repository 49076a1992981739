//! Parse and match one full block of realistic shape against 1,000,000 watched scripts.
//!
//!   CARGO_TARGET_DIR=… cargo bench -p coffer-chain-bitcoin --bench match_block
//!
//! The block is generated deterministically (xorshift PRNG, fixed seed): ~3,000 transactions,
//! ~8,000 outputs (70 % P2WPKH, 10 % each P2TR, P2PKH, P2SH), ~25,000 P2WPKH inputs with
//! witnesses, about 4 MB serialized. 100 of its outputs pay watched scripts. Target: ≤ 20 ms
//! per block on one core (parse + match).

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Txid, Witness,
};
use coffer_chain_bitcoin::{WatchedScripts, match_block, parse_and_match_block, parse_block};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }
}

fn p2wpkh(rng: &mut Rng) -> ScriptBuf {
    let mut s = vec![0x00, 0x14];
    s.extend_from_slice(&rng.bytes::<20>());
    ScriptBuf::from_bytes(s)
}

fn random_script(rng: &mut Rng) -> ScriptBuf {
    match rng.below(10) {
        0 => {
            let mut s = vec![0x51, 0x20];
            s.extend_from_slice(&rng.bytes::<32>());
            ScriptBuf::from_bytes(s)
        }
        1 => {
            let mut s = vec![0x76, 0xa9, 0x14];
            s.extend_from_slice(&rng.bytes::<20>());
            s.extend_from_slice(&[0x88, 0xac]);
            ScriptBuf::from_bytes(s)
        }
        2 => {
            let mut s = vec![0xa9, 0x14];
            s.extend_from_slice(&rng.bytes::<20>());
            s.push(0x87);
            ScriptBuf::from_bytes(s)
        }
        _ => p2wpkh(rng),
    }
}

fn input(rng: &mut Rng) -> TxIn {
    let mut sig = rng.bytes::<72>().to_vec();
    sig[0] = 0x30;
    let mut pubkey = rng.bytes::<33>().to_vec();
    pubkey[0] = 0x02;
    TxIn {
        previous_output: OutPoint {
            txid: Txid::from_byte_array(rng.bytes::<32>()),
            vout: u32::try_from(rng.below(4)).unwrap_or(0),
        },
        script_sig: ScriptBuf::new(),
        sequence: if rng.below(3) == 0 {
            Sequence::ENABLE_RBF_NO_LOCKTIME
        } else {
            Sequence::MAX
        },
        witness: Witness::from_slice(&[sig, pubkey]),
    }
}

/// The block and the scripts of 100 of its outputs (to watch).
fn generate_block(txs: usize, outputs: usize) -> (Block, Vec<ScriptBuf>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Output counts: 2 each, the rest spread at random.
    let mut counts = vec![2usize; txs];
    for _ in 0..outputs.saturating_sub(2 * txs) {
        let i = usize::try_from(rng.below(txs as u64)).unwrap_or(0);
        counts[i] += 1;
    }
    let mut txdata = Vec::with_capacity(txs + 1);
    let coinbase_in = TxIn {
        script_sig: ScriptBuf::from_bytes(vec![0x03, 0x01, 0x02, 0x03]),
        witness: Witness::from_slice(&[[0u8; 32]]),
        ..TxIn::default()
    };
    txdata.push(Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![coinbase_in],
        output: vec![
            TxOut {
                value: Amount::from_sat(312_500_000),
                script_pubkey: p2wpkh(&mut rng),
            },
            TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(
                    [0x6a, 0x24]
                        .iter()
                        .copied()
                        .chain(rng.bytes::<36>())
                        .collect(),
                ),
            },
        ],
    });
    let mut all_outputs = Vec::new();
    for count in counts {
        let n_in = 1 + usize::try_from(rng.below(15)).unwrap_or(0);
        let input = (0..n_in).map(|_| input(&mut rng)).collect();
        let output: Vec<TxOut> = (0..count)
            .map(|_| TxOut {
                value: Amount::from_sat(546 + rng.below(100_000_000)),
                script_pubkey: random_script(&mut rng),
            })
            .collect();
        all_outputs.extend(output.iter().map(|o| o.script_pubkey.clone()));
        txdata.push(Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input,
            output,
        });
    }
    let watched = (0..100)
        .map(|_| {
            all_outputs[usize::try_from(rng.below(all_outputs.len() as u64)).unwrap_or(0)].clone()
        })
        .collect();
    let header = Header {
        version: BlockVersion::from_consensus(0x2000_0000),
        prev_blockhash: BlockHash::all_zeros(),
        merkle_root: TxMerkleNode::all_zeros(),
        time: 1_700_000_000,
        bits: CompactTarget::from_consensus(0x1703_4219),
        nonce: 42,
    };
    (Block { header, txdata }, watched)
}

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<28} min {:>8.3?}  median {:>8.3?}  p90 {:>8.3?}  mean {:>8.3?}  (n={n})",
        samples[0],
        samples[n / 2],
        samples[n * 9 / 10],
        total / u32::try_from(n).unwrap_or(1)
    );
}

fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let (block, block_scripts) = generate_block(3_000, 8_000);
    let raw = serialize(&block);
    let inputs: usize = block.txdata.iter().map(|t| t.input.len()).sum();
    let outputs: usize = block.txdata.iter().map(|t| t.output.len()).sum();
    println!(
        "block: {} bytes, weight {} WU, {} transactions, {} inputs, {} outputs",
        raw.len(),
        block.weight().to_wu(),
        block.txdata.len(),
        inputs,
        outputs
    );

    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut watched: WatchedScripts = HashSet::with_capacity(1_000_000);
    watched.extend(block_scripts);
    while watched.len() < 1_000_000 {
        watched.insert(p2wpkh(&mut rng));
    }
    println!("watched scripts: {}", watched.len());

    let expected = parse_and_match_block(&raw, &watched)
        .map(|m| m.transfers.len())
        .unwrap_or(0);
    println!("matched transfers: {expected}");
    assert!(expected >= 90, "the watched outputs must match");

    // Warm-up.
    for _ in 0..5 {
        black_box(parse_and_match_block(black_box(&raw), &watched).ok());
    }
    let mut full = Vec::with_capacity(iterations);
    let mut parse = Vec::with_capacity(iterations);
    let mut matching = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let m = parse_and_match_block(black_box(&raw), &watched);
        full.push(t.elapsed());
        assert_eq!(m.map(|m| m.transfers.len()).unwrap_or(0), expected);

        let t = Instant::now();
        let b = parse_block(black_box(&raw));
        parse.push(t.elapsed());
        if let Ok(b) = b {
            let t = Instant::now();
            black_box(match_block(&b, &watched));
            matching.push(t.elapsed());
        }
    }
    stats("parse + match (target 20ms)", full);
    stats("parse only", parse);
    stats("match only", matching);
}
