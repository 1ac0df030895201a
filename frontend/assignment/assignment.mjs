// JS twin of node/assignment (Python). The spec is docs/assignment.md; this file follows it
// section by section, with the same function names in camelCase. Integer math only (BigInt):
// for every input, Python, JS and Solidity give the same slots and the same root, bit for bit.

import { keccak_256 } from "@noble/hashes/sha3.js";

// --- Constants -------------------------------------------------------------------------------
export const ROLE_BE_SUBSYSTEM = "be_subsystem";
export const ROLE_BE_SYSTEM = "be_system";
export const ROLE_FE_SUBSYSTEM = "fe_subsystem";
export const ROLE_FE_SYSTEM = "fe_system";
export const ROLES = Object.freeze([ROLE_BE_SUBSYSTEM, ROLE_BE_SYSTEM, ROLE_FE_SUBSYSTEM, ROLE_FE_SYSTEM]);
export const SUBSYSTEM_ROLES = Object.freeze(new Set([ROLE_BE_SUBSYSTEM, ROLE_FE_SUBSYSTEM]));
export const MEMBERS_ONLY_ROLES = Object.freeze(new Set([ROLE_BE_SUBSYSTEM]));

export const DOMAIN_FE_SYSTEM = hexToBytes("01000000");
export const DOMAIN_FE_SUBSYSTEM = hexToBytes("02000000");
export const DOMAIN_BE_SYSTEM = hexToBytes("03000000");
export const DOMAIN_BE_SUBSYSTEM = hexToBytes("04000000");
export const DOMAIN_SLOT = hexToBytes("05000000");
export const DOMAIN_ASSIGNMENT = hexToBytes("06000000");
export const DOMAIN_NODE = hexToBytes("07000000");
export const DOMAIN_ADJUSTMENT = hexToBytes("08000000");
// Reduction (docs/assignment.md, "Reduction")
export const ADJUSTMENT_REASON_CODES = Object.freeze({
  eligible_nodes: 1,
  capacity: 2,
  no_eligible_node: 3,
  capacity_unserved: 4,
});
export const REDUCTION_ORDER = Object.freeze([ROLE_FE_SYSTEM, ROLE_FE_SUBSYSTEM, ROLE_BE_SYSTEM, ROLE_BE_SUBSYSTEM]);
export const DROP_ORDER = Object.freeze([ROLE_FE_SUBSYSTEM, ROLE_BE_SUBSYSTEM, ROLE_FE_SYSTEM, ROLE_BE_SYSTEM]);
export const ROLE_DOMAINS = Object.freeze({
  [ROLE_FE_SYSTEM]: DOMAIN_FE_SYSTEM,
  [ROLE_FE_SUBSYSTEM]: DOMAIN_FE_SUBSYSTEM,
  [ROLE_BE_SYSTEM]: DOMAIN_BE_SYSTEM,
  [ROLE_BE_SUBSYSTEM]: DOMAIN_BE_SUBSYSTEM,
});

const EPOCH_LENGTH = 8;
const COUNT_LENGTH = 4;
const ZERO_SUBSYSTEM_KEY = new Uint8Array(32);

export const HASH_BITS = 64n;
export const HASH_MASK = (1n << HASH_BITS) - 1n;
export const MIX_SHIFT_1 = 30n;
export const MIX_MULTIPLIER_1 = 0xbf58476d1ce4e5b9n;
export const MIX_SHIFT_2 = 27n;
export const MIX_MULTIPLIER_2 = 0x94d049bb133111ebn;
export const MIX_SHIFT_3 = 31n;
export const DRAW_BITS = 48n;
export const LOG2_FRACTION_BITS = 32n;
export const LOG2_WORKING_BITS = 64n;
export const LOG2_TABLE_BITS = 10n;
export const LOG2_INTERPOLATION_BITS = DRAW_BITS - LOG2_TABLE_BITS;
export const SCORE_SHIFT = 26n;

export const LOAD_BOUND_NUMERATOR = 6n;
export const LOAD_BOUND_DENOMINATOR = 5n;
export const LOAD_BOUND_MINIMUM = 4n;

