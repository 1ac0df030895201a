// The explorer: hash routes (#/...), so the same files work at /, /ipfs/<cid>/ and any gateway.

import "./style.css";
import { type Hex, concat, hexToBytes, isAddress, isHash, keccak256, stringToBytes } from "viem";
import {
  API,
  ApiError,
  type Anchor,
  getJson,
  getOptional,
  type Health,
  listTxs,
  type Me,
  nodeUrl,
  postJson,
  type Proof,
  type RelayResult,
  type SubsystemRecord,
  type Tx,
  type TxFilter,
  type TypedDataDoc,
  type UnsignedTx,
} from "./api";
import { chainClient, readRegistry, registryAdmins, registryLiveNodes, registryNodes, registrySubsystems, ZERO_HASH } from "./chain";
import { h, type Raw, short } from "./html";
import { getUserJson, postUserJson } from "./userapi";
import { chainTrustNote, healthBanner } from "./truth";
import { checkMerkle, checkOnChain, checkSignature, type CheckResult } from "./verify";
import {
  WalletError,
  connect,
  requireChain,
  sendWithWallet,
  signAndRelay,
  signForRelay,
  signIn,
  signOut,
  signTransaction,
  switchChain,
} from "./wallet";

export const PAGE_SIZE = 25;
export const CSV_PAGE = 500;
export const CSV_MAX_ROWS = 20000;
export const DEFAULT_REPLICAS: Record<string, number> = { fe_system: 3, be_system: 3, fe_subsystem: 2, be_subsystem: 2 };
const CSV_COLUMNS = ["id", "seq", "subsystem", "kind", "parties", "amount", "currency", "memo", "signer", "cid", "status", "timestamp", "anchor_block", "private", "payload_hash"];
/** How long the app waits for a registry transaction sent by the wallet to be mined. */
export const RECEIPT_TIMEOUT_MS = 60_000;
export const RECEIPT_POLL_MS = 250;
/** `/s/<subsystem>/`: a subsystem's front-end path (the system UI is served there as fallback). */
const SUBSYSTEM_PATH = /\/s\/([^/]+)\/(?:index\.html)?$/;

const main = document.getElementById("main") as HTMLElement;
let healthCache: Health | null = null;

let routeId = 0;

/** Thrown to stop a page whose route is no longer the current one. */
class StaleRoute extends Error {}

/** Show `content`; throw StaleRoute if the user navigated away since route `id` started. */
function render(id: number, content: Raw): void {
  if (id !== routeId) throw new StaleRoute();
  main.innerHTML = content.html;
}

function message(kind: "ok" | "bad" | "warn" | "", text: string): Raw {
  return h`<div class="msg ${kind}" role="${kind === "bad" ? "alert" : "status"}">${text}</div>`;
}

function errorText(e: unknown): string {
  if (e instanceof ApiError) return `The node answered ${e.status}: ${e.message}`;
  if (e instanceof WalletError) return e.message;
  return (e as Error)?.message ?? String(e);
}

async function health(): Promise<Health> {
  healthCache ??= await getJson<Health>("/health");
  return healthCache;
}

function txLink(id: string): Raw {
  return h`<a href="#/tx/${id}"><code>${short(id)}</code></a>`;
}

function ipfsLink(cid: string): Raw {
  return h`<a href="${nodeUrl(`/ipfs/${cid}`)}"><code>${short(cid)}</code></a>`;
}

function parseQuery(query: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(query));
}

// ---------------------------------------------------------------- overview

async function overview(): Promise<void> {
  const id = routeId;
  const hl = await health();
  const client = chainClient(hl.chain.chain_id);
  const [height, epochApi, nodesApi, anchors] = await Promise.all([
    client.getBlockNumber().catch(() => BigInt(hl.chain.block_number)),
    getOptional<Record<string, unknown>>(`${API}/epochs/current`),
    getOptional<unknown[]>(`${API}/nodes`),
    getJson<Anchor[]>(`${API}/anchors?limit=20`),
  ]);
  const registry = hl.registry;
  let epoch: bigint | number = hl.epoch;
  let seed = "";
  let nextRotation = "";
  let nodesOnline = "";
  if (registry) {
    epoch = await readRegistry<bigint>(client, registry, "currentEpoch");
    const s = await readRegistry<Hex>(client, registry, "seeds", [epoch]);
    seed = s === ZERO_HASH ? "not fixed yet" : s;
    const next = await readRegistry<bigint>(client, registry, "epochStartBlock", [BigInt(epoch) + 1n]);
    nextRotation = `block ${next} (in ${next - height} blocks)`;
  }
  if (nodesApi) nodesOnline = `${nodesApi.length} active`;
  else if (registry) {
    const nodes = await registryNodes(client, registry);
    nodesOnline = `${nodes.filter((n) => n.active).length} active`;
  }
  const epochRoot = epochApi?.root as string | undefined;
  const perBatch = anchors.length ? (anchors.reduce((n, a) => n + a.count, 0) / anchors.length).toFixed(1) : "—";
  const card = (label: string, value: unknown, id: string) =>
    h`<div class="card"><div class="label">${label}</div><div class="value" data-testid="${id}">${value}</div></div>`;
  render(id, h`<h1>Overview</h1>${healthBanner(await getJson<Health>("/health"))}
  <div class="cards">
    ${card("Chain height", height, "height")}
    ${card("Epoch", epoch, "epoch")}
    ${card("Next rotation", nextRotation || "—", "rotation")}
    ${card("Nodes", nodesOnline || "—", "nodes")}
    ${card("Tx per batch (last 20)", perBatch, "per-batch")}
    ${card("Chain", `${hl.chain.kind} · id ${hl.chain.chain_id}`, "chain")}
  </div>
  <dl>
    <dt>Epoch seed</dt><dd><code>${seed || "—"}</code></dd>
    <dt>Assignment root</dt><dd>${epochRoot ? h`<a href="#/assignment"><code>${epochRoot}</code></a>` : h`<a href="#/assignment">compute it</a>`}</dd>
    <dt>Registry</dt><dd><code>${registry ?? "—"}</code></dd>
    <dt>This node</dt><dd><code>${hl.node}</code> · v${hl.version} · store ${hl.store.backend}</dd>
  </dl>
  ${epochApi ? "" : message("warn", "This node has no epoch API (/api/v1/epochs/current); epoch and seed are read from the registry on-chain.")}
  <h2>Recent anchors</h2>
  <div class="scroll"><table><thead><tr><th>#</th><th>Root</th><th>Txs</th><th>Tree size</th><th>Block</th><th>Batch CID</th></tr></thead><tbody>
  ${anchors.length ? anchors.map((a) => h`<tr><td>${a.index}</td><td><code>${short(a.root)}</code></td><td>${a.count}</td><td>${a.tree_size}</td><td>${a.block_number}</td><td>${ipfsLink(a.batch_cid)}</td></tr>`) : h`<tr><td colspan="6">No anchors yet.</td></tr>`}
  </tbody></table></div>`);
}

// ---------------------------------------------------------------- transactions

function txRows(items: Tx[]): Raw {
  if (!items.length) return h`<tr><td colspan="8">No transactions match.</td></tr>`;
  return h`${items.map(
    (t) => h`<tr><td>${t.seq}</td><td>${txLink(t.id)}</td><td>${t.subsystem}</td><td>${t.kind}</td>
      <td>${t.private ? h`<span class="badge" title="amount, currency, parties and memo are in the encrypted payload">private</span>` : `${t.amount} ${t.currency}`}</td><td><a href="#/txs?signer=${t.signer}"><code>${short(t.signer)}</code></a></td>
      <td class="${t.status}">${t.status}</td><td>${t.anchor ? t.anchor.block_number : "—"}</td></tr>`,
  )}`;
}

