"""Peer sync, the "periodic general exchange": every node keeps a full replica of the content the
chain references, fetching what it lacks from its peers over the trustless gateway.

One round (:meth:`Syncer.run_once`):

1. **Want.** Read the roots the chain references and the ones their documents name
   (:mod:`node.replication.wants`): anchors' batches and their leaves, leaves' payloads,
   sealed objects' key envelopes and envelopes' previous ones, the system and subsystem
   front-ends.
2. **Walk and fetch.** For each root not yet known complete, the storage layer's
   :class:`~node.storage.fetch.BlockFetcher` walks its DAG through the local store and fetches
   what we lack (a missing DAG as one CAR stream, else block by block), or a block whose stored
   copy no longer hashes to its CID, from a peer, hash-checked before it is stored. Peers are
   the active nodes of the registry (``registry.nodes()``) minus this node, each endpoint
   checked by the peer policy (``node.chain.endpoints``): the fetcher is handed only
   endpoints and CIDs.
3. **Pin.** A root whose DAG is complete is pinned, so garbage collection never drops it.

Roots known complete are not re-walked in ordinary rounds; a *scrub* round (the first one, then
every ``scrub_every`` rounds) re-hashes everything and repairs what rotted. The batches and leaves
this node anchored itself are already in its store and pinned (:meth:`Syncer.note_local`): ordinary
rounds count them without walking, decoding or pinning them; scrub rounds check them too.
:meth:`Syncer.request_repair` queues a block another component found corrupted. Progress
``(have, want)`` counts referenced roots whose whole DAG is here against all referenced roots
(:meth:`Syncer.progress`).

| constant                  | value   | meaning                                               |
|---------------------------|---------|-------------------------------------------------------|
| ``SYNC_INTERVAL_SECONDS`` | 15      | pause between rounds (``wake()`` starts one at once)  |
| ``SCRUB_EVERY_ROUNDS``    | 20      | every N-th round re-verifies complete DAGs            |
| ``PINS_PER_CALL``         | 1000    | complete roots pinned together (one store transaction) |

The fetch limits (timeout, block size, back-off) are tabled in :mod:`node.storage.fetch`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx

from node.chain.endpoints import PeerPolicy, UnsafeEndpoint
from node.errors import ChainError, CollegiumError
from node.replication.wants import WantList, WantsSource
from node.storage.base import BlockStore
from node.storage.errors import StoreError
from node.storage.fetch import (
    BACKOFF_BASE_SECONDS,
    FETCH_TIMEOUT_SECONDS,
    BlockFetcher,
    PeerState,
)

log = logging.getLogger(__name__)

SYNC_INTERVAL_SECONDS: Final = 15.0
SCRUB_EVERY_ROUNDS: Final = 20
PINS_PER_CALL: Final = 1000  # complete roots pinned together (one store transaction)


class SyncError(StoreError):
    """A sync round could not run (e.g. the registry could not be read)."""


class ChainSource(WantsSource, Protocol):
    """What the syncer reads from the registry (``node.chain.registry.Registry`` has it all)."""

    def nodes(self) -> list[Any]:
        """Return every active node (with ``address`` and ``endpoint``)."""
        ...


@dataclass(frozen=True)
class SyncProgress:
    """Replica completeness: ``have`` of the ``want`` referenced roots are complete here."""

    have: int
    want: int
    rounds: int
    syncing: bool
    blocks_fetched: int
    bytes_fetched: int
    bad_blocks: int
    repaired_blocks: int
    peers: int
    last_error: str | None = None
    missing: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """Return whether every wanted root is here (after at least one round)."""
        return self.rounds > 0 and self.have == self.want

    def as_dict(self) -> dict[str, Any]:
        """Return the progress as the JSON object served under ``/health`` → ``sync``."""
        return {
            "have": self.have,
            "want": self.want,
            "complete": self.complete,
            "syncing": self.syncing,
            "rounds": self.rounds,
            "blocks_fetched": self.blocks_fetched,
            "bytes_fetched": self.bytes_fetched,
            "bad_blocks": self.bad_blocks,
            "repaired_blocks": self.repaired_blocks,
            "peers": self.peers,
            "last_error": self.last_error,
        }


class Syncer:
    """Keeps the local store a full replica of the content the chain references.

    ``self_address`` and ``self_endpoint`` identify this node (never asked). ``clock`` returns
    monotonic seconds (replaced in unit tests). Thread-safe: rounds never overlap.
    """

    def __init__(
        self,
        store: BlockStore,
        registry: ChainSource,
        *,
        self_address: str = "",
        self_endpoint: str = "",
        interval: float = SYNC_INTERVAL_SECONDS,
        scrub_every: int = SCRUB_EVERY_ROUNDS,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        http: httpx.Client | None = None,
        policy: PeerPolicy | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or PeerPolicy()
        self.registry = registry
        self.self_address = self_address.lower()
        self.self_endpoint = self_endpoint.rstrip("/")
        self.interval = interval
        self.scrub_every = max(1, scrub_every)
        self._round_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.fetcher = BlockFetcher(
            store, timeout=timeout, backoff_base=backoff_base, clock=clock, http=http,
            stop=self._stop,
        )  # fmt: skip
        self.wants = WantList(store)
        #: called after a round that fetched blocks (the log indexer retries at once)
        self.on_fetched: Callable[[], None] | None = None
        # what we know about the local replica
        self._complete: set[str] = set()
        # roots this node stored itself (its own anchors' batches and leaves), not walked or
        # pinned again until a scrub round; ``note_local`` queues them for the next round
        self._fresh: set[str] = set()
        self._noted: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        self._repairs: set[str] = set()
        # counters
        self._rounds = 0
        self._running = False
        self._have = 0
        self._want = 0
        self._missing_roots: tuple[str, ...] = ()
        self._last_error: str | None = None

    # -- thread --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background loop (a daemon thread): a scrub round now, then one every
        ``interval`` seconds or on ``wake()``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="collegium-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop after its current fetch and wait for it; close the HTTP client."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.fetcher.close()

    def wake(self) -> None:
        """Start the next round now (e.g. after a new anchor)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once(scrub=self._rounds % self.scrub_every == 0)
            except Exception as exc:  # the loop must survive anything; the error is reported
                log.exception("sync round failed")
                with self._state_lock:
                    self._last_error = f"{type(exc).__name__}: {exc}"
            self._wake.wait(self.interval)
            self._wake.clear()

    # -- progress ------------------------------------------------------------------------------

    def progress(self) -> SyncProgress:
        """Return the replica completeness and counters as of the last (or current) round."""
        with self._state_lock:
            stats = self.fetcher.stats()
            return SyncProgress(
                have=self._have,
                want=self._want,
                rounds=self._rounds,
                syncing=self._running and self._have < self._want,
                blocks_fetched=stats.blocks_fetched,
                bytes_fetched=stats.bytes_fetched,
                bad_blocks=stats.bad_blocks,
                repaired_blocks=stats.repaired_blocks,
                peers=stats.peers,
                last_error=self._last_error,
                missing=self._missing_roots,
            )

    def peer_states(self) -> dict[str, PeerState]:
        """Return a copy of what is known about each peer, by endpoint."""
        return self.fetcher.peer_states()

    def request_repair(self, cid: str) -> None:
        """Queue block ``cid`` (found corrupted elsewhere) for re-fetching in the next round."""
        with self._state_lock:
            self._repairs.add(cid)
        self.wake()

    def note_local(self, batch_cid: str, leaf_cids: Sequence[str], payloads: Sequence[str]) -> None:
        """Record that this node itself stored (and pinned) the batch document ``batch_cid`` and
        the leaves it lists, whose payload CIDs are ``payloads`` ("" for none): ordinary rounds
        count them complete without walking, decoding or pinning them again; the next scrub
        round checks them like any other root."""
        with self._state_lock:
            self._noted.append((batch_cid, tuple(leaf_cids), tuple(payloads)))

    def _take_noted(self) -> None:
        with self._state_lock:
            noted, self._noted = self._noted, []
        for batch_cid, leaves, payloads in noted:
            self._fresh.add(batch_cid)
            self.wants.note_local(batch_cid, leaves, payloads)
            self._fresh.update(leaves)

    # -- reading the chain ---------------------------------------------------------------------

    def get_referenced_roots(self) -> list[str]:
        """Return every root CID the chain references: batch documents (with the leaves of those
        already decoded), then the system and subsystem front-ends.

        Raises ``SyncError`` if the registry cannot be read.
        """
        try:
            return self.wants.read_roots(self.registry)
        except ChainError as exc:
            raise SyncError(f"cannot read the registry: {exc}") from exc

    def _refresh_peers(self) -> None:
        try:
            nodes = self.registry.nodes()
        except ChainError as exc:
            raise SyncError(f"cannot read the node list: {exc}") from exc
        order: list[str] = []
        for info in nodes:
            if str(info.address).lower() == self.self_address:
                continue
            try:  # a registered endpoint is a stranger's word (node/chain/endpoints.py)
                endpoint = self.policy.check(str(info.endpoint))
            except UnsafeEndpoint as exc:
                log.debug("peer %s not asked: %s", info.address, exc)
                continue
            if not endpoint or endpoint == self.self_endpoint or endpoint in order:
                continue
            order.append(endpoint)
        self.fetcher.set_peers(order)

    # -- one round -----------------------------------------------------------------------------

    def run_once(self, *, scrub: bool = False) -> SyncProgress:
        """Run one sync round and return the progress after it.

        ``scrub`` re-walks (and re-hashes) roots already known complete, repairing rotten blocks.
        Raises ``SyncError`` if the registry cannot be read.
        """
        with self._round_lock:
            with self._state_lock:
                self._running = True
                repairs, self._repairs = self._repairs, set()
            fetched_before = self.progress().blocks_fetched
            try:
                self._round(scrub, repairs)
            finally:
                with self._state_lock:
                    self._running = False
                    self._rounds += 1
            progress = self.progress()
            if progress.blocks_fetched > fetched_before and self.on_fetched is not None:
                self.on_fetched()
            return progress

    def _round(self, scrub: bool, repairs: set[str]) -> None:
        self._refresh_peers()
        self._take_noted()
        for cid in sorted(repairs):
            self.fetcher.repair_block(cid)
        roots = self.get_referenced_roots()
        wanted = set(roots)
        pinned = set(self.store.pins())
        have = 0
        missing: list[str] = []
        to_pin: list[str] = []
        i = 0
        while i < len(roots):
            root = roots[i]
            i += 1
            if self._stop.is_set():
                break
            fresh = not scrub and root in self._fresh
            done = fresh or (root in self._complete and not scrub) or self.fetcher.sync_dag(root)
            if not done:
                self._complete.discard(root)
                missing.append(root)
                continue
            self._complete.add(root)
            have += 1
            if root not in pinned and not fresh:
                to_pin.append(root)
                if len(to_pin) >= PINS_PER_CALL:
                    self._pin_all(to_pin)
            roots.extend(self.wants.get_named_roots(root, wanted))
            with self._state_lock:  # show progress within a long round, never going backwards
                self._have = max(self._have, have)
                self._want = max(self._want, len(roots))
        self._pin_all(to_pin)
        if scrub and not self._stop.is_set():
            self._fresh.clear()  # checked (and pinned) like every other root this round
        with self._state_lock:
            self._have, self._want = have, len(roots)
            self._missing_roots = tuple(missing)
            self._last_error = None
        if missing:
            log.info("sync: %d/%d referenced roots complete", have, len(roots))

    def _pin_all(self, roots: list[str]) -> None:
        """Pin the complete ``roots`` and empty the list: in one store transaction when the
        store can (``pin_many``), else, or if that fails, one by one (each failure logged)."""
        pin_many = getattr(self.store, "pin_many", None)
        done = False
        if pin_many is not None and len(roots) > 1:
            try:
                pin_many(roots)
                done = True
            except CollegiumError as exc:
                log.info(
                    "pinning %d roots together failed (%s); pinning one by one", len(roots), exc
                )
        if not done:
            for root in roots:
                self._pin(root)
        roots.clear()

    def _pin(self, root: str) -> None:
        try:
            self.store.pin(root)
        except CollegiumError as exc:
            log.warning("could not pin %s: %s", root, exc)
