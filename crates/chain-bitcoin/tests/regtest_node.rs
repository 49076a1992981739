#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The bcoin regtest node (tools/bitcoin-regtest) behaves like `bitcoind -regtest` for what
//! Coffer needs, exercised over JSON-RPC with this crate's client, deriver and matcher.

use std::collections::HashSet;
use std::str::FromStr;

use coffer_chain_bitcoin::bitcoin::{Address, BlockHash, Txid};
use coffer_chain_bitcoin::regtest::RegtestNode;
use coffer_chain_bitcoin::{
    BitcoinDeriver, BitcoindRpc, RpcError, WatchedScripts, match_transaction,
    parse_and_match_block, signals_rbf,
};
use coffer_core::{BaseUnits, Chain, ChainId, ChainKind, Network};
use serde_json::{Value, json};

// m/84'/1'/0' of the BIP-84 mnemonic "abandon … about".
const TPUB: &str = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M";

fn regtest_chain() -> Chain {
    Chain {
        id: ChainId::parse("bitcoin").unwrap(),
        kind: ChainKind::Bitcoin,
        network: Network::Regtest,
        name: "Bitcoin regtest".into(),
        confirmations: 1,
        evm_chain_id: None,
    }
}

struct Derived {
    address: String,
    watched: WatchedScripts,
}

fn derived(index: u32) -> Derived {
    let d = BitcoinDeriver::new();
    let chain = regtest_chain();
    let wallet = d.normalize(&chain, TPUB).unwrap();
    let address = d.derive(&chain, &wallet, index).unwrap().address;
    let script = d.script(&chain, &wallet, index).unwrap();
    // The script is the address's own scriptPubKey.
    let parsed = Address::from_str(&address)
        .unwrap()
        .require_network(coffer_chain_bitcoin::bitcoin::Network::Regtest)
        .unwrap();
    assert_eq!(parsed.script_pubkey(), script);
    Derived {
        address,
        watched: HashSet::from([script]),
    }
}

async fn mine(rpc: &BitcoindRpc, n: u32, address: &str) -> Vec<BlockHash> {
    rpc.call("generatetoaddress", json!([n, address]))
        .await
        .unwrap()
}

