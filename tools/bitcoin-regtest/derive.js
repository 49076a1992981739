#!/usr/bin/env node
// Independent address derivation with bcoin's HD code, for cross-checking Coffer's deriver.
//   node derive.js <xpub|tpub> <wpkh|sh-wpkh|pkh> <first index> <count> [main|regtest]
// Prints one address per line for <key>/0/<i>.
'use strict';
require('./regtest-network');
const bcoin = require('bcoin');

const [key, type, first, count, net = 'regtest'] = process.argv.slice(2);
const network = net === 'main' ? 'main' : 'regtest';
const account = bcoin.hd.HDPublicKey.fromBase58(key, network === 'main' ? 'main' : 'regtest');
for (let i = Number(first); i < Number(first) + Number(count); i++) {
  const pub = account.derive(0).derive(i).publicKey;
  const ring = bcoin.KeyRing.fromPublic(pub);
  ring.witness = type !== 'pkh';
  ring.nested = type === 'sh-wpkh';
  process.stdout.write(ring.getAddress('string', network) + '\n');
}
