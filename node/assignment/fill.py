"""Step 3 of ``compute_assignment`` (docs/assignment.md): checks, then slots filled in order.

The result is the spec's, byte for byte; only the work differs. Scores are computed with
numpy (``node.assignment.vectorized``), and for large roles only the nodes that can reach the
top of a slot's ranking are scored exactly (*pruning*):

- Pick a score limit ``L`` such that about ``candidates`` eligible nodes score ``<= L``.
- Score is non-increasing in the draw, so ``score <= L`` iff ``draw >= threshold(capacity)``:
  one comparison per (slot, node) pair selects exactly the nodes scoring ``<= L``.
- Those candidates, sorted by (score, address), are a *prefix* of the slot's full ranking
  (ties at ``L`` included, since every node scoring ``<= L`` is in it).
- The spec's first pass (best node of each unused home, below its load bound) is run on the
  prefix. If it places every replica, the full ranking would give the same hosts. Otherwise
  the slot is ranked in full and both passes run as in the spec.

``L`` only changes speed, never the answer (``tests/assignment/test_fill.py`` compares with
the one-score-at-a-time reference for many topologies).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from node.assignment.constants import (
    LOAD_BOUND_DENOMINATOR,
    LOAD_BOUND_MINIMUM,
    LOAD_BOUND_NUMERATOR,
    LOG2_FRACTION_BITS,
    MEMBERS_ONLY_ROLES,
    ROLES,
    SCORE_SHIFT,
)
from node.assignment.containers import Node, Slot, SlotKey
from node.assignment.errors import (
    CapacityExhaustedError,
    InsufficientCapacityError,
    NotEnoughEligibleNodesError,
)
from node.assignment.hashing import (
    compute_node_hash,
    compute_role_seed,
    compute_slot_hash,
    compute_subsystem_key,
)
from node.assignment.vectorized import (
    U64,
    compute_draw_thresholds,
    compute_draws,
    compute_scores,
)

Indices = npt.NDArray[np.intp]

PRUNE_MIN_NODES = 512
"""Roles with fewer eligible nodes rank every eligible node for every slot."""
PRUNE_CANDIDATES_PER_REPLICA = 4
PRUNE_CANDIDATES_EXTRA = 32
"""Expected candidates per slot: ``PER_REPLICA * replicas + EXTRA`` (doubled after a miss)."""
PRUNE_SLOT_BATCH = 64
"""Slots whose draws are computed as one ``(batch, nodes)`` array."""
MAX_SCORE = 2**64 - 1


class _Topology:
    """The canonical nodes as arrays and lists, indexed by canonical (address) order."""

    def __init__(self, seed: bytes, epoch: int, nodes: Sequence[Node]) -> None:
        """Index ``nodes`` (sorted by address) for ``epoch``."""
        self.nodes = nodes
        self.node_hashes: U64 = np.fromiter(
            (compute_node_hash(seed, epoch, bytes.fromhex(n.id[2:])) for n in nodes),
            dtype=np.uint64,
            count=len(nodes),
        )
        self.capacities: U64 = np.array([n.capacity for n in nodes], dtype=np.uint64)
        self.homes = [n.home for n in nodes]
        self.offering: dict[str, Indices] = {
            role: np.array([i for i, n in enumerate(nodes) if role in n.roles], dtype=np.intp)
            for role in ROLES
        }
        members: dict[str, dict[str, list[int]]] = {role: {} for role in MEMBERS_ONLY_ROLES}
        for i, node in enumerate(nodes):
            for role in MEMBERS_ONLY_ROLES & node.roles:
                for subsystem in node.members_of:
                    members[role].setdefault(subsystem, []).append(i)
        self.members = {
            role: {s: np.array(ix, dtype=np.intp) for s, ix in by_subsystem.items()}
            for role, by_subsystem in members.items()
        }

    def eligible(self, role: str, subsystem: str | None) -> Indices:
        """Return the indices of the nodes eligible for slot ``(role, subsystem)``, ascending."""
        if role in MEMBERS_ONLY_ROLES:
            assert subsystem is not None
            return self.members[role].get(subsystem, np.zeros(0, dtype=np.intp))
        return self.offering[role]

    def rank(self, candidates: Indices, draws: U64) -> list[int]:
        """Return ``candidates`` (ascending indices) sorted by (score, address)."""
        scores = compute_scores(draws, self.capacities[candidates])
        order = np.lexsort((candidates, scores))
        ranked: list[int] = candidates[order].tolist()
        return ranked


def pick_hosts(
    ranked: Sequence[int], remaining: Sequence[int], soft: Sequence[int], homes: Sequence[str],
    count: int, complete: bool,
) -> list[int] | None:  # fmt: skip
    """Return the hosts of a slot from its ranking (``compute_slot_hosts`` of the spec).

    Four passes over the ranking, each taking nodes not taken yet: (1) of an unused home and
    under its load bound, (2) of an unused home, (3) under its load bound, (4) any; always
    with capacity left. With ``complete=False`` the ranking is a prefix: return ``None``
    unless the first pass alone places ``count`` hosts.
    """
    hosts: list[int] = []
    used_homes: set[str] = set()
    for i in ranked:
        if soft[i] > 0 and homes[i] not in used_homes:
            hosts.append(i)
            used_homes.add(homes[i])
            if len(hosts) == count:
                return hosts
    if not complete:
        return None
    chosen = set(hosts)
    for distinct_home, bounded in ((True, False), (False, True), (False, False)):
        for i in ranked:
            if len(hosts) == count:
                return hosts
            if i in chosen or remaining[i] == 0:
                continue
            if distinct_home and homes[i] in used_homes:
                continue
            if bounded and soft[i] == 0:
                continue
            hosts.append(i)
            chosen.add(i)
            used_homes.add(homes[i])
    return hosts


def compute_load_bound(capacity: int, required: int, total_capacity: int) -> int:
    """Return the load under which a node of ``capacity`` is preferred:
    ``max(LOAD_BOUND_MINIMUM, ceil(share), floor(LOAD_BOUND * share))`` with
    ``share = required * capacity / total_capacity`` (exact integer arithmetic)."""
    assert 1 <= capacity <= total_capacity
    share = required * capacity
    fair = -(-share // total_capacity)  # ceil
    bounded = (LOAD_BOUND_NUMERATOR * share) // (LOAD_BOUND_DENOMINATOR * total_capacity)
    return max(LOAD_BOUND_MINIMUM, fair, bounded)


def compute_load_bounds(capacities: Sequence[int], required: int) -> list[int]:
    """Return each node's load bound (docs/assignment.md, ``compute_load_bound``)."""
    total = sum(capacities)
    return [compute_load_bound(capacity, required, total) for capacity in capacities]