export const MAX_EPOCH = 2n ** 64n - 1n;
export const MAX_CAPACITY = 2 ** 32 - 1;
export const MAX_REPLICAS = 2 ** 32 - 1;

// --- Errors ----------------------------------------------------------------------------------
/** An assignment error; ``kind`` is the same string as the Python error's ``kind``. */
export class AssignmentError extends Error {
  constructor(kind, message, fields) {
    super(`${kind}: ${message}`);
    this.name = "AssignmentError";
    this.kind = kind;
    Object.assign(this, fields);
  }
}

function formatSlot(role, subsystem) {
  return subsystem === null ? role : `${role}[${subsystem}]`;
}

function invalid(path, message) {
  return new AssignmentError("invalid_topology", `${path}: ${message}`, { path });
}

// --- Bytes helpers ---------------------------------------------------------------------------
function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const utf8 = new TextEncoder();

/** Return keccak256 of ``bytes``. */
export function keccak256(bytes) {
  return keccak_256(bytes);
}

/** Return ``value`` as ``length`` big-endian bytes (Solidity's uintN). */
export function uintToBytes(value, length) {
  let v = BigInt(value);
  if (v < 0n || v >= 1n << BigInt(8 * length)) throw new RangeError(`${value} does not fit`);
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

// --- Validation ------------------------------------------------------------------------------
const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const HEX_SEED = /^0x[0-9a-fA-F]{64}$/;

function isPlainObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Return whether the mixed-case hex ``address`` carries a valid EIP-55 checksum. */
export function isChecksumAddress(address) {
  const body = address.slice(2);
  const digest = bytesToHex(keccak256(utf8.encode(body.toLowerCase())));
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (/[a-fA-F]/.test(c) && (c === c.toUpperCase()) !== parseInt(digest[i], 16) >= 8) return false;
  }
  return true;
}

function parseAddress(value, path) {
  if (typeof value !== "string" || !HEX_ADDRESS.test(value)) {
    throw invalid(path, `expected a 0x-prefixed 20-byte hex address, got ${JSON.stringify(value)}`);
  }
  const body = value.slice(2);
  if (body !== body.toLowerCase() && body !== body.toUpperCase() && !isChecksumAddress(value)) {
    throw invalid(path, `mixed-case address ${value} fails its EIP-55 checksum`);
  }
  return "0x" + body.toLowerCase();
}

function parseSeed(value, path) {
  if (typeof value !== "string" || !HEX_SEED.test(value)) {
    throw invalid(path, `expected 0x and 64 hex digits (32 bytes), got ${JSON.stringify(value)}`);
  }
  return hexToBytes(value.slice(2));
}

function parseUint(value, path, minimum, maximum) {
  let v;
  if (typeof value === "bigint") v = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) v = BigInt(value);
  else throw invalid(path, `expected an integer, got ${JSON.stringify(value)}`);
  if (v < BigInt(minimum) || v > BigInt(maximum)) {
    throw invalid(path, `expected ${minimum} <= value <= ${maximum}, got ${v}`);
  }
  return v;
}

function parseSubsystemName(value, path) {
  if (typeof value !== "string" || value === "") {
    throw invalid(path, `expected a non-empty subsystem name, got ${JSON.stringify(value)}`);
  }
  if (!value.isWellFormed()) throw invalid(path, "subsystem name is not valid Unicode");
  return value;
}

function parseRole(value, path) {
  if (typeof value !== "string" || !ROLES.includes(value)) {
    throw invalid(path, `unknown role ${JSON.stringify(value)}; expected one of ${ROLES.join(", ")}`);
  }
  return value;
}

function parseList(value, path) {
  if (!Array.isArray(value)) throw invalid(path, `expected a list, got ${JSON.stringify(value)}`);
  return value;
}

function parseObject(value, path, keys) {
  if (!isPlainObject(value)) throw invalid(path, "expected an object");
  const present = Object.keys(value);
  for (const key of [...keys].sort()) if (!present.includes(key)) throw invalid(`${path}.${key}`, "missing");
  for (const key of present.sort()) if (!keys.includes(key)) throw invalid(`${path}.${key}`, "unknown field");
  return value;
}