async fn confirmations(rpc: &BitcoindRpc, hash: &BlockHash) -> i64 {
    rpc.get_block_header(hash).await.unwrap().confirmations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mining_payment_confirmations_and_reorg() {
    let node = RegtestNode::start().unwrap();
    let rpc = node.client(None).unwrap();
    let wallet_rpc = node.client(Some("coffer")).unwrap();

    let info = rpc.get_blockchain_info().await.unwrap();
    assert_eq!((info.chain.as_str(), info.blocks), ("regtest", 0));
    assert_eq!(
        info.bestblockhash.to_string(),
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    );
    let softforks: Value = rpc.call("getblockchaininfo", json!([])).await.unwrap();
    assert_eq!(softforks["softforks"]["segwit"]["active"], json!(true));

    // Mine one block to an address derived from the tpub, independently of the node's wallet.
    let a0 = derived(0);
    assert!(a0.address.starts_with("bcrt1q"));
    let h1 = mine(&rpc, 1, &a0.address).await[0];
    let raw = rpc.get_block_raw(&h1).await.unwrap();
    let matched = parse_and_match_block(&raw, &a0.watched).unwrap();
    assert_eq!(matched.hash, h1);
    assert_eq!(matched.transfers.len(), 1);
    assert!(matched.transfers[0].coinbase);
    assert_eq!(matched.transfers[0].amount, BaseUnits::new(5_000_000_000));

    // Fund the node's wallet: 101 blocks, of which only the first coinbase is mature.
    let w: String = wallet_rpc.call("getnewaddress", json!([])).await.unwrap();
    assert!(w.starts_with("bcrt1q"), "{w}");
    mine(&rpc, 101, &w).await;
    let balance: Value = wallet_rpc.call("getbalance", json!([])).await.unwrap();
    assert_eq!(balance, json!(50), "immature coinbases are not counted");

    // Pay an external address derived from the tpub; the txid is in the mempool on return.
    let a1 = derived(1);
    let txid: Txid = wallet_rpc
        .call("sendtoaddress", json!([a1.address, 0.125]))
        .await
        .unwrap();
    assert!(rpc.get_raw_mempool().await.unwrap().contains(&txid));
    let tx = rpc
        .get_raw_transaction(&txid)
        .await
        .unwrap()
        .expect("in mempool");
    let pending = match_transaction(&tx, &a1.watched);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].amount, BaseUnits::new(12_500_000));
    assert!(!pending[0].coinbase);
    assert!(!signals_rbf(&tx));
    assert_eq!(rpc.mempool_replaceable(&txid).await.unwrap(), Some(false));

    // Confirm it; every getblock verbosity has Core's shape.
    let b1 = mine(&rpc, 1, &w).await[0];
    assert_eq!(rpc.mempool_replaceable(&txid).await.unwrap(), None);
    let matched =
        parse_and_match_block(&rpc.get_block_raw(&b1).await.unwrap(), &a1.watched).unwrap();
    assert_eq!(matched.transfers, pending);
    assert_eq!(matched.tx_count, 2);
    let v1: Value = rpc
        .call("getblock", json!([b1.to_string(), 1]))
        .await
        .unwrap();
    assert_eq!(v1["tx"][1], json!(txid.to_string()));
    assert_eq!(v1["bits"], json!("207fffff"));
    assert_eq!(v1["nTx"], json!(2));
    let v2: Value = rpc
        .call("getblock", json!([b1.to_string(), 2]))
        .await
        .unwrap();
    assert_eq!(v2["tx"][1]["txid"], json!(txid.to_string()));
    assert_eq!(
        v2["tx"][1]["vout"][pending[0].vout as usize]["value"],
        json!(0.125)
    );
    let header: Value = rpc
        .call("getblockheader", json!([b1.to_string()]))
        .await
        .unwrap();
    assert_eq!(header["bits"], json!("207fffff"));
    assert!(header["nonce"].is_u64());
    assert_eq!(header["height"], json!(103));
    // With the tx index, a confirmed transaction is still found.
    assert!(rpc.get_raw_transaction(&txid).await.unwrap().is_some());

    // The wallet's view: a send with its fee, confirmed once.
    let wtx: Value = wallet_rpc
        .call("gettransaction", json!([txid.to_string()]))
        .await
        .unwrap();
    assert_eq!(wtx["confirmations"], json!(1));
    assert_eq!(wtx["amount"], json!(-0.125));
    assert!(wtx["fee"].is_number() && wtx["fee"].to_string().starts_with('-'));
    assert_eq!(wtx["blockhash"], json!(b1.to_string()));

    // Confirmations count up.
    assert_eq!(confirmations(&rpc, &b1).await, 1);
    let old_tip = *mine(&rpc, 2, &w).await.last().unwrap();
    assert_eq!(confirmations(&rpc, &b1).await, 3);

    // invalidateblock: back to the parent, the payment back in the mempool.
    rpc.call::<Value>("invalidateblock", json!([b1.to_string()]))
        .await
        .unwrap();
    assert_eq!(rpc.get_blockchain_info().await.unwrap().blocks, 102);
    assert_eq!(confirmations(&rpc, &b1).await, -1);
    assert!(rpc.get_raw_mempool().await.unwrap().contains(&txid));

    // Re-mined on a new branch.
    let b1_new = mine(&rpc, 1, &w).await[0];
    assert_ne!(b1_new, b1);
    let matched =
        parse_and_match_block(&rpc.get_block_raw(&b1_new).await.unwrap(), &a1.watched).unwrap();
    assert_eq!(matched.transfers, pending);
    assert_eq!(rpc.get_raw_mempool().await.unwrap(), Vec::<Txid>::new());

    // reconsiderblock: the old branch has more work and wins again.
    rpc.call::<Value>("reconsiderblock", json!([b1.to_string()]))
        .await
        .unwrap();
    let info = rpc.get_blockchain_info().await.unwrap();
    assert_eq!((info.blocks, info.bestblockhash), (105, old_tip));
    assert_eq!(confirmations(&rpc, &b1).await, 3);
    assert_eq!(confirmations(&rpc, &b1_new).await, -1);
    assert_eq!(rpc.get_block_hash(103).await.unwrap(), b1);
    assert!(rpc.get_raw_mempool().await.unwrap().is_empty());
    let verbose: Value = rpc
        .call("getrawtransaction", json!([txid.to_string(), true]))
        .await
        .unwrap();
    assert_eq!(verbose["blockhash"], json!(b1.to_string()));

    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_cores_codes() {
    let node = RegtestNode::start().unwrap();
    let rpc = node.client(None).unwrap();
    let unknown = Txid::from_str(&"11".repeat(32)).unwrap();

    // getmempoolentry / getrawtransaction of an unknown tx: -5.
    let err = rpc
        .call::<Value>("getmempoolentry", json!([unknown.to_string()]))
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Rpc { code: -5, .. }), "{err}");
    assert_eq!(rpc.get_raw_transaction(&unknown).await.unwrap(), None);
    // getblockhash above the tip: not found.
    assert!(rpc.get_block_hash(5).await.unwrap_err().is_not_found());
    // Unknown block: -5.
    let err = rpc
        .get_block_raw(&BlockHash::from_str(&"22".repeat(32)).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Rpc { code: -5, .. }), "{err}");

    // sendrawtransaction surfaces rejections instead of returning a txid.
    let err = rpc
        .call::<Value>("sendrawtransaction", json!(["00ff"]))
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Rpc { code: -22, .. }), "{err}");
    let w = derived(0).address;
    mine(&rpc, 101, &w).await;
    let coinbase_block = rpc.get_block_hash(1).await.unwrap();
    let block: Value = rpc
        .call("getblock", json!([coinbase_block.to_string(), 2]))
        .await
        .unwrap();
    let coinbase_hex = block["tx"][0]["hex"].as_str().unwrap().to_owned();
    // A transaction spending an output that does not exist: missing inputs (-25).
    let spend_missing = "0200000001".to_owned()
        + &"33".repeat(32)
        + "00000000"
        + "00"
        + "ffffffff"
        + "01"
        + "00e1f50500000000"
        + "160014"
        + &"44".repeat(20)
        + "00000000";
    let err = rpc
        .call::<Value>("sendrawtransaction", json!([spend_missing]))
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Rpc { code: -25, .. }), "{err}");
    // A coinbase is never accepted into the mempool (-26 or -27).
    let err = rpc
        .call::<Value>("sendrawtransaction", json!([coinbase_hex]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::Rpc {
                code: -26 | -27,
                ..
            }
        ),
        "{err}"
    );

    // Wrong credentials: 401, a typed error.
    let bad = coffer_chain_bitcoin::BitcoindRpc::new(coffer_chain_bitcoin::RpcConfig {
        url: node.url(),
        user: "coffer".into(),
        password: "wrong".into(),
        timeout: std::time::Duration::from_secs(5),
    })
    .unwrap();
    assert!(matches!(
        bad.get_blockchain_info().await.unwrap_err(),
        RpcError::Unauthorized
    ));

    let pid = node.pid;
    node.stop();
    // Stopped: the port no longer answers.
    let err = rpc.get_blockchain_info().await.unwrap_err();
    assert!(err.is_transient(), "{err} (pid {pid})");
}
