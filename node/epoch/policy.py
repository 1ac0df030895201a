"""From a registry snapshot to the assignment of an epoch: the documented fallback policy.

The assignment function never degrades silently: it raises when a constraint cannot be met
(docs/assignment.md, "Errors"). A live network must still decide something every epoch, so
this module fixes, for every peer alike, how the input is derived from the snapshot:

1. A subsystem is *served* when every subsystem role has at least one eligible node for it
   (``be_subsystem`` needs a member node). Unserved subsystems are left out of the input and
   listed in :attr:`EpochPlan.unserved` (their roles have no host this epoch).
2. The assignment function reduces the rest itself (docs/assignment.md, "Reduction"): each
   role's count clipped to its eligible nodes, then one replica less at a time while capacity
   is short (ties: ``REDUCTION_ORDER``), then slots left unserved; its ``adjustments`` are in
   the root every node attests.
3. Only a topology in which no slot can be served is an error, recorded in
   :attr:`EpochPlan.error`: no assignment, no attestation, and ``collegium status`` says why.

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
    Assignment,
    Node,
    compute_assignment,
    is_eligible,
)
from node.assignment.compute import compute_canonical_subsystems
from node.assignment.constants import (
    REASON_ELIGIBLE_NODES,
    REASON_NO_ELIGIBLE_NODE,
    SUBSYSTEM_ROLES,
)
from node.assignment.containers import Adjustment
from node.epoch.snapshot import Snapshot
from node.errors import CollegiumError

DEFAULT_REPLICAS: Final[Mapping[str, int]] = MappingProxyType(
    {ROLE_FE_SYSTEM: 3, ROLE_BE_SYSTEM: 3, ROLE_FE_SUBSYSTEM: 2, ROLE_BE_SUBSYSTEM: 2}
)
"""Configured replicas per role, before the policy clips them to what the topology holds."""


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


def describe_adjustment(adjustment: Adjustment) -> str:
    """Return one adjustment of the reduction in words (``/health``, ``collegium status``)."""
    if adjustment.to == 0:
        slot = (
            adjustment.role
            if adjustment.subsystem is None
            else (f"{adjustment.role}[{adjustment.subsystem}]")
        )
        why = "no eligible node" if adjustment.reason == REASON_NO_ELIGIBLE_NODE else "capacity"
        return f"{slot}: unserved ({why})"
    why = "eligible nodes" if adjustment.reason == REASON_ELIGIBLE_NODES else "capacity"
    return f"{adjustment.role}: {adjustment.before} -> {adjustment.to} replicas ({why})"


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
    error: CollegiumError | None = None
    assignment: Assignment | None = None
    replicas = dict(defaults)
    try:  # steps 2-4: the function's own reduction (docs/assignment.md, "Reduction")
        assignment = compute_assignment(seed, epoch, nodes, served, defaults)
        replicas = assignment.replicas(defaults)
        notes.extend(describe_adjustment(a) for a in assignment.adjustments)
    except CollegiumError as exc:  # no slot servable at all, or a malformed record
        error = exc
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
