"""Who may sign for a subsystem: the registry's participant sets, cached briefly.

Every submission checks ``registry.is_participant(subsystem, signer)``; one contract call
per transaction would cap ingest far below the batch endpoint's rate, so answers are
cached for ``ttl`` seconds. The chain follower calls :meth:`ParticipantCache.invalidate`
when it indexes a ``ParticipantAdded``/``ParticipantRemoved`` or ``SubsystemCreated``
event, so a change is seen at the latest after its confirmations, or after ``ttl``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

DEFAULT_PARTICIPANT_TTL = 10.0
MAX_CACHED = 100_000


class ParticipantRegistry(Protocol):
    """What the cache reads from the registry contract."""

    def subsystem_exists(self, name: str) -> bool:
        """Return whether ``name`` is a registered subsystem."""
        ...

    def is_participant(self, name: str, account: str) -> bool:
        """Return whether ``account`` participates in ``name``."""
        ...


class ParticipantCache:
    """Time-bounded cache of subsystem existence and participation (thread-safe)."""

    def __init__(
        self,
        registry: ParticipantRegistry,
        ttl: float = DEFAULT_PARTICIPANT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._members: dict[tuple[str, str], tuple[float, bool]] = {}
        self._subsystems: dict[str, tuple[float, bool]] = {}
        self.lookups = 0  # registry calls made (for tests and metrics)

    def _fresh(self, hit: tuple[float, bool] | None) -> bool | None:
        if hit is None or hit[0] < self._clock():
            return None
        return hit[1]

    def subsystem_exists(self, name: str) -> bool:
        """Return whether subsystem ``name`` exists (subsystems are never deleted, so a
        positive answer is kept until invalidated). Raises ``ChainError`` if unreadable."""
        with self._lock:
            found = self._fresh(self._subsystems.get(name))
        if found is not None:
            return found
        exists = bool(self._registry.subsystem_exists(name))
        self.lookups += 1
        expires = float("inf") if exists else self._clock() + self.ttl
        with self._lock:
            if len(self._subsystems) >= MAX_CACHED:
                self._subsystems.clear()
            self._subsystems[name] = (expires, exists)
        return exists

    def is_participant(self, subsystem: str, address: str) -> bool:
        """Return whether ``address`` participates in ``subsystem`` (cached for ``ttl``).

        Raises ``ChainError`` if the registry cannot be read.
        """
        key = (subsystem, address.lower())
        with self._lock:
            found = self._fresh(self._members.get(key))
        if found is not None:
            return found
        member = bool(self._registry.is_participant(subsystem, address))
        self.lookups += 1
        with self._lock:
            if len(self._members) >= MAX_CACHED:
                self._members.clear()
            self._members[key] = (self._clock() + self.ttl, member)
        return member

    def invalidate(self, subsystem: str | None = None, address: str | None = None) -> None:
        """Forget cached answers: all of them, a subsystem's, or one participant's."""
        with self._lock:
            if subsystem is None:
                self._members.clear()
                self._subsystems.clear()
                return
            self._subsystems.pop(subsystem, None)
            if address is not None:
                self._members.pop((subsystem, address.lower()), None)
                return
            for key in [k for k in self._members if k[0] == subsystem]:
                del self._members[key]
