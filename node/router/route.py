"""The routing decision: who serves (role, subsystem) this epoch. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from node.assignment import Assignment
from node.errors import CollegiumError


class UnknownSlot(CollegiumError):
    """The assignment has no slot (role, subsystem): unknown role or subsystem (404)."""


class NoLiveHost(CollegiumError):
    """Every host of a slot failed or none has a known endpoint (503)."""


class AssignmentSource(Protocol):
    """Where the router reads the current epoch's assignment (the EpochService)."""

    def current(self) -> tuple[int, Assignment]:
        """Return (epoch, assignment) in force now."""
        ...


@dataclass(frozen=True)
class StaticAssignmentSource:
    """An ``AssignmentSource`` that always answers the same assignment (tests, tools)."""

    assignment: Assignment

    def current(self) -> tuple[int, Assignment]:
        """Return the fixed (epoch, assignment)."""
        return self.assignment.epoch, self.assignment

    def current_cached(self) -> tuple[int, Assignment]:
        """Return the fixed (epoch, assignment): no I/O, as the router's fast read asks."""
        return self.current()


@dataclass(frozen=True)
class Peer:
    """A host of a slot: its node address (lowercase) and HTTP endpoint."""

    address: str
    endpoint: str


@dataclass(frozen=True)
class Route:
    """Where a request goes: served here (``local``) or by ``hosts`` in rank order."""

    role: str
    subsystem: str | None
    epoch: int
    local: bool
    hosts: tuple[Peer, ...]


def compute_route(
    role: str,
    subsystem: str | None,
    assignment: Assignment,
    my_address: str,
    peers: Mapping[str, str],
) -> Route:
    """Return the route of a (role, subsystem) request at node ``my_address``.

    ``peers`` maps node addresses to endpoints (``registry.nodes()``); hosts without a
    known endpoint are left out of ``hosts``. Raises :class:`UnknownSlot` if the
    assignment has no such slot.
    """
    me = my_address.lower()
    endpoints = {address.lower(): endpoint for address, endpoint in peers.items()}
    for slot in assignment.slots:
        if slot.role == role and slot.subsystem == subsystem:
            ranked = tuple(host.lower() for host in slot.hosts)
            if me in ranked or not ranked:  # an unserved slot: whoever is asked serves it
                return Route(role, subsystem, assignment.epoch, True, ())
            hosts = tuple(Peer(h, endpoints[h]) for h in ranked if endpoints.get(h))
            return Route(role, subsystem, assignment.epoch, False, hosts)
    where = f"{role}/{subsystem}" if subsystem is not None else role
    raise UnknownSlot(f"no slot {where} in the assignment of epoch {assignment.epoch}")


def compute_other_hosts(
    role: str,
    subsystem: str | None,
    assignment: Assignment,
    my_address: str,
    peers: Mapping[str, str],
) -> tuple[Peer, ...]:
    """Return the hosts of the slot (role, subsystem) other than ``my_address``, in rank order
    (those with a known endpoint): where a host that is not caught up sends the request."""
    me = my_address.lower()
    endpoints = {address.lower(): endpoint for address, endpoint in peers.items()}
    for slot in assignment.slots:
        if slot.role == role and slot.subsystem == subsystem:
            ranked = [host.lower() for host in slot.hosts]
            return tuple(Peer(h, endpoints[h]) for h in ranked if h != me and endpoints.get(h))
    return ()
