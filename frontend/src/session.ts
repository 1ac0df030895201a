// The session key and request signing (docs/security.md, protocol v1): a non-extractable ECDSA
// P-256 key kept in IndexedDB with the wallet's delegation to it; every request that depends on
// who the user is goes out signed (RFC 9421) for its destination node (GET /api/v1/route).

import { API, ApiError, getJson, nodeBase } from "./api";
import {
  contentDigest,
  delegationHeader,
  didKeyOf,
  ECDSA_P256,
  newParams,
  queryComponent,
  signRequest,
  utf8,
} from "./protocol";

const DB_NAME = "collegium";
const DB_STORE = "session";
const DB_KEY = "current";
/** A delegation this close to its expiry is not used (the node would refuse it mid-flight). */
const EXPIRY_MARGIN_MS = 60 * 1000;
const MISDIRECTED = 421;

/** A session key, its did:key and the wallet's delegation to it. */
export interface StoredSession {
  version: 1;
  /** non-extractable ECDSA P-256 private key (structured-cloneable into IndexedDB) */
  privateKey: CryptoKey;
  did: string;
  address: `0x${string}`;
  /** the Collegium-Delegation header value */
  delegation: string;
  /** Expiration Time of the delegation, ms since the epoch */
  expiresAt: number;
}

/** A new session key that no wallet has delegated to yet. */
export interface SessionKey {
  privateKey: CryptoKey;
  did: string;
}

/** `GET /api/v1/route?path=…`: the node that serves a path now. */
export interface Route {
  node: string;
  endpoint?: string;
  epoch?: number;
  role?: string;
  subsystem?: string | null;
}

let current: StoredSession | null | undefined;
const routes = new Map<string, Promise<Route>>();

/** Throw an ApiError when WebCrypto is missing (pages over plain http other than localhost). */
function requireWebCrypto(): SubtleCrypto {
  if (!globalThis.crypto?.subtle)
    throw new ApiError(
      0,
      "This page cannot sign requests: the browser offers WebCrypto only on https:// pages (or localhost). Open the node over https.",
    );
  return crypto.subtle;
}

/** Return a new ECDSA P-256 session key (private key non-extractable) and its did:key. */
export async function newSessionKey(): Promise<SessionKey> {
  const pair = (await requireWebCrypto().generateKey(ECDSA_P256, false, ["sign", "verify"])) as CryptoKeyPair;
  return { privateKey: pair.privateKey, did: await didKeyOf(pair.publicKey) };
}

/** Return the IndexedDB store, or null when the browser offers none (the session then lives in memory). */
function openStore(): Promise<IDBDatabase | null> {
  if (typeof indexedDB === "undefined") return Promise.resolve(null);
  return new Promise((resolve) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(DB_STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null);
    req.onblocked = () => resolve(null);
  });
}

/** Run one request on the session store; resolve with its result (undefined without a store). */
async function withStore<T>(mode: IDBTransactionMode, op: (store: IDBObjectStore) => IDBRequest<T>): Promise<T | undefined> {
  const db = await openStore();
  if (!db) return undefined;
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(DB_STORE, mode);
      const req = op(tx.objectStore(DB_STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Keep `key` with the wallet's delegation to it (replacing any previous session). */
export async function saveSession(
  key: SessionKey,
  address: `0x${string}`,
  message: string,
  signature: string,
  expiresAt: Date,
): Promise<StoredSession> {
  const session: StoredSession = {
    version: 1,
    privateKey: key.privateKey,
    did: key.did,
    address,
    delegation: delegationHeader(message, signature),
    expiresAt: expiresAt.getTime(),
  };
  current = session;
  routes.clear();
  await withStore("readwrite", (s) => s.put(session, DB_KEY)).catch(() => undefined);
  return session;
}

/** Forget the session key and its delegation (logout). */
export async function clearSession(): Promise<void> {
  current = null;
  routes.clear();
  await withStore("readwrite", (s) => s.delete(DB_KEY)).catch(() => undefined);
}

/** Return the live session (kept across reloads), or null when there is none or it expired. */
export async function loadSession(): Promise<StoredSession | null> {
  if (current === undefined) {
    const stored = await withStore<StoredSession | undefined>("readonly", (s) => s.get(DB_KEY)).catch(() => undefined);
    current = stored?.version === 1 ? stored : null;
  }
  if (current && current.expiresAt - EXPIRY_MARGIN_MS <= Date.now()) await clearSession();
  return current ?? null;
}

/** Return the node that must serve `path` (no query), asking the entry node once per path (and
 * again after a 421: the browser's HTTP cache is bypassed, the route may have just changed). */
function routeOf(path: string): Promise<Route> {
  let route = routes.get(path);
  if (!route) {
    route = getJson<Route>(`${API}/route?${new URLSearchParams({ path })}`, { cache: "no-store" });
    routes.set(path, route);
    route.catch(() => routes.delete(path));
  }
  return route;
}

/** A request whose body the signature covers (a string is sent as UTF-8). */
export type SignedInit = Omit<RequestInit, "body"> & { body?: string | Uint8Array };

/** Return the answer to `init` at `path` signed with the session key for its destination node;
 * on 421 (the route changed) ask the route again and retry once. Throws ApiError 401 when no one
 * is signed in. */
export async function signedFetch(path: string, init: SignedInit = {}): Promise<Response> {
  const session = await loadSession();
  if (!session) throw new ApiError(401, "Not signed in: sign in with your wallet.");
  const routePath = path.split("?")[0];
  let res = await sendSigned(session, path, routePath, init);
  if (res.status === MISDIRECTED) {
    routes.delete(routePath);
    res = await sendSigned(session, path, routePath, init);
  }
  return res;
}

async function sendSigned(session: StoredSession, path: string, routePath: string, init: SignedInit): Promise<Response> {
  const route = await routeOf(routePath);
  const url = new URL(nodeBase() + path, location.href);
  const body = typeof init.body === "string" ? utf8(init.body) : (init.body ?? new Uint8Array());
  const { headers: signed } = await signRequest(
    session.privateKey,
    {
      method: init.method ?? "GET",
      path: url.pathname,
      query: queryComponent(url.search),
      contentDigest: await contentDigest(body),
      destination: route.node,
      delegation: session.delegation,
    },
    newParams(session.did),
  );
  const headers = new Headers(init.headers);
  for (const [name, value] of Object.entries(signed)) headers.set(name, value);
  return fetch(url, {
    credentials: "include",
    ...init,
    headers,
    body: init.body === undefined ? undefined : (body as BufferSource),
  });
}
