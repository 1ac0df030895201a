// Writes tests/vectors/request-signatures/*.json: signed requests made by the front-end's own code
// (src/protocol), for the node's verifier (docs/security.md, protocol v1). Every key here is a
// throwaway test key. Run: cd frontend && node scripts/request-vectors.mjs
// ECDSA signatures are randomized: each run writes new signatures (all equally valid).
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { keccak256, toBytes } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { loadProtocol } from "./load-protocol.mjs";

const out = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "tests", "vectors", "request-signatures");
const p = await loadProtocol();

/** Test-only P-256 session keys (generated once with WebCrypto, then fixed here). */
const SESSION_JWK = {
  kty: "EC",
  crv: "P-256",
  x: "8f7Cw46uBDrV_NPD8zBaGdc_tNFyMsJR-ESDobnfL5A",
  y: "uqjFW7X-py-p0kpyEXOrTONk51WZDtCVMIb3JqBSAqE",
  d: "XxZj3g4RE1mJwonRUleeWZKuPbCNty35OGw2S6ZY7ZI",
};
const OTHER_SESSION_JWK = {
  kty: "EC",
  crv: "P-256",
  x: "Qmsrv3eAm1PDJmwkgrBQAlsDtu8lA-h529n8qXMw0uo",
  y: "lWTF1AJkTZ4qC2BzNxqa7Zejz6pbV2SvNrlE9FJrlvg",
  d: "x054Wg0CZG5E025pBWOFCYUkuXLn2WTgKGy8gJCXu9E",
};
/** Test-only secp256k1 keys: keccak256 of a label (the wallet, and two nodes' addresses). */
const testKey = (label) => keccak256(toBytes(label));
const WALLET_KEY = testKey("collegium request-signature vectors: wallet");
const NODE_A = privateKeyToAccount(testKey("collegium request-signature vectors: node A")).address;
const NODE_B = privateKeyToAccount(testKey("collegium request-signature vectors: node B")).address;

const SYSTEM = { domain: "127.0.0.1:8000", chain_id: 1337, registry: "0x5FbDB2315678afecb367f032d93F642f64180aa3" };
const ISSUED_AT = new Date("2026-12-06T21:00:00Z");
const EXPIRES_AT = new Date(ISSUED_AT.getTime() + p.DELEGATION_TTL_MS);
const SIWE_NONCE = "Vx7Kq2Lp9Rt4Wz6N";
const CREATED = Date.parse("2026-12-06T21:05:00Z") / 1000;
/** The verifying node's clock for every vector (unix s): one second after `created`. */
const NOW = CREATED + 1;
/** The node's start (unix s): signatures created before it are refused. */
const NODE_STARTED = ISSUED_AT.getTime() / 1000;

/** Return a fixed, per-vector signature nonce (16 bytes of SHA-256(name), base64url), so that no
 * two vectors share a nonce (one node verifying them all must not see a replay). */
async function nonceFor(name) {
  return p.base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", p.utf8(name))).subarray(0, 16));
}

async function importKey(jwk) {
  const { d: _d, ...pub } = jwk;
  const privateKey = await crypto.subtle.importKey("jwk", jwk, p.ECDSA_P256, false, ["sign"]);
  const publicKey = await crypto.subtle.importKey("jwk", pub, p.ECDSA_P256, true, ["verify"]);
  return { jwk, privateKey, did: await p.didKeyOf(publicKey) };
}

const session = await importKey(SESSION_JWK);
const other = await importKey(OTHER_SESSION_JWK);
const wallet = privateKeyToAccount(WALLET_KEY);
const message = p.delegationMessage({
  domain: SYSTEM.domain,
  address: wallet.address,
  chainId: SYSTEM.chain_id,
  registry: SYSTEM.registry,
  nonce: SIWE_NONCE,
  sessionDid: session.did,
  issuedAt: ISSUED_AT,
  expirationTime: EXPIRES_AT,
});
const signature = await wallet.signMessage({ message });
const delegation = { message, signature, header: p.delegationHeader(message, signature) };

/** Return the headers and signature base of `req` signed by `key` for `destination`. */
async function sign(name, key, req, destination, params = {}) {
  const url = new URL(`http://${SYSTEM.domain}${req.path}${req.query}`);
  const parts = {
    method: req.method,
    path: url.pathname,
    query: p.queryComponent(url.search),
    contentDigest: await p.contentDigest(p.utf8(req.body)),
    destination,
    delegation: delegation.header,
  };
  const signed = await p.signRequest(key.privateKey, parts, {
    created: CREATED,
    expires: CREATED + p.SIGNATURE_TTL_S,
    nonce: await nonceFor(name),
    keyid: key.did,
    ...params,
  });
  return signed;
}