function csvCell(value: unknown): string {
  const s = String(value ?? "");
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Return the CSV text of every transaction matching `filter` (all pages, capped). */
export async function exportCsv(filter: TxFilter): Promise<string> {
  const lines = [CSV_COLUMNS.join(",")];
  let before: number | null | undefined;
  do {
    const page = await listTxs(filter, before, CSV_PAGE);
    for (const t of page.items)
      lines.push(
        [t.id, t.seq, t.subsystem, t.kind, t.parties.join(" "), t.amount, t.currency, t.memo, t.signer, t.cid, t.status, t.timestamp, t.anchor?.block_number ?? "", t.private ? "true" : "false", t.payload_hash ?? ""]
          .map(csvCell)
          .join(","),
      );
    before = page.next_cursor;
  } while (before != null && lines.length <= CSV_MAX_ROWS);
  return lines.join("\r\n") + "\r\n";
}

async function transactions(query: string): Promise<void> {
  const id = routeId;
  const q = parseQuery(query);
  const filter: TxFilter = {
    subsystem: q.subsystem,
    kind: q.kind,
    party: q.party,
    signer: q.signer,
    since: q.since,
    until: q.until,
  };
  const before = q.before ? Number(q.before) : undefined;
  const page = await listTxs(filter, before, PAGE_SIZE);
  const keep = new URLSearchParams(Object.entries(filter).filter(([, v]) => v) as [string, string][]);
  const next = page.next_cursor != null ? `#/txs?${keep}${keep.size ? "&" : ""}before=${page.next_cursor}` : "";
  const field = (name: keyof TxFilter, label: string, ph: string) =>
    h`<label>${label}<input name="${name}" value="${filter[name] ?? ""}" placeholder="${ph}" /></label>`;
  const dateField = (name: "since" | "until", label: string) =>
    h`<label>${label}<input type="date" name="${name}" value="${filter[name] ? new Date(Number(filter[name]) * 1000).toISOString().slice(0, 10) : ""}" /></label>`;
  render(id, h`<h1>Transactions</h1>
  <form class="filters" id="filters">
    ${field("subsystem", "Subsystem", "main")} ${field("kind", "Kind", "invoice")}
    ${field("party", "Party", "0x…")} ${field("signer", "Signer", "0x…")}
    ${dateField("since", "Signed from (UTC)")} ${dateField("until", "Signed before (UTC)")}
    <button type="submit">Filter</button>
    <button type="button" class="secondary" id="csv">Export CSV</button>
  </form>
  <div id="csv-status" role="status"></div>
  <div class="scroll"><table><caption class="sr">Transactions, newest first</caption><thead><tr><th>#</th><th>Id</th><th>Subsystem</th><th>Kind</th><th>Amount</th><th>Signer</th><th>Status</th><th>Block</th></tr></thead>
  <tbody>${txRows(page.items)}</tbody></table></div>
  <div class="pager">${before != null ? h`<a href="#/txs?${keep}">Newest</a>` : ""}${next ? h`<a href="${next}" rel="next">Older →</a>` : ""}</div>`);
  const form = document.getElementById("filters") as HTMLFormElement;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new URLSearchParams();
    for (const [k, v] of new FormData(form)) {
      const value = String(v).trim();
      if (!value) continue;
      data.set(k, k === "since" || k === "until" ? String(Date.parse(`${value}T00:00:00Z`) / 1000) : value);
    }
    location.hash = `#/txs?${data}`;
  });
  document.getElementById("csv")!.addEventListener("click", async () => {
    const status = document.getElementById("csv-status")!;
    status.textContent = "Exporting…";
    try {
      const csv = await exportCsv(filter);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
      a.download = "collegium-transactions.csv";
      document.body.append(a);
      a.click();
      a.remove();
      status.textContent = `Exported ${csv.trim().split("\r\n").length - 1} transactions.`;
    } catch (e) {
      status.textContent = errorText(e);
    }
  });
}

function checkLine(name: string, r: CheckResult | null, id: string): Raw {
  if (!r) return h`<li data-check="${id}">… ${name}</li>`;
  return h`<li data-check="${id}" data-ok="${r.ok}" class="${r.ok ? "ok" : "bad"}">${r.ok ? "✔" : "✘"} ${name}: ${r.detail}</li>`;
}

async function runVerify(tx: Tx, out: HTMLElement): Promise<void> {
  const results: Record<string, CheckResult | null> = { sig: null, merkle: null, chain: null };
  const show = () => {
    out.innerHTML = h`<ul class="checks">${checkLine("Signature (EIP-712)", results.sig, "signature")}${checkLine(
      "Merkle inclusion (RFC 6962, keccak256)",
      results.merkle,
      "merkle",
    )}${checkLine("On-chain root (registry getAnchor)", results.chain, "onchain")}</ul>`.html;
  };
  show();
  const fail = (e: unknown): CheckResult => ({ ok: false, detail: errorText(e) });
  const doc = await getJson<TypedDataDoc>(`${API}/transactions/typed-data`);
  results.sig = await checkSignature(tx, doc).catch(fail);
  show();
  let proof: Proof;
  try {
    proof = await getJson<Proof>(`${API}/transactions/${tx.id}/proof`);
  } catch (e) {
    const text = e instanceof ApiError && e.status === 409 ? "not anchored yet; try again after the next batch" : errorText(e);
    results.merkle = results.chain = { ok: false, detail: text };
    return show();
  }
  let computed: Hex | undefined;
  try {
    const m = checkMerkle(tx, proof, doc);
    computed = m.computed;
    results.merkle = m;
  } catch (e) {
    results.merkle = fail(e);
  }
  show();
  results.chain = await checkOnChain(chainClient(proof.chain_id), proof, computed).catch(fail);
  show();
  out.insertAdjacentHTML(
    "beforeend",
    (Object.values(results).every((r) => r?.ok)
      ? message("ok", "All three checks passed: this transaction is signed, included and anchored.")
      : message("bad", "Verification failed: see the checks above.")
    ).html + chainTrustNote((await health()).chain.kind, proof.chain_id, nodeUrl("/rpc")).html,
  );
}

