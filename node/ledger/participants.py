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
from typing import Any, Protocol

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


class _Flight:
    """One registry read in progress: the threads asking the same thing wait for it."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class ParticipantCache:
    """Time-bounded cache of subsystem existence and participation (thread-safe).

    A miss reads the registry once however many threads ask at the same moment (a burst of
    submissions on a cold cache made one contract call each, serialised on the chain): the
    first asker reads, the others wait for its answer, or get its error.
    """

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
        self._flights: dict[tuple[int, Any], _Flight] = {}
        self.lookups = 0  # registry calls made (for tests and metrics)

    def _fresh(self, hit: tuple[float, bool] | None) -> bool | None:
        if hit is None or hit[0] < self._clock():
            return None
        return hit[1]

    def _lookup(
        self,
        table: dict[Any, tuple[float, bool]],
        key: Any,
        read: Callable[[], bool],
        keep: Callable[[bool], float],
    ) -> bool:
        """Return the cached answer for ``key``, else read it (once for all concurrent
        askers) and keep it until ``keep(answer)``."""
        flight_key = (id(table), key)  # one read in flight per table and key
        while True:
            with self._lock:
                found = self._fresh(table.get(key))
                if found is not None:
                    return found
                flight = self._flights.get(flight_key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[flight_key] = _Flight()
            if not leader:
                flight.done.wait()
                if flight.error is not None:
                    raise flight.error
                continue  # the answer is in the table now
            try:
                answer = bool(read())
                self.lookups += 1
                with self._lock:
                    if len(table) >= MAX_CACHED:
                        table.clear()
                    table[key] = (keep(answer), answer)
                return answer
            except BaseException as exc:
                flight.error = exc
                raise
            finally:
                with self._lock:
                    del self._flights[flight_key]
                flight.done.set()

    def cached_subsystem_exists(self, name: str) -> bool | None:
        """Return :meth:`subsystem_exists`'s answer if it is cached and fresh, else None
        (never reads the registry: for a caller that must not block)."""
        with self._lock:
            return self._fresh(self._subsystems.get(name))

    def cached_is_participant(self, subsystem: str, address: str) -> bool | None:
        """Return :meth:`is_participant`'s answer if it is cached and fresh, else None."""
        with self._lock:
            return self._fresh(self._members.get((subsystem, address.lower())))

    def subsystem_exists(self, name: str) -> bool:
        """Return whether subsystem ``name`` exists (subsystems are never deleted, so a
        positive answer is kept until invalidated). Raises ``ChainError`` if unreadable."""
        return self._lookup(
            self._subsystems,
            name,
            lambda: self._registry.subsystem_exists(name),
            lambda exists: float("inf") if exists else self._clock() + self.ttl,
        )

    def is_participant(self, subsystem: str, address: str) -> bool:
        """Return whether ``address`` participates in ``subsystem`` (cached for ``ttl``).

        Raises ``ChainError`` if the registry cannot be read.
        """
        return self._lookup(
            self._members,
            (subsystem, address.lower()),
            lambda: self._registry.is_participant(subsystem, address),
            lambda _: self._clock() + self.ttl,
        )

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
