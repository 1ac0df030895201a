"""``ParticipantCache``: answers cached for their time, one registry read per miss however many
threads ask at once, and a failed read is every waiting asker's error (a unit test of the code
above the registry: the registry here is a stand-in that counts and blocks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from node.errors import ChainError
from node.ledger.participants import ParticipantCache

ASKERS = 32


class SlowRegistry:
    """Answers once ``release`` is set; counts the reads; fails while ``broken``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.reads = 0
        self.broken = False
        self._lock = threading.Lock()

    def _read(self) -> None:
        with self._lock:
            self.reads += 1
        assert self.release.wait(10)
        if self.broken:
            raise ChainError("registry unreadable")

    def subsystem_exists(self, name: str) -> bool:
        self._read()
        return name == "main"

    def is_participant(self, name: str, account: str) -> bool:
        self._read()
        return account.lower() == "0x" + "aa" * 20


def ask_together(
    call: Callable[[], object], registry: SlowRegistry, count: int = ASKERS
) -> list[object]:
    """Run ``call`` from ``count`` threads; the registry answers once all of them have asked
    (plus a moment to queue up). Return the answers or errors."""
    entered = threading.Semaphore(0)

    def one(_: int) -> object:
        entered.release()
        try:
            return call()
        except ChainError as exc:
            return exc

    def release_when_all_asked() -> None:
        for _ in range(count):
            entered.acquire()
        time.sleep(0.2)  # the last askers reach the cache
        registry.release.set()

    threading.Thread(target=release_when_all_asked, daemon=True).start()
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_a_burst_on_a_cold_cache_reads_the_registry_once() -> None:
    registry = SlowRegistry()
    cache = ParticipantCache(registry)
    assert ask_together(lambda: cache.subsystem_exists("main"), registry) == [True] * ASKERS
    assert registry.reads == 1 and cache.lookups == 1
    member = "0x" + "AA" * 20
    registry.release.clear()
    assert ask_together(lambda: cache.is_participant("main", member), registry) == [True] * ASKERS
    assert registry.reads == 2
    assert cache.is_participant("main", "0x" + "bb" * 20) is False  # another key: its own read
    assert registry.reads == 3


def test_a_failed_read_is_every_waiting_askers_error_and_is_not_kept() -> None:
    registry = SlowRegistry()
    registry.broken = True
    cache = ParticipantCache(registry)
    answers = ask_together(lambda: cache.subsystem_exists("main"), registry)
    assert all(isinstance(a, ChainError) for a in answers), answers
    assert registry.reads < ASKERS  # waiting askers took the leader's error, no read of their own
    registry.broken = False
    assert cache.subsystem_exists("main") is True  # nothing false was cached


def test_answers_expire_except_an_existing_subsystem() -> None:
    now = [0.0]
    registry = SlowRegistry()
    registry.release.set()
    cache = ParticipantCache(registry, ttl=10, clock=lambda: now[0])
    assert cache.subsystem_exists("main") and not cache.subsystem_exists("gone")
    assert cache.is_participant("main", "0x" + "aa" * 20)
    reads = registry.reads
    now[0] = 11.0
    assert cache.subsystem_exists("main")  # kept: subsystems are never deleted
    assert registry.reads == reads
    cache.subsystem_exists("gone")
    cache.is_participant("main", "0x" + "aa" * 20)
    assert registry.reads == reads + 2  # the negative answer and the membership expired
    cache.invalidate("main")
    cache.subsystem_exists("main")
    assert registry.reads == reads + 3


@pytest.mark.parametrize("ask", ["subsystem", "member"])
def test_an_invalidation_while_reading_does_not_wedge_later_askers(ask: str) -> None:
    registry = SlowRegistry()
    cache = ParticipantCache(registry)

    def call() -> bool:
        if ask == "subsystem":
            return cache.subsystem_exists("main")
        return cache.is_participant("main", "0x" + "aa" * 20)

    threading.Timer(0.1, cache.invalidate).start()
    assert ask_together(call, registry, 8) == [True] * 8
    assert call() is True