const TOPOLOGY_KEYS = ["seed", "epoch", "nodes", "subsystems", "replicas"];
const NODE_KEYS = ["id", "capacity", "home", "members_of", "roles"];

function parseNode(value, path) {
  const obj = parseObject(value, path, NODE_KEYS);
  const members = parseList(obj.members_of, `${path}.members_of`);
  const roles = parseList(obj.roles, `${path}.roles`);
  const id = parseAddress(obj.id, `${path}.id`);
  const capacity = parseUint(obj.capacity, `${path}.capacity`, 1, MAX_CAPACITY);
  const home = parseSubsystemName(obj.home, `${path}.home`);
  return {
    id,
    address: hexToBytes(id.slice(2)),
    capacity,
    home,
    membersOf: new Set(members.map((m, i) => parseSubsystemName(m, `${path}.members_of[${i}]`))),
    roles: new Set(roles.map((r, i) => parseRole(r, `${path}.roles[${i}]`))),
  };
}

/** Return the parsed topology of a JSON input object (the input of ``collegium assign``). */
export function parseTopology(value) {
  const obj = parseObject(value, "input", TOPOLOGY_KEYS);
  const nodes = parseList(obj.nodes, "nodes");
  const subsystems = parseList(obj.subsystems, "subsystems");
  if (!isPlainObject(obj.replicas)) throw invalid("replicas", "expected an object");
  return {
    seed: parseSeed(obj.seed, "seed"),
    epoch: parseUint(obj.epoch, "epoch", 0, MAX_EPOCH),
    nodes: nodes.map((n, i) => parseNode(n, `nodes[${i}]`)),
    subsystems: subsystems.map((s, i) => parseSubsystemName(s, `subsystems[${i}]`)),
    replicas: obj.replicas,
  };
}

// --- Hashing and score -----------------------------------------------------------------------
/** Return the 32-byte key of a slot's subsystem: keccak256 of its UTF-8 name, or zero. */
export function computeSubsystemKey(subsystem) {
  return subsystem === null ? ZERO_SUBSYSTEM_KEY : keccak256(utf8.encode(subsystem));
}

/** Return keccak256(domain ++ uint64(epoch) ++ seed). */
export function computeRoleSeed(seed, epoch, role) {
  return keccak256(concatBytes(ROLE_DOMAINS[role], uintToBytes(epoch, EPOCH_LENGTH), seed));
}

/** Return log2(x) in fixed point with LOG2_FRACTION_BITS bits, by repeated squaring (defines the table). */
export function computeLog2Fixed(x) {
  if (x < 1n || x > 1n << HASH_BITS) throw new RangeError("x out of range");
  const integerPart = BigInt(x.toString(2).length - 1);
  const two = 2n << LOG2_WORKING_BITS;
  let y = (x << LOG2_WORKING_BITS) >> integerPart;
  let result = integerPart << LOG2_FRACTION_BITS;
  for (let bit = LOG2_FRACTION_BITS - 1n; bit >= 0n; bit--) {
    y = (y * y) >> LOG2_WORKING_BITS;
    if (y >= two) {
      y >>= 1n;
      result |= 1n << bit;
    }
  }
  return result;
}

/** Return log2(1 + i / 2**LOG2_TABLE_BITS) in fixed point, 0 <= i <= 2**LOG2_TABLE_BITS. */
export function computeLog2TableEntry(i) {
  return computeLog2Fixed((1n << LOG2_TABLE_BITS) + BigInt(i)) - (LOG2_TABLE_BITS << LOG2_FRACTION_BITS);
}

/** LOG2_TABLE[i] = computeLog2TableEntry(i), i = 0 .. 2**LOG2_TABLE_BITS. */
export const LOG2_TABLE = Object.freeze(
  Array.from({ length: Number(1n << LOG2_TABLE_BITS) + 1 }, (_, i) => computeLog2TableEntry(i)),
);

