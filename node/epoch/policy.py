"""From a registry snapshot to the assignment of an epoch: the documented fallback policy.

The assignment function never degrades silently: it raises when a constraint cannot be met
(docs/assignment.md, "Errors"). A live network must still decide something every epoch, so
this module fixes, for every peer alike, how the input is derived from the snapshot:

1. A subsystem is *served* when every subsystem role has at least one eligible node for it
   (``be_subsystem`` needs a member node). Unserved subsystems are left out of the input and
   listed in :attr:`EpochPlan.unserved` (their roles have no host this epoch).
2. Each role's replica count is ``min(default, fewest eligible nodes over its slots)``.
3. If capacity still runs out (``InsufficientCapacityError``, ``CapacityExhaustedError``), one
   replica is taken from the role with the most replicas (ties: ``REDUCTION_ORDER``), and the
   assignment is computed again, until it fits or every role is down to one replica.
4. What still fails is an error recorded in :attr:`EpochPlan.error`: no assignment, no
   attestation, and ``collegium status`` says why.

Every step is recorded (:attr:`EpochPlan.adjustments`), so a reduced answer is never
mistaken for the configured one. All of it is pure: same snapshot and seed, same plan.

Liveness is decided before the policy, by the snapshot (only nodes live at the boundary
block are in it); :func:`compute_heartbeat_due` is the rule by which a node keeps itself live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from node.assignment import (
    ROLE_BE_SUBSYSTEM,
    ROLE_BE_SYSTEM,
    ROLE_FE_SUBSYSTEM,
    ROLE_FE_SYSTEM,
    ROLES,
    Assignment,
    CapacityExhaustedError,
    InsufficientCapacityError,
    Node,
    compute_assignment,
    is_eligible,
)
from node.assignment.compute import compute_canonical_subsystems, compute_slot_keys
from node.assignment.constants import SUBSYSTEM_ROLES
from node.epoch.snapshot import Snapshot
from node.errors import CollegiumError

DEFAULT_REPLICAS: Final[Mapping[str, int]] = MappingProxyType(
    {ROLE_FE_SYSTEM: 3, ROLE_BE_SYSTEM: 3, ROLE_FE_SUBSYSTEM: 2, ROLE_BE_SUBSYSTEM: 2}
)
"""Configured replicas per role, before the policy clips them to what the topology holds."""

REDUCTION_ORDER: Final[tuple[str, ...]] = (
    ROLE_FE_SYSTEM,
    ROLE_FE_SUBSYSTEM,
    ROLE_BE_SYSTEM,
    ROLE_BE_SUBSYSTEM,
)
"""Tie-break when capacity is short: front-ends lose a replica first (they serve public data,
which is on IPFS anyway); back-ends, which hold the databases, keep their redundancy longest."""


HEARTBEAT_FRACTION: Final = 2
"""A node sends a heartbeat once ``window // HEARTBEAT_FRACTION`` blocks have passed since it
was last seen, so a heartbeat mined up to half a window late still keeps it live."""


def compute_heartbeat_due(head: int, last_seen: int, window: int) -> bool:
    """Return whether a node last seen at block ``last_seen`` must send a heartbeat at ``head``.

    Due once half the liveness ``window`` (blocks) has passed; never for a window of 0 (the
    registry did not say) nor when the node was seen at or after ``head``.
    """
    if window <= 0:
        return False
    return head - last_seen >= max(1, window // HEARTBEAT_FRACTION)


@dataclass(frozen=True)
class EpochPlan:
    """The assignment of one epoch as the policy derived it, or the error that prevents it."""

    epoch: int
    seed: bytes
    default_replicas: Mapping[str, int]
    replicas: Mapping[str, int]
    subsystems: tuple[str, ...]
    unserved: tuple[str, ...]
    adjustments: tuple[str, ...]
    assignment: Assignment | None
    error: CollegiumError | None = field(default=None)

    @property
    def root(self) -> bytes | None:
        """Return the assignment root, or None if there is no assignment."""
        return None if self.assignment is None else self.assignment.root


def compute_assignment_nodes(snapshot: Snapshot) -> tuple[Node, ...]:
    """Return the snapshot's nodes as assignment input; an empty home becomes the address."""
    return tuple(
        Node(
            id=n.address.lower(),
            capacity=n.capacity,
            home=n.home or n.address.lower(),
            members_of=frozenset(n.members_of),
            roles=frozenset(n.roles),
        )
        for n in snapshot.nodes
    )