/** Return a vector: `received` is the request as the node at `receiver` gets it. */
function vector(name, description, { signed, received, receiver, valid, check, status }) {
  const url = new URL(`http://${SYSTEM.domain}${received.path}${received.query}`);
  const params = signed.headers["Signature-Input"].slice(`${p.SIGNATURE_LABEL}=`.length);
  const [, created, expires, nonce, keyid] = /created=(\d+);expires=(\d+);nonce="([^"]*)";keyid="([^"]*)"/.exec(params);
  const base = p.signatureBase(
    {
      method: received.method,
      path: url.pathname,
      query: p.queryComponent(url.search),
      contentDigest: signed.headers["Content-Digest"],
      destination: signed.headers["Collegium-Destination"],
      delegation: signed.headers["Collegium-Delegation"],
    },
    { created: Number(created), expires: Number(expires), nonce, keyid },
  );
  return {
    name,
    description,
    valid,
    failed_check: check ?? null,
    status: status ?? 200,
    now: NOW,
    node_started: NODE_STARTED,
    system: SYSTEM,
    node: { address: receiver },
    wallet: { private_key: WALLET_KEY, address: wallet.address, test_only: true },
    session_key: { jwk: signed.key.jwk, did: signed.key.did, test_only: true },
    delegation: { message: delegation.message, signature: delegation.signature },
    request: { ...received, destination: signed.headers["Collegium-Destination"] },
    headers: signed.headers,
    signature_base: base,
    signed_base: base !== signed.base ? signed.base : undefined,
  };
}

const GET = { method: "GET", path: "/api/v1/auth/me", query: "", body: "" };
const POST = {
  method: "POST",
  path: "/api/v1/subsystems/main/data/records",
  query: "?limit=5",
  body: '{"kind":"invoice","data":{"amount":"100.00","currency":"EUR","memo":"caf\u00e9 \u20ac"}}',
};
const withKey = async (name, key, req, destination, params) => ({ ...(await sign(name, key, req, destination, params)), key });

const cases = [
  vector("happy-get", "GET /api/v1/auth/me, empty body and query, signed for the receiving node A.", {
    signed: await withKey("happy-get", session, GET, NODE_A),
    received: GET,
    receiver: NODE_A,
    valid: true,
  }),
  vector("happy-post", "POST with a UTF-8 JSON body and a query, signed for node A.", {
    signed: await withKey("happy-post", session, POST, NODE_A),
    received: POST,
    receiver: NODE_A,
    valid: true,
  }),
  vector("tampered-body", "happy-post's headers, but the relaying node changed the body: the digest no longer matches.", {
    signed: await withKey("tampered-body", session, POST, NODE_A),
    received: { ...POST, body: POST.body.replace("100.00", "900.00") },
    receiver: NODE_A,
    valid: false,
    check: "content-digest",
    status: 401,
  }),
  vector("tampered-query", "happy-post's headers, but the query changed to ?limit=500: the signature does not verify over the base the node rebuilds.", {
    signed: await withKey("tampered-query", session, POST, NODE_A),
    received: { ...POST, query: "?limit=500" },
    receiver: NODE_A,
    valid: false,
    check: "signature",
    status: 401,
  }),
  vector("wrong-destination", "Signed for node A, delivered to node B: B answers 421 and serves nothing.", {
    signed: await withKey("wrong-destination", session, GET, NODE_A),
    received: GET,
    receiver: NODE_B,
    valid: false,
    check: "destination",
    status: 421,
  }),
  vector("expired", "Signed at created, expired 60 s later; the node's clock is already past expires.", {
    signed: await withKey("expired", session, GET, NODE_A, { created: CREATED - 120, expires: CREATED - 60 }),
    received: GET,
    receiver: NODE_A,
    valid: false,
    check: "expires",
    status: 401,
  }),
  vector("foreign-session-key", "Signed (validly) by another P-256 key that reuses the delegation: keyid is not the delegation's URI.", {
    signed: await withKey("foreign-session-key", other, GET, NODE_A),
    received: GET,
    receiver: NODE_A,
    valid: false,
    check: "keyid",
    status: 401,
  }),
];

mkdirSync(out, { recursive: true });
for (const c of cases) writeFileSync(join(out, `${c.name}.json`), `${JSON.stringify(c, null, 2)}\n`);
console.log(`wrote ${cases.length} vectors to ${out}`);