async function transaction(txId: string): Promise<void> {
  const id = routeId;
  const tx = await getJson<Tx>(`${API}/transactions/${encodeURIComponent(txId)}`);
  const a = tx.anchor;
  const business = tx.private
    ? h`<dt>Type</dt><dd data-testid="tx-type"><span class="badge">private</span> PrivateBusinessTransaction (leaf version 2)</dd>
    <dt>Encrypted payload</dt><dd>${tx.payload ? ipfsLink(tx.payload) : "—"} <span class="muted">CID of the ciphertext: amount, currency, parties and memo are inside</span></dd>
    <dt>Payload hash</dt><dd><code data-testid="payload-hash">${tx.payload_hash}</code> <span class="muted">keccak256(salt ‖ plaintext): a participant proves the content by revealing the salt</span></dd>`
    : h`<dt>Type</dt><dd data-testid="tx-type">BusinessTransaction (leaf version 1)</dd>
    <dt>Amount</dt><dd>${tx.amount} ${tx.currency}</dd>
    <dt>Parties</dt><dd>${tx.parties.length ? tx.parties.map((p) => h`<a href="#/txs?party=${p}"><code>${p}</code></a> `) : "—"}</dd>
    <dt>Memo</dt><dd>${tx.memo || "—"}</dd>
    <dt>Payload</dt><dd>${tx.payload || "—"}</dd>`;
  render(id, h`<h1>Transaction</h1>
  <dl>
    <dt>Id</dt><dd><code data-testid="tx-id">${tx.id}</code></dd>
    <dt>Status</dt><dd class="${tx.status}">${tx.status}</dd>
    <dt>Subsystem</dt><dd><a href="#/subsystem/${tx.subsystem}">${tx.subsystem}</a> · <a href="#/txs?subsystem=${tx.subsystem}">its transactions</a></dd>
    <dt>Kind</dt><dd>${tx.kind}</dd>
    ${business}
    <dt>Nonce</dt><dd>${tx.nonce}</dd>
    <dt>Timestamp</dt><dd>${new Date(Number(tx.timestamp) * 1000).toISOString()} (${tx.timestamp})</dd>
    <dt>Signer</dt><dd><a href="#/txs?signer=${tx.signer}"><code>${tx.signer}</code></a></dd>
    <dt>Signature</dt><dd><code>${tx.signature}</code></dd>
    <dt>CID</dt><dd>${ipfsLink(tx.cid)}</dd>
    <dt>Leaf</dt><dd>${tx.leaf_index ?? "—"} · <code>${tx.leaf_hash}</code></dd>
    <dt>Batch</dt><dd>${a ? h`anchor #${a.index} · ${a.count} txs · tree size ${a.tree_size} · ${ipfsLink(a.batch_cid)}` : "not anchored yet"}</dd>
    <dt>Anchor block</dt><dd>${a ? h`<a href="#/search/${a.block_number}">${a.block_number}</a>` : "—"}</dd>
    <dt>Chain tx</dt><dd>${a ? h`<code>${a.chain_tx_hash}</code>` : "—"}</dd>
  </dl>
  ${tx.private ? h`<div id="private-out" aria-live="polite"></div>` : ""}
  <p><button id="verify" type="button">Verify</button> <span class="muted">checks the signature, the Merkle path and the on-chain root in your browser</span></p>
  <div id="verify-out" aria-live="polite"></div>`);
  if (tx.private && tx.payload) void showPrivateContent(tx, document.getElementById("private-out")!);
  const btn = document.getElementById("verify") as HTMLButtonElement;
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      await runVerify(tx, document.getElementById("verify-out")!);
    } finally {
      btn.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- assignment

interface TopoNode {
  id: string;
  roles: string[];
  members_of: string[];
}

/** Return the served subsystems and replicas clipped to the eligible nodes (node/epoch/policy.py). */
export function computePolicy(nodes: TopoNode[], subsystems: string[]): { served: string[]; replicas: Record<string, number> } {
  const eligible = (n: TopoNode, role: string, sub: string | null) =>
    n.roles.includes(role) && (role !== "be_subsystem" || (sub !== null && n.members_of.includes(sub)));
  const served = [...subsystems]
    .sort()
    .filter((s) => ["fe_subsystem", "be_subsystem"].every((role) => nodes.some((n) => eligible(n, role, s))));
  const replicas: Record<string, number> = {};
  for (const [role, count] of Object.entries(DEFAULT_REPLICAS)) {
    const slots = role.endsWith("_subsystem") ? served : [null];
    const fewest = Math.min(...slots.map((s) => nodes.filter((n) => eligible(n, role, s)).length));
    replicas[role] = fewest > 0 && Number.isFinite(fewest) ? Math.min(count, fewest) : count;
  }
  return { served, replicas };
}

interface AssignmentOut {
  adjustments?: { reason: string; role: string; subsystem: string | null; from: number; to: number }[];
  root: string;
  slots: { role: string; subsystem: string | null; hosts: string[] }[];
}

async function assignment(query: string): Promise<void> {
  const id = routeId;
  const hl = await health();
  if (!hl.registry) return render(id, message("warn", "This node has no registry yet."));
  const client = chainClient(hl.chain.chain_id);
  const current = await readRegistry<bigint>(client, hl.registry, "currentEpoch");
  const epoch = query ? BigInt(parseQuery(query).epoch ?? current) : current;
  const [seed, apiEpoch] = await Promise.all([
    readRegistry<Hex>(client, hl.registry, "seeds", [epoch]),
    getOptional<Record<string, unknown>>(epoch === current ? `${API}/epochs/current` : `${API}/epochs/${epoch}`),
  ]);
  const picker = h`<form class="filters" id="epoch-form"><label>Epoch<input name="epoch" type="number" min="0" max="${current}" value="${epoch}" /></label><button type="submit">Show</button></form>`;
  const bind = () =>
    document.getElementById("epoch-form")?.addEventListener("submit", (ev) => {
      ev.preventDefault();
      location.hash = `#/assignment?epoch=${new FormData(ev.target as HTMLFormElement).get("epoch")}`;
    });
  if (seed === ZERO_HASH) {
    render(id, h`<h1>Assignment</h1>${picker}${message("warn", `The seed of epoch ${epoch} is not fixed on-chain yet, so there is no assignment to compute.`)}`);
    return bind();
  }
  // The registry as it was at the epoch's boundary block (as every node reads it), else now.
  // (epoch 0 is read at its first registration: the node's snapshot_block, docs/assignment.md)
  const snapshotBlock = apiEpoch?.snapshot_block as number | undefined;
  const boundary =
    snapshotBlock !== undefined
      ? BigInt(snapshotBlock)
      : await readRegistry<bigint>(client, hl.registry, "epochStartBlock", [epoch]).catch(() => undefined);
  const [nodes, subsystems, liveness] = await Promise.all([
    registryNodes(client, hl.registry, boundary),
    registrySubsystems(client, hl.registry, boundary),
    boundary === undefined ? undefined : registryLiveNodes(client, hl.registry, boundary),
  ]);
  // Only the nodes live at the boundary block are assigned (node/epoch/snapshot.py).
  const isLive = (n: { address: string }) => !liveness || liveness.live.has(n.address.toLowerCase());
  const leftOut = nodes.filter((n) => n.active && !isLive(n));
  const topoNodes = nodes
    .filter((n) => n.active && isLive(n))
    .map((n) => ({
      id: n.address.toLowerCase(),
      capacity: n.capacity,
      home: n.home || n.address.toLowerCase(),
      members_of: subsystems
        .filter((s) => s.participants.some((p) => p.toLowerCase() === n.address.toLowerCase()))
        .map((s) => s.name),
      roles: n.roles,
    }));
  const policy = computePolicy(topoNodes, subsystems.map((s) => s.name));
  const replicas = (apiEpoch?.default_replicas ?? DEFAULT_REPLICAS) as Record<string, number>; // the function reduces
  const served = (apiEpoch?.subsystems ?? policy.served) as string[];
  const input = { seed, epoch: Number(epoch), nodes: topoNodes, subsystems: served, replicas };
  const { computeAssignment } = await import("../assignment/assignment.mjs");
  let computed: AssignmentOut;
  try {
    computed = computeAssignment(input) as AssignmentOut;
  } catch (e) {
    render(id, h`<h1>Assignment</h1>${picker}${message("bad", `The browser cannot compute epoch ${epoch}'s assignment: ${errorText(e)}`)}`);
    return bind();
  }
  const nodeRoot = (apiEpoch?.assignment as AssignmentOut | undefined)?.root ?? (apiEpoch?.root as string | undefined);
  const verdict = nodeRoot
    ? nodeRoot.toLowerCase() === computed.root.toLowerCase()
      ? message("ok", `Matches: the node's assignment root equals the one computed in this browser (${computed.root}).`)
      : message("bad", `Mismatch: the node says ${nodeRoot}, this browser computes ${computed.root}.`)
    : message("warn", "The node's epoch API is not available, so there is no node answer to compare; the attestations below are compared instead.");
  const attest = await Promise.all(
    nodes.map(async (n) => ({ n, root: await readRegistry<Hex>(client, hl.registry!, "attestationOf", [epoch, n.address]) })),
  );
  render(id, h`<h1>Assignment — epoch ${epoch}</h1>${picker}
  <dl><dt>Seed</dt><dd><code>${seed}</code></dd><dt>Computed root</dt><dd><code data-testid="assignment-root">${computed.root}</code></dd></dl>
  <div data-testid="assignment-verdict">${verdict}</div>
  ${computed.adjustments?.length ? message("warn", `Reduced to fit the nodes (docs/assignment.md, "Reduction"; the root commits to it): ${computed.adjustments.map((a) => (a.to ? `${a.role} ${a.from} → ${a.to} replicas (${a.reason})` : `${a.role}${a.subsystem === null ? "" : `[${a.subsystem}]`} unserved (${a.reason})`)).join("; ")}.`) : ""}
  <h2>Slots</h2>
  <div class="scroll"><table><thead><tr><th>Role</th><th>Subsystem</th><th>Hosts (ranked)</th></tr></thead><tbody>
  ${computed.slots.map((s) => h`<tr><td>${s.role}</td><td>${s.subsystem ?? "—"}</td><td>${s.hosts.map((x) => h`<code>${short(x, 8)}</code> `)}</td></tr>`)}
  </tbody></table></div>
  <h2>Attestations</h2>
  <div class="scroll"><table><thead><tr><th>Node</th><th>Attested root</th><th>Agrees</th></tr></thead><tbody>
  ${attest.map(({ n, root }) => {
    const none = root === ZERO_HASH;
    const agrees = root.toLowerCase() === computed.root.toLowerCase();
    return h`<tr class="${none || agrees ? "" : "diverge"}"><td><code>${short(n.address, 8)}</code></td><td><code>${none ? "—" : short(root)}</code></td><td class="${none ? "muted" : agrees ? "ok" : "bad"}">${none ? "not attested" : agrees ? "yes" : "DIVERGES"}</td></tr>`;
  })}
  </tbody></table></div>
  <p data-testid="assignment-left-out">${leftOut.length ? h`Left out as not live at the boundary block (not seen within the liveness window): ${leftOut.map((n) => h`<code>${short(n.address, 8)}</code> `)}` : liveness?.keptAll ? "No node was live at the boundary block: all active nodes kept." : "Every active node was live at the boundary block."}</p>
  <p class="muted">Topology read from the registry at the epoch's boundary block ${boundary ?? "(now)"}: active nodes live at it, participants as members; replicas ${JSON.stringify(replicas)}${apiEpoch ? " (the node's)" : " (defaults clipped to the eligible nodes)"}.</p>
  <details><summary>Topology used (input of <code>collegium assign</code>)</summary><pre data-testid="assignment-input">${JSON.stringify(input, null, 1)}</pre></details>`);
  bind();
}

