"""Peer sync, the "periodic general exchange": every node keeps a full replica of the content the
chain references, fetching what it lacks from its peers over the trustless gateway.

One round (:meth:`Syncer.run_once`):

1. **Want.** Read the roots the chain references (:meth:`Syncer.get_referenced_roots`): the
   batch CID of every anchor, the system front-end CID and each subsystem's front-end CID. Once a
   batch document is complete locally, the leaf CIDs it lists (``decode_batch``) are wanted too,
   and once a leaf is complete, the payload CID it names (a private transaction's ciphertext);
   once that is complete, the key envelope a sealed object names, and each envelope's
   ``previous`` (``node.crypto.replica.compute_references``): a subsystem's ciphertext and
   wrapped keys reach every node, its plaintext none.
2. **Walk.** For each root not yet known complete, walk its DAG (dag-pb links) through the local
   store. A block we lack, or whose stored copy no longer hashes to its CID (``BlockCorrupted``),
   is fetched from a peer.
3. **Fetch.** ``GET {peer}/ipfs/{cid}?format=raw`` with ``Accept: application/vnd.ipld.raw``.
   Peers are the active nodes of the registry (``registry.nodes()``) minus this node. Every
   block is hashed against its CID *before* ``put_block``; a peer serving a wrong (or oversized)
   block is logged, counted and put in back-off, and peers with fewer bad blocks and failures are
   asked first afterwards. Network errors and 5xx put a peer in exponential back-off; a block no
   peer can serve is retried in later rounds, also with exponential back-off.
4. **Pin.** A root whose DAG is complete is pinned, so garbage collection never drops it.

Roots known complete are not re-walked in ordinary rounds; a *scrub* round (the first one, then
every ``scrub_every`` rounds) re-hashes everything and repairs what rotted. The batches and leaves
this node anchored itself are already in its store and pinned (:meth:`Syncer.note_local`): ordinary
rounds count them without walking, decoding or pinning them; scrub rounds check them too.
:meth:`request_repair`
queues a block another component found corrupted. Progress ``(have, want)`` counts referenced
roots whose whole DAG is here against all referenced roots (:meth:`Syncer.progress`).

| constant                  | value   | meaning                                               |
|---------------------------|---------|-------------------------------------------------------|
| ``SYNC_INTERVAL_SECONDS`` | 15      | pause between rounds (``wake()`` starts one at once)  |
| ``SCRUB_EVERY_ROUNDS``    | 20      | every N-th round re-verifies complete DAGs            |
| ``FETCH_TIMEOUT_SECONDS`` | 10      | per-request HTTP timeout                              |
| ``MAX_BLOCK_BYTES``       | 2 MiB   | larger answers are refused (the bitswap block limit)  |
| ``BACKOFF_BASE_SECONDS``  | 1       | first back-off; doubles on each further failure       |
| ``BACKOFF_MAX_SECONDS``   | 300     | back-off ceiling                                      |
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx
from multiformats import CID

from node.chain.endpoints import PeerPolicy, UnsafeEndpoint
from node.errors import ChainError, CollegiumError, InvalidCID, NotFoundInStore, ValidationError
from node.storage.base import BlockStore
from node.storage.cids import check_block, compute_block_key, format_cid, is_cid, parse_cid
from node.storage.errors import BlockCorrupted, BlockMismatch, StoreError, UnsupportedNode
from node.storage.reader import get_child_cids

log = logging.getLogger(__name__)

SYNC_INTERVAL_SECONDS: Final = 15.0
SCRUB_EVERY_ROUNDS: Final = 20
FETCH_TIMEOUT_SECONDS: Final = 10.0
#: A whole block download may take at most this many times the (per read) timeout.
FETCH_DEADLINE_FACTOR: Final = 3
MAX_BLOCK_BYTES: Final = 2 * 1024 * 1024
BACKOFF_BASE_SECONDS: Final = 1.0
BACKOFF_MAX_SECONDS: Final = 300.0
FETCH_CONCURRENCY: Final = 8
PINS_PER_CALL: Final = 1000  # complete roots pinned together (one store transaction)
RAW_BLOCK_MEDIA_TYPE: Final = "application/vnd.ipld.raw"
HTTP_OK: Final = 200
HTTP_NOT_FOUND: Final = 404
HTTP_GONE: Final = 410


class SyncError(StoreError):
    """A sync round could not run (e.g. the registry could not be read)."""


class ChainSource(Protocol):
    """What the syncer reads from the registry (``node.chain.registry.Registry`` has it all)."""

    def anchor_count(self) -> int:
        """Return the number of anchors."""
        ...

    def get_anchor(self, i: int) -> Any:
        """Return anchor ``i`` (with ``batch_cid``)."""
        ...

    def frontend_cid(self) -> str:
        """Return the system front-end CID ("" if unset)."""
        ...

    def subsystems(self) -> list[str]:
        """Return every subsystem name."""
        ...

    def subsystem_frontend(self, name: str) -> str:
        """Return the front-end CID of ``name`` ("" if unset)."""
        ...

    def nodes(self) -> list[Any]:
        """Return every active node (with ``address`` and ``endpoint``)."""
        ...


@dataclass
class PeerState:
    """What this node has learnt about one peer."""

    endpoint: str
    failures: int = 0
    bad_blocks: int = 0
    served_blocks: int = 0
    retry_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready values."""
        return {
            "endpoint": self.endpoint,
            "failures": self.failures,
            "bad_blocks": self.bad_blocks,
            "served_blocks": self.served_blocks,
        }


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


