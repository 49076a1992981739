// Bitcoin Core's regtest encodings for bcoin's regtest network. Required before bcoin builds
// its Network objects (bcoin's own regtest uses `R…` addresses, HRP `rb` and `rpub` keys).
'use strict';

process.env.NODE_BACKEND = process.env.NODE_BACKEND || 'js';
process.env.BCOIN_NETWORK = 'regtest';

const networks = require('bcoin/lib/protocol/networks');
const regtestParams = networks.regtest;
regtestParams.keyPrefix = {
  privkey: 0xef,
  xpubkey: 0x043587cf,
  xprivkey: 0x04358394,
  xpubkey58: 'tpub',
  xprivkey58: 'tprv',
  coinType: 1
};
regtestParams.addressPrefix = {
  pubkeyhash: 0x6f,
  scripthash: 0xc4,
  witnesspubkeyhash: 0x03,
  witnessscripthash: 0x28,
  bech32: 'bcrt'
};
regtestParams.rpcPort = 18443;

module.exports = regtestParams;