// ---------------------------------------------------------------- nodes and subsystems

async function nodesPage(): Promise<void> {
  const id = routeId;
  const hl = await health();
  if (!hl.registry) return render(id, message("warn", "This node has no registry yet."));
  const client = chainClient(hl.chain.chain_id);
  const epoch = await readRegistry<bigint>(client, hl.registry, "currentEpoch");
  const [nodes, subsystems] = await Promise.all([
    registryNodes(client, hl.registry),
    registrySubsystems(client, hl.registry),
  ]);
  const [attested, lastSeen, adminLists] = await Promise.all([
    Promise.all(nodes.map((n) => readRegistry<Hex>(client, hl.registry!, "attestationOf", [epoch, n.address]))),
    Promise.all(nodes.map((n) => readRegistry<bigint>(client, hl.registry!, "lastSeen", [n.address]))),
    Promise.all(subsystems.map((s) => registryAdmins(client, hl.registry!, s.name).catch(() => null))),
  ]);
  render(id, h`<h1>Nodes</h1>
  <div class="scroll"><table><thead><tr><th>Address</th><th>Endpoint</th><th>Capacity</th><th>Roles</th><th>Home</th><th>Active</th><th>Last seen (block)</th><th>Attested epoch ${epoch}</th></tr></thead><tbody>
  ${nodes.map((n, i) => h`<tr><td><code>${short(n.address, 8)}</code></td><td>${n.endpoint}</td><td>${n.capacity}</td><td>${n.roles.join(", ")}</td><td>${n.home}</td><td>${n.active ? "yes" : "no"}</td><td>${lastSeen[i]}</td><td>${attested[i] === ZERO_HASH ? "—" : h`<code>${short(attested[i])}</code>`}</td></tr>`)}
  </tbody></table></div>
  <h1>Subsystems</h1>
  <div class="scroll"><table><thead><tr><th>Name</th><th>Participants</th><th>Admins</th></tr></thead><tbody>
  ${subsystems.length ? subsystems.map((s, i) => h`<tr><td><a href="#/subsystem/${s.name}">${s.name}</a></td><td>${s.participants.length ? s.participants.map((p) => h`<code>${short(p, 8)}</code> `) : "—"}</td><td>${adminLists[i] ? adminLists[i]!.map((p) => h`<code>${short(p, 8)}</code> `) : "n/a"}</td></tr>`) : h`<tr><td colspan="3">No subsystems registered.</td></tr>`}
  </tbody></table></div>
  <p class="muted">Admins: the accounts the registry's <code>SubsystemAdminAdded</code> events name, still confirmed by <code>isSubsystemAdmin</code> (read through /rpc).</p>`);
}

// ---------------------------------------------------------------- wallet

let account: `0x${string}` | null = null;

