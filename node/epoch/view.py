"""What one epoch looks like to this node: :class:`EpochView`, and the records around it."""

from __future__ import annotations

from dataclasses import dataclass

from node.assignment import Assignment, Slot
from node.chain.registry import SeedInfo
from node.epoch.policy import EpochPlan
from node.epoch.snapshot import Snapshot
from node.errors import CollegiumError


class EpochUnavailable(CollegiumError):
    """The epoch has not started, or its seed is not fixed yet."""


@dataclass(frozen=True)
class Attestation:
    """A node's attested root for an epoch; ``matches`` compares it with ours (None: n/a)."""

    node: str
    root: bytes | None
    matches: bool | None


@dataclass(frozen=True)
class EpochView:
    """One epoch as this node sees it: seed, snapshot, plan and this node's slots."""

    epoch: int
    boundary_block: int
    seed_info: SeedInfo
    snapshot: Snapshot
    plan: EpochPlan
    node: str

    @property
    def seed(self) -> bytes:
        """Return the epoch's seed."""
        return bytes(self.seed_info.seed)

    @property
    def assignment(self) -> Assignment | None:
        """Return the assignment, or None when the policy could not make one."""
        return self.plan.assignment

    @property
    def root(self) -> bytes | None:
        """Return the assignment root, or None."""
        return self.plan.root

    @property
    def my_slots(self) -> tuple[Slot, ...]:
        """Return the slots this node hosts this epoch (any rank)."""
        if self.assignment is None:
            return ()
        me = self.node.lower()
        return tuple(s for s in self.assignment.slots if me in s.hosts)

    def rank_of(self, slot: Slot) -> int | None:
        """Return this node's rank (0 = primary) among ``slot``'s hosts, or None."""
        me = self.node.lower()
        return slot.hosts.index(me) if me in slot.hosts else None
