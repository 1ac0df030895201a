"""The peers' endpoints from the registry, cached (one chain read per TTL); endpoints the
node's :class:`~node.chain.endpoints.PeerPolicy` refuses are left out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from node.chain.endpoints import PeerPolicy

PEERS_TTL: Final = 10.0


class PeerDirectory:
    """Return node address (lowercase) -> endpoint of active nodes, refreshed every TTL."""

    def __init__(
        self,
        registry: Any,
        *,
        policy: PeerPolicy | None = None,
        ttl: float = PEERS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.policy = policy or PeerPolicy()
        self.ttl = ttl
        self.clock = clock
        self._peers: dict[str, str] = {}
        self._until = float("-inf")
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget the cached directory; the next call reads the registry."""
        with self._lock:
            self._until = float("-inf")

    def __call__(self) -> Mapping[str, str]:
        """Return the cached directory, reading ``registry.nodes()`` when it is stale."""
        with self._lock:
            if self.clock() >= self._until:
                self._peers = self.policy.filter(
                    {
                        str(info.address).lower(): info.endpoint
                        for info in self.registry.nodes()
                        if info.active and info.endpoint
                    }
                )
                self._until = self.clock() + self.ttl
            return self._peers