async function walletPage(): Promise<void> {
  const id = routeId;
  const hl = await health();
  const doc = await getJson<TypedDataDoc>(`${API}/transactions/typed-data`);
  render(id, h`<h1>Wallet</h1>
  <div id="wallet-status" aria-live="polite">${account ? message("ok", `Connected as ${account}.`) : ""}</div>
  <p><button id="connect" type="button">Connect wallet</button>
     <button id="switch" type="button" class="secondary">Switch network</button>
     <button id="signin" type="button" class="secondary">Sign in (SIWE)</button>
     <button id="signout" type="button" class="secondary">Sign out</button></p>
  <h2>Submit a business transaction</h2>
  <form class="form" id="submit-form">
    <label>Subsystem<input name="subsystem" value="main" required /></label>
    <label>Kind<input name="kind" value="invoice" required /></label>
    <label>Parties (comma-separated addresses)<input name="parties" placeholder="0x…" /></label>
    <label>Amount<input name="amount" value="100" inputmode="decimal" required /></label>
    <label>Currency<input name="currency" value="EUR" required /></label>
    <label>Memo<input name="memo" value="" /></label>
    <label class="check"><input type="checkbox" name="private" /> Private: encrypted for the subsystem's participants</label>
    <label>Private content (amount, parties, terms…; only participants can read it)<textarea name="content" rows="3"></textarea></label>
    <button type="submit">Sign and submit</button>
  </form>
  <div id="submit-status" aria-live="polite"></div>
  <p class="muted">Signed with EIP-712 for chain ${doc.domain.chainId}, registry <code>${doc.domain.verifyingContract}</code>.
  A private transaction's content is sent over your signed session to the subsystem's back-end host, which encrypts it under the subsystem's key before storing it: that host sees the plaintext; the chain, IPFS and everyone else see only the ciphertext's CID and the payload hash.</p>`);
  const status = document.getElementById("wallet-status")!;
  const say = (el: HTMLElement, kind: "ok" | "bad" | "warn" | "", text: string) => (el.innerHTML = message(kind, text).html);
  void currentSession()
    .then((me) => {
      if (me && id === routeId && !status.textContent)
        say(status, "ok", `Signed in as ${me.address} (your session in this browser is still valid).`);
    })
    .catch(() => undefined);
  const guard = (el: HTMLElement, fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (e) {
      say(el, "bad", errorText(e));
    }
  };
  const ensure = async () => {
    account ??= await connect();
    await requireChain(hl.chain.chain_id);
    return account;
  };
  document.getElementById("connect")!.addEventListener(
    "click",
    guard(status, async () => {
      account = await connect();
      await requireChain(hl.chain.chain_id);
      say(status, "ok", `Connected as ${account} on chain ${hl.chain.chain_id}.`);
    }),
  );
  document.getElementById("switch")!.addEventListener(
    "click",
    guard(status, async () => {
      await switchChain(hl.chain.chain_id);
      say(status, "ok", `Wallet switched to chain ${hl.chain.chain_id}.`);
    }),
  );
  document.getElementById("signin")!.addEventListener(
    "click",
    guard(status, async () => {
      const addr = await ensure();
      const session = await signIn(addr, hl.chain.chain_id);
      const subs = (session.subsystems as string[] | undefined) ?? [];
      const admin = (session.admin_of as string[] | undefined) ?? [];
      status.innerHTML = message(
        "ok",
        `Signed in as ${session.address}${subs.length ? `; your subsystems: ${subs.join(", ")}` : ""}${admin.length ? `; admin of: ${admin.join(", ")}` : ""}.`,
      ).html + (admin.length ? h`<p><a href="#/admin">Manage participants</a></p>`.html : "");
    }),
  );
  document.getElementById("signout")!.addEventListener(
    "click",
    guard(status, async () => {
      await signOut();
      say(status, "ok", "Signed out: this browser's session key is deleted.");
    }),
  );
  const form = document.getElementById("submit-form") as HTMLFormElement;
  const out = document.getElementById("submit-status")!;
  form.addEventListener(
    "submit",
    (ev) => {
      ev.preventDefault();
      void guard(out, async () => {
        const addr = await ensure();
        const f = new FormData(form);
        if (f.get("private")) {
          await submitPrivate(addr, doc, f, out);
          return;
        }
        const parties = String(f.get("parties") ?? "").split(/[\s,]+/).filter(Boolean);
        const bad = parties.find((p) => !isAddress(p));
        if (bad) throw new WalletError(`Not an address: ${bad}`);
        const transaction = {
          subsystem: String(f.get("subsystem")).trim(),
          kind: String(f.get("kind")).trim(),
          parties,
          amount: canonicalAmount(String(f.get("amount"))),
          currency: String(f.get("currency")).trim(),
          memo: String(f.get("memo") ?? ""),
          payload: "",
          nonce: Math.floor(Math.random() * Number.MAX_SAFE_INTEGER),
          timestamp: Math.floor(Date.now() / 1000),
        };
        say(out, "", "Waiting for your wallet's signature…");
        const signature = await signTransaction(addr, doc, transaction);
        const res = await fetch(`${nodeUrl(`${API}/transactions`)}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ transaction, signer: addr, signature }),
        });
        const body = await res.json();
        if (!res.ok) throw new ApiError(res.status, body.detail ?? res.statusText);
        out.innerHTML = h`<div class="msg ok" role="status" data-testid="submitted">Submitted (${body.status}): <a href="#/tx/${body.id}"><code>${body.id}</code></a></div>`.html;
      })();
    },
  );
}

/** Return `text` as the canonical decimal the node accepts ("250.00" → "250", "0100" → "100"),
 * or throw a WalletError before anything is signed. */
export function canonicalAmount(text: string): string {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!m) throw new WalletError(`The amount must be a non-negative decimal number like 12.5, not "${text.trim()}".`);
  const whole = m[1].replace(/^0+(?=\d)/, "");
  const fraction = (m[2] ?? "").replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : whole;
}

/** Seal `f`'s private content for its subsystem (over the signed session, at the subsystem's
 * back-end host), sign the PrivateBusinessTransaction and submit it. */
async function submitPrivate(addr: `0x${string}`, doc: TypedDataDoc, f: FormData, out: HTMLElement): Promise<void> {
  const subsystem = String(f.get("subsystem")).trim();
  const content = String(f.get("content") ?? "");
  if (!content.trim()) throw new WalletError("Write the private content first: it is what gets encrypted.");
  if (!doc.private) throw new WalletError("This node does not offer private transactions.");
  const session = await currentSession();
  if (!session) throw new WalletError("Sign in first (Sign in button above): only a signed-in participant can seal private content.");
  if (!session.subsystems.includes(subsystem))
    throw new WalletError(`You are not a participant of ${subsystem}: ask to join it on its page first.`);
  out.innerHTML = message("", "Encrypting the content for the subsystem's participants…").html;
  const sealed = await postUserJson<{ cid: string; payload_hash: Hex }>(subsystemApi(subsystem, "/data/payloads"), { content });
  const transaction = {
    subsystem,
    kind: String(f.get("kind")).trim(),
    parties: [] as string[],
    amount: "",
    currency: "",
    memo: "",
    payload: sealed.cid,
    private: true,
    payload_hash: sealed.payload_hash,
    nonce: Math.floor(Math.random() * Number.MAX_SAFE_INTEGER),
    timestamp: Math.floor(Date.now() / 1000),
  };
  const message_ = {
    subsystem,
    kind: transaction.kind,
    payload: sealed.cid,
    payloadHash: sealed.payload_hash,
    nonce: transaction.nonce,
    timestamp: transaction.timestamp,
  };
  out.innerHTML = message("", "Waiting for your wallet's signature…").html;
  const signature = await signTransaction(addr, { ...doc, ...doc.private }, message_);
  const body = await postJson<{ id: string; status: string }>(`${API}/transactions`, { transaction, signer: addr, signature });
  out.innerHTML = h`<div class="msg ok" role="status" data-testid="submitted">Submitted privately (${body.status}): <a href="#/tx/${body.id}"><code>${body.id}</code></a></div>`.html;
}

/** For a participant, open a private transaction's payload (over the signed session) and check
 * it against the signed payload hash; for anyone else say that only participants can read it. */
async function showPrivateContent(tx: Tx, el: HTMLElement): Promise<void> {
  const session = await currentSession().catch(() => null);
  if (!session || !session.subsystems.includes(tx.subsystem)) {
    el.innerHTML = h`<p class="muted" data-testid="private-note">The content is encrypted: only participants of ${tx.subsystem} can read it (sign in as one).</p>`.html;
    return;
  }
  try {
    const opened = await getUserJson<{ content: string; salt: Hex; payload_hash: Hex }>(
      subsystemApi(tx.subsystem, `/data/payloads/${encodeURIComponent(tx.payload)}`),
    );
    const computed = keccak256(concat([hexToBytes(opened.salt), stringToBytes(opened.content)]));
    const ok = computed.toLowerCase() === String(tx.payload_hash).toLowerCase();
    el.innerHTML = h`<h2>Private content</h2><pre data-testid="private-content">${opened.content}</pre>
    ${message(ok ? "ok" : "bad", ok ? "The content matches the signed payload hash (keccak256(salt ‖ content), checked in your browser)." : `The content does not match the signed payload hash (computed ${computed}).`)}`.html;
  } catch (e) {
    el.innerHTML = message("bad", `Could not open the private content: ${errorText(e)}`).html;
  }
}

// ---------------------------------------------------------------- subsystems and their admins

/** Return the signed-in session, or null when there is none (401) or no sign-in API (404). */
async function currentSession(): Promise<Me | null> {
  try {
    return await getUserJson<Me>(`${API}/auth/me`);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return null;
    throw e;
  }
}

function subsystemApi(name: string, rest = ""): string {
  return `${API}/subsystems/${encodeURIComponent(name)}${rest}`;
}

async function subsystemRecord(id: number, name: string): Promise<SubsystemRecord | null> {
  try {
    return await getJson<SubsystemRecord>(subsystemApi(name));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
    render(id, message("warn", `There is no subsystem "${name}" in the registry.`));
    return null;
  }
}

async function subsystemPage(name: string, landing = false): Promise<void> {
  const id = routeId;
  const record = await subsystemRecord(id, name);
  if (!record) return;
  const hl = await health();
  const [session, recent, admins] = await Promise.all([
    currentSession(),
    listTxs({ subsystem: name }, null, 10),
    hl.registry ? registryAdmins(chainClient(hl.chain.chain_id), hl.registry, name).catch(() => null) : null,
  ]);
  const isAdmin = session?.admin_of.includes(name) ?? false;
  const isMember = session?.subsystems.includes(name) ?? false;
  const cid = record.frontend_cid;
  const note = landing
    ? message(
        "",
        cid
          ? `This is the system-wide app: the front-end of "${name}" (${cid}) is not available on this node yet.`
          : `This is the system-wide app: "${name}" has not published a front-end of its own.`,
      )
    : "";
  render(id, h`<h1>Subsystem ${name}</h1>${note}
  <dl>
    <dt>Participants</dt><dd data-testid="participant-count">${record.participants.length}</dd>
    <dt>Admins</dt><dd data-testid="admins">${admins ? admins.map((a) => h`<a href="#/search/${a}"><code>${a}</code></a> `) : "n/a"}</dd>
    <dt>Own front-end</dt><dd>${cid ? h`<a href="${nodeUrl(`/s/${encodeURIComponent(name)}/`)}">/s/${name}/</a> · ${ipfsLink(cid)}` : h`none published <span class="muted">(an admin runs <code>collegium frontend publish --subsystem ${name}</code>)</span>`}</dd>
    <dt>You</dt><dd>${session ? (isAdmin ? "admin" : isMember ? "participant" : "not a participant") : h`not signed in (<a href="#/admin">sign in</a>)`}</dd>
  </dl>
  ${isAdmin ? h`<p><a href="#/admin/${encodeURIComponent(name)}">Add or remove participants</a></p>` : ""}
  ${session && !isMember && !isAdmin ? joinForm(name) : ""}
  <h2>Participants</h2>
  <ul>${record.participants.map((p) => h`<li><a href="#/search/${p}"><code>${p}</code></a></li>`)}</ul>
  <h2>Recent transactions</h2>
  <div class="scroll"><table><thead><tr><th>#</th><th>Id</th><th>Subsystem</th><th>Kind</th><th>Amount</th><th>Signer</th><th>Status</th><th>Block</th></tr></thead>
  <tbody>${txRows(recent.items)}</tbody></table></div>
  <p><a href="#/txs?subsystem=${encodeURIComponent(name)}">All transactions of ${name}</a></p>`);
  if (session && !isMember && !isAdmin) await wireJoin(name, session.address);
}

function joinForm(name: string): Raw {
  return h`<section class="join" aria-labelledby="join-heading"><h2 id="join-heading">Join ${name}</h2>
  <p id="join-state" data-testid="join-state" aria-live="polite"></p>
  <form class="form" id="join-form" novalidate>
    <label>Message to the admins (optional)<input name="message" maxlength="280" autocomplete="off" /></label>
    <button type="submit">Ask to join</button>
  </form>
  <p class="muted">Your wallet signs the request; this node sends it and pays the gas, so you need no ether.</p></section>`;
}

/** Show the signed-in user's join request state for `name` and wire the "Ask to join" form. */
async function wireJoin(name: string, me: string): Promise<void> {
  const state = document.getElementById("join-state");
  const form = document.getElementById("join-form") as HTMLFormElement | null;
  if (!state || !form) return;
  const show = async () => {
    const st = await getJson<{ pending: boolean; message: string; participant: boolean }>(
      `${API}/subsystems/${encodeURIComponent(name)}/join-requests/${me}`,
    );
    state.textContent = st.participant
      ? `You are a participant of ${name}.`
      : st.pending
        ? `Your request to join ${name} is pending: an admin approves or denies it.`
        : `You are not a participant of ${name}.`;
    form.hidden = st.pending || st.participant;
  };
  await show();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = String(new FormData(form).get("message") ?? "").trim();
    if (new TextEncoder().encode(text).length > 280) {
      state.innerHTML = message("bad", "The message is at most 280 bytes.").html;
      return;
    }
    form.querySelector("button")!.disabled = true;
    try {
      account ??= await connect();
      state.innerHTML = message("", "Sign the request in your wallet…").html;
      await signAndRelay(account, { action: "requestJoin", subsystem: name, data: text });
      await show();
    } catch (e) {
      state.innerHTML = message("bad", errorText(e)).html;
      form.querySelector("button")!.disabled = false;
    }
  });
}

interface JoinRequest {
  address: string;
  message: string;
}

function joinSection(name: string, requests: JoinRequest[], index: number): Raw {
  const heading = `joins-${index}`;
  return h`<section class="joins" data-subsystem="${name}" aria-labelledby="${heading}">
  <h2 id="${heading}">Join requests for ${name}</h2>
  <div class="result" aria-live="polite"></div>
  ${requests.length ? h`<div class="scroll"><table data-testid="join-requests"><thead><tr><th>Address</th><th>Message</th><th><span class="sr">Action</span></th></tr></thead><tbody>
  ${requests.map((r) => h`<tr><td><code>${r.address}</code></td><td>${r.message}</td><td><button type="button" data-approve="${r.address}" aria-label="Approve ${r.address}">Approve</button> <button type="button" class="secondary" data-deny="${r.address}" aria-label="Deny ${r.address}">Deny</button></td></tr>`)}
  </tbody></table></div>` : h`<p>No pending request.</p>`}
  </section>`;
}

/** A result shown once after the admin page re-renders (which subsystem, what happened). */
let adminFlash: { subsystem: string; kind: "ok" | "bad"; text: string } | null = null;

/** Return (hash, block) of the registry transaction adding/removing `address` as a participant of
 * `name`: the node prepares it for the signed-in admin, the wallet sends it (or signs it and the
 * node relays it when the wallet cannot send). */
async function changeParticipant(
  session: Me,
  chainId: number,
  name: string,
  address: string,
  action: "add" | "remove",
  progress: (text: string) => void,
): Promise<{ hash: Hex; block: bigint }> {
  if (!isAddress(address)) throw new WalletError(`Not an address: ${address}`);
  account ??= await connect();
  await requireChain(chainId);
  if (account.toLowerCase() !== session.address.toLowerCase())
    throw new WalletError(
      `Your wallet's account ${account} is not the signed-in ${session.address}: switch accounts in your wallet or sign in again.`,
    );
  const client = chainClient(chainId);
  if ((await client.getBalance({ address: account })) === 0n) {
    // no ether: sign the change as an EIP-712 action and this node relays it, paying the gas
    progress("Sign the change in your wallet; this node sends it and pays the gas…");
    const done = await signAndRelay(account, {
      action: action === "add" ? "addParticipant" : "removeParticipant",
      subsystem: name,
      account: address,
    });
    return { hash: done.tx_hash, block: BigInt(done.block_number) };
  }
  progress("Preparing the registry transaction…");
  const unsigned = await postUserJson<UnsignedTx>(subsystemApi(name, "/participants"), { address, action });
  if (unsigned.chain_id !== chainId)
    throw new WalletError(`The node prepared a transaction for chain ${unsigned.chain_id}, not ${chainId}.`);
  progress("Confirm the transaction in your wallet…");
  const sent = await sendWithWallet(unsigned);
  if (sent) {
    progress(`Sent ${sent}; waiting for it to be mined…`);
    const receipt = await client.waitForTransactionReceipt({
      hash: sent,
      pollingInterval: RECEIPT_POLL_MS,
      timeout: RECEIPT_TIMEOUT_MS,
    });
    if (receipt.status !== "success")
      throw new WalletError(`The registry rejected transaction ${sent} (it reverted); nothing changed.`);
    return { hash: sent, block: receipt.blockNumber };
  }
  progress("Your wallet cannot send transactions: sign it and this node relays it…");
  const [nonce, gas, gasPrice] = await Promise.all([
    client.getTransactionCount({ address: unsigned.from }),
    client.estimateGas({ account: unsigned.from, to: unsigned.to, data: unsigned.data }),
    client.getGasPrice(),
  ]);
  const raw = await signForRelay(unsigned, { nonce, gas, gasPrice });
  const relayed = await postJson<RelayResult>(subsystemApi(name, "/participants/relay"), { raw_transaction: raw });
  return { hash: relayed.tx_hash, block: BigInt(relayed.block_number) };
}

function manageSection(record: SubsystemRecord, index: number, me: string): Raw {
  const heading = `manage-${index}`;
  return h`<section class="manage" data-subsystem="${record.name}" aria-labelledby="${heading}">
  <h2 id="${heading}">Participants of ${record.name}</h2>
  <form class="form add-participant" novalidate>
    <label>New participant of ${record.name}<input name="address" placeholder="0x…" autocomplete="off" spellcheck="false" /></label>
    <button type="submit">Add participant</button>
  </form>
  <div class="result" aria-live="polite"></div>
  <div class="scroll"><table><caption class="sr">Participants of ${record.name}</caption>
  <thead><tr><th>Address</th><th><span class="sr">Action</span></th></tr></thead><tbody>
  ${record.participants.length ? record.participants.map((p) => h`<tr><td><code>${p}</code>${p.toLowerCase() === me.toLowerCase() ? " (you)" : ""}</td><td><button type="button" class="secondary" data-remove="${p}" aria-label="Remove ${p} from ${record.name}">Remove</button></td></tr>`) : h`<tr><td colspan="2">No participants.</td></tr>`}
  </tbody></table></div>
  </section>`;
}

async function adminPage(only: string): Promise<void> {
  const id = routeId;
  const hl = await health();
  const session = await currentSession();
  if (!session) {
    render(id, h`<h1>Subsystem admin</h1>
    <p>Sign in with your wallet to see your subsystems and, if you are one of their admins, add or remove participants.</p>
    <p><button id="admin-signin" type="button">Connect and sign in</button></p>
    <div id="admin-status" aria-live="polite"></div>`);
    const status = document.getElementById("admin-status")!;
    document.getElementById("admin-signin")!.addEventListener("click", async () => {
      try {
        account = await connect();
        await requireChain(hl.chain.chain_id);
        status.innerHTML = message("", "Waiting for your wallet's signature…").html;
        await signIn(account, hl.chain.chain_id);
        void route();
      } catch (e) {
        status.innerHTML = message("bad", errorText(e)).html;
      }
    });
    return;
  }
  const who = h`<p>Signed in as <code data-testid="session-address">${session.address}</code>${session.system_admin ? " (system admin)" : ""}.</p>`;
  if (only && !session.admin_of.includes(only)) {
    return render(id, h`<h1>Subsystem admin</h1>${who}${message(
      "bad",
      `You are not an admin of "${only}": only its admins can add or remove its participants. Ask one of them (or a system admin) to make the change, or to make you an admin.`,
    )}<p><a href="#/subsystem/${encodeURIComponent(only)}">Back to ${only}</a></p>`);
  }
  const names = only ? [only] : session.admin_of;
  const records = await Promise.all(names.map((n) => getJson<SubsystemRecord>(subsystemApi(n))));
  const joins = await Promise.all(
    names.map((n) => getJson<{ requests: JoinRequest[] }>(`${API}/subsystems/${encodeURIComponent(n)}/join-requests`)),
  );
  const mine = [...new Set([...session.subsystems, ...session.admin_of])];
  render(id, h`<h1>Subsystem admin</h1>${who}
  ${only ? "" : h`<h2>Your subsystems</h2>
  ${mine.length ? h`<ul data-testid="my-subsystems">${mine.map((n) => h`<li><a href="#/subsystem/${encodeURIComponent(n)}">${n}</a> — ${session.admin_of.includes(n) ? "admin" : "participant"}</li>`)}</ul>` : h`<p>You are not a participant of any subsystem.</p>`}`}
  ${session.admin_of.length ? "" : message("bad", "You are not an admin of any subsystem, so there is nothing to manage here: only a subsystem's admins can add or remove its participants.")}
  ${only ? "" : h`<section class="create" aria-labelledby="create-heading"><h2 id="create-heading">Create a subsystem</h2>
  <form class="form" id="create-form" novalidate>
    <label>Name of the new subsystem<input name="name" maxlength="64" autocomplete="off" spellcheck="false" /></label>
    <button type="submit">Create subsystem</button>
  </form>
  <div id="create-status" aria-live="polite"></div>
  <p class="muted">You become its admin and first participant. Your wallet signs; this node sends it and pays the gas.</p></section>`}
  ${records.map((r, i) => h`${joinSection(r.name, joins[i].requests, i)}${manageSection(r, i, session.address)}`)}`);
  const createForm = document.getElementById("create-form") as HTMLFormElement | null;
  createForm?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const status = document.getElementById("create-status")!;
    const name = String(new FormData(createForm).get("name") ?? "").trim();
    const bytes = new TextEncoder().encode(name).length;
    if (bytes < 1 || bytes > 64) {
      status.innerHTML = message("bad", "A subsystem name is 1 to 64 bytes.").html;
      return;
    }
    createForm.querySelector("button")!.disabled = true;
    try {
      account ??= await connect();
      await requireChain(hl.chain.chain_id);
      status.innerHTML = message("", "Sign the creation in your wallet…").html;
      const done = await signAndRelay(account, { action: "createSubsystem", subsystem: name });
      adminFlash = { subsystem: name, kind: "ok", text: `Created ${name} in block ${done.block_number}; you are its admin.` };
      if (id === routeId) location.hash = `#/admin/${encodeURIComponent(name)}`;
    } catch (e) {
      status.innerHTML = message("bad", errorText(e)).html;
      createForm.querySelector("button")!.disabled = false;
    }
  });
  for (const section of document.querySelectorAll<HTMLElement>("section.joins")) {
    const name = section.dataset.subsystem!;
    const out = section.querySelector<HTMLElement>(".result")!;
    const decide = (address: string, approve: boolean) => async () => {
      section.querySelectorAll("button").forEach((b) => (b.disabled = true));
      try {
        account ??= await connect();
        out.innerHTML = message("", "Sign the decision in your wallet; this node relays it…").html;
        const done = await signAndRelay(account, { action: approve ? "addParticipant" : "denyJoin", subsystem: name, account: address });
        adminFlash = { subsystem: name, kind: "ok", text: `${approve ? "Approved" : "Denied"} ${address} for ${name} in block ${done.block_number} (transaction ${done.tx_hash}).` };
        if (id === routeId) void route();
      } catch (e) {
        out.innerHTML = message("bad", errorText(e)).html;
        section.querySelectorAll("button").forEach((b) => (b.disabled = false));
      }
    };
    for (const b of section.querySelectorAll<HTMLButtonElement>("button[data-approve]"))
      b.addEventListener("click", () => void decide(b.dataset.approve!, true)());
    for (const b of section.querySelectorAll<HTMLButtonElement>("button[data-deny]"))
      b.addEventListener("click", () => void decide(b.dataset.deny!, false)());
  }
  for (const section of document.querySelectorAll<HTMLElement>("section.manage")) {
    const name = section.dataset.subsystem!;
    const out = section.querySelector<HTMLElement>(".result")!;
    if (adminFlash?.subsystem === name) {
      out.innerHTML = message(adminFlash.kind, adminFlash.text).html;
      adminFlash = null;
    }
    const run = (address: string, action: "add" | "remove") => async () => {
      const buttons = section.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        const done = await changeParticipant(session, hl.chain.chain_id, name, address.trim(), action,
          (text) => (out.innerHTML = message("", text).html));
        adminFlash = {
          subsystem: name,
          kind: "ok",
          text: `${action === "add" ? "Added" : "Removed"} ${address.trim()} ${action === "add" ? "to" : "from"} ${name} in block ${done.block} (transaction ${done.hash}).`,
        };
        if (id === routeId) void route();
      } catch (e) {
        out.innerHTML = message("bad", errorText(e)).html;
        buttons.forEach((b) => (b.disabled = false));
      }
    };
    const form = section.querySelector<HTMLFormElement>("form")!;
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const address = String(new FormData(form).get("address") ?? "").trim();
      const record = records.find((r) => r.name === name)!;
      if (isAddress(address) && record.participants.some((p) => p.toLowerCase() === address.toLowerCase())) {
        out.innerHTML = message("bad", `${address} is already a participant of ${name}.`).html;
        return;
      }
      void run(address, "add")();
    });
    for (const button of section.querySelectorAll<HTMLButtonElement>("button[data-remove]"))
      button.addEventListener("click", () => void run(button.dataset.remove!, "remove")());
  }
}

