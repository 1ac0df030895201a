// Nodes: the registry's nodes (liveness, attestations) and its subsystems with their admins.

import type { Hex } from "viem";
import { health } from "../api";
import { chainClient, readRegistry, registryAdmins, registryNodes, registrySubsystems, ZERO_HASH } from "../chain";
import { h, short } from "../html";
import { currentRoute, render } from "../page";
import { message } from "../view";

export async function nodesPage(): Promise<void> {
  const id = currentRoute();
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
