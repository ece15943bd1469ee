// A Spärr member in JavaScript, on the hub's HTTP API alone: it makes its
// key pair, mints its bearer token, tokenizes an e-mail address with the
// hub's oblivious PRF, places a flag with the consumer's consent, checks the
// token, receives and verifies the flag's webhook deliveries, and lifts the
// flag. docs/member-integration.md ("In other languages") explains each step;
// docs/protocol.md has the formats.
//
//   npm ci
//   node member.js keys > bank-js.jwks.json   # the private key goes to member.key.json
//   # the operator registers the member (docs/operations.md, "Members"):
//   sparr member add --id bank-js --name 'Bank JS' --roles flag,check --jwks bank-js.jwks.json
//   SPARR_HUB=http://127.0.0.1:8080 MEMBER_ID=bank-js node member.js
//
// Environment: SPARR_HUB (the hub's URL), MEMBER_ID (your member id),
// MEMBER_KEY (the private key file, default member.key.json), MEMBER_EMAIL (the
// customer's address), PORT (where the webhook receiver listens, default any
// free port on 127.0.0.1) and MEMBER_WEBHOOK_URL (the URL the hub posts to;
// it must be public https unless the hub allows otherwise, as `sparr serve
// --dev` does for loopback, the hub above). Needs Node.js 18 or later.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createPublicKey, randomUUID, verify as ed25519Verify, webcrypto } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SignJWT, calculateJwkThumbprint, createRemoteJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify,
} from 'jose';
import { DLEQProof, Evaluation, Oprf, POPRFClient } from '@cloudflare/voprf-ts';
import { CryptoNoble } from '@cloudflare/voprf-ts/crypto-noble';
import { Webhook } from 'standardwebhooks';

// voprf-ts draws its blinds from the global Web Crypto, which Node.js 18
// has only as node:crypto's webcrypto.
globalThis.crypto ??= webcrypto;

const keyFile = process.env.MEMBER_KEY ?? 'member.key.json';
const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const unb64u = (text) => new Uint8Array(Buffer.from(text, 'base64url'));
const utf8 = (text) => new TextEncoder().encode(text);
const step = (what, detail = '') => console.log(`${what.padEnd(12)} ${detail}`.trimEnd());

// 1. Keys: an Ed25519 key pair, its RFC 7638 thumbprint as kid. The JWK Set
// of the public key goes to the operator; the private key stays here.
if (process.argv[2] === 'keys') {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const pub = { ...(await exportJWK(publicKey)), alg: 'EdDSA', use: 'sig' };
  pub.kid = await calculateJwkThumbprint(pub);
  writeFileSync(keyFile, JSON.stringify({ ...(await exportJWK(privateKey)), kid: pub.kid, alg: 'EdDSA' }), { mode: 0o600 });
  console.log(JSON.stringify({ keys: [pub] }));
  process.exit(0);
}

const hub = process.env.SPARR_HUB;
const member = process.env.MEMBER_ID;
if (!hub || !member) {
  console.error('set SPARR_HUB and MEMBER_ID (and run `node member.js keys` first)');
  process.exit(2);
}
const privateJwk = JSON.parse(readFileSync(keyFile, 'utf8'));
const signingKey = await importJWK(privateJwk, 'EdDSA');

// 2. Discovery: the issuer (the audience of all we sign), the token key,
// the webhook key and the routes. The hub's record keys are its JWKS.
const conf = await (await fetch(new URL('/.well-known/sparr-configuration', hub))).json();
const hubKeys = createRemoteJWKSet(new URL(conf.jwks_uri));
step('discovered', `${conf.issuer}, token epoch ${conf.token.epoch}`);

// 3. The bearer token: a JWT we sign ourselves, for at most 5 minutes,
// reused until a minute before it expires. The header's iss names us, so
// the hub finds our key before it reads anything else.
let bearer = { jwt: '', exp: 0 };
async function authorization() {
  const now = Math.floor(Date.now() / 1000);
  if (bearer.exp - now < 60) {
    const jwt = await new SignJWT({ sub: member })
      .setProtectedHeader({ alg: 'EdDSA', kid: privateJwk.kid, typ: 'sparr-bearer+jwt', iss: member })
      .setIssuer(member).setAudience(conf.issuer).setIssuedAt(now).setExpirationTime(now + 300)
      .sign(signingKey);
    bearer = { jwt, exp: now + 300 };
  }
  return `Bearer ${bearer.jwt}`;
}