// ---------------------------------------------------------------- search

async function search(q: string): Promise<void> {
  const id = routeId;
  q = q.trim();
  const hl = await health();
  const client = chainClient(hl.chain.chain_id);
  if (isHash(q)) {
    try {
      await getJson<Tx>(`${API}/transactions/${q}`);
      location.replace(`#/tx/${q}`);
      return;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    const block = await client.getBlock({ blockHash: q as Hex }).catch(() => null);
    if (block) return blockView(id, block.number!, client);
    const receipt = await client.getTransactionReceipt({ hash: q as Hex }).catch(() => null);
    if (receipt) return blockView(id, receipt.blockNumber, client, `Chain transaction ${q}`);
    return render(id, message("warn", `Nothing found for ${q}: not a business transaction, block or chain transaction.`));
  }
  if (isAddress(q)) {
    const [signed, party] = await Promise.all([listTxs({ signer: q }, null, PAGE_SIZE), listTxs({ party: q }, null, PAGE_SIZE)]);
    return render(id, h`<h1>Address <code>${q}</code></h1>
    <h2>Signed by it</h2><div class="scroll"><table><tbody>${txRows(signed.items)}</tbody></table></div>
    <p><a href="#/txs?signer=${q}">All signed by it</a></p>
    <h2>Naming it as a party</h2><div class="scroll"><table><tbody>${txRows(party.items)}</tbody></table></div>
    <p><a href="#/txs?party=${q}">All naming it</a></p>`);
  }
  if (/^\d+$/.test(q)) return blockView(id, BigInt(q), client);
  if (/^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{20,})$/.test(q)) {
    const anchors = await getJson<Anchor[]>(`${API}/anchors?limit=500`);
    const hit = anchors.find((a) => a.batch_cid === q);
    return render(id, h`<h1>CID <code>${q}</code></h1>
    <p>${ipfsLink(q)} (open it through this node's IPFS gateway)</p>
    ${hit ? message("ok", `This is the batch of anchor #${hit.index} (block ${hit.block_number}, ${hit.count} transactions).`) : ""}`);
  }
  render(id, message("warn", `Search takes a transaction id, an address, a CID, a block number or a hash; "${q}" is none of those.`));
}

async function blockView(id: number, number: bigint, client: ReturnType<typeof chainClient>, title?: string): Promise<void> {
  const block = await client.getBlock({ blockNumber: number }).catch(() => null);
  if (!block) return render(id, message("warn", `Block ${number} does not exist (yet).`));
  const anchors = (await getJson<Anchor[]>(`${API}/anchors?limit=500`)).filter((a) => BigInt(a.block_number) === number);
  render(id, h`<h1>${title ?? `Block ${number}`}</h1>
  <dl><dt>Number</dt><dd>${block.number}</dd><dt>Hash</dt><dd><code>${block.hash}</code></dd>
  <dt>Time</dt><dd>${new Date(Number(block.timestamp) * 1000).toISOString()}</dd><dt>Transactions</dt><dd>${block.transactions.length}</dd></dl>
  <h2>Anchors in this block</h2>
  ${anchors.length ? anchors.map((a) => h`<p>#${a.index} · root <code>${a.root}</code> · ${a.count} txs · ${ipfsLink(a.batch_cid)}</p>`) : h`<p>None.</p>`}`);
}

// ---------------------------------------------------------------- routing

async function route(): Promise<void> {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?", 2);
  const [page, ...rest] = path.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  for (const a of document.querySelectorAll("nav a"))
    a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${page}`);
  const mine = ++routeId;
  render(mine, h`<p>Loading…</p>`);
  try {
    const landing = page === "" ? SUBSYSTEM_PATH.exec(location.pathname) : null;
    if (landing) await subsystemPage(decodeURIComponent(landing[1]), true);
    else if (page === "" || page === "overview") await overview();
    else if (page === "txs") await transactions(query);
    else if (page === "tx") await transaction(arg);
    else if (page === "assignment") await assignment(query);
    else if (page === "nodes") await nodesPage();
    else if (page === "wallet") await walletPage();
    else if (page === "admin") await adminPage(arg);
    else if (page === "subsystem") await subsystemPage(arg);
    else if (page === "search") await search(arg);
    else render(mine, message("warn", `No page ${path}.`));
  } catch (e) {
    if (e instanceof StaleRoute || mine !== routeId) return;
    render(mine, message("bad", errorText(e)));
  }
}

document.getElementById("search")!.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = (document.getElementById("q") as HTMLInputElement).value.trim();
  if (q) location.hash = `#/search/${encodeURIComponent(q)}`;
});
window.addEventListener("hashchange", () => void route());
void route();
