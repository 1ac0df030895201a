// The front-end's signed-request code (src/protocol) against the did:key spec's P-256 vectors and
// against tests/vectors/request-signatures (which scripts/request-vectors.mjs wrote with it).
//   cd frontend && node --test test/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { verifyMessage } from "viem";
import { parseSiweMessage } from "viem/siwe";
import { loadProtocol } from "../scripts/load-protocol.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const vectorDir = join(here, "..", "..", "tests", "vectors", "request-signatures");
const vectors = readdirSync(vectorDir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(vectorDir, f), "utf8")));
const p = await loadProtocol();

// did:key spec (w3c-ccg did-method-key, test-vectors/nist-curves.json): P-256 public keys as JWK.
const DID_KEY_SPEC = [
  {
    did: "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
    x: "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI",
    y: "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU",
  },
  {
    did: "did:key:zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv",
    x: "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns",
    y: "efsX5b10x8yjyrj4ny3pGfLcY7Xby1KzgqOdqnsrJIM",
  },
];

const publicJwk = ({ kty, crv, x, y }) => ({ kty, crv, x, y });
const importPublic = (jwk) => crypto.subtle.importKey("jwk", publicJwk(jwk), p.ECDSA_P256, true, ["verify"]);

for (const v of DID_KEY_SPEC) {
  test(`did:key of the spec's P-256 key ${v.did.slice(8, 20)}…`, async () => {
    const key = await importPublic({ kty: "EC", crv: "P-256", x: v.x, y: v.y });
    assert.equal(await p.didKeyOf(key), v.did);
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", key));
    assert.equal(p.didKeyFromP256(p.compressP256(raw)), v.did);
  });
}

test("base58btc keeps leading zero bytes as '1'", () => {
  assert.equal(p.base58btc(Uint8Array.of(0, 0, 1)), "112");
  assert.equal(p.base58btc(p.utf8("hello world")), "StV1DL6CwTryKyV");
});

test("Content-Digest of an empty body (RFC 9530 / docs/security.md)", async () => {
  assert.equal(await p.contentDigest(new Uint8Array()), "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
});

test("@query is '?' plus the query string, or '?' alone", () => {
  assert.equal(p.queryComponent(""), "?");
  assert.equal(p.queryComponent("?limit=5"), "?limit=5");
});

test("the delegation message is docs/security.md's template", () => {
  const registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
  const message = p.delegationMessage({
    domain: "127.0.0.1:8000",
    address: "0x382De3e0c81741c864505c342609d7654ca37C67",
    chainId: 31337,
    registry,
    nonce: "abcdefgh12",
    sessionDid: DID_KEY_SPEC[0].did,
    issuedAt: new Date("2026-12-06T21:00:00.250Z"),
    expirationTime: new Date("2026-12-07T05:00:00Z"),
  });
  const resource = `collegium://31337/${registry.toLowerCase()}`;
  const recap = Buffer.from(
    JSON.stringify({ att: { [resource]: { "request/read": [{}], "request/write": [{}] } }, prf: [] }),
  ).toString("base64url");
  assert.equal(
    message,
    [
      "127.0.0.1:8000 wants you to sign in with your Ethereum account:",
      "0x382De3e0c81741c864505c342609d7654ca37C67",
      "",
      `Sign in to Collegium. I further authorize the stated URI to perform the following actions on my behalf: (1) 'request': 'read', 'write' for '${resource}'.`,
      "",
      `URI: ${DID_KEY_SPEC[0].did}`,
      "Version: 1",
      "Chain ID: 31337",
      "Nonce: abcdefgh12",
      "Issued At: 2026-12-06T21:00:00Z",
      "Expiration Time: 2026-12-07T05:00:00Z",
      "Resources:",
      `- urn:recap:${recap}`,
    ].join("\n"),
  );
});

test("there are vectors, valid and invalid", () => {
  assert.ok(vectors.some((v) => v.valid) && vectors.some((v) => !v.valid), vectorDir);
});

/** Return the signature parameters of a Signature-Input value. */
function parseInput(value) {
  const m = /^sig1=\(([^)]*)\);created=(\d+);expires=(\d+);nonce="([A-Za-z0-9_-]{16,64})";keyid="([^"]+)";alg="ecdsa-p256-sha256"$/.exec(value);
  assert.ok(m, `Signature-Input does not parse: ${value}`);
  assert.equal(m[1], p.COMPONENTS.map((c) => `"${c}"`).join(" "));
  return { created: Number(m[2]), expires: Number(m[3]), nonce: m[4], keyid: m[5] };
}

/** Return the base a node rebuilds from the request as received. */
function rebuiltBase(v, params) {
  return p.signatureBase(
    {
      method: v.request.method,
      path: v.request.path,
      query: p.queryComponent(v.request.query),
      contentDigest: v.headers["Content-Digest"],
      destination: v.headers["Collegium-Destination"],
      delegation: v.headers["Collegium-Delegation"],
    },
    params,
  );
}

/** Return the first check (docs/security.md order) `v` fails, or null; a small twin of the node's. */
async function firstFailure(v) {
  const params = parseInput(v.headers["Signature-Input"]);
  if (params.created > v.now + 60 || params.created < v.node_started) return "created";
  if (params.expires <= v.now || params.expires - params.created > 300) return "expires";
  if (v.headers["Collegium-Destination"].toLowerCase() !== v.node.address.toLowerCase()) return "destination";
  if (v.headers["Content-Digest"] !== (await p.contentDigest(p.utf8(v.request.body)))) return "content-digest";
  const { message, signature } = JSON.parse(Buffer.from(v.headers["Collegium-Delegation"], "base64url").toString("utf8"));
  const siwe = parseSiweMessage(message);
  if (!(await verifyMessage({ address: siwe.address, message, signature }))) return "delegation";
  if (siwe.uri !== params.keyid) return "keyid";
  const key = await importPublic(v.session_key.jwk);
  assert.equal(await p.didKeyOf(key), params.keyid);
  const sig = Buffer.from(/^sig1=:([A-Za-z0-9+/=]+):$/.exec(v.headers.Signature)[1], "base64");
  assert.equal(sig.length, 64);
  const ok = await crypto.subtle.verify(p.ECDSA_SHA256, key, sig, p.utf8(rebuiltBase(v, params)));
  return ok ? null : "signature";
}

for (const v of vectors) {
  test(`vector ${v.name}`, async () => {
    const params = parseInput(v.headers["Signature-Input"]);
    assert.equal(rebuiltBase(v, params), v.signature_base, "signature base rebuilt differently");
    assert.equal(v.request.destination, v.headers["Collegium-Destination"]);
    assert.equal(v.headers["Collegium-Delegation"], p.delegationHeader(v.delegation.message, v.delegation.signature));
    assert.equal(v.session_key.did, params.keyid);
    const siwe = parseSiweMessage(v.delegation.message);
    assert.equal(siwe.address, v.wallet.address);
    assert.equal(siwe.chainId, v.system.chain_id);
    assert.equal(siwe.domain, v.system.domain);
    assert.ok(await verifyMessage({ address: v.wallet.address, message: v.delegation.message, signature: v.delegation.signature }));
    assert.equal(await firstFailure(v), v.valid ? null : v.failed_check);
    if (v.signed_base !== undefined) assert.notEqual(v.signed_base, v.signature_base);
  });
}