// call sends one request; an error answer is a problem document (RFC 9457).
async function call(method, url, body, type = 'application/json') {
  const res = await fetch(url, {
    method,
    headers: { authorization: await authorization(), ...(body && { 'content-type': type }) },
    body: body && type === 'application/json' ? JSON.stringify(body) : body,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

// submit signs a write (typ sparr-submission+jwt, iss in the header too)
// and posts it. The jti is the idempotency key: after a timeout, send the
// same bytes again, never a new submission.
async function submit(url, action, request) {
  const jws = await new SignJWT({ action, request })
    .setProtectedHeader({ alg: 'EdDSA', kid: privateJwk.kid, typ: 'sparr-submission+jwt', iss: member })
    .setIssuer(member).setAudience(conf.issuer).setIssuedAt().setJti(randomUUID())
    .sign(signingKey);
  return call('POST', url, jws, 'application/jose');
}

// verifyRecord verifies a record (a Security Event Token) against the
// hub's JWKS and returns its claims.
async function verifyRecord(jws) {
  const { payload } = await jwtVerify(jws, hubKeys, {
    issuer: conf.issuer, typ: 'secevent+jwt', algorithms: ['EdDSA', 'ES256'],
  });
  return payload;
}
const eventType = (claims) => Object.keys(claims.events)[0].replace('urn:sparr:event:', '');

// 4. Tokenize: RFC 9497 POPRF, ristretto255-SHA512, info
// sparr/v1/<type>/<epoch>. The hub sees only the blinded element; we check
// its DLEQ proof against the published key before we finalize.
async function tokenize(type, canonical) {
  const suite = Oprf.Suite.RISTRETTO255_SHA512;
  if (conf.token.suite !== suite) throw new Error(`token suite ${conf.token.suite}`);
  const { epoch } = conf.token;
  const poprf = new POPRFClient(suite, unb64u(conf.token.public_key), CryptoNoble);
  const [finData, request] = await poprf.blind([utf8(canonical)]);
  const res = await call('POST', conf.endpoints.tokens, {
    type, epoch, blinded: request.blinded.map((e) => b64u(e.serialize(true))),
  });
  if (res.type !== type || res.epoch !== epoch) throw new Error('token answer for another type or epoch');
  const group = Oprf.getGroup(suite, CryptoNoble);
  const evaluation = new Evaluation(
    Oprf.Mode.POPRF,
    res.evaluated.map((e) => group.desElt(unb64u(e))),
    DLEQProof.deserialize(group.id, unb64u(res.proof), CryptoNoble),
  );
  // finalize throws 'proof failed' unless the hub evaluated with its published key.
  const [output] = await poprf.finalize(finData, evaluation, utf8(`sparr/v1/${type}/${epoch}`));
  return `${type}.${epoch}.${b64u(output)}`;
}

// 5. The webhook receiver. Each delivery is checked on the raw body: the
// Standard Webhooks v1 signature under our secret (the standardwebhooks
// library, which also checks the timestamp), or, before we hold the secret,
// the v1a signature under the hub's webhook key; then the record under the
// hub's JWKS, and that the webhook-id names that record and us.
let webhook; // set once the endpoint is registered
const hubWebhookKey = createPublicKey({
  key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(conf.webhook_public_key.replace(/^whpk_/, ''), 'base64').toString('base64url') },
  format: 'jwk',
});
function verifyV1a(headers, body) {
  if (Math.abs(Date.now() / 1000 - Number(headers['webhook-timestamp'])) > 300) throw new Error('stale webhook-timestamp');
  const content = Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`);
  const ok = (headers['webhook-signature'] ?? '').split(' ').some((entry) => {
    const [version, sig] = entry.split(',');
    return version === 'v1a' && sig && ed25519Verify(null, content, hubWebhookKey, Buffer.from(sig, 'base64'));
  });
  if (!ok) throw new Error('no v1a signature verifies under the hub key');
}

const inbox = []; // verified records, as they arrive
const receiver = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString('utf8'); // the raw body, before any parsing
  try {
    if (webhook) webhook.verify(body, req.headers, { jsonParse: false });
    else verifyV1a(req.headers, body);
    const claims = await verifyRecord(body);
    if (req.headers['webhook-id'] !== `${claims.jti}_${member}`) throw new Error('delivery not addressed to us');
    inbox.push(claims);
    res.writeHead(202).end();
  } catch (err) {
    res.writeHead(400, { 'content-type': 'application/json' })
      .end(JSON.stringify({ err: 'authentication_failed', description: err.message }));
  }
});
async function delivered(type, match = () => true) {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(50)) {
    const claims = inbox.find((c) => eventType(c) === type && match(Object.values(c.events)[0]));
    if (claims) return claims;
  }
  throw new Error(`no ${type} delivery within 30 s`);
}

await new Promise((ok) => receiver.listen(Number(process.env.PORT ?? 0), '127.0.0.1', ok));
const url = process.env.MEMBER_WEBHOOK_URL ?? `http://127.0.0.1:${receiver.address().port}/sparr/events`;
const registered = await call('PUT', new URL('/v1/members/self/endpoint', hub), { url });
webhook = new Webhook(registered.secret); // whsec_…: shown once, store it
step('endpoint', `${url} registered; secret stored`);
await delivered('verification');
step('verified', 'verification event received and answered 202');

// 6. Tokenize the customer's e-mail address. Canonical form: trimmed and
// lower-cased (protocol.md section 1 has the full rules, IDNA domains too).
const email = (process.env.MEMBER_EMAIL ?? 'Anna.Andersson@Example.se').trim().toLowerCase();
const token = await tokenize('email', email);
step('token', token);

// 7. Place a flag, with the consent collected after strong authentication.
const now = Math.floor(Date.now() / 1000);
const consent = {
  id: randomUUID(),
  subject: token,
  controller: member,
  purpose: 'identity-fraud-protection',
  legal_basis: 'gdpr-art-6-1-a',
  collection: { method: 'mobile-app', at: now - 60 },
  notice: `https://${member}.example/privacy/sparr`,
  expires_at: now + 2 * 365 * 86400, // at least as long as the flag (a year)
  evidence: { authentication_method: 'bankid', assurance_level: 'loa3', reference: `bankid-${randomUUID()}` },
};
const placed = await submit(conf.endpoints.flags, 'flag-place', {
  subject: token, kind: 'standard', consent, reason: 'identity-theft',
});
const flagId = placed.flag.flag_id;
const placedClaims = await verifyRecord(placed.record);
step('placed', `flag ${flagId}, record ${placedClaims.jti} verified (seq ${placed.seq}, log ${placed.log_index})`);

// 8. Check the token, as before approving credit: "verify" means confirm
// the applicant by strong authentication, never decline on the flag alone.
const checked = await call('POST', conf.endpoints.check, { purpose: 'credit-application', tokens: [token] });
const [result] = checked.results;
for (const record of result.flag?.records ?? []) await verifyRecord(record);
if (result.advice !== 'verify') throw new Error(`check advised ${result.advice}, want verify`);
step('checked', `advice ${result.advice}, check ${checked.check_id}`);

// 9. The flag's delivery to our endpoint.
const pushed = await delivered('flag-placed', (e) => e.flag_id === flagId);
step('delivered', `flag-placed ${pushed.jti}: webhook signature and record verified`);

// 10. Lift the flag (the consumer withdraws consent): every member deletes it.
const lifted = await submit(`${conf.endpoints.flags}/${flagId}/lift`, 'flag-lift', {
  flag_id: flagId, reason: 'consumer-request',
});
const liftedClaims = await verifyRecord(lifted.record);
step('lifted', `flag ${flagId}, record ${liftedClaims.jti} verified (seq ${lifted.seq}, log ${lifted.log_index})`);
const gone = await delivered('flag-lifted', (e) => e.flag_id === flagId);
step('delivered', `flag-lifted ${gone.jti}: webhook signature and record verified`);

receiver.close();
step('done');
