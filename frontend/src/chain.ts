// Reading the registry contract through the node's JSON-RPC passthrough (/rpc) with viem.

import { type Abi, type PublicClient, createPublicClient, defineChain, getAddress, http, keccak256, toBytes } from "viem";
import { abi as registryAbiJson } from "../../contracts/build/Registry.json";
import { nodeUrl } from "./api";

export const registryAbi = registryAbiJson as Abi;
export const ZERO_HASH = `0x${"00".repeat(32)}` as const;
export const ROLE_BITS: [string, number][] = [
  ["fe_system", 1],
  ["fe_subsystem", 2],
  ["be_system", 4],
  ["be_subsystem", 8],
];

let cached: { key: string; client: PublicClient } | null = null;

/** Return a viem client for the node's chain (JSON-RPC at <node>/rpc). */
export function chainClient(chainId: number): PublicClient {
  const url = nodeUrl("/rpc");
  const key = `${url}#${chainId}`;
  if (cached?.key === key) return cached.client;
  const chain = defineChain({
    id: chainId,
    name: `collegium-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const client = createPublicClient({ chain, transport: http(url, { batch: false }) }) as PublicClient;
  cached = { key, client };
  return client;
}

/** Return the result of a view function of the registry at `address`. */
export async function readRegistry<T>(
  client: PublicClient,
  address: `0x${string}`,
  functionName: string,
  args: unknown[] = [],
  blockNumber?: bigint,
): Promise<T> {
  return (await client.readContract({ address, abi: registryAbi, functionName, args, blockNumber })) as T;
}

export interface RegistryNode {
  address: `0x${string}`;
  endpoint: string;
  capacity: number;
  roles: string[];
  home: string;
  active: boolean;
}

/** Return the roles encoded in a registry roles bit mask. */
export function rolesOf(mask: number): string[] {
  return ROLE_BITS.filter(([, bit]) => (mask & bit) !== 0).map(([name]) => name);
}

/** Return every registered node as the registry records it (now, or at block `at`). */
export async function registryNodes(
  client: PublicClient,
  registry: `0x${string}`,
  at?: bigint,
): Promise<RegistryNode[]> {
  const count = await readRegistry<bigint>(client, registry, "nodeCount", [], at);
  const out: RegistryNode[] = [];
  for (let i = 0n; i < count; i++) {
    const address = await readRegistry<`0x${string}`>(client, registry, "nodeAt", [i], at);
    const [endpoint, capacity, rolesMask, home, active] = await readRegistry<
      [string, number, number, string, boolean, bigint]
    >(client, registry, "getNode", [address], at);
    out.push({ address, endpoint, capacity: Number(capacity), roles: rolesOf(Number(rolesMask)), home, active });
  }
  return out;
}

/** Return the active nodes live at block `at` (`liveNodesAt(at)` read at `at`, as every node
 * reads its epoch snapshot) and `keptAll`: true when none was live, so all active nodes are
 * returned. A node is live iff it was seen (registered, updated, attested, heartbeat) within the
 * liveness window before `at`. */
export async function registryLiveNodes(
  client: PublicClient,
  registry: `0x${string}`,
  at: bigint,
): Promise<{ live: Set<string>; keptAll: boolean }> {
  const [nodes, keptAll] = await readRegistry<[readonly `0x${string}`[], boolean]>(
    client,
    registry,
    "liveNodesAt",
    [at],
    at,
  );
  return { live: new Set(nodes.map((a) => a.toLowerCase())), keptAll };
}

/** Return the subsystems and their participants as the registry records them (now, or at `at`). */
export async function registrySubsystems(
  client: PublicClient,
  registry: `0x${string}`,
  at?: bigint,
): Promise<{ name: string; participants: `0x${string}`[] }[]> {
  const count = await readRegistry<bigint>(client, registry, "subsystemCount", [], at);
  const out = [];
  for (let i = 0n; i < count; i++) {
    const name = await readRegistry<string>(client, registry, "subsystemAt", [i], at);
    const participants = await readRegistry<`0x${string}`[]>(client, registry, "participants", [name], at);
    out.push({ name, participants: [...participants] });
  }
  return out;
}

/** Return the current admins of subsystem `name`: every account the registry's
 * `SubsystemAdminAdded` logs name for it (creation emits one too), kept if `isSubsystemAdmin`
 * still holds (the registry keeps no list of admins, only these events). */
export async function registryAdmins(
  client: PublicClient,
  registry: `0x${string}`,
  name: string,
): Promise<`0x${string}`[]> {
  const logs = await client.getContractEvents({
    address: registry,
    abi: registryAbi,
    eventName: "SubsystemAdminAdded",
    args: { id: keccak256(toBytes(name)) },
    fromBlock: 0n,
  });
  const candidates = [
    ...new Set(logs.map((log) => getAddress((log as unknown as { args: { account: string } }).args.account))),
  ];
  const still = await Promise.all(
    candidates.map((a) => readRegistry<boolean>(client, registry, "isSubsystemAdmin", [name, a])),
  );
  return candidates.filter((_, i) => still[i]);
}
