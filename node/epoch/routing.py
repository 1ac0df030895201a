"""The router's input: the assignment in force now, or a local table when there is none.

:class:`EpochAssignmentSource` answers the router from whatever :class:`EpochViews` it is
given (the :class:`~node.epoch.service.EpochService`); :func:`compute_local_assignment` is
the routing table of a node left without an assignment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from node.assignment import Assignment, Slot
from node.assignment.compute import compute_slot_keys
from node.chain.registry import Registry
from node.epoch.view import EpochView

FALLBACK_TTL_SECONDS: Final = 1.0
"""Before the first epoch is processed, how long the router's local fallback table is reused."""
LOCAL_FALLBACK_ROOT: Final = bytes(32)
"""Root of :func:`compute_local_assignment`'s routing table: zero, never attested."""


class EpochViews(Protocol):
    """What :class:`EpochAssignmentSource` reads (the ``EpochService`` has it)."""

    registry: Registry
    address: str

    def cached_view(self, epoch: int) -> EpochView | None:
        """Return epoch ``epoch`` if already computed, else None."""
        ...

    def current(self) -> EpochView | None:
        """Return the latest processed epoch, or None."""
        ...


def compute_local_assignment(
    epoch: int, seed: bytes, subsystems: Sequence[str], me: str
) -> Assignment:
    """Return the routing table of a node left without an assignment: every slot is its own.

    Used only for routing (never attested; its root is zero) when the epoch has no
    assignment, i.e. before the first epoch is processed or when the policy failed: the node
    then serves what it is asked, as a lone node does, instead of refusing everything.
    """
    names = sorted(set(subsystems), key=lambda name: name.encode("utf-8"))
    slots = tuple(Slot(role, sub, (me.lower(),)) for role, sub in compute_slot_keys(names))
    return Assignment(epoch=epoch, seed=bytes(seed), slots=slots, root=LOCAL_FALLBACK_ROOT)


class EpochAssignmentSource:
    """The router's ``AssignmentSource`` over an :class:`EpochService`."""

    def __init__(self, service: EpochViews, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.clock = clock
        self._fallback: tuple[float, int, Assignment] | None = None

    def cached(self, epoch: int) -> Assignment | None:
        """Return the assignment of ``epoch`` if this node has already computed it, or None."""
        view = self.service.cached_view(epoch)
        return None if view is None else view.assignment

    def current_cached(self) -> tuple[int, Assignment] | None:
        """Return what :meth:`current` would, if that needs no registry read, else None (the
        router answers most requests on its event loop with it, without a thread hop)."""
        view = self.service.current()
        if view is not None and view.assignment is not None:
            return view.epoch, view.assignment
        if view is not None:
            return self.current()  # the local table: pure, no I/O
        now = self.clock()
        if self._fallback is not None and now - self._fallback[0] < FALLBACK_TTL_SECONDS:
            return self._fallback[1], self._fallback[2]
        return None

    def current(self) -> tuple[int, Assignment]:
        """Return (epoch, assignment) in force now.

        Without an assignment (before the first epoch, or the policy failed: the reason is
        in ``/health``) it returns :func:`compute_local_assignment`'s table.
        """
        view = self.service.current()
        if view is not None and view.assignment is not None:
            return view.epoch, view.assignment
        if view is not None:
            fallback = compute_local_assignment(
                view.epoch, view.seed, view.snapshot.subsystems, self.service.address
            )
            return view.epoch, fallback
        # no epoch processed yet (starting, or the chain is failing): the fallback costs two
        # registry reads, so it is computed at most once per FALLBACK_TTL_SECONDS, not per request
        now = self.clock()
        if self._fallback is not None and now - self._fallback[0] < FALLBACK_TTL_SECONDS:
            return self._fallback[1], self._fallback[2]
        registry = self.service.registry
        epoch = registry.current_epoch()
        fallback = compute_local_assignment(
            epoch, bytes(32), registry.subsystems(), self.service.address
        )
        self._fallback = (now, epoch, fallback)
        return epoch, fallback
