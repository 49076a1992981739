#!/usr/bin/env node
// A Bitcoin full node (bcoin 1.0.2) adjusted at run time to behave like `bitcoind -regtest`,
// for Coffer's tests. See /docs/chains-bitcoin.md ("The regtest node") for what is adjusted
// and why.
//
//   node regtest-node.js [--port 0] [--rpcuser coffer] [--rpcpassword coffer] [--loglevel error]
//                        [--lifeline stdin]
//
// Serves Bitcoin Core's JSON-RPC (node and wallet methods, `/` and `/wallet/<name>`) on one
// loopback port. Prints one JSON line `{"ready":true,"port":N,...}` on stdout once ready and
// exits on SIGTERM/SIGINT. Every start is a fresh in-memory chain at height 0.
'use strict';

process.env.NODE_BACKEND = 'js';
process.env.BCOIN_NETWORK = 'regtest';

const http = require('http');
const crypto = require('crypto');

// ---------------------------------------------------------------------------------------------
// 1. Core's regtest encodings and soft forks, patched before any Network object exists.
// ---------------------------------------------------------------------------------------------
require('./regtest-network');
// Soft forks that Core's regtest has buried (active from the start): active from this height.
const SOFTFORK_HEIGHT = 1;
const BURIED = new Set(['csv', 'segwit']);

const bcoin = require('bcoin');
const { Chain, FullNode, Mempool, TX, Amount } = bcoin;
const thresholdStates = require('bcoin/lib/blockchain/common').thresholdStates;
const util = require('bcoin/lib/utils/util');

const originalGetState = Chain.prototype.getState;
Chain.prototype.getState = async function getState(prev, deployment) {
  if (BURIED.has(deployment.name))
    return prev.height + 1 >= SOFTFORK_HEIGHT ? thresholdStates.ACTIVE : thresholdStates.DEFINED;
  if (deployment.name === 'segsignal')
    return thresholdStates.DEFINED;
  return originalGetState.call(this, prev, deployment);
};

// bcoin's mempool does not re-add the transactions of a disconnected block when it is empty.
Mempool.prototype._removeBlock = async function _removeBlock(block, txs) {
  for (let i = 1; i < txs.length; i++) {
    const tx = txs[i];
    if (this.hasEntry(tx.hash('hex')))
      continue;
    try {
      await this.insertTX(tx, -1);
    } catch (e) {
      continue; // e.g. spends a coinbase that is immature again: dropped, as Core does
    }
    this.emit('unconfirmed', tx, block);
  }
  this.rejects.reset();
  this.cache.sync(block.prevBlock);
  await this.cache.flush();
  this.tip = block.prevBlock;
};

// ...and on a reorg it evicts every transaction spending a coinbase output; Core evicts only
// those whose coinbase became immature (re-checked by re-adding them).
Mempool.prototype._handleReorg = async function _handleReorg() {
  const height = this.chain.height + 1;
  for (const entry of Array.from(this.map.values())) {
    const tx = entry.tx;
    let bad = false;
    for (const { prevout } of tx.inputs) {
      if (this.hasEntry(prevout.hash))
        continue;
      const coin = await this.chain.readCoin(prevout);
      if (!coin) { bad = true; break; }
      if (coin.coinbase && height - coin.height < 100) { bad = true; break; }
    }
    if (bad)
      this.evictEntry(entry);
  }
};

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------
function parseArgs(argv) {
  const out = { port: 0, rpcuser: 'coffer', rpcpassword: 'coffer', loglevel: 'error', lifeline: 'no' };
  for (let i = 0; i < argv.length; i++) {
    let [key, value] = argv[i].replace(/^--?/, '').split('=', 2);
    if (value === undefined) value = argv[++i];
    if (!(key in out) || value === undefined) {
      process.stderr.write(`unknown or incomplete option: ${argv[i]}\n`);
      process.exit(2);
    }
    out[key] = value;
  }
  out.port = Number(out.port);
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
    process.stderr.write('--port must be 0..65535\n');
    process.exit(2);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC errors with Core's codes
// ---------------------------------------------------------------------------------------------
const RPC_MISC_ERROR = -1;
const RPC_TYPE_ERROR = -3;
const RPC_INVALID_ADDRESS_OR_KEY = -5;
const RPC_INVALID_PARAMETER = -8;
const RPC_DESERIALIZATION_ERROR = -22;
const RPC_VERIFY_ERROR = -25;
const RPC_VERIFY_REJECTED = -26;
const RPC_VERIFY_ALREADY_IN_CHAIN = -27;
const RPC_METHOD_NOT_FOUND = -32601;

class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.rpcCode = code;
  }
}