/** Return log2(y) in fixed point for 1 <= y <= 2**DRAW_BITS: table entry plus linear interpolation. */
export function computeLog2Draw(y) {
  if (y < 1n || y > 1n << DRAW_BITS) throw new RangeError("y out of range");
  const integerPart = BigInt(y.toString(2).length - 1);
  const mantissa = y << (DRAW_BITS - integerPart);
  const index = Number((mantissa >> LOG2_INTERPOLATION_BITS) - (1n << LOG2_TABLE_BITS));
  const fraction = mantissa & ((1n << LOG2_INTERPOLATION_BITS) - 1n);
  const low = LOG2_TABLE[index];
  const high = LOG2_TABLE[index + 1];
  return (integerPart << LOG2_FRACTION_BITS) + low + (((high - low) * fraction) >> LOG2_INTERPOLATION_BITS);
}

/** Return the splitmix64 finalizer of the 64-bit x. */
export function mix64(x) {
  x = ((x ^ (x >> MIX_SHIFT_1)) * MIX_MULTIPLIER_1) & HASH_MASK;
  x = ((x ^ (x >> MIX_SHIFT_2)) * MIX_MULTIPLIER_2) & HASH_MASK;
  return x ^ (x >> MIX_SHIFT_3);
}

/** Return -log2(u) in fixed point, u = (d + 1) / 2**DRAW_BITS, d = the draw's leading DRAW_BITS bits. */
export function computeDrawCost(draw) {
  const d = draw >> (HASH_BITS - DRAW_BITS);
  return (DRAW_BITS << LOG2_FRACTION_BITS) - computeLog2Draw(d + 1n);
}

function hashToUint64(digest) {
  let h = 0n;
  for (let i = 0; i < Number(HASH_BITS / 8n); i++) h = (h << 8n) | BigInt(digest[i]);
  return h;
}

/** Return the 64-bit hash of a slot: keccak256(role seed ++ subsystem key), first 8 bytes. */
export function computeSlotHash(roleSeed, subsystemKey) {
  return hashToUint64(keccak256(concatBytes(roleSeed, subsystemKey)));
}

/** Return the 64-bit hash of a node in an epoch: keccak256(DOMAIN_NODE ++ uint64(epoch) ++ seed ++ address). */
export function computeNodeHash(seed, epoch, address) {
  return hashToUint64(keccak256(concatBytes(DOMAIN_NODE, uintToBytes(epoch, EPOCH_LENGTH), seed, address)));
}

/** Return the score of a node for a slot; the lowest score ranks first. */
export function computeNodeScore(slotHash, nodeHash, capacity) {
  return (computeDrawCost(mix64(slotHash ^ nodeHash)) << SCORE_SHIFT) / BigInt(capacity);
}

/** Return the score of a node for slot (role, subsystem) from first principles. */
export function computeSlotScore(seed, epoch, role, subsystem, address, capacity) {
  const slotHash = computeSlotHash(computeRoleSeed(seed, BigInt(epoch), role), computeSubsystemKey(subsystem));
  return computeNodeScore(slotHash, computeNodeHash(seed, BigInt(epoch), address), capacity);
}

// --- The assignment --------------------------------------------------------------------------
function computeCanonicalNodes(nodes) {
  const sorted = [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1].id === sorted[i].id) throw invalid("nodes", `duplicate node id ${sorted[i].id}`);
  }
  return sorted;
}

function computeCanonicalSubsystems(subsystems) {
  const sorted = [...subsystems].sort((a, b) => compareBytes(utf8.encode(a), utf8.encode(b)));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1] === sorted[i]) throw invalid("subsystems", `duplicate subsystem ${JSON.stringify(sorted[i])}`);
  }
  return sorted;
}

function computeReplicas(replicas) {
  for (const role of Object.keys(replicas).sort()) {
    if (!ROLES.includes(role)) throw invalid(`replicas.${role}`, "unknown role");
  }
  const counts = {};
  for (const role of ROLES) {
    if (!Object.hasOwn(replicas, role)) throw invalid(`replicas.${role}`, "missing replica count");
    counts[role] = Number(parseUint(replicas[role], `replicas.${role}`, 1, MAX_REPLICAS));
  }
  return counts;
}

