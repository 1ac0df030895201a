// Assignment: an epoch's assignment recomputed in the browser from the registry, compared with
// the node's root and with every node's attestation.

import type { Hex } from "viem";
import { API, getOptional, health } from "../api";
import { chainClient, readRegistry, registryLiveNodes, registryNodes, registrySubsystems, ZERO_HASH } from "../chain";
import { h, short } from "../html";
import { currentRoute, render } from "../page";
import { errorText, message, parseQuery } from "../view";

export const DEFAULT_REPLICAS: Record<string, number> = { fe_system: 3, be_system: 3, fe_subsystem: 2, be_subsystem: 2 };

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

export async function assignment(query: string): Promise<void> {
  const id = currentRoute();
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
  const { computeAssignment } = await import("../../assignment/assignment.mjs");
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
