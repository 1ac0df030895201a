// HTTP access to the node's API. The node is the page's origin, unless the user points the
// explorer at another node (needed when the files are opened from a public IPFS gateway).

export const NODE_KEY = "collegium.node";
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Return the base URL of the node's API ("" = same origin). */
export function nodeBase(): string {
  return (localStorage.getItem(NODE_KEY) ?? "").replace(/\/+$/, "");
}

/** Return the absolute URL of a node path (used for /rpc and links). */
export function nodeUrl(path: string): string {
  const base = nodeBase();
  return (base || location.origin) + path;
}

async function problemText(res: Response): Promise<string> {
  try {
    const body = await res.json();
    return body.detail ?? body.title ?? JSON.stringify(body);
  } catch {
    return res.statusText;
  }
}

/** Return the JSON of `GET path`; throw ApiError with the problem detail otherwise. */
export async function getJson<T>(path: string, init?: RequestInit): Promise<T> {
  return readJson<T>(await fetch(nodeBase() + path, { credentials: "include", ...init }));
}

/** Return the JSON of a successful answer; throw ApiError with the problem detail otherwise. */
export async function readJson<T>(res: Response): Promise<T> {
  if (!res.ok) throw new ApiError(res.status, await problemText(res));
  return parseJson<T>(await res.text());
}

/** Integers past 2^53 (uint64 nonces) would lose precision as JS numbers: keep them as strings. */
const BIG_INT_FIELD = /"(nonce|timestamp)":\s*(\d{16,})/g;

/** Return `text` parsed as JSON, uint64 `nonce`/`timestamp` values kept exact (as strings). */
export function parseJson<T>(text: string): T {
  return JSON.parse(text.replace(BIG_INT_FIELD, '"$1":"$2"')) as T;
}

/** Return the JSON of `GET path`, or null when the node does not offer it (404/405/501/503). */
export async function getOptional<T>(path: string): Promise<T | null> {
  try {
    return await getJson<T>(path);
  } catch (e) {
    if (e instanceof ApiError && [404, 405, 501, 503].includes(e.status)) return null;
    throw e;
  }
}

/** Return the JSON answer of `POST path` with a JSON body; throw ApiError otherwise. */
export async function postJson<T>(path: string, body: unknown): Promise<T> {
  return getJson<T>(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

export interface Anchor {
  index: number;
  root: `0x${string}`;
  tree_size: number;
  count: number;
  batch_cid: string;
  block_number: number;
  chain_tx_hash: string;
  node?: string;
  subsystem?: string;
}

export interface Tx {
  id: `0x${string}`;
  seq: number;
  subsystem: string;
  kind: string;
  parties: `0x${string}`[];
  amount: string;
  currency: string;
  memo: string;
  payload: string;
  /** signed as PrivateBusinessTransaction: parties, amount, currency and memo are encrypted */
  private?: boolean;
  /** private only: keccak256(salt || plaintext), 0x-hex */
  payload_hash?: string;
  nonce: number | string;
  timestamp: number | string;
  signer: `0x${string}`;
  signature: `0x${string}`;
  cid: string;
  leaf_hash: `0x${string}`;
  status: string;
  received_at: string;
  leaf_index: number | null;
  anchor: Anchor | null;
}

export interface TxPage {
  items: Tx[];
  next_cursor: number | null;
}

export interface Proof {
  chain_id: number;
  registry: `0x${string}`;
  tx_id: string;
  cid: string;
  leaf: `0x${string}`;
  leaf_index: number;
  tree_size: number;
  root: `0x${string}`;
  path: `0x${string}`[];
  anchor_index: number;
  block_number: number;
  chain_tx_hash: string;
  node: string;
}

export type TypedFields = Record<string, { name: string; type: string }[]>;

export interface TypedDataDoc {
  types: TypedFields;
  primaryType: string;
  domain: { name: string; version: string; chainId: number; verifyingContract: `0x${string}` };
  /** the types of private transactions (PrivateBusinessTransaction), same domain */
  private?: { types: TypedFields; primaryType: string };
}

/** `GET /api/v1/auth/me`: the signed-in address and its subsystems. */
export interface Me {
  address: `0x${string}`;
  subsystems: string[];
  admin_of: string[];
  system_admin: boolean;
}

/** `GET /api/v1/subsystems/{name}`: a subsystem's public registry record. */
export interface SubsystemRecord {
  name: string;
  participants: `0x${string}`[];
  frontend_cid: string;
}

/** `POST /api/v1/subsystems/{name}/participants`: the registry call for the admin's wallet. */
export interface UnsignedTx {
  to: `0x${string}`;
  data: `0x${string}`;
  value: `0x${string}`;
  chain_id: number;
  from: `0x${string}`;
}

/** `POST /api/v1/subsystems/{name}/participants/relay`: the relayed transaction once mined. */
export interface RelayResult {
  tx_hash: `0x${string}`;
  block_number: number;
  action: string;
  address: string;
}

export interface Health {
  status: string;
  reasons?: { code: string; message: string }[];
  version: string;
  node: string;
  chain: { kind: string; chain_id: number; block_number: number };
  registry: `0x${string}` | null;
  epoch: number;
  store: { backend: string };
  transactions?: unknown;
}

export interface TxFilter {
  subsystem?: string;
  kind?: string;
  party?: string;
  signer?: string;
  /** signed timestamp >= since (unix seconds) */
  since?: string;
  /** signed timestamp < until (unix seconds) */
  until?: string;
}

/** Return one page of transactions matching `filter`, older than `before` when given. */
export function listTxs(filter: TxFilter, before?: number | null, limit = 25): Promise<TxPage> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
  if (before != null) q.set("before", String(before));
  q.set("limit", String(limit));
  return getJson<TxPage>(`${API}/transactions?${q}`);
}

/** Return the path of subsystem `name`'s API, with `rest` appended. */
export function subsystemApi(name: string, rest = ""): string {
  return `${API}/subsystems/${encodeURIComponent(name)}${rest}`;
}

let healthCache: Health | null = null;

/** Return the node's /health, fetched once per page load. */
export async function health(): Promise<Health> {
  healthCache ??= await getJson<Health>("/health");
  return healthCache;
}

/** Return the node's answer to a signed business transaction `body` POSTed to /transactions. */
export async function submitTransaction(body: unknown): Promise<{ id: string; status: string }> {
  const res = await fetch(`${nodeUrl(`${API}/transactions`)}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  if (!res.ok) throw new ApiError(res.status, answer.detail ?? res.statusText);
  return answer;
}