/** Return the slots [role, subsystem] in canonical order: by role, then subsystem. */
export function computeSlotKeys(subsystems) {
  const keys = [];
  for (const role of ROLES) {
    if (SUBSYSTEM_ROLES.has(role)) for (const s of subsystems) keys.push([role, s]);
    else keys.push([role, null]);
  }
  return keys;
}

/** Return whether ``node`` may host slot (role, subsystem). */
export function isEligible(node, role, subsystem) {
  if (!node.roles.has(role)) return false;
  if (MEMBERS_ONLY_ROLES.has(role)) return node.membersOf.has(subsystem);
  return true;
}

/** Return the eligible nodes of a slot, best first: by score, then by address. */
export function computeRankedNodes(seed, epoch, role, subsystem, nodes) {
  const slotHash = computeSlotHash(computeRoleSeed(seed, epoch, role), computeSubsystemKey(subsystem));
  const scored = nodes
    .filter((n) => isEligible(n, role, subsystem))
    .map((n) => ({ score: computeNodeScore(slotHash, nodeHashOf(seed, epoch, n), n.capacity), node: n }));
  scored.sort((a, b) =>
    a.score < b.score ? -1 : a.score > b.score ? 1 : a.node.id < b.node.id ? -1 : a.node.id > b.node.id ? 1 : 0,
  );
  return scored.map((s) => s.node);
}

// One node hash per node and epoch (memoized on the parsed node object).
function nodeHashOf(seed, epoch, node) {
  const key = bytesToHex(seed) + ":" + epoch;
  if (node.hashKey !== key) {
    node.hashKey = key;
    node.nodeHash = computeNodeHash(seed, epoch, node.address);
  }
  return node.nodeHash;
}

/**
 * Return the load under which a node is preferred:
 * max(LOAD_BOUND_MINIMUM, ceil(share), floor(LOAD_BOUND * share)), share = required * capacity / total.
 */
export function computeLoadBound(capacity, required, totalCapacity) {
  const share = BigInt(required) * BigInt(capacity);
  const total = BigInt(totalCapacity);
  const fair = (share + total - 1n) / total;
  const bounded = (LOAD_BOUND_NUMERATOR * share) / (LOAD_BOUND_DENOMINATOR * total);
  let bound = LOAD_BOUND_MINIMUM;
  if (fair > bound) bound = fair;
  if (bounded > bound) bound = bounded;
  return bound;
}

/**
 * Return up to ``count`` distinct hosts with capacity left, in four passes over the ranking:
 * (1) unused home and preferred, (2) unused home, (3) preferred, (4) any.
 * ``preferred`` maps id -> remaining load below the bound (defaults to ``remaining``).
 */
export function computeSlotHosts(ranked, remaining, count, preferred = remaining) {
  const hosts = [];
  const homes = new Set();
  const passes = [
    [true, true],
    [true, false],
    [false, true],
    [false, false],
  ];
  for (const [distinctHome, onlyPreferred] of passes) {
    for (const node of ranked) {
      if (hosts.length === count) return hosts;
      if (hosts.includes(node.id) || remaining.get(node.id) === 0n) continue;
      if (distinctHome && homes.has(node.home)) continue;
      if (onlyPreferred && preferred.get(node.id) === 0n) continue;
      hosts.push(node.id);
      homes.add(node.home);
    }
  }
  return hosts;
}

/** Return keccak256(DOMAIN_SLOT ++ role domain ++ subsystem key ++ uint32(n) ++ n addresses). */
export function computeSlotCommitment(slot) {
  return keccak256(
    concatBytes(
      DOMAIN_SLOT,
      ROLE_DOMAINS[slot.role],
      computeSubsystemKey(slot.subsystem),
      uintToBytes(slot.hosts.length, COUNT_LENGTH),
      ...slot.hosts.map((h) => hexToBytes(h.slice(2))),
    ),
  );
}

