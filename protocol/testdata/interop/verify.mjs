// Verifies Spärr's golden vectors with implementations that share no code
// with the Go module: jose (JOSE, RFC 7515/7519/8037) for records, and the
// Standard Webhooks reference library plus Node's own Ed25519 for webhook
// signatures. Run by TestInteropJavaScript; exits non-zero on any mismatch.
// Needs Node.js 18 or later (package.json pins versions that support it).
//
//   npm ci && node verify.mjs
import { readFileSync } from "node:fs";
import { createPublicKey, verify as edVerify } from "node:crypto";
import { createLocalJWKSet, jwtVerify, decodeProtectedHeader } from "jose";
import { Webhook } from "standardwebhooks";

if (Number(process.versions.node.split(".")[0]) < 18) {
  console.log(`Node.js ${process.version} is too old: these checks need Node.js 18 or later`);
  process.exit(1);
}

const read = (name) => JSON.parse(readFileSync(new URL(`../${name}`, import.meta.url)));
let failures = 0;
const fail = (msg) => {
  failures++;
  console.log(`FAIL ${msg}`);
};

// Records: every one verifies against jwks.json, with the right typ, and its
// payload is exactly the claim set beside it.
const jwks = createLocalJWKSet(read("jwks.json"));
const records = read("records.json");
for (const r of records) {
  try {
    const header = decodeProtectedHeader(r.jws);
    const { payload, protectedHeader } = await jwtVerify(r.jws, jwks, {
      typ: "secevent+jwt",
      algorithms: ["EdDSA", "ES256"],
      currentDate: new Date(r.claims.iat * 1000),
    });
    if (protectedHeader.kid !== header.kid) fail(`${r.name}: kid changed`);
    if (JSON.stringify(payload) !== JSON.stringify(r.claims)) fail(`${r.name}: payload differs from claims`);
    if (Object.keys(payload.events).length !== 1) fail(`${r.name}: not exactly one event`);
  } catch (e) {
    fail(`${r.name}: ${e.code ?? e.name}: ${e.message}`);
  }
}
// A record with one payload byte changed must not verify.
{
  const [h, p, s] = records[0].jws.split(".");
  const flipped = p.slice(0, 10) + (p[10] === "A" ? "B" : "A") + p.slice(11);
  try {
    await jwtVerify([h, flipped, s].join("."), jwks, { currentDate: new Date(records[0].claims.iat * 1000) });
    fail("tampered record verified");
  } catch {}
}
console.log(`records: ${records.length} checked with jose`);

// Webhooks: a row is valid when its timestamp is within 5 minutes of the
// verifier's clock (verify_at, or the timestamp itself) and a v1 entry
// verifies under the secret (Standard Webhooks library) or a v1a entry under
// the Ed25519 key (node:crypto).
const webhooks = read("webhooks.json");
const realNow = Date.now;
for (const w of webhooks) {
  const now = (w.verify_at ?? w.timestamp) * 1000;
  const headers = {
    "webhook-id": w.id,
    "webhook-timestamp": String(w.timestamp),
    "webhook-signature": w.signature_header,
  };
  let hmacOK = false;
  Date.now = () => now;
  try {
    new Webhook(w.secret).verify(w.body, headers, { jsonParse: false });
    hmacOK = true;
  } catch {}
  Date.now = realNow;
  const timeOK = Math.abs(now / 1000 - w.timestamp) <= 300;
  const key = createPublicKey({ key: w.public_key_jwk, format: "jwk" });
  const content = Buffer.from(`${w.id}.${w.timestamp}.${w.body}`);
  let edOK = false;
  for (const entry of w.signature_header.split(" ")) {
    const [version, sig] = entry.split(",");
    if (version !== "v1a" || sig === undefined) continue;
    const raw = Buffer.from(sig, "base64");
    if (raw.toString("base64") !== sig) continue; // not canonical padded base64
    edOK ||= raw.length === 64 && edVerify(null, content, key, raw);
  }
  const valid = timeOK && (hmacOK || edOK);
  if (valid !== w.valid) fail(`webhook "${w.name}": independent verifiers say valid=${valid}, vector says ${w.valid}`);
}
console.log(`webhooks: ${webhooks.length} checked with standardwebhooks and node:crypto`);

if (failures > 0) {
  console.log(`${failures} failure(s)`);
  process.exit(1);
}
console.log("ok");
