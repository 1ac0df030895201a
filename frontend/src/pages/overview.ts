// Overview: chain height, epoch and seed, nodes, the health banner and the recent anchors.

import type { Hex } from "viem";
import { API, type Anchor, getJson, getOptional, type Health, health } from "../api";
import { chainClient, readRegistry, registryNodes, ZERO_HASH } from "../chain";
import { h, short } from "../html";
import { currentRoute, render } from "../page";
import { healthBanner } from "../truth";
import { ipfsLink, message } from "../view";

export async function overview(): Promise<void> {
  const id = currentRoute();
  const hl = await health();
  const now = await getJson<Health>("/health").catch(() => hl); // health() is read once per visit
  // the banner first: when the chain does not answer, the reads below wait, then fail
  render(id, h`<h1>Overview</h1>${healthBanner(now)}<p class="muted" data-testid="overview-loading">Reading the chain…</p>`);
  try {
    await overviewCards(id, hl);
  } catch (err) {
    render(id, h`<h1>Overview</h1>${healthBanner(now)}
    ${message("bad", `The chain did not answer: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`)}`);
  }
}

async function overviewCards(id: number, hl: Health): Promise<void> {
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