/** Return keccak256(DOMAIN_ADJUSTMENT ++ uint8(reason code) ++ role domain ++ subsystem key ++ uint32(from) ++ uint32(to)). */
export function computeAdjustmentCommitment(adjustment) {
  return keccak256(
    concatBytes(
      DOMAIN_ADJUSTMENT,
      uintToBytes(ADJUSTMENT_REASON_CODES[adjustment.reason], 1),
      ROLE_DOMAINS[adjustment.role],
      computeSubsystemKey(adjustment.subsystem),
      uintToBytes(adjustment.from, COUNT_LENGTH),
      uintToBytes(adjustment.to, COUNT_LENGTH),
    ),
  );
}

/**
 * Return keccak256(DOMAIN_ASSIGNMENT ++ uint64(epoch) ++ seed ++ uint32(n) ++ commitments
 * [++ uint32(k) ++ k adjustment commitments, only if k > 0]).
 */
export function computeAssignmentRoot(epoch, seed, slots, adjustments = []) {
  const tail = adjustments.length
    ? [uintToBytes(adjustments.length, COUNT_LENGTH), ...adjustments.map(computeAdjustmentCommitment)]
    : [];
  return keccak256(
    concatBytes(
      DOMAIN_ASSIGNMENT,
      uintToBytes(epoch, EPOCH_LENGTH),
      seed,
      uintToBytes(slots.length, COUNT_LENGTH),
      ...slots.map(computeSlotCommitment),
      ...tail,
    ),
  );
}

/**
 * Return the slots of ``slotKeys`` filled from ``nodes`` (both canonical), strictly: throws
 * AssignmentError not_enough_eligible_nodes, insufficient_capacity or capacity_exhausted.
 */
export function fillSlots(seed, epoch, nodes, slotKeys, counts) {
  for (const [role, subsystem] of slotKeys) {
    const eligible = nodes.filter((n) => isEligible(n, role, subsystem)).length;
    if (eligible < counts[role]) {
      const who =
        subsystem !== null && role === ROLE_BE_SUBSYSTEM
          ? `member nodes of subsystem ${JSON.stringify(subsystem)} offering the role`
          : "nodes offering the role";
      throw new AssignmentError(
        "not_enough_eligible_nodes",
        `slot ${formatSlot(role, subsystem)} needs ${counts[role]} replicas on distinct nodes, but only ${eligible} ${who} exist`,
        { role, subsystem, required: counts[role], eligible },
      );
    }
  }
  const required = slotKeys.reduce((n, [role]) => n + counts[role], 0);
  const available = nodes.reduce((n, node) => n + node.capacity, 0n);
  if (available < BigInt(required)) {
    throw new AssignmentError(
      "insufficient_capacity",
      `the slots need ${required} replicas in total, but the nodes' total capacity is ${available}`,
      { required, available: Number(available) },
    );
  }

  const remaining = new Map(nodes.map((n) => [n.id, n.capacity]));
  const preferred = new Map(
    nodes.map((n) => {
      const bound = computeLoadBound(n.capacity, required, available);
      return [n.id, bound < n.capacity ? bound : n.capacity];
    }),
  );
  const slots = [];
  for (const [role, subsystem] of slotKeys) {
    const ranked = computeRankedNodes(seed, epoch, role, subsystem, nodes);
    const hosts = computeSlotHosts(ranked, remaining, counts[role], preferred);
    if (hosts.length < counts[role]) {
      throw new AssignmentError(
        "capacity_exhausted",
        `slot ${formatSlot(role, subsystem)} needs ${counts[role]} replicas, but only ${hosts.length} eligible nodes have capacity left after the slots filled before it`,
        { role, subsystem, required: counts[role], placed: hosts.length },
      );
    }
    for (const h of hosts) {
      remaining.set(h, remaining.get(h) - 1n);
      if (preferred.get(h) > 0n) preferred.set(h, preferred.get(h) - 1n);
    }
    slots.push({ role, subsystem, hosts });
  }
  return slots;
}

/** Return the role that loses one replica next: most replicas (> 1), ties in REDUCTION_ORDER; or null. */
export function computeReductionRole(counts, roles) {
  let best = null;
  for (const role of REDUCTION_ORDER) {
    if (!roles.has(role) || counts[role] <= 1) continue;
    if (best === null || counts[role] > counts[best]) best = role;
  }
  return best;
}