def compute_served_subsystems(
    nodes: Sequence[Node], subsystems: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (served, unserved) subsystems: served ones have an eligible node for each role."""
    served: list[str] = []
    unserved: list[str] = []
    for name in compute_canonical_subsystems(subsystems):
        ok = all(any(is_eligible(n, role, name) for n in nodes) for role in SUBSYSTEM_ROLES)
        (served if ok else unserved).append(name)
    return tuple(served), tuple(unserved)


def compute_clipped_replicas(
    nodes: Sequence[Node], subsystems: Sequence[str], defaults: Mapping[str, int]
) -> tuple[dict[str, int], list[str]]:
    """Return each role's ``min(default, fewest eligible nodes over its slots)``, and notes.

    A role that no node offers keeps its default (the assignment then reports it).
    """
    fewest: dict[str, int] = {}
    for role, subsystem in compute_slot_keys(subsystems):
        eligible = sum(1 for n in nodes if is_eligible(n, role, subsystem))
        fewest[role] = min(fewest.get(role, eligible), eligible)
    replicas: dict[str, int] = {}
    notes: list[str] = []
    for role in ROLES:
        default = defaults[role]
        available = fewest.get(role, default)
        if 0 < available < default:
            replicas[role] = available
            notes.append(f"{role}: {default} -> {available} replicas (eligible nodes)")
        else:
            replicas[role] = default
    return replicas, notes


def compute_reduction(replicas: Mapping[str, int], roles_with_slots: set[str]) -> str | None:
    """Return the role that loses one replica next (most replicas, then REDUCTION_ORDER)."""
    candidates = [r for r in REDUCTION_ORDER if r in roles_with_slots and replicas[r] > 1]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (replicas[r], -REDUCTION_ORDER.index(r)))


def compute_epoch_plan(
    seed: bytes,
    epoch: int,
    snapshot: Snapshot,
    defaults: Mapping[str, int] = DEFAULT_REPLICAS,
) -> EpochPlan:
    """Return the epoch's plan: the assignment of the snapshot under the fallback policy.

    Never raises for an impossible topology: the error is in :attr:`EpochPlan.error`.
    """
    nodes = compute_assignment_nodes(snapshot)
    served, unserved = compute_served_subsystems(nodes, snapshot.subsystems)
    notes = [f"subsystem {name!r} unserved: no eligible node for a role" for name in unserved]
    replicas, clip_notes = compute_clipped_replicas(nodes, served, defaults)
    notes.extend(clip_notes)
    roles_with_slots = {role for role, _ in compute_slot_keys(served)}
    error: CollegiumError | None = None
    assignment: Assignment | None = None
    while True:
        try:
            assignment = compute_assignment(seed, epoch, nodes, served, replicas)
            break
        except (InsufficientCapacityError, CapacityExhaustedError) as exc:
            role = compute_reduction(replicas, roles_with_slots)
            if role is None:
                error = exc
                break
            replicas[role] -= 1
            notes.append(f"{role}: -> {replicas[role]} replicas (capacity: {exc.kind})")
        except CollegiumError as exc:  # eligibility, or a malformed record
            error = exc
            break
    return EpochPlan(
        epoch=epoch,
        seed=bytes(seed),
        default_replicas=dict(defaults),
        replicas=dict(replicas),
        subsystems=served,
        unserved=unserved,
        adjustments=tuple(notes),
        assignment=assignment,
        error=error,
    )
