// The delegation (docs/security.md §1): a SIWE message (EIP-4361) whose URI is the session key's
// did:key and whose ReCap (EIP-5573) grants request/read and request/write on the Collegium system
// (chain id + registry); it travels as the Collegium-Delegation header.

import { createSiweMessage } from "viem/siwe";
import { base64url, utf8 } from "./encoding";

/** How long a browser delegation lives (the node accepts at most `auth_delegation_max_ttl`). */
export const DELEGATION_TTL_MS = 8 * 60 * 60 * 1000;
export const STATEMENT_PREFIX = "Sign in to Collegium.";
export const ABILITY_READ = "request/read";
export const ABILITY_WRITE = "request/write";
export const ABILITIES = [ABILITY_READ, ABILITY_WRITE] as const;
const RECAP_PREFIX = "urn:recap:";

/** Return the ReCap resource naming the system: `collegium://<chainId>/<registry, lower case>`. */
export function systemResource(chainId: number, registry: string): string {
  return `collegium://${chainId}/${registry.toLowerCase()}`;
}

/** Return the ReCap object granting `abilities` on `resource` (no proofs). */
function recap(resource: string, abilities: readonly string[]): { att: Record<string, Record<string, [object]>>; prf: [] } {
  const grants: Record<string, [object]> = {};
  for (const ability of [...abilities].sort()) grants[ability] = [{}];
  return { att: { [resource]: grants }, prf: [] };
}

/** Return the `urn:recap:` resource URI (base64url, no padding, of the compact ReCap JSON). */
export function recapUrn(resource: string, abilities: readonly string[] = ABILITIES): string {
  return RECAP_PREFIX + base64url(utf8(JSON.stringify(recap(resource, abilities))));
}

/** Return the EIP-5573 statement generated from the ReCap (abilities grouped by namespace, sorted). */
export function recapStatement(resource: string, abilities: readonly string[] = ABILITIES): string {
  const byNamespace = new Map<string, string[]>();
  for (const ability of [...abilities].sort()) {
    const slash = ability.indexOf("/");
    const namespace = ability.slice(0, slash);
    byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), ability.slice(slash + 1)]);
  }
  const items = [...byNamespace].map(
    ([namespace, names], i) => `(${i + 1}) '${namespace}': ${names.map((n) => `'${n}'`).join(", ")} for '${resource}'.`,
  );
  return `I further authorize the stated URI to perform the following actions on my behalf: ${items.join(" ")}`;
}

export interface DelegationFields {
  /** host[:port] of the site the user is on */
  domain: string;
  /** URI scheme of that site; omitted means https (EIP-4361) */
  scheme?: string;
  address: `0x${string}`;
  chainId: number;
  /** the registry contract (EIP-712 verifyingContract) */
  registry: string;
  nonce: string;
  /** did:key of the session key (the SIWE URI, the delegee) */
  sessionDid: string;
  issuedAt: Date;
  expirationTime: Date;
}

/** Return an RFC 3339 time with whole seconds (SIWE lines as written in docs/security.md). */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** Return the SIWE message delegating request/read and request/write to the session key. */
export function delegationMessage(f: DelegationFields): string {
  const resource = systemResource(f.chainId, f.registry);
  const message = createSiweMessage({
    scheme: f.scheme,
    domain: f.domain,
    address: f.address,
    statement: `${STATEMENT_PREFIX} ${recapStatement(resource)}`,
    uri: f.sessionDid,
    version: "1",
    chainId: f.chainId,
    nonce: f.nonce,
    issuedAt: wholeSeconds(f.issuedAt),
    expirationTime: wholeSeconds(f.expirationTime),
    resources: [recapUrn(resource)],
  });
  // viem writes toISOString() (milliseconds); the times are whole seconds, so drop ".000".
  return message.replace(/^((?:Issued At|Expiration Time): \S+)\.000Z$/gm, "$1Z");
}

/** Return the Collegium-Delegation header value: base64url (no padding) of {"message", "signature"}. */
export function delegationHeader(message: string, signature: string): string {
  return base64url(utf8(JSON.stringify({ message, signature })));
}
