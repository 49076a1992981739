// Verify a Coffer webhook delivery (Node.js, no dependencies).
//
// Usage: COFFER_WEBHOOK_SECRET=whsec_... COFFER_SIGNATURE='t=...,v1=...' node verify.js body.json
// In a web handler, pass the raw request body (a Buffer, before any JSON parsing) and the
// value of the Coffer-Signature header to verify().
const crypto = require("crypto");
const fs = require("fs");

const TOLERANCE_SECONDS = 300; // refuse replays of old deliveries

function verify(secret, header, rawBody, now = Date.now() / 1000) {
  let timestamp = null;
  const signatures = [];
  for (const part of header.split(",")) {
    const [key, value] = part.trim().split("=", 2);
    if (key === "t") timestamp = value;
    else if (key === "v1") signatures.push(value);
  }
  if (!timestamp || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  const expected = crypto
    .createHmac("sha256", secret)
    .update(Buffer.concat([Buffer.from(timestamp + "."), rawBody]))
    .digest("hex");
  // One v1 per valid secret (two while a secret is being rotated): any match is enough.
  return signatures.some(
    (s) =>
      s.length === expected.length &&
      crypto.timingSafeEqual(Buffer.from(s), Buffer.from(expected)),
  );
}

module.exports = { verify };

if (require.main === module) {
  const body = fs.readFileSync(process.argv[2]);
  if (verify(process.env.COFFER_WEBHOOK_SECRET, process.env.COFFER_SIGNATURE, body)) {
    console.log("valid");
  } else {
    console.error("invalid signature");
    process.exit(1);
  }
}