function hashArg(value, what) {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value))
    throw new RpcError(RPC_INVALID_PARAMETER, `${what} must be of length 64 (hex)`);
  return util.revHex(value.toLowerCase());
}

function bitsHex(bits) {
  return (bits >>> 0).toString(16).padStart(8, '0');
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(10);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// The node
// ---------------------------------------------------------------------------------------------
async function main() {
  const args = parseArgs(process.argv.slice(2));

  const node = new FullNode({
    network: 'regtest',
    memory: true,
    indexTX: true,
    indexAddress: false,
    workers: false,
    listen: false,
    logLevel: args.loglevel,
    logConsole: true,
    coinCache: 0,
    walletWitness: true,
    apiKey: crypto.randomBytes(32).toString('hex')
  });
  // Like Core, accept transactions that signal BIP-125 replaceability (stock bcoin refuses them
  // as non-standard; it still cannot replace one, a conflicting spend is rejected).
  node.mempool.options.replaceByFee = true;
  node.use(bcoin.wallet.plugin);
  const walletPlugin = node.require('walletdb');

  // No P2P, no stock HTTP servers: one Core-like RPC server below.
  node.pool.open = async () => {};
  node.pool.connect = async () => {};
  node.pool.close = async () => {};
  node.http.open = async () => {};
  node.http.close = async () => {};
  walletPlugin.http.open = async () => {};
  walletPlugin.http.close = async () => {};

  await node.open();

  const chain = node.chain;
  const mempool = node.mempool;
  const wdb = walletPlugin.wdb;
  const nodeRpc = node.rpc;
  const walletRpc = walletPlugin.rpc;
  walletRpc.wallet = wdb.primary;

  // Blocks disconnected by invalidateblock, by hash (internal order), for reconsiderblock.
  const invalidated = new Set();

  async function walletSynced() {
    await waitFor(async () => {
      if (wdb.state.height !== chain.height) return false;
      const tip = await wdb.getTip();
      return Boolean(tip) && tip.hash === chain.tip.hash;
    }, 10000);
  }

  function isMature(coin) {
    if (!coin.coinbase) return true;
    if (coin.height === -1) return false;
    return chain.height - coin.height + 1 >= 101; // Core: depth > COINBASE_MATURITY
  }

  // Disconnect the main chain down to (excluding) `fork`; transactions go back to the mempool.
  async function disconnectTo(fork) {
    while (chain.tip.hash !== fork.hash) {
      await chain.disconnect(chain.tip);
    }
  }

  async function reconnectBranch(target) {
    const fork = await chain.findFork(chain.tip, target);
    const connect = [];
    for (let e = target; e.hash !== fork.hash; e = await chain.getPrevious(e))
      connect.push(e);
    await disconnectTo(fork);
    for (let i = connect.length - 1; i >= 0; i--)
      await chain.reconnect(connect[i]);
    await mempool._handleReorg();
  }

  // The most-work chain tip whose ancestry contains no invalidated block.
  async function bestValidTip() {
    let best = chain.tip;
    for (const hash of await chain.db.getTips()) {
      const tip = await chain.getEntry(hash);
      if (!tip || tip.chainwork.lte(best.chainwork)) continue;
      let ok = true;
      for (let e = tip; e && !chain.isMainChain(e) ; e = await chain.getPrevious(e)) {
        if (invalidated.has(e.hash) || chain.invalid.has(e.hash)) { ok = false; break; }
      }
      if (ok) best = tip;
    }
    return best;
  }

  function headerJSON(entry, json) {
    json.bits = bitsHex(entry.bits);
    json.nonce = entry.nonce >>> 0;
    if (json.previousblockhash === null) delete json.previousblockhash;
    if (json.nextblockhash === null) delete json.nextblockhash;
    return json;
  }

  async function mainEntry(hash) {
    const entry = await chain.getEntry(hash);
    if (!entry) throw new RpcError(RPC_INVALID_ADDRESS_OR_KEY, 'Block not found');
    return entry;
  }

  function confirmationsOf(entry, isMain) {
    return isMain ? chain.height - entry.height + 1 : -1;
  }

  // BIP-125: replaceable if it signals, or if an unconfirmed ancestor does.
  function replaceable(tx, seen = new Set()) {
    if (tx.inputs.some(input => input.sequence < 0xfffffffe)) return true;
    for (const { prevout } of tx.inputs) {
      if (seen.has(prevout.hash)) continue;
      seen.add(prevout.hash);
      const parent = mempool.getEntry(prevout.hash);
      if (parent && replaceable(parent.tx, seen)) return true;
    }
    return false;
  }

  function mempoolEntryJSON(entry) {
    const e = nodeRpc.entryToJSON(entry);
    const tx = entry.tx;
    const fee = Amount.btc(entry.fee, true);
    return {
      vsize: tx.getVirtualSize(),
      weight: tx.getWeight(),
      time: e.time,
      height: e.height,
      // Core counts the transaction itself in both.
      descendantcount: e.descendantcount + 1,
      descendantsize: e.descendantsize,
      ancestorcount: e.ancestorcount + 1,
      ancestorsize: tx.getVirtualSize(),
      wtxid: tx.wtxid(),
      fees: { base: fee, modified: fee, ancestor: fee, descendant: fee },
      depends: e.depends,
      spentby: [],
      'bip125-replaceable': replaceable(tx),
      unbroadcast: false
    };
  }

  const overrides = {
    async getblockchaininfo() {
      const info = await nodeRpc.getBlockchainInfo([]);
      const softforks = {};
      for (const name of ['bip34', 'bip66', 'bip65', 'csv', 'segwit'])
        softforks[name] = { type: 'buried', active: true, height: name === 'csv' || name === 'segwit' ? SOFTFORK_HEIGHT : 1 };
      delete info.bip9_softforks;
      delete info.pruneheight;
      return Object.assign(info, {
        chain: 'regtest',
        headers: chain.height,
        time: chain.tip.time,
        initialblockdownload: false,
        size_on_disk: 0,
        softforks,
        warnings: ''
      });
    },

    async getblock(params) {
      if (params.length < 1 || params.length > 2)
        throw new RpcError(RPC_MISC_ERROR, 'getblock "blockhash" ( verbosity )');
      const hash = hashArg(params[0], 'blockhash');
      let verbosity = params.length > 1 ? params[1] : 1;
      if (verbosity === true) verbosity = 1;
      if (verbosity === false) verbosity = 0;
      if (![0, 1, 2, 3].includes(verbosity))
        throw new RpcError(RPC_TYPE_ERROR, 'verbosity must be 0, 1 or 2');
      const entry = await mainEntry(hash);
      const block = await chain.getBlock(entry.hash);
      if (!block) throw new RpcError(RPC_MISC_ERROR, 'Block not available');
      if (verbosity === 0) return block.toRaw().toString('hex');
      const json = await nodeRpc.blockToJSON(entry, block, verbosity >= 2);
      const isMain = await chain.isMainChain(entry);
      json.confirmations = confirmationsOf(entry, isMain);
      json.nTx = block.txs.length;
      if (!isMain) json.nextblockhash = null;
      if (verbosity >= 2) {
        json.tx.forEach((tx, i) => {
          delete tx.blockhash; delete tx.confirmations; delete tx.time; delete tx.blocktime;
          tx.hex = block.txs[i].toRaw().toString('hex');
        });
      }
      return headerJSON(entry, json);
    },

    async getblockheader(params) {
      if (params.length < 1 || params.length > 2)
        throw new RpcError(RPC_MISC_ERROR, 'getblockheader "blockhash" ( verbose )');
      const hash = hashArg(params[0], 'blockhash');
      const verbose = params.length > 1 ? Boolean(params[1]) : true;
      const entry = await mainEntry(hash);
      if (!verbose) return entry.toRaw().toString('hex', 0, 80);
      const json = await nodeRpc.headerToJSON(entry);
      const isMain = await chain.isMainChain(entry);
      json.confirmations = confirmationsOf(entry, isMain);
      if (!isMain) json.nextblockhash = null;
      const block = await chain.getBlock(entry.hash);
      json.nTx = block ? block.txs.length : 0;
      const out = headerJSON(entry, json);
      out.nTx = json.nTx;
      return out;
    },

    async getmempoolentry(params) {
      const hash = hashArg(params[0], 'txid');
      const entry = mempool.getEntry(hash);
      if (!entry) throw new RpcError(RPC_INVALID_ADDRESS_OR_KEY, 'Transaction not in mempool');
      return mempoolEntryJSON(entry);
    },

    async getrawmempool(params) {
      const verbose = Boolean(params[0]);
      if (!verbose) return mempool.getSnapshot().map(util.revHex);
      const out = {};
      for (const entry of mempool.map.values()) out[entry.txid()] = mempoolEntryJSON(entry);
      return out;
    },

    // Test helper, not a Core method: evict a transaction (and its descendants) from the
    // mempool, as Core does when it expires (-mempoolexpiry) or the mempool is full. Lets tests
    // produce "a watched payment left the mempool without being mined" (bcoin 1.0.2 cannot
    // replace by fee).
    async evictmempooltransaction(params) {
      const hash = hashArg(params[0], 'txid');
      const entry = mempool.getEntry(hash);
      if (!entry) throw new RpcError(RPC_INVALID_ADDRESS_OR_KEY, 'Transaction not in mempool');
      mempool.evictEntry(entry);
      return null;
    },

    async getmempoolinfo() {
      let bytes = 0;
      for (const entry of mempool.map.values()) bytes += entry.tx.getVirtualSize();
      return {
        loaded: true,
        size: mempool.map.size,
        bytes,
        usage: mempool.getSize(),
        total_fee: 0,
        maxmempool: mempool.options.maxSize,
        mempoolminfee: Amount.btc(node.network.minRelay, true),
        minrelaytxfee: Amount.btc(node.network.minRelay, true),
        unbroadcastcount: 0
      };
    },

    async getrawtransaction(params) {
      if (params.length < 1)
        throw new RpcError(RPC_MISC_ERROR, 'getrawtransaction "txid" ( verbose "blockhash" )');
      const hash = hashArg(params[0], 'txid');
      const verbose = params.length > 1 ? Boolean(params[1]) : false;
      const meta = await node.getMeta(hash);
      if (!meta)
        throw new RpcError(RPC_INVALID_ADDRESS_OR_KEY,
          'No such mempool or blockchain transaction. Use gettransaction for wallet transactions.');
      const tx = meta.tx;
      if (!verbose) return tx.toRaw().toString('hex');
      let entry = null;
      if (meta.block) {
        entry = await chain.getEntry(meta.block);
        if (entry && !(await chain.isMainChain(entry))) entry = null;
      }
      const json = nodeRpc.txToJSON(tx, entry);
      json.hex = tx.toRaw().toString('hex');
      if (!entry) {
        delete json.blockhash; delete json.confirmations; delete json.time; delete json.blocktime;
      }
      return json;
    },

    async sendrawtransaction(params) {
      if (params.length < 1 || typeof params[0] !== 'string')
        throw new RpcError(RPC_MISC_ERROR, 'sendrawtransaction "hexstring" ( maxfeerate )');
      let tx;
      try {
        tx = TX.fromRaw(Buffer.from(params[0], 'hex'));
      } catch (e) {
        throw new RpcError(RPC_DESERIALIZATION_ERROR, 'TX decode failed');
      }
      if (mempool.hasEntry(tx.hash('hex'))) return tx.txid();
      if (await chain.db.hasCoins(tx))
        throw new RpcError(RPC_VERIFY_ALREADY_IN_CHAIN, 'Transaction already in block chain');
      try {
        const missing = await mempool.addTX(tx);
        if (missing && missing.length > 0)
          throw new RpcError(RPC_VERIFY_ERROR, 'bad-txns-inputs-missingorspent');
      } catch (e) {
        if (e instanceof RpcError) throw e;
        if (e.type === 'VerifyError')
          throw new RpcError(RPC_VERIFY_REJECTED, e.reason || e.message);
        throw e;
      }
      return tx.txid();
    },

    async estimatesmartfee(params) {
      const blocks = Number(params[0]);
      if (!Number.isInteger(blocks) || blocks < 1 || blocks > 1008)
        throw new RpcError(RPC_INVALID_PARAMETER, 'Invalid conf_target, must be between 1 and 1008');
      let rate = -1;
      try {
        rate = node.fees.estimateFee(Math.min(blocks, 15), true);
      } catch (e) {
        rate = -1;
      }
      if (!(rate > 0))
        return { errors: ['Insufficient data or no feerate found'], blocks };
      return { feerate: Amount.btc(rate, true), blocks };
    },

    async invalidateblock(params) {
      const hash = hashArg(params[0], 'blockhash');
      const entry = await mainEntry(hash);
      if (entry.height === 0) throw new RpcError(RPC_MISC_ERROR, 'Cannot invalidate genesis');
      const unlock = await chain.locker.lock();
      try {
        invalidated.add(entry.hash);
        chain.setInvalid(entry.hash);
        if (await chain.isMainChain(entry)) {
          const parent = await chain.getPrevious(entry);
          // Mark the disconnected descendants too, so they cannot come back by themselves.
          for (let e = chain.tip; e.hash !== parent.hash; e = await chain.getPrevious(e))
            chain.setInvalid(e.hash);
          await disconnectTo(parent);
          await mempool._handleReorg();
        }
      } finally {
        unlock();
      }
      await walletSynced();
      return null;
    },

    async reconsiderblock(params) {
      const hash = hashArg(params[0], 'blockhash');
      const entry = await mainEntry(hash);
      const unlock = await chain.locker.lock();
      try {
        invalidated.delete(entry.hash);
        // Forget the flag on the block and every known descendant.
        for (const tipHash of await chain.db.getTips()) {
          const path = [];
          let e = await chain.getEntry(tipHash);
          while (e && e.height > entry.height) { path.push(e); e = await chain.getPrevious(e); }
          if (e && e.hash === entry.hash) {
            chain.removeInvalid(entry.hash);
            for (const d of path) { chain.removeInvalid(d.hash); invalidated.delete(d.hash); }
          }
        }
        chain.removeInvalid(entry.hash);
        const best = await bestValidTip();
        if (best.hash !== chain.tip.hash) await reconnectBranch(best);
      } finally {
        unlock();
      }
      await walletSynced();
      return null;
    },

    // ----- wallet (one wallet: every name maps to it) -----
    async createwallet(params) { return { name: String(params[0] || ''), warning: '' }; },
    async loadwallet(params) { return { name: String(params[0] || ''), warning: '' }; },
    async listwallets() { return ['']; },

    async getnewaddress() {
      await walletSynced();
      const key = await wdb.primary.createReceive(0);
      return key.getAddress().toString(node.network);
    },

    async getbalance() {
      await walletSynced();
      const wallet = wdb.primary;
      let total = 0;
      for (const coin of await wallet.getCoins()) {
        if (!isMature(coin)) continue;
        if (coin.height === -1) {
          // Untrusted unconfirmed coins (not our own change) are not in Core's balance.
          const wtx = await wallet.getTX(coin.hash);
          if (!wtx) continue;
          let ours = true;
          for (const input of wtx.tx.inputs) {
            if (!(await wallet.getCoin(input.prevout.hash, input.prevout.index)) &&
                !(await wallet.txdb.getSpentCoin(input.prevout, input.prevout))) { ours = false; break; }
          }
          if (!ours) continue;
        }
        total += coin.value;
      }
      return Amount.btc(total, true);
    },

    async listunspent(params) {
      await walletSynced();
      const list = await walletRpc.execute({ method: 'listunspent', params });
      const out = [];
      for (const item of list) {
        const coin = await wdb.primary.getCoin(util.revHex(item.txid), item.vout);
        if (coin && !isMature(coin)) continue;
        out.push(item);
      }
      return out;
    },

    async sendtoaddress(params) {
      await walletSynced();
      params = params.slice();
      if (typeof params[1] === 'string' && /^[0-9]+(\.[0-9]{1,8})?$/.test(params[1]))
        params[1] = Number(params[1]);
      const txid = await walletRpc.execute({ method: 'sendtoaddress', params });
      const hash = util.revHex(txid);
      const inPool = await waitFor(() => mempool.hasEntry(hash), 10000);
      if (!inPool) throw new RpcError(RPC_MISC_ERROR, `transaction ${txid} did not reach the mempool`);
      return txid;
    },

    // bcoin's version crashes reading `details.fee` when the fee is unknown (a received tx).
    async gettransaction(params) {
      await walletSynced();
      const hash = hashArg(params[0], 'txid');
      const wallet = wdb.primary;
      const wtx = await wallet.getTX(hash);
      if (!wtx) throw new RpcError(RPC_INVALID_ADDRESS_OR_KEY, 'Invalid or non-wallet transaction id');
      const details = await wallet.toDetails(wtx);
      const receive = !details.inputs.some(member => member.path);
      // The fee is known only when every input is the wallet's.
      const feeKnown = details.inputs.every(member => member.path);
      const fee = feeKnown ? details.getFee() : 0;
      const det = [];
      let sent = 0;
      let received = 0;
      details.outputs.forEach((member, i) => {
        const address = member.address ? member.address.toString(node.network) : undefined;
        if (member.path) {
          if (member.path.branch === 1) return; // change
          det.push({ address, category: 'receive', amount: Amount.btc(member.value, true), label: '', vout: i });
          received += member.value;
          return;
        }
        if (receive) return;
        const item = { address, category: 'send', amount: -Amount.btc(member.value, true), vout: i };
        if (feeKnown) item.fee = -Amount.btc(fee, true);
        det.push(item);
        sent += member.value;
      });
      const out = {
        amount: Amount.btc(receive ? received : -sent, true),
        confirmations: details.getDepth(chain.height),
        txid: util.revHex(details.hash),
        walletconflicts: [],
        time: details.mtime,
        timereceived: details.mtime,
        'bip125-replaceable': replaceable(details.tx) ? 'yes' : 'no',
        details: det,
        hex: details.tx.toRaw().toString('hex')
      };
      if (!receive && feeKnown) out.fee = -Amount.btc(fee, true);
      if (details.block) {
        out.blockhash = util.revHex(details.block);
        out.blockheight = details.height;
        out.blockindex = details.index;
        out.blocktime = details.time;
      }
      return out;
    },

    async generatetoaddress(params) {
      const result = await nodeRpc.execute({ method: 'generatetoaddress', params });
      await walletSynced();
      return result;
    }
  };

  // Wallet methods whose answers depend on the tip wait for the wallet to reach it first.
  const walletMethods = new Set(Object.keys(walletRpc.calls));

  async function dispatch(method, params) {
    if (Object.prototype.hasOwnProperty.call(overrides, method))
      return overrides[method](params);
    if (nodeRpc.calls[method])
      return nodeRpc.execute({ method, params });
    if (walletMethods.has(method)) {
      await walletSynced();
      walletRpc.wallet = wdb.primary;
      return walletRpc.execute({ method, params });
    }
    throw new RpcError(RPC_METHOD_NOT_FOUND, 'Method not found');
  }

  async function handleOne(cmd) {
    const id = cmd && cmd.id !== undefined ? cmd.id : null;
    if (!cmd || typeof cmd.method !== 'string')
      return { status: 400, body: { result: null, error: { code: -32600, message: 'Invalid Request object' }, id } };
    const params = Array.isArray(cmd.params) ? cmd.params : (cmd.params == null ? [] : null);
    if (params === null)
      return { status: 400, body: { result: null, error: { code: -32600, message: 'Params must be an array' }, id } };
    try {
      let result = await dispatch(cmd.method, params);
      if (result === undefined) result = null;
      return { status: 200, body: { result, error: null, id } };
    } catch (err) {
      let code;
      if (err instanceof RpcError) code = err.rpcCode;
      else if (typeof err.code === 'number') code = err.code;
      else if (err.type === 'RPCError') code = err.code;
      else if (err.type === 'ValidationError') code = RPC_TYPE_ERROR;
      else if (err.type === 'FundingError') code = -6;
      else code = RPC_MISC_ERROR;
      const status = code === RPC_METHOD_NOT_FOUND ? 404 : 500;
      return { status, body: { result: null, error: { code, message: err.message }, id } };
    }
  }

  const expected = Buffer.from(`${args.rpcuser}:${args.rpcpassword}`);
  function authorized(req) {
    const header = req.headers.authorization || '';
    const m = /^Basic (.+)$/i.exec(header);
    if (!m) return false;
    const given = Buffer.from(m[1], 'base64');
    const a = crypto.createHash('sha256').update(given).digest();
    const b = crypto.createHash('sha256').update(expected).digest();
    return crypto.timingSafeEqual(a, b);
  }

  // Requests are served one at a time, like a single-threaded bitcoind RPC queue; this keeps
  // reorg helpers and wallet sends from interleaving.
  let queue = Promise.resolve();

  const server = http.createServer((req, res) => {
    const reply = (status, body) => {
      const data = Buffer.from(JSON.stringify(body) + '\n');
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
      res.end(data);
    };
    if (!authorized(req)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="jsonrpc"' });
      res.end();
      return;
    }
    if (req.method !== 'POST' || !(req.url === '/' || /^\/wallet\/[^/]*$/.test(req.url))) {
      reply(404, { result: null, error: { code: -32601, message: 'Not found' }, id: null });
      return;
    }
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        reply(500, { result: null, error: { code: -32700, message: 'Parse error' }, id: null });
        return;
      }
      queue = queue.then(async () => {
        if (Array.isArray(body)) {
          const out = [];
          for (const cmd of body) out.push((await handleOne(cmd)).body);
          reply(200, out);
        } else {
          const { status, body: out } = await handleOne(body);
          reply(status, out);
        }
      }).catch(err => {
        reply(500, { result: null, error: { code: RPC_MISC_ERROR, message: String(err && err.message) }, id: null });
      });
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, '127.0.0.1', resolve);
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    server.close();
    try { await node.close(); } catch (e) { /* exiting anyway */ }
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // --lifeline stdin: exit when stdin closes (the parent test process died without stopping us).
  if (args.lifeline === 'stdin') {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }

  const address = server.address();
  process.stdout.write(JSON.stringify({
    ready: true,
    port: address.port,
    pid: process.pid,
    network: 'regtest',
    genesis: chain.network.genesis.hash ? util.revHex(chain.network.genesis.hash) : null
  }) + '\n');
}

main().catch(err => {
  process.stderr.write(`regtest-node: ${err && err.stack || err}\n`);
  process.exit(1);
});
