"""Choosing where a request for a hosted slot goes: this node, the slot's ranked remote
hosts (proxied), the one node a signed request names, another host while this one catches
up with a subsystem's log, or an answer (421, 503, 508) when none fits."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anyio
from starlette.types import Receive, Scope, Send

from node.assignment import ROLE_BE_SUBSYSTEM, Assignment
from node.auth.signatures import DESTINATION_HEADER
from node.router.forward import Forwarding
from node.router.paths import compute_request_slot
from node.router.protocol import (
    CATCHING_UP_RETRY_SECONDS,
    EPOCH_HEADER,
    MAX_HOPS,
    STATE_SLOT,
    STATUS_LOOP_DETECTED,
    problem,
)
from node.router.route import (
    AssignmentSource,
    Peer,
    Route,
    UnknownSlot,
    compute_other_hosts,
    compute_route,
)


class TargetChoice(Forwarding):
    """The choice of target of :class:`node.router.proxy.RouterMiddleware` (which sets these
    attributes)."""

    me: str
    peers: Callable[[], Mapping[str, str]]
    source: AssignmentSource | None
    readiness: Callable[[str], bool] | None
    _epoch: int | None

    async def _route_slot(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        slot: tuple[str, str | None],
        current: tuple[int, Assignment],
        peer: str | None,
        headers: Mapping[str, str],
        hops: int,
        destination: str,
        extra: list[tuple[bytes, bytes]],
    ) -> bool:
        """Answer a request for a hosted slot this node does not serve (proxy, 421, 508, or
        catching up) and return True; return False to serve it here."""
        role, subsystem = slot
        peers = await anyio.to_thread.run_sync(self.peers)  # read at most once per request
        try:
            route = compute_route(role, subsystem, current[1], self.me, peers)
        except UnknownSlot:
            return False
        if not route.local and peer is not None:
            # pure and lock-free (a cached epoch + compute_route): no worker thread
            route = self._sender_route(route, headers.get(EPOCH_HEADER), peers)
        if not route.local and destination:
            where = f"{role} of {subsystem!r}" if subsystem is not None else role
            await problem(send, 421, "misdirected request",
                          f"this node does not host {where} in epoch {route.epoch}; "
                          "ask GET /api/v1/route for the current host", extra)  # fmt: skip
            return True
        if not route.local:
            if hops >= MAX_HOPS:
                await problem(send, STATUS_LOOP_DETECTED, "loop detected",
                              f"not a host of {role} and the request made {hops} hops",
                              extra)  # fmt: skip
                return True
            await self._proxy(scope, receive, send, route.role, route.epoch,
                              self.health.compute_order(route.hosts), headers, hops,
                              extra)  # fmt: skip
            return True
        if role == ROLE_BE_SUBSYSTEM and self.readiness is not None:
            ready = await anyio.to_thread.run_sync(self.readiness, str(subsystem))
            if not ready:
                others = compute_other_hosts(role, subsystem, current[1], self.me, peers)
                await self._not_caught_up(scope, receive, send, route, others, headers,
                                          hops, destination, extra)  # fmt: skip
                return True
        scope["state"][STATE_SLOT] = slot
        return False

    async def _not_caught_up(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        others: tuple[Peer, ...],
        headers: Mapping[str, str],
        hops: int,
        destination: str,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        """Answer for a subsystem this node hosts but has not caught up with (its log's sealed
        objects are not all here yet): relay to another host of the slot, tell a signed request
        to re-route (421: ``GET /api/v1/route`` then names another host), or, with no other
        host (or after a hop), 503 with ``Retry-After`` — never an empty answer as if S had no
        data."""
        where = f"{route.role} of {route.subsystem!r}"
        if others and destination:
            await problem(send, 421, "misdirected request",
                          f"this node is catching up with {where}; ask GET /api/v1/route "
                          "for another host", extra)  # fmt: skip
            return
        if others and hops == 0:
            await self._proxy(scope, receive, send, route.role, route.epoch,
                              self.health.compute_order(others), headers, hops,
                              extra)  # fmt: skip
            return
        retry = (b"retry-after", str(CATCHING_UP_RETRY_SECONDS).encode())
        await problem(send, 503, "catching up",
                      f"this node hosts {where} but has not replicated its log yet",
                      [*extra, retry])  # fmt: skip

    async def _to_destination(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        destination: str,
        headers: Mapping[str, str],
        hops: int,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        """Relay a request signed for another node to that node only (no failover)."""
        peers = await anyio.to_thread.run_sync(self.peers)
        endpoint = peers.get(destination)
        if endpoint is None:
            await problem(send, 421, "misdirected request",
                          f"{DESTINATION_HEADER} {destination} is not a registered node",
                          extra)  # fmt: skip
            return
        if hops >= MAX_HOPS:
            await problem(send, STATUS_LOOP_DETECTED, "loop detected",
                          f"the request made {hops} hops", extra)  # fmt: skip
            return
        slot = compute_request_slot(scope["path"])
        role = slot[0] if slot is not None else "destination"
        await self._proxy(scope, receive, send, role, self._epoch,
                          [Peer(destination, endpoint)], headers, hops, extra,
                          unreachable=421)  # fmt: skip

    def _sender_route(
        self, route: Route, sender_epoch: str | None, peers: Mapping[str, str]
    ) -> Route:
        """Return ``route``, or a local one if the forwarding peer's epoch names us a host.

        Around an epoch boundary two nodes may be one epoch apart: a peer still in epoch
        ``e`` forwards to a host of ``e`` that already routes by ``e + 1`` (or the reverse),
        which would forward again, and a single-replica slot can ping-pong into a 508. So a
        request relayed by a verified peer (its ``x-collegium-epoch`` is the sender's epoch)
        is served here if the sender's epoch, one away from ours and already computed here,
        names this node a host of the slot. Never computes an epoch (no chain read, no lock
        wait).
        """
        cached = getattr(self.source, "cached", None)
        if sender_epoch is None or not callable(cached):
            return route
        try:
            epoch = int(sender_epoch)
        except ValueError:
            return route
        if abs(epoch - route.epoch) != 1:
            return route
        assignment = cached(epoch)
        if assignment is None:
            return route
        try:
            theirs = compute_route(route.role, route.subsystem, assignment, self.me, peers)
        except UnknownSlot:
            return route
        return theirs if theirs.local else route