def compute_score_limit(candidates: int, total_capacity: int) -> int:
    """Return a score limit under which about ``candidates`` nodes of ``total_capacity`` fall.

    ``P(score <= L) ~ L * capacity * ln 2 / 2**(SCORE_SHIFT + LOG2_FRACTION_BITS)`` for small
    ``L``. Floating point is fine here: the limit changes the work, not the answer.
    """
    scale = 2.0 ** (SCORE_SHIFT + LOG2_FRACTION_BITS)
    limit = candidates * scale / (math.log(2) * total_capacity)
    return min(int(limit), MAX_SCORE)


def _fill_role(
    topology: _Topology,
    role_seed: bytes,
    keys: Sequence[SlotKey],
    count: int,
    remaining: list[int],
    soft: list[int],
) -> list[Slot]:
    """Return the filled slots of one role (``keys`` in canonical order); update ``remaining``."""
    role = keys[0][0]
    slot_hashes: U64 = np.array(
        [compute_slot_hash(role_seed, compute_subsystem_key(s)) for _, s in keys], dtype=np.uint64
    )
    slots: list[Slot] = []
    shared = role not in MEMBERS_ONLY_ROLES
    eligible_all = topology.offering[role]
    prune = shared and len(eligible_all) >= PRUNE_MIN_NODES
    wanted = PRUNE_CANDIDATES_PER_REPLICA * count + PRUNE_CANDIDATES_EXTRA
    thresholds: U64 | None = None
    for start in range(0, len(keys), PRUNE_SLOT_BATCH):
        batch = range(start, min(start + PRUNE_SLOT_BATCH, len(keys)))
        if prune and thresholds is None:
            thresholds = compute_prune_thresholds(topology.capacities[eligible_all], wanted)
        draws = (
            compute_draws(slot_hashes[batch.start : batch.stop], topology.node_hashes[eligible_all])
            if shared
            else None
        )
        missed = False
        for row, j in enumerate(batch):
            subsystem = keys[j][1]
            if draws is None:
                hosts = _pick_member_hosts(
                    topology, role, subsystem, slot_hashes[j : j + 1], remaining, soft, count
                )
            else:
                hosts, pruned_miss = _pick_shared_hosts(
                    topology, eligible_all, draws[row], thresholds, remaining, soft, count
                )
                missed = missed or pruned_miss
            slots.append(_take_hosts(topology, role, subsystem, hosts, count, remaining, soft))
        if missed:  # budgets bind or homes repeat: look deeper from the next batch on
            wanted *= 2
            thresholds = None
            prune = prune and wanted * 4 < len(eligible_all)
    return slots