/** Return the served slot left unserved next: first role of DROP_ORDER, its last subsystem. */
export function computeDropSlot(served) {
  for (const role of DROP_ORDER) {
    const keys = served.filter(([r]) => r === role);
    if (keys.length) return keys[keys.length - 1];
  }
  throw new Error("no served slot");
}

/** Return {slots, adjustments}: the slots filled under the reduction rule (docs/assignment.md). */
export function computeReducedSlots(seed, epoch, nodes, slotKeys, requested) {
  const counts = { ...requested };
  const adjustments = [];
  const eligible = new Map(slotKeys.map((key) => [key, nodes.filter((n) => isEligible(n, key[0], key[1])).length]));
  let served = slotKeys.filter((key) => eligible.get(key) > 0);
  for (const key of slotKeys) {
    if (eligible.get(key) === 0) {
      adjustments.push({ reason: "no_eligible_node", role: key[0], subsystem: key[1], from: counts[key[0]], to: 0 });
    }
  }
  if (!served.length) {
    const [role, subsystem] = slotKeys[0];
    throw new AssignmentError(
      "not_enough_eligible_nodes",
      `no slot can be served: slot ${formatSlot(role, subsystem)} (and every other) has no eligible node`,
      { role, subsystem, required: counts[role], eligible: 0 },
    );
  }
  for (const role of ROLES) {
    const own = served.filter(([r]) => r === role).map((key) => eligible.get(key));
    if (!own.length) continue;
    const fewest = Math.min(...own);
    if (fewest < counts[role]) {
      adjustments.push({ reason: "eligible_nodes", role, subsystem: null, from: counts[role], to: fewest });
      counts[role] = fewest;
    }
  }
  let filled;
  for (;;) {
    try {
      filled = fillSlots(seed, epoch, nodes, served, counts);
      break;
    } catch (e) {
      if (!(e instanceof AssignmentError) || !["insufficient_capacity", "capacity_exhausted"].includes(e.kind)) throw e;
      const down = computeReductionRole(counts, new Set(served.map(([r]) => r)));
      if (down !== null) {
        adjustments.push({ reason: "capacity", role: down, subsystem: null, from: counts[down], to: counts[down] - 1 });
        counts[down] -= 1;
        continue;
      }
      const dropped =
        e.kind === "capacity_exhausted" ? served.find(([r, s]) => r === e.role && s === e.subsystem) : computeDropSlot(served);
      served = served.filter((key) => key !== dropped);
      adjustments.push({ reason: "capacity_unserved", role: dropped[0], subsystem: dropped[1], from: counts[dropped[0]], to: 0 });
    }
  }
  const slots = slotKeys.map(
    ([role, subsystem]) => filled.find((s) => s.role === role && s.subsystem === subsystem) ?? { role, subsystem, hosts: [] },
  );
  return { slots, adjustments };
}

/**
 * Return the assignment of a JSON topology object, as the JSON object `collegium assign` prints:
 * {epoch, seed, slots: [{role, subsystem, hosts}], adjustments: [{reason, role, subsystem, from,
 * to}], root}. Shortages are reduced (docs/assignment.md, "Reduction"); throws AssignmentError
 * on invalid input or when no slot has an eligible node.
 */
export function computeAssignment(input) {
  const topology = parseTopology(input);
  const { seed, epoch } = topology;
  const nodes = computeCanonicalNodes(topology.nodes);
  const subsystems = computeCanonicalSubsystems(topology.subsystems);
  const counts = computeReplicas(topology.replicas);
  const slotKeys = computeSlotKeys(subsystems);
  const { slots, adjustments } = computeReducedSlots(seed, epoch, nodes, slotKeys, counts);
  return {
    epoch: epoch <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(epoch) : epoch,
    seed: "0x" + bytesToHex(seed),
    slots,
    adjustments,
    root: "0x" + bytesToHex(computeAssignmentRoot(epoch, seed, slots, adjustments)),
  };
}
