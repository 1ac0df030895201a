"""Which node should serve a path now: the answer of ``GET /api/v1/route``.

A client signs a request for one destination node (``docs/security.md``); it asks any node
where the path goes. The answer is advice, not authority: a wrong answer makes the signed
request fail with 421 at the wrong node, never be served elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from node.assignment import ROLE_BE_SUBSYSTEM
from node.router.health import PeerHealth
from node.router.paths import compute_request_slot
from node.router.route import AssignmentSource, UnknownSlot, compute_other_hosts, compute_route


@dataclass(frozen=True)
class Destination:
    """The node that should serve a path, and the slot (if any) it serves it for."""

    node: str
    endpoint: str
    epoch: int | None
    role: str | None
    subsystem: str | None


@dataclass(frozen=True)
class Locator:
    """Locate the host of a path for the node ``my_address`` (endpoint ``my_endpoint``)."""

    my_address: str
    my_endpoint: str
    source: AssignmentSource | None
    peers: Callable[[], Mapping[str, str]]
    health: PeerHealth | None = None
    #: whether this node is caught up for a subsystem (``node.replication.replica``); None: always
    readiness: Callable[[str], bool] | None = None

    def locate(self, path: str) -> Destination:
        """Return the first live host of ``path``'s slot, or this node if it serves the path.

        Reads the assignment and the peers (may read the chain): call it off the event loop,
        except :class:`PeerHealth`'s ordering which the caller applies (:meth:`order`).
        """
        me = Destination(self.my_address.lower(), self.my_endpoint, None, None, None)
        slot = compute_request_slot(path)
        if slot is None or self.source is None:
            return me
        epoch, assignment = self.source.current()
        role, subsystem = slot
        try:
            route = compute_route(role, subsystem, assignment, self.my_address, self.peers())
        except UnknownSlot:
            return Destination(me.node, me.endpoint, epoch, role, subsystem)
        candidates = route.hosts
        if route.local and role == ROLE_BE_SUBSYSTEM and subsystem and self.readiness is not None:
            if not self.readiness(subsystem):  # catching up: another host answers meanwhile
                peers = self.peers()
                candidates = compute_other_hosts(role, subsystem, assignment, me.node, peers)
        elif route.local:
            candidates = ()
        if not candidates:
            return Destination(me.node, me.endpoint, epoch, role, subsystem)
        hosts = self.health.compute_order(candidates) if self.health else list(candidates)
        first = hosts[0]
        return Destination(first.address, first.endpoint, epoch, role, subsystem)
