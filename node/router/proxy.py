"""The thin I/O side of routing: an ASGI middleware that serves here or proxies.

Per request: the path names a slot (:func:`compute_request_slot`) or none (served here).
For a slot, :func:`compute_route` decides; a local route is recorded in the request state
(``collegium_slot``) so handlers may open that role's data, and a remote route is
proxied to the first live host in rank order (request buffered, response streamed,
headers kept, ``X-Collegium-Hops`` incremented). Connect errors fail over to the next
host; timeouts and 5xx fail over only for idempotent methods (a POST is never replayed
once it may have reached a host). Every response carries ``X-Collegium-Served-By`` and
``X-Collegium-Epoch``.

The work is split by job: ``protocol.py`` (headers, state keys, limits), ``targets.py`` (where
a request goes), ``forward.py`` (relaying it); this module is the middleware itself, and
re-exports the names of ``protocol.py`` that callers import from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.assignment import Assignment
from node.auth.peer import PEER_HEADER, PeerVerifier
from node.auth.signatures import DESTINATION_HEADER
from node.router.health import PeerHealth
from node.router.paths import compute_request_slot
from node.router.protocol import (
    CATCHING_UP_RETRY_SECONDS,
    CONNECT_TIMEOUT,
    EPOCH_HEADER,
    HOP_BY_HOP,
    HOPS_HEADER,
    IDEMPOTENT_METHODS,
    MAX_HOPS,
    MAX_PROXY_BODY,
    PRIVATE_HEADERS,
    READ_TIMEOUT,
    RETIRED_HEADERS,
    SERVED_BY_HEADER,
    STATE_EPOCH,
    STATE_PEER,
    STATE_RELAYED,
    STATE_SLOT,
    STATUS_LOOP_DETECTED,
    RouterObserver,
    parse_hops,
    problem,
    request_target,
    strip_headers,
)
from node.router.route import AssignmentSource
from node.router.targets import TargetChoice

__all__ = [
    "CATCHING_UP_RETRY_SECONDS",
    "CONNECT_TIMEOUT",
    "EPOCH_HEADER",
    "HOP_BY_HOP",
    "HOPS_HEADER",
    "IDEMPOTENT_METHODS",
    "MAX_HOPS",
    "MAX_PROXY_BODY",
    "PRIVATE_HEADERS",
    "READ_TIMEOUT",
    "RETIRED_HEADERS",
    "SERVED_BY_HEADER",
    "STATE_EPOCH",
    "STATE_PEER",
    "STATE_RELAYED",
    "STATE_SLOT",
    "STATUS_LOOP_DETECTED",
    "RouterMiddleware",
    "RouterObserver",
]


class RouterMiddleware(TargetChoice):
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
        return self._noted(self.source.current())

    def _current_at_hand(self) -> tuple[int, Assignment] | None:
        """Return what :meth:`_current` would, if the source has it without I/O (its
        ``current_cached``) and the epoch is the one seen last, else None (a new epoch
        invalidates the peer directory, whose lock a registry read may hold)."""
        cached = getattr(self.source, "current_cached", None)
        found = cached() if callable(cached) else None
        return found if found is not None and found[0] == self._epoch else None

    def _noted(self, current: tuple[int, Assignment]) -> tuple[int, Assignment]:
        epoch, assignment = current
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
        strip_headers(scope, RETIRED_HEADERS)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        hops = parse_hops(headers)
        state = scope.setdefault("state", {})
        slot = compute_request_slot(scope["path"])
        current = await self._observed_current(state)
        extra = self._response_headers(current)
        if hops > MAX_HOPS:
            await problem(send, STATUS_LOOP_DETECTED, "loop detected",
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
        current = None if self.source is None else self._current_at_hand()
        if current is None and self.source is not None:  # it may read the chain: off the loop
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
            target = request_target(scope)
            peer = await anyio.to_thread.run_sync(
                lambda: verifier.verify(scope["method"], target, hops, value)
            )
        state[STATE_PEER] = peer
        return peer
