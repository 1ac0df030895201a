"""The assignment function: weighted rendezvous ranking, anti-affinity and capacity budgets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from node.assignment.constants import (
    DROP_ORDER,
    MAX_EPOCH,
    MAX_REPLICAS,
    MEMBERS_ONLY_ROLES,
    REASON_CAPACITY,
    REASON_CAPACITY_UNSERVED,
    REASON_ELIGIBLE_NODES,
    REASON_NO_ELIGIBLE_NODE,
    REDUCTION_ORDER,
    ROLES,
    SUBSYSTEM_ROLES,
)
from node.assignment.containers import Adjustment, Assignment, Node, Slot, SlotKey
from node.assignment.errors import (
    CapacityExhaustedError,
    InsufficientCapacityError,
    InvalidTopologyError,
    NotEnoughEligibleNodesError,
)
from node.assignment.fill import fill_slots
from node.assignment.hashing import (
    compute_node_hash,
    compute_node_score,
    compute_role_seed,
    compute_slot_hash,
    compute_subsystem_key,
)
from node.assignment.root import compute_assignment_root
from node.assignment.validation import parse_seed, parse_subsystem_name, parse_uint


def compute_canonical_nodes(nodes: Iterable[Node]) -> tuple[Node, ...]:
    """Return the nodes sorted by address; raise ``InvalidTopologyError`` on a duplicate id."""
    canonical: list[Node] = []
    for i, node in enumerate(nodes):
        if not isinstance(node, Node):
            raise InvalidTopologyError(f"nodes[{i}]", f"expected a Node, got {node!r}")
        canonical.append(node)
    canonical.sort(key=lambda node: node.id)
    for previous, node in zip(canonical, canonical[1:], strict=False):
        if previous.id == node.id:
            raise InvalidTopologyError("nodes", f"duplicate node id {node.id}")
    return tuple(canonical)


def compute_canonical_subsystems(subsystems: Iterable[str]) -> tuple[str, ...]:
    """Return the subsystem names sorted by their UTF-8 bytes; reject duplicates."""
    if isinstance(subsystems, str | bytes):
        raise InvalidTopologyError("subsystems", "expected a list of names, got a string")
    names = [parse_subsystem_name(name, f"subsystems[{i}]") for i, name in enumerate(subsystems)]
    names.sort(key=lambda name: name.encode("utf-8"))
    for previous, name in zip(names, names[1:], strict=False):
        if previous == name:
            raise InvalidTopologyError("subsystems", f"duplicate subsystem {name!r}")
    return tuple(names)


def compute_replicas(replicas: Mapping[str, int]) -> dict[str, int]:
    """Return the replica count of each role; every role needs one, ``1 <= count``."""
    if not isinstance(replicas, Mapping):
        raise InvalidTopologyError(
            "replicas", f"expected a mapping role -> count, got {replicas!r}"
        )
    for role in sorted(replicas, key=str):
        if role not in ROLES:
            raise InvalidTopologyError(f"replicas.{role}", f"unknown role; expected {list(ROLES)}")
    counts: dict[str, int] = {}
    for role in ROLES:
        if role not in replicas:
            raise InvalidTopologyError(f"replicas.{role}", "missing replica count")
        counts[role] = parse_uint(replicas[role], f"replicas.{role}", 1, MAX_REPLICAS)
    return counts


def compute_slot_keys(subsystems: Sequence[str]) -> tuple[SlotKey, ...]:
    """Return the slots ``(role, subsystem)`` in canonical order: by role, then subsystem."""
    keys: list[SlotKey] = []
    for role in ROLES:
        if role in SUBSYSTEM_ROLES:
            keys.extend((role, subsystem) for subsystem in subsystems)
        else:
            keys.append((role, None))
    return tuple(keys)


def is_eligible(node: Node, role: str, subsystem: str | None) -> bool:
    """Return whether ``node`` may host slot ``(role, subsystem)``: it offers the role and,
    for a members-only role, is a member of the subsystem."""
    if role not in node.roles:
        return False
    if role in MEMBERS_ONLY_ROLES:
        return subsystem in node.members_of
    return True


def compute_ranked_nodes(
    seed: bytes, epoch: int, role: str, subsystem: str | None, nodes: Sequence[Node]
) -> list[Node]:
    """Return the eligible nodes of a slot, best first: by score, then by address.

    The spec's reference, one score at a time; ``compute_assignment`` gets the same order
    from ``node.assignment.vectorized`` (tested against this function).
    """
    slot_hash = compute_slot_hash(
        compute_role_seed(seed, epoch, role), compute_subsystem_key(subsystem)
    )
    scored = [
        (
            compute_node_score(
                slot_hash, compute_node_hash(seed, epoch, bytes.fromhex(n.id[2:])), n.capacity
            ),
            n.id,
            n,
        )
        for n in nodes
        if is_eligible(n, role, subsystem)
    ]
    scored.sort(key=lambda item: (item[0], item[1]))
    return [node for _, _, node in scored]


def compute_slot_hosts(
    ranked: Sequence[Node],
    remaining: Mapping[str, int],
    count: int,
    preferred: Mapping[str, int] | None = None,
) -> tuple[str, ...]:
    """Return up to ``count`` distinct hosts from ``ranked`` nodes with capacity left.

    Four passes over the ranking, each adding nodes not taken yet: (1) of an unused home and
    preferred (load below its load bound: ``preferred[id] > 0``), (2) of an unused home,
    (3) preferred, (4) any. ``preferred=None`` prefers every node with capacity left.
    """
    preference = remaining if preferred is None else preferred
    hosts: list[str] = []
    homes: set[str] = set()
    passes = ((True, True), (True, False), (False, True), (False, False))
    for distinct_home, only_preferred in passes:
        for node in ranked:
            if len(hosts) == count:
                return tuple(hosts)
            if node.id in hosts or remaining[node.id] == 0:
                continue
            if distinct_home and node.home in homes:
                continue
            if only_preferred and preference[node.id] == 0:
                continue
            hosts.append(node.id)
            homes.add(node.home)
    return tuple(hosts)


def compute_reduction_role(counts: Mapping[str, int], roles: Iterable[str]) -> str | None:
    """Return the role that loses one replica next: the most replicas (> 1) among ``roles``,
    ties in ``REDUCTION_ORDER``; None if every one is down to 1."""
    offered = set(roles)
    candidates = [r for r in REDUCTION_ORDER if r in offered and counts[r] > 1]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (counts[r], -REDUCTION_ORDER.index(r)))


def compute_drop_slot(served: Sequence[SlotKey]) -> SlotKey:
    """Return the served slot left unserved next when capacity is short and every count is 1:
    the first role of ``DROP_ORDER`` with a served slot, its last subsystem in canonical order."""
    for role in DROP_ORDER:
        keys = [key for key in served if key[0] == role]
        if keys:
            return keys[-1]
    raise AssertionError("no served slot")  # pragma: no cover -- callers check


def compute_eligible_counts(
    nodes: Sequence[Node], slot_keys: Sequence[SlotKey]
) -> dict[SlotKey, int]:
    """Return how many nodes are eligible for each slot (one pass over the nodes, not one per
    slot: ``is_eligible`` counted per role, and per subsystem for members-only roles)."""
    offering = {role: 0 for role in ROLES}
    members: dict[tuple[str, str], int] = {}
    for node in nodes:
        for role in node.roles:
            offering[role] += 1
            if role in MEMBERS_ONLY_ROLES:
                for name in node.members_of:
                    members[(role, name)] = members.get((role, name), 0) + 1
    return {
        (role, subsystem): (
            members.get((role, subsystem), 0)
            if role in MEMBERS_ONLY_ROLES and subsystem is not None
            else offering[role]
        )
        for role, subsystem in slot_keys
    }


def compute_reduced_slots(
    seed: bytes,
    epoch: int,
    nodes: Sequence[Node],
    slot_keys: Sequence[SlotKey],
    counts: Mapping[str, int],
) -> tuple[list[Slot], list[Adjustment]]:
    """Return the filled slots of ``slot_keys`` (unserved ones without hosts) and the
    adjustments that made them fit (docs/assignment.md, "Reduction").

    Raise ``NotEnoughEligibleNodesError`` only if no slot has an eligible node at all.
    """
    counts = dict(counts)
    adjustments: list[Adjustment] = []
    # 1. a slot no node may host is unserved
    eligible = compute_eligible_counts(nodes, slot_keys)
    served = [key for key in slot_keys if eligible[key] > 0]
    for role, subsystem in slot_keys:
        if eligible[(role, subsystem)] == 0:
            adjustments.append(
                Adjustment(REASON_NO_ELIGIBLE_NODE, role, subsystem, counts[role], 0)
            )
    if not served:
        role, subsystem = slot_keys[0]
        raise NotEnoughEligibleNodesError(role, subsystem, counts[role], 0)
    # 2. a role's count is at most the fewest eligible nodes over its served slots
    for role in ROLES:
        fewest = min((eligible[key] for key in served if key[0] == role), default=None)
        if fewest is not None and fewest < counts[role]:
            adjustments.append(Adjustment(REASON_ELIGIBLE_NODES, role, None, counts[role], fewest))
            counts[role] = fewest
    # 3. while capacity is short: one replica less (most first), then one slot less
    while True:
        try:
            filled = fill_slots(seed, epoch, nodes, served, counts)
            break
        except (InsufficientCapacityError, CapacityExhaustedError) as exc:
            role_down = compute_reduction_role(counts, (key[0] for key in served))
            if role_down is not None:
                before = counts[role_down]
                counts[role_down] -= 1
                adjustments.append(
                    Adjustment(REASON_CAPACITY, role_down, None, before, counts[role_down])
                )
                continue
            if isinstance(exc, CapacityExhaustedError):
                dropped: SlotKey = (exc.role, exc.subsystem)
            else:
                dropped = compute_drop_slot(served)
            served.remove(dropped)
            adjustments.append(
                Adjustment(REASON_CAPACITY_UNSERVED, dropped[0], dropped[1], counts[dropped[0]], 0)
            )
    by_key = {(slot.role, slot.subsystem): slot for slot in filled}
    slots = [by_key.get(key) or Slot(role=key[0], subsystem=key[1], hosts=()) for key in slot_keys]
    return slots, adjustments


def compute_assignment(
    seed: bytes | str,
    epoch: int,
    nodes: Sequence[Node],
    subsystems: Sequence[str],
    replicas: Mapping[str, int],
    *,
    reduce: bool = True,
) -> Assignment:
    """Return the assignment of ``epoch``: the ranked hosts of every slot, and its root.

    Raises ``InvalidTopologyError`` on malformed input. When eligible nodes or capacity are
    short, replicas are reduced and slots left unserved by the documented rule, each step
    recorded in ``adjustments`` and committed to by the root; only a topology in which no
    slot has an eligible node raises (``NotEnoughEligibleNodesError``). With
    ``reduce=False`` (the strict function, for tests and tools) shortages raise
    ``NotEnoughEligibleNodesError``, ``InsufficientCapacityError`` or
    ``CapacityExhaustedError`` instead (checked in this order).
    """
    seed_bytes = parse_seed(seed, "seed")
    epoch = parse_uint(epoch, "epoch", 0, MAX_EPOCH)
    canonical_nodes = compute_canonical_nodes(nodes)
    canonical_subsystems = compute_canonical_subsystems(subsystems)
    counts = compute_replicas(replicas)
    slot_keys = compute_slot_keys(canonical_subsystems)

    adjustments: list[Adjustment] = []
    if reduce:
        slots, adjustments = compute_reduced_slots(
            seed_bytes, epoch, canonical_nodes, slot_keys, counts
        )
    else:
        slots = fill_slots(seed_bytes, epoch, canonical_nodes, slot_keys, counts)
    root = compute_assignment_root(epoch, seed_bytes, slots, adjustments)
    return Assignment(
        epoch=epoch, seed=seed_bytes, slots=tuple(slots), root=root, adjustments=tuple(adjustments)
    )
