"""The thin I/O side of routing: an ASGI middleware that serves here or proxies.

Per request: the path names a slot (:func:`compute_request_slot`) or none (served here).
For a slot, :func:`compute_route` decides; a local route is recorded in the request state
(``collegium_slot``) so handlers may open that role's data, and a remote route is
proxied to the first live host in rank order (request buffered, response streamed,
headers kept, ``X-Collegium-Hops`` incremented). Connect errors fail over to the next
host; timeouts and 5xx fail over only for idempotent methods (a POST is never replayed
once it may have reached a host). Every response carries ``X-Collegium-Served-By`` and
``X-Collegium-Epoch``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import anyio
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.asgi import send_problem
from node.assignment import ROLE_BE_SUBSYSTEM, Assignment
from node.auth.peer import PEER_HEADER, PeerVerifier, sign_peer_request
from node.auth.signatures import DESTINATION_HEADER
from node.router.health import PeerHealth
from node.router.paths import compute_request_slot
from node.router.route import (
    AssignmentSource,
    Peer,
    Route,
    UnknownSlot,
    compute_other_hosts,
    compute_route,
)

HOPS_HEADER: Final = "x-collegium-hops"
SERVED_BY_HEADER: Final = "x-collegium-served-by"
EPOCH_HEADER: Final = "x-collegium-epoch"
MAX_HOPS: Final = 2
CONNECT_TIMEOUT: Final = 1.0
READ_TIMEOUT: Final = 15.0
STATE_SLOT: Final = "collegium_slot"
STATE_PEER: Final = "collegium_peer"  # the registered node that signed this request, if any
STATE_RELAYED: Final = "collegium_relayed"
# Headers of the old node-signed identity forwarding: never trusted, dropped on entry.
RETIRED_HEADERS: Final = ("x-collegium-user", "x-collegium-user-ts", "x-collegium-user-proof")
STATE_EPOCH: Final = "collegium_epoch"
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
# Never sent to peers: the session token stays with the node that issued it, and a relay
# adds its own peer signature.
PRIVATE_HEADERS: Final = frozenset({"authorization", "cookie", PEER_HEADER})
STATUS_LOOP_DETECTED: Final = 508
#: a host not caught up for a subsystem answers 503 with this Retry-After (seconds)
CATCHING_UP_RETRY_SECONDS: Final = 5
MAX_PROXY_BODY: Final = 1024 * 1024


class RouterObserver(Protocol):
    """Receives routing events (the API's metrics implement it)."""

    def on_proxied(self, role: str) -> None:
        """Count one request proxied for ``role``."""
        ...

    def on_failover(self, role: str) -> None:
        """Count one failover to the next host of ``role``."""
        ...

    def on_epoch(self, epoch: int) -> None:
        """Record the epoch in force."""
        ...


class RouterMiddleware:
    """Serve the requests of roles this node hosts; proxy the others to their hosts.

    ``source`` gives the assignment (``None``: single-node mode, every role is local);
    ``peers`` returns node address -> endpoint; ``account`` (the node key) signs what this
    node relays (``Collegium-Peer``), and ``peer_verifier`` checks what peers relay here. A
    user's identity never crosses a hop as this node's word: a signed request
    (``docs/security.md``) passes through untouched and goes only to its
    ``Collegium-Destination``; a session cookie or bearer token is never relayed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        my_address: str,
        source: AssignmentSource | None,
        peers: Callable[[], Mapping[str, str]],
        client: httpx.AsyncClient | None = None,
        account: Any = None,
        peer_verifier: PeerVerifier | None = None,
        observer: RouterObserver | None = None,
        health: PeerHealth | None = None,
        readiness: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.readiness = readiness
        self.me = my_address.lower()
        self.served_by = my_address.encode()
        self.source = source
        self.peers = peers
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        )
        self.health = health or PeerHealth(self.client)
        self.account = account
        self.peer_verifier = peer_verifier
        self.observer = observer
        self._epoch: int | None = None

    def _current(self) -> tuple[int, Assignment] | None:
        if self.source is None:
            return None
        epoch, assignment = self.source.current()
        if epoch != self._epoch:
            # the assignment changed: read the peers' endpoints afresh (new nodes, moves)
            self._epoch = epoch
            invalidate = getattr(self.peers, "invalidate", None)
            if callable(invalidate):
                invalidate()
        return epoch, assignment

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _strip_headers(scope, RETIRED_HEADERS)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        hops = _parse_hops(headers)
        state = scope.setdefault("state", {})
        slot = compute_request_slot(scope["path"])
        current = await self._observed_current(state)
        extra = self._response_headers(current)
        if hops > MAX_HOPS:
            await _problem(send, STATUS_LOOP_DETECTED, "loop detected",
                           f"{HOPS_HEADER} is {headers.get(HOPS_HEADER)!r}, limit {MAX_HOPS}",
                           extra)  # fmt: skip
            return
        peer = await self._verified_peer(scope, headers, hops)
        state[STATE_RELAYED] = hops > 0
        destination = headers.get(DESTINATION_HEADER, "").strip().lower()
        if destination and destination != self.me:
            await self._to_destination(scope, receive, send, destination, headers, hops, extra)
            return
        if slot is not None and current is not None:
            answered = await self._route_slot(scope, receive, send, slot, current, peer,
                                              headers, hops, destination, extra)  # fmt: skip
            if answered:
                return
        elif slot is not None:
            state[STATE_SLOT] = slot  # single-node mode: every role is local

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, tagged_send)

    async def _observed_current(self, state: dict[str, Any]) -> tuple[int, Assignment] | None:
        """Return the current ``(epoch, assignment)`` (or ``None``), told to the observer and
        noted in the request's state."""
        current = await anyio.to_thread.run_sync(self._current)
        epoch = current[0] if current is not None else None
        if epoch is not None and self.observer is not None:
            self.observer.on_epoch(epoch)
        state[STATE_EPOCH] = epoch
        return current

    def _response_headers(
        self, current: tuple[int, Assignment] | None
    ) -> list[tuple[bytes, bytes]]:
        """Return the headers every answer carries: who served it and, if known, the epoch."""
        extra = [(SERVED_BY_HEADER.encode(), self.served_by)]
        if current is not None:
            extra.append((EPOCH_HEADER.encode(), str(current[0]).encode()))
        return extra

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
            await _problem(send, 421, "misdirected request",
                           f"this node does not host {where} in epoch {route.epoch}; "
                           "ask GET /api/v1/route for the current host", extra)  # fmt: skip
            return True
        if not route.local:
            if hops >= MAX_HOPS:
                await _problem(send, STATUS_LOOP_DETECTED, "loop detected",
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
            await _problem(send, 421, "misdirected request",
                           f"this node is catching up with {where}; ask GET /api/v1/route "
                           "for another host", extra)  # fmt: skip
            return
        if others and hops == 0:
            await self._proxy(scope, receive, send, route.role, route.epoch,
                              self.health.compute_order(others), headers, hops,
                              extra)  # fmt: skip
            return
        retry = (b"retry-after", str(CATCHING_UP_RETRY_SECONDS).encode())
        await _problem(send, 503, "catching up",
                       f"this node hosts {where} but has not replicated its log yet",
                       [*extra, retry])  # fmt: skip

    async def _verified_peer(
        self, scope: Scope, headers: Mapping[str, str], hops: int
    ) -> str | None:
        """Return the registered node that signed this request (set by the rate limiter or
        checked here), or ``None``; unsigned hop counts are never trusted beyond loop checks."""
        state = scope.setdefault("state", {})
        if STATE_PEER in state:
            return state[STATE_PEER]  # type: ignore[no-any-return]
        value = headers.get(PEER_HEADER, "")
        verifier = self.peer_verifier
        peer = None
        if value and verifier is not None:
            target = _target(scope)
            peer = await anyio.to_thread.run_sync(
                lambda: verifier.verify(scope["method"], target, hops, value)
            )
        state[STATE_PEER] = peer
        return peer

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
            await _problem(send, 421, "misdirected request",
                           f"{DESTINATION_HEADER} {destination} is not a registered node",
                           extra)  # fmt: skip
            return
        if hops >= MAX_HOPS:
            await _problem(send, STATUS_LOOP_DETECTED, "loop detected",
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

    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        role: str,
        epoch: int | None,
        ordered: list[Peer],
        headers: Mapping[str, str],
        hops: int,
        extra: list[tuple[bytes, bytes]],
        *,
        unreachable: int = 503,
    ) -> None:
        """Relay the request to the first of ``ordered`` that answers.

        When none can be reached, answer ``unreachable``: 503, or 421 for a signed request
        bound to one destination (it never reached that node, so the client may safely ask
        ``GET /api/v1/route`` again and re-sign for the next host).
        """
        body = await _read_body(receive)
        if body is None:
            detail = f"a proxied body is limited to {MAX_PROXY_BODY} bytes"
            await _problem(send, 413, "payload too large", detail, extra)
            return
        out = self._forward_headers(scope, headers, hops, epoch)
        if self.observer is not None:
            self.observer.on_proxied(role)
        if await self._relay_first(scope, send, role, ordered, out, body, extra):
            return
        title = "no live host" if unreachable == 503 else "misdirected request"
        if unreachable != 503 and self.observer is not None:
            self.observer.on_failover(role)  # the client re-routes to the next host
        await _problem(send, unreachable, title,
                       f"no host of {role} answered: {[p.address for p in ordered]}; "
                       "ask GET /api/v1/route again", extra)  # fmt: skip

    def _forward_headers(
        self, scope: Scope, headers: Mapping[str, str], hops: int, epoch: int | None
    ) -> list[tuple[str, str]]:
        """Return the headers a relayed request carries: the client's end-to-end ones, one
        more hop, the epoch we routed by and, with a node account, our peer signature."""
        out = [
            (k, v)
            for k, v in headers.items()
            if k not in HOP_BY_HOP and k not in PRIVATE_HEADERS
            and k not in (HOPS_HEADER, EPOCH_HEADER)
        ]  # fmt: skip
        out.append((HOPS_HEADER, str(hops + 1)))
        if epoch is not None:
            out.append((EPOCH_HEADER, str(epoch)))  # the epoch we routed by: _sender_route
        if self.account is not None:
            method, target = scope["method"], _target(scope)
            signed = sign_peer_request(self.account, method, target, hops + 1, int(time.time()))
            out.append((PEER_HEADER, signed))
        return out

    async def _relay_first(
        self,
        scope: Scope,
        send: Send,
        role: str,
        ordered: list[Peer],
        out: list[tuple[str, str]],
        body: bytes,
        extra: list[tuple[bytes, bytes]],
    ) -> bool:
        """Relay the request to the first of ``ordered`` that answers and return True (also
        after a 504 for a non-idempotent request that may have reached its host); return
        False if none could be reached."""
        method = scope["method"]
        target = _target(scope)
        idempotent = method in IDEMPOTENT_METHODS
        for i, peer in enumerate(ordered):
            last = i == len(ordered) - 1
            if i > 0 and self.observer is not None:
                self.observer.on_failover(role)
            request = self.client.build_request(method, peer.endpoint + target, headers=out,
                                                content=body)  # fmt: skip
            try:
                response = await self.client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                self.health.mark(peer.endpoint, False)
                continue
            except httpx.TransportError as exc:
                self.health.mark(peer.endpoint, False)
                if idempotent:
                    continue
                await _problem(send, 504, "gateway timeout", f"{peer.address}: {exc}", extra)
                return True
            if _is_peer_failure(response.status_code) and idempotent and not last:
                await response.aclose()
                self.health.mark(peer.endpoint, False)
                continue
            self.health.mark(peer.endpoint, True)
            await _relay(send, response)
            return True
        return False


def _parse_hops(headers: Mapping[str, str]) -> int:
    """Return the request's hop count; one past the limit if it is not a number."""
    try:
        return int(headers.get(HOPS_HEADER, "0"))
    except ValueError:
        return MAX_HOPS + 1


def _target(scope: Scope) -> str:
    """Return the request target as sent: raw path plus ``?query`` if any."""
    target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    return target


def _is_peer_failure(status: int) -> bool:
    return status >= httpx.codes.INTERNAL_SERVER_ERROR and status != httpx.codes.NOT_IMPLEMENTED


def _strip_headers(scope: Scope, names: tuple[str, ...]) -> None:
    drop = {name.encode() for name in names}
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() not in drop]


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_PROXY_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _relay(send: Send, response: httpx.Response) -> None:
    headers = [
        (k.lower(), v)
        for k, v in response.headers.raw
        if k.decode("latin-1").lower() not in HOP_BY_HOP
    ]
    try:
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": headers})  # fmt: skip
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await response.aclose()


async def _problem(
    send: Send, status: int, title: str, detail: str, extra: list[tuple[bytes, bytes]]
) -> None:
    await send_problem(send, status, title, detail, extra)
