// Rebuilds contracts/TestToken.json from contracts/TestToken.sol with the npm `solc` package
// (no compiler download). Run: (cd tests/evm && npm ci && node build-contracts.js)
const fs = require('fs');
const path = require('path');
const solc = require('solc');
const source = fs.readFileSync(path.join(__dirname, 'contracts', 'TestToken.sol'), 'utf8');
const input = {
  language: 'Solidity',
  sources: { 'TestToken.sol': { content: source } },
  settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: 'paris', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) { console.error(errors.map((e) => e.formattedMessage).join('\n')); process.exit(1); }
const c = out.contracts['TestToken.sol'].TestToken;
const artifact = { compiler: solc.version(), abi: c.abi, bytecode: '0x' + c.evm.bytecode.object };
fs.writeFileSync(path.join(__dirname, 'contracts', 'TestToken.json'), JSON.stringify(artifact, null, 1) + '\n');
console.log('wrote contracts/TestToken.json with', artifact.compiler);