def compute_backoff(failures: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    """Return the back-off after ``failures`` consecutive failures: ``base * 2**(failures-1)``,
    capped at ``BACKOFF_MAX_SECONDS`` (0 for no failure)."""
    if failures <= 0:
        return 0.0
    return float(min(base * (2 ** min(failures - 1, 32)), BACKOFF_MAX_SECONDS))


def compute_peer_order(peers: Iterable[PeerState], now: float) -> list[PeerState]:
    """Return the peers to ask, best first: those not in back-off, by fewest bad blocks, then
    fewest consecutive failures; ties keep registry order (``sorted`` is stable)."""
    ready = [p for p in peers if p.retry_at <= now]
    return sorted(ready, key=lambda p: (p.bad_blocks, p.failures))


def compute_roots(
    batch_cids: Sequence[str], frontends: Sequence[str], leaves: dict[str, tuple[str, ...]]
) -> list[str]:
    """Return the wanted roots in sync order, without duplicates: batch documents (each followed
    by the leaves it lists, when known), then front-ends. Empty strings are skipped."""
    out: list[str] = []
    seen: set[str] = set()

    def push(cid: str) -> None:
        if cid and cid not in seen:
            seen.add(cid)
            out.append(cid)

    for batch in batch_cids:
        push(batch)
        for leaf in leaves.get(batch, ()):
            push(leaf)
    for frontend in frontends:
        push(frontend)
    return out


class _PeerLacks(Exception):
    """The peer answered that it does not have the block (404/410)."""


class _PeerFailed(Exception):
    """The peer could not be asked or answered with an error."""


class _PeerMisbehaved(Exception):
    """The peer's answer cannot be right whatever the block (e.g. larger than any block)."""


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
        self.timeout = timeout
        self.registry = registry
        self.self_address = self_address.lower()
        self.self_endpoint = self_endpoint.rstrip("/")
        self.interval = interval
        self.scrub_every = max(1, scrub_every)
        self.backoff_base = backoff_base
        self._clock = clock
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self._own_http = http is None
        self._pool = ThreadPoolExecutor(FETCH_CONCURRENCY, thread_name_prefix="collegium-fetch")
        self._missing_lock = threading.Lock()
        self._round_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: called after a round that fetched blocks (the log indexer retries at once)
        self.on_fetched: Callable[[], None] | None = None
        # what we learnt from the chain (anchors are append-only, so cached by index)
        self._batch_cids: list[str] = []
        self._leaves: dict[str, tuple[str, ...]] = {}
        self._leaf_cids: set[str] = set()
        self._payloads: dict[str, str] = {}
        self._followed: set[str] = set()  # payloads and envelopes: their references are wanted
        self._references: dict[str, tuple[str, ...]] = {}
        self._bad_roots: set[str] = set()
        self._good_roots: set[str] = set()  # parsed once: a round re-reads every root
        # what we know about the local replica and the peers
        self._complete: set[str] = set()
        # roots this node stored itself (its own anchors' batches and leaves), not walked or
        # pinned again until a scrub round; ``note_local`` queues them for the next round
        self._fresh: set[str] = set()
        self._noted: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        self._missing: dict[str, tuple[int, float]] = {}  # block key -> (attempts, retry_at)
        self._repairs: set[str] = set()
        self._peers: dict[str, PeerState] = {}
        self._peer_order: list[str] = []
        # counters
        self._rounds = 0
        self._running = False
        self._have = 0
        self._want = 0
        self._missing_roots: tuple[str, ...] = ()
        self._blocks_fetched = 0
        self._bytes_fetched = 0
        self._bad_blocks = 0
        self._repaired = 0
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
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._own_http:
            self._http.close()

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
            return SyncProgress(
                have=self._have,
                want=self._want,
                rounds=self._rounds,
                syncing=self._running and self._have < self._want,
                blocks_fetched=self._blocks_fetched,
                bytes_fetched=self._bytes_fetched,
                bad_blocks=self._bad_blocks,
                repaired_blocks=self._repaired,
                peers=len(self._peers),
                last_error=self._last_error,
                missing=self._missing_roots,
            )

    def peer_states(self) -> dict[str, PeerState]:
        """Return a copy of what is known about each peer, by endpoint."""
        with self._state_lock:
            return {k: PeerState(**vars(v)) for k, v in self._peers.items()}

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
            self._leaves.setdefault(batch_cid, leaves)
            self._fresh.update(leaves)
            for leaf, payload in zip(leaves, payloads, strict=True):
                self._payloads.setdefault(leaf, payload)

    # -- reading the chain ---------------------------------------------------------------------

    def get_referenced_roots(self) -> list[str]:
        """Return every root CID the chain references: batch documents (with the leaves of those
        already decoded), then the system and subsystem front-ends.

        Raises ``SyncError`` if the registry cannot be read.
        """
        try:
            count = self.registry.anchor_count()
            for i in range(len(self._batch_cids), count):
                self._batch_cids.append(str(self.registry.get_anchor(i).batch_cid))
            frontends = [self.registry.frontend_cid()]
            for name in self.registry.subsystems():
                frontends.append(self.registry.subsystem_frontend(name))
        except ChainError as exc:
            raise SyncError(f"cannot read the registry: {exc}") from exc
        roots = compute_roots(self._batch_cids, frontends, self._leaves)
        return [r for r in roots if self._is_valid_root(r)]

    def _is_valid_root(self, cid: str) -> bool:
        if cid in self._good_roots:
            return True
        if cid in self._bad_roots:
            return False
        if not is_cid(cid):
            log.warning("the chain references %r, which is not a CID; ignored", cid)
            self._bad_roots.add(cid)
            return False
        self._good_roots.add(cid)
        return True

    def _refresh_peers(self) -> None:
        try:
            nodes = self.registry.nodes()
        except ChainError as exc:
            raise SyncError(f"cannot read the node list: {exc}") from exc
        order: list[str] = []
        with self._state_lock:
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
                self._peers.setdefault(endpoint, PeerState(endpoint))
            self._peer_order = order

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
            self._repair_block(cid)
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
            done = fresh or (root in self._complete and not scrub) or self._sync_dag(root)
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
            if root in self._batch_cids:
                for leaf in self._get_leaves(root):
                    self._leaf_cids.add(leaf)
                    if leaf not in wanted and self._is_valid_root(leaf):
                        wanted.add(leaf)
                        roots.append(leaf)
            elif root in self._leaf_cids:
                # a leaf names its payload (ciphertext of a private transaction, or a public
                # document): referenced by the chain through the leaf, so wanted too
                payload = self._get_payload(root)
                if payload and payload not in wanted and self._is_valid_root(payload):
                    self._followed.add(payload)
                    wanted.add(payload)
                    roots.append(payload)
            elif root in self._followed:
                # a sealed object names its key envelope, an envelope its previous one: a
                # subsystem's keys follow its data to every node (ciphertext and wrapped keys)
                for ref in self._get_references(root):
                    if ref not in wanted and self._is_valid_root(ref):
                        self._followed.add(ref)
                        wanted.add(ref)
                        roots.append(ref)
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

    def _get_payload(self, leaf_cid: str) -> str:
        """Return the payload CID named by the (complete, local) leaf ``leaf_cid``, or ""."""
        if leaf_cid in self._payloads:
            return self._payloads[leaf_cid]
        from node.ledger.transaction import decode_leaf_payload

        try:
            payload = decode_leaf_payload(self.store.cat(leaf_cid))
        except (ValidationError, StoreError) as exc:
            log.warning("leaf %s cannot be decoded (%s); its payload is not synced", leaf_cid, exc)
            payload = ""
        self._payloads[leaf_cid] = payload
        return payload

    def _get_references(self, cid: str) -> tuple[str, ...]:
        """Return the CIDs the (complete, local) document ``cid`` refers to: a sealed object's
        envelope, an envelope's previous one (``node.crypto.replica.compute_references``)."""
        if cid in self._references:
            return self._references[cid]
        from node.crypto.replica import compute_references

        try:
            data = self.store.get_block(cid)
            if not data.startswith(b"{") and not get_child_cids(parse_cid(cid), data):
                data = self.store.cat(cid)  # one dag-pb block: a small file (never a big one)
            refs = compute_references(data)
        except (ValidationError, StoreError, InvalidCID) as exc:
            log.debug("%s cannot be read for references (%s)", cid, exc)
            refs = ()
        self._references[cid] = refs
        return refs

    def _get_leaves(self, batch_cid: str) -> tuple[str, ...]:
        """Return the leaf CIDs listed by the (complete, local) batch document ``batch_cid``."""
        if batch_cid in self._leaves:
            return self._leaves[batch_cid]
        from node.ledger.batch import decode_batch

        try:
            leaves = decode_batch(self.store.cat(batch_cid)).leaf_cids
        except (ValidationError, StoreError) as exc:
            log.warning("batch %s cannot be decoded (%s); leaves not synced", batch_cid, exc)
            leaves = ()
        self._leaves[batch_cid] = leaves
        return leaves

    def _sync_dag(self, root: str) -> bool:
        """Return whether every block of the DAG under ``root`` is here (fetching what lacks).

        The DAG is walked level by level; the blocks of one level are read or fetched by up to
        ``FETCH_CONCURRENCY`` threads.
        """
        complete = True
        seen: set[str] = set()
        level: list[CID] = [parse_cid(root)]
        while level:
            if self._stop.is_set():
                return False
            todo: list[CID] = []
            for cid in level:
                key = compute_block_key(cid)
                if key not in seen:
                    seen.add(key)
                    todo.append(cid)
            if len(todo) > 1:
                blocks = list(self._pool.map(self._get_or_fetch, todo))
            else:
                blocks = [self._get_or_fetch(cid) for cid in todo]
            level = []
            for cid, data in zip(todo, blocks, strict=True):
                if data is None:
                    complete = False
                    continue
                try:
                    level.extend(get_child_cids(cid, data))
                except (UnsupportedNode, InvalidCID) as exc:
                    log.warning("block %s is not a valid dag-pb node (%s)", format_cid(cid), exc)
        return complete

    def _get_or_fetch(self, cid: CID) -> bytes | None:
        """Return the verified bytes of ``cid`` from the store, else from a peer (then stored);
        ``None`` if no peer could serve it now."""
        name = format_cid(cid)
        try:
            return self.store.get_block(name)
        except NotFoundInStore:
            pass
        except BlockCorrupted as exc:
            log.warning("local block corrupted, re-fetching from peers: %s", exc)
            data = self._fetch(cid, force=True)
            if data is not None:
                with self._state_lock:
                    self._repaired += 1
            return data
        return self._fetch(cid)

    def _repair_block(self, name: str) -> None:
        try:
            cid = parse_cid(name)
            self.store.get_block(name)
            return  # fine after all
        except InvalidCID:
            return
        except (NotFoundInStore, BlockCorrupted):
            pass
        if self._fetch(cid, force=True) is not None:
            with self._state_lock:
                self._repaired += 1

    # -- fetching from peers -------------------------------------------------------------------

    def _fetch(self, cid: CID, *, force: bool = False) -> bytes | None:
        """Return block ``cid`` fetched from the first peer that serves the right bytes, after
        storing it; ``None`` if none can now (the block then backs off unless ``force``)."""
        key = compute_block_key(cid)
        now = self._clock()
        with self._missing_lock:
            attempts, retry_at = self._missing.get(key, (0, 0.0))
        if not force and retry_at > now:
            return None
        name = format_cid(cid)
        with self._state_lock:
            candidates = compute_peer_order((self._peers[e] for e in self._peer_order), now)
        for peer in candidates:
            data = self._ask(peer, cid, name)
            if data is None:
                continue
            self.store.put_block(name, data)
            with self._missing_lock:
                self._missing.pop(key, None)
            with self._state_lock:
                self._blocks_fetched += 1
                self._bytes_fetched += len(data)
            return data
        attempts += 1
        with self._missing_lock:
            self._missing[key] = (attempts, now + compute_backoff(attempts, self.backoff_base))
        return None

    def _ask(self, peer: PeerState, cid: CID, name: str) -> bytes | None:
        """Return the right bytes of ``cid`` from ``peer``, or ``None`` (the peer's state is
        updated: failures and bad blocks put it in back-off)."""
        now = self._clock()
        try:
            data = self._download(peer.endpoint, name)
            check_block(cid, data, stored=False)
        except _PeerLacks:
            return None
        except (BlockMismatch, _PeerMisbehaved) as exc:
            with self._state_lock:
                peer.bad_blocks += 1
                peer.retry_at = now + compute_backoff(peer.bad_blocks, self.backoff_base)
                self._bad_blocks += 1
            log.warning("peer %s served a wrong block for %s: %s", peer.endpoint, name, exc)
            return None
        except (_PeerFailed, httpx.HTTPError) as exc:
            with self._state_lock:
                peer.failures += 1
                peer.retry_at = now + compute_backoff(peer.failures, self.backoff_base)
            log.info("peer %s failed for %s (%s); backing off", peer.endpoint, name, exc)
            return None
        with self._state_lock:
            peer.failures = 0
            peer.served_blocks += 1
        return data

    def _download(self, endpoint: str, name: str) -> bytes:
        """Return the body of ``GET {endpoint}/ipfs/{name}?format=raw`` (at most one block,
        within ``FETCH_DEADLINE_FACTOR`` × the timeout in all: a peer that drips bytes fails)."""
        url = f"{endpoint}/ipfs/{name}"
        headers = {"Accept": RAW_BLOCK_MEDIA_TYPE}
        deadline = time.monotonic() + FETCH_DEADLINE_FACTOR * self.timeout
        with self._http.stream("GET", url, params={"format": "raw"}, headers=headers) as resp:
            if resp.status_code in (HTTP_NOT_FOUND, HTTP_GONE):
                raise _PeerLacks
            if resp.status_code != HTTP_OK:
                raise _PeerFailed(f"HTTP {resp.status_code}")
            chunks: list[bytes] = []
            total = 0
            for chunk in resp.iter_bytes():
                total += len(chunk)
                if total > MAX_BLOCK_BYTES:
                    raise _PeerMisbehaved(f"answer larger than {MAX_BLOCK_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise _PeerFailed(f"answer slower than {FETCH_DEADLINE_FACTOR * self.timeout}s")
                chunks.append(chunk)
        return b"".join(chunks)


PROGRESS_BAR_WIDTH: Final = 24


def format_progress(sync: dict[str, Any], width: int = PROGRESS_BAR_WIDTH) -> str:
    """Return a one-line replica summary of ``/health``'s ``sync`` object, e.g.
    ``"[############------------] 12/24 roots (syncing)"`` or ``"24/24 roots complete"``."""
    have, want = int(sync.get("have", 0)), int(sync.get("want", 0))
    if not sync.get("rounds"):
        return "sync not run yet"
    if sync.get("complete"):
        line = f"{have}/{want} roots complete"
    else:
        filled = (have * width) // want if want else width
        state = "syncing" if sync.get("syncing") else "incomplete"
        line = f"[{'#' * filled}{'-' * (width - filled)}] {have}/{want} roots ({state})"
    if sync.get("bad_blocks"):
        line += f"; {sync['bad_blocks']} bad blocks from peers rejected"
    if sync.get("last_error"):
        line += f"; last error: {sync['last_error']}"
    return line
