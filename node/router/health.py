"""Peer health: probed with ``GET /livez`` and cached; failures mark a peer down a while."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Final

import httpx

from node.router.route import Peer

HEALTH_PATH: Final = "/livez"
PROBE_TIMEOUT: Final = 1.0  # seconds for the whole probe (connect, answer, body)
#: ``/livez`` answers a few bytes; a probe reads at most this much of the body.
PROBE_MAX_BYTES: Final = 1024
UP_TTL: Final = 10.0
DOWN_TTL: Final = 5.0


class PeerHealth:
    """A cache endpoint -> (up?, until when); unknown peers count as up."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        up_ttl: float = UP_TTL,
        down_ttl: float = DOWN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.up_ttl = up_ttl
        self.down_ttl = down_ttl
        self.clock = clock
        self._state: dict[str, tuple[bool, float]] = {}
        self._probing: set[str] = set()
        self._tasks: set[asyncio.Task[bool]] = set()

    def mark(self, endpoint: str, up: bool) -> None:
        """Record that ``endpoint`` is (not) answering."""
        ttl = self.up_ttl if up else self.down_ttl
        self._state[endpoint] = (up, self.clock() + ttl)

    def is_down(self, endpoint: str) -> bool:
        """Return whether ``endpoint`` failed recently (its down mark has not expired)."""
        state = self._state.get(endpoint)
        return state is not None and not state[0] and state[1] > self.clock()

    async def probe(self, endpoint: str) -> bool:
        """Return whether ``endpoint`` answers ``/livez`` with 200 now; cache the answer."""
        try:
            up = await asyncio.wait_for(self._probe(endpoint), PROBE_TIMEOUT)
        except (httpx.HTTPError, TimeoutError):
            up = False
        self.mark(endpoint, up)
        return up

    async def _probe(self, endpoint: str) -> bool:
        """GET ``endpoint/livez`` (no redirect followed); read at most ``PROBE_MAX_BYTES``."""
        request = self.client.build_request("GET", endpoint + HEALTH_PATH, timeout=PROBE_TIMEOUT)
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > PROBE_MAX_BYTES:
                    return False
            return response.status_code == httpx.codes.OK
        finally:
            await response.aclose()

    def compute_order(self, hosts: Sequence[Peer]) -> list[Peer]:
        """Return ``hosts`` with recently failed ones moved last (rank kept otherwise).

        Peers whose cached state expired are re-probed in the background.
        """
        now = self.clock()
        for peer in hosts:
            state = self._state.get(peer.endpoint)
            if state is not None and state[1] <= now and peer.endpoint not in self._probing:
                self._schedule_probe(peer.endpoint)
        return sorted(hosts, key=lambda peer: self.is_down(peer.endpoint))

    def _schedule_probe(self, endpoint: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - only called from the event loop
            return
        self._probing.add(endpoint)
        task = loop.create_task(self.probe(endpoint))
        self._tasks.add(task)

        def done(t: asyncio.Task[bool]) -> None:
            self._tasks.discard(t)
            self._probing.discard(endpoint)

        task.add_done_callback(done)
