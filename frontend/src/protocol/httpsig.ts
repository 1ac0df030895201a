// Signed requests (docs/security.md §2): RFC 9421 HTTP Message Signatures over the method, path,
// query, RFC 9530 Content-Digest, destination node and delegation, with an ECDSA P-256 key.

import { base64, base64url, utf8 } from "./encoding";

export const SIGNATURE_LABEL = "sig1";
export const SIGNATURE_ALG = "ecdsa-p256-sha256";
/** Lifetime of one request signature (`expires − created`); nodes accept at most 300 s. */
export const SIGNATURE_TTL_S = 60;
export const COMPONENTS = [
  "@method",
  "@path",
  "@query",
  "content-digest",
  "collegium-destination",
  "collegium-delegation",
] as const;
export const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
export const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

/** What the signature covers, as sent. */
export interface RequestParts {
  method: string;
  /** the path as sent, percent-encoding kept */
  path: string;
  /** "?" + the query string as sent, or "?" alone */
  query: string;
  contentDigest: string;
  destination: string;
  delegation: string;
}

export interface SignatureParams {
  created: number;
  expires: number;
  nonce: string;
  keyid: string;
}

/** Return the RFC 9421 `@query` of a URL's search part ("" and "?" both give "?"). */
export function queryComponent(search: string): string {
  return search.startsWith("?") ? search : `?${search}`;
}

/** Return the Content-Digest header value of `body` (RFC 9530 sha-256, padded base64). */
export async function contentDigest(body: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body as BufferSource));
  return `sha-256=:${base64(digest)}:`;
}

/** Return a fresh signature nonce: 16 random bytes, base64url (22 characters). */
export function newNonce(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** Return the parameters of a signature created at `now` (unix seconds). */
export function newParams(keyid: string, now: number = Math.floor(Date.now() / 1000)): SignatureParams {
  return { created: now, expires: now + SIGNATURE_TTL_S, nonce: newNonce(), keyid };
}

/** Return the `@signature-params` value: the inner list and its parameters (RFC 8941). */
export function signatureParamsValue(p: SignatureParams): string {
  const list = COMPONENTS.map((c) => `"${c}"`).join(" ");
  return `(${list});created=${p.created};expires=${p.expires};nonce="${p.nonce}";keyid="${p.keyid}";alg="${SIGNATURE_ALG}"`;
}

/** Return the signature base (RFC 9421 §2.5): lines joined with "\n", no trailing newline. */
export function signatureBase(parts: RequestParts, params: SignatureParams): string {
  const values: Record<(typeof COMPONENTS)[number], string> = {
    "@method": parts.method.toUpperCase(),
    "@path": parts.path,
    "@query": parts.query,
    "content-digest": parts.contentDigest,
    "collegium-destination": parts.destination,
    "collegium-delegation": parts.delegation,
  };
  const lines = COMPONENTS.map((c) => `"${c}": ${values[c]}`);
  lines.push(`"@signature-params": ${signatureParamsValue(params)}`);
  return lines.join("\n");
}

/** The headers of a signed request (besides the caller's own). */
export interface SignatureHeaders {
  "Content-Digest": string;
  "Collegium-Destination": string;
  "Collegium-Delegation": string;
  "Signature-Input": string;
  Signature: string;
}

/** Return the signature headers of `parts` signed with the P-256 `privateKey`, and the base signed. */
export async function signRequest(
  privateKey: CryptoKey,
  parts: RequestParts,
  params: SignatureParams,
): Promise<{ headers: SignatureHeaders; base: string }> {
  const base = signatureBase(parts, params);
  const signature = new Uint8Array(await crypto.subtle.sign(ECDSA_SHA256, privateKey, utf8(base) as BufferSource));
  return {
    base,
    headers: {
      "Content-Digest": parts.contentDigest,
      "Collegium-Destination": parts.destination,
      "Collegium-Delegation": parts.delegation,
      "Signature-Input": `${SIGNATURE_LABEL}=${signatureParamsValue(params)}`,
      Signature: `${SIGNATURE_LABEL}=:${base64(signature)}:`,
    },
  };
}