def compute_prune_thresholds(capacities: U64, wanted: int) -> U64:
    """Return, per node of ``capacities``, the draw at or above which its score falls under a
    limit about ``wanted`` of them pass (docs/assignment.md, "Pruning")."""
    limit = compute_score_limit(wanted, int(capacities.sum(dtype=np.uint64)))
    unique, inverse = np.unique(capacities, return_inverse=True)
    return compute_draw_thresholds(limit, unique)[inverse]


def _pick_member_hosts(
    topology: _Topology,
    role: str,
    subsystem: str | None,
    slot_hash: U64,
    remaining: Sequence[int],
    soft: Sequence[int],
    count: int,
) -> list[int]:
    """Return the hosts of a members-only slot, ranked among its eligible nodes only."""
    candidates = topology.eligible(role, subsystem)
    member_draws = compute_draws(slot_hash, topology.node_hashes[candidates])[0]
    ranked = topology.rank(candidates, member_draws)
    hosts = pick_hosts(ranked, remaining, soft, topology.homes, count, True)
    assert hosts is not None
    return hosts


def _pick_shared_hosts(
    topology: _Topology,
    eligible_all: Indices,
    draws: U64,
    thresholds: U64 | None,
    remaining: Sequence[int],
    soft: Sequence[int],
    count: int,
) -> tuple[list[int], bool]:
    """Return the hosts of a shared slot and whether its pruned prefix missed.

    With ``thresholds`` only the nodes whose draw passes them are ranked (a prefix of the
    full ranking); if the prefix does not place every replica, the slot is ranked in full.
    """
    if thresholds is not None:
        columns = np.flatnonzero(draws >= thresholds)
        prefix = topology.rank(eligible_all[columns], draws[columns])
        hosts = pick_hosts(prefix, remaining, soft, topology.homes, count, False)
        if hosts is not None:
            return hosts, False
    ranked = topology.rank(eligible_all, draws)
    full = pick_hosts(ranked, remaining, soft, topology.homes, count, True)
    assert full is not None
    return full, thresholds is not None


def _take_hosts(
    topology: _Topology,
    role: str,
    subsystem: str | None,
    hosts: list[int],
    count: int,
    remaining: list[int],
    soft: list[int],
) -> Slot:
    """Return the slot ``(role, subsystem)`` on ``hosts``, each host's budgets reduced by one.

    Raises ``CapacityExhaustedError`` if fewer than ``count`` hosts were found.
    """
    if len(hosts) < count:
        raise CapacityExhaustedError(role, subsystem, count, len(hosts))
    for i in hosts:
        remaining[i] -= 1
        soft[i] = max(soft[i] - 1, 0)
    return Slot(role=role, subsystem=subsystem, hosts=tuple(topology.nodes[i].id for i in hosts))


def fill_slots(
    seed: bytes,
    epoch: int,
    nodes: Sequence[Node],
    slot_keys: Sequence[SlotKey],
    counts: Mapping[str, int],
) -> list[Slot]:
    """Return the slots of ``slot_keys`` (canonical order) filled from ``nodes`` (canonical).

    Raises ``NotEnoughEligibleNodesError``, ``InsufficientCapacityError`` or
    ``CapacityExhaustedError``, checked in this order (docs/assignment.md, "The assignment").
    """
    topology = _Topology(seed, epoch, nodes)
    for role, subsystem in slot_keys:
        eligible = len(topology.eligible(role, subsystem))
        if eligible < counts[role]:
            raise NotEnoughEligibleNodesError(role, subsystem, counts[role], eligible)
    required = sum(counts[role] for role, _ in slot_keys)
    available = sum(node.capacity for node in nodes)
    if available < required:
        raise InsufficientCapacityError(required, available)

    remaining = [node.capacity for node in nodes]
    bounds = compute_load_bounds(remaining, required)
    soft = [min(b, c) for b, c in zip(bounds, remaining, strict=True)]
    slots: list[Slot] = []
    for role in ROLES:  # slot_keys are grouped by role, in ROLES order
        keys = [key for key in slot_keys if key[0] == role]
        if keys:
            role_seed = compute_role_seed(seed, epoch, role)
            slots.extend(_fill_role(topology, role_seed, keys, counts[role], remaining, soft))
    return slots
