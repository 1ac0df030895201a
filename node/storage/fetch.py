"""Fetch blocks by CID from peers' trustless gateways into the local store, hash-checked.

This module knows blocks, CIDs and peer endpoints (URLs it is handed), nothing else: which
roots to want and which peers to ask are decided above it (``node.replication.sync``).

:meth:`BlockFetcher.sync_dag` walks a root's DAG (dag-pb links) through the local store. A
missing dag-pb block (the root first) is asked of the peers as one CAR of the whole DAG under
it (:mod:`node.storage.carfetch`: every block checked against the link that names it, only
blocks of that DAG accepted, stored in batches of one durable write each); when the CAR is
complete the walk does not go below that block. A block still missing after that (a raw
leaf, a peer that does not speak CAR, a CAR cut short or refused as too large), or whose
stored copy no longer hashes to its CID (``BlockCorrupted``), is fetched on its own with
``GET {peer}/ipfs/{cid}?format=raw`` and ``Accept: application/vnd.ipld.raw`` (no redirects
followed), up to ``FETCH_CONCURRENCY`` at once, and each group of ``FETCH_GROUP`` blocks is
stored in one durable write. Every block is hashed against its CID *before* it is stored; a
peer serving a wrong (or oversized) block or a CAR that cannot be right is logged, counted
and put in back-off, and peers with fewer bad blocks and failures are asked first afterwards.
Network errors and 5xx put a peer in exponential back-off; a peer that does not answer with
a CAR, or whose CAR broke off, is asked block by block for a while (its own CAR back-off); a
block no peer can serve backs off too (asked again in later walks).

| constant                  | value   | meaning                                               |
|---------------------------|---------|-------------------------------------------------------|
| ``FETCH_TIMEOUT_SECONDS`` | 10      | per-request HTTP timeout                              |
| ``FETCH_DEADLINE_FACTOR`` | 3       | a whole block download takes at most 3 × the timeout  |
| ``MAX_BLOCK_BYTES``       | 2 MiB   | larger answers are refused (the bitswap block limit)  |
| ``BACKOFF_BASE_SECONDS``  | 1       | first back-off; doubles on each further failure       |
| ``BACKOFF_MAX_SECONDS``   | 300     | back-off ceiling                                      |
| ``FETCH_CONCURRENCY``     | 8       | blocks of one DAG level read or fetched at once       |
| ``FETCH_GROUP``           | 64      | blocks fetched one by one, then stored in one write   |
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import httpx

from node.errors import InvalidCID, NotFoundInStore
from node.storage.base import BlockStore
from node.storage.carfetch import CarResult, fetch_car, get_link_cids
from node.storage.cids import (
    CODEC_DAG_PB,
    check_block_bytes,
    compute_block_key_of_cid_bytes,
    format_cid_bytes,
    get_codec_of_cid_bytes,
    parse_cid,
)
from node.storage.errors import BlockCorrupted, BlockMismatch, UnsupportedNode

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS: Final = 10.0
#: A whole block download may take at most this many times the (per read) timeout.
FETCH_DEADLINE_FACTOR: Final = 3
MAX_BLOCK_BYTES: Final = 2 * 1024 * 1024
BACKOFF_BASE_SECONDS: Final = 1.0
BACKOFF_MAX_SECONDS: Final = 300.0
FETCH_CONCURRENCY: Final = 8
FETCH_GROUP: Final = 64
RAW_BLOCK_MEDIA_TYPE: Final = "application/vnd.ipld.raw"
HTTP_OK: Final = 200
HTTP_NOT_FOUND: Final = 404
HTTP_GONE: Final = 410


@dataclass
class PeerState:
    """What this node has learnt about one peer."""

    endpoint: str
    failures: int = 0
    bad_blocks: int = 0
    served_blocks: int = 0
    retry_at: float = 0.0
    car_failures: int = 0
    car_retry_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready values."""
        return {
            "endpoint": self.endpoint,
            "failures": self.failures,
            "bad_blocks": self.bad_blocks,
            "served_blocks": self.served_blocks,
            "car_failures": self.car_failures,
        }


@dataclass(frozen=True)
class FetchStats:
    """The fetcher's counters since it was made."""

    blocks_fetched: int
    bytes_fetched: int
    bad_blocks: int
    repaired_blocks: int
    peers: int


def compute_backoff(failures: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    """Return the back-off after ``failures`` consecutive failures: ``base * 2**(failures-1)``,
    capped at ``BACKOFF_MAX_SECONDS`` (0 for no failure)."""
    if failures <= 0:
        return 0.0
    return float(min(base * (2 ** min(failures - 1, 32)), BACKOFF_MAX_SECONDS))


def compute_peer_order(
    peers: Iterable[PeerState], now: float, last_served: str | None = None
) -> list[PeerState]:
    """Return the peers to ask, best first: those not in back-off, by fewest bad blocks, then
    fewest consecutive failures, then the peer at ``last_served`` (the one that served the
    last fetched block: a batch's leaves are on the node that anchored it, so the next leaf
    is most likely there too, and the others would each answer 404 first); other ties keep
    the given order (``sorted`` is stable)."""
    ready = [p for p in peers if p.retry_at <= now]
    return sorted(ready, key=lambda p: (p.bad_blocks, p.failures, p.endpoint != last_served))


@dataclass(frozen=True)
class _Got:
    """A block the walk has: its bytes, whether it still has to be stored (fetched alone)
    and whether its whole DAG is known stored (it came in a complete CAR)."""

    data: bytes
    unstored: bool = False
    below_complete: bool = False


class _PeerLacks(Exception):
    """The peer answered that it does not have the block (404/410)."""


class _PeerFailed(Exception):
    """The peer could not be asked or answered with an error."""


class _PeerMisbehaved(Exception):
    """The peer's answer cannot be right whatever the block (e.g. larger than any block)."""


class BlockFetcher:
    """Completes DAGs in ``store`` from the peers named by :meth:`set_peers`.

    ``clock`` returns monotonic seconds (replaced in unit tests). ``stop``, once set, ends a
    walk early. ``use_car=False`` fetches block by block only (the benchmark's old path).
    Thread-safe.
    """

    def __init__(
        self,
        store: BlockStore,
        *,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        http: httpx.Client | None = None,
        stop: threading.Event | None = None,
        use_car: bool = True,
    ) -> None:
        self.store = store
        self.use_car = use_car
        self.timeout = timeout
        self.backoff_base = backoff_base
        self._clock = clock
        self._stop = stop or threading.Event()
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self._own_http = http is None
        self._pool = ThreadPoolExecutor(FETCH_CONCURRENCY, thread_name_prefix="collegium-fetch")
        self._missing_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._missing: dict[str, tuple[int, float]] = {}  # block key -> (attempts, retry_at)
        self._peers: dict[str, PeerState] = {}
        self._peer_order: list[str] = []
        self._last_served: str | None = None  # the peer that served the last fetched block
        self._blocks_fetched = 0
        self._bytes_fetched = 0
        self._bad_blocks = 0
        self._repaired = 0

    def close(self) -> None:
        """Wait for fetches under way, then close the HTTP client (if this fetcher made it)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._own_http:
            self._http.close()

    def set_peers(self, endpoints: Sequence[str]) -> None:
        """Ask the peers at ``endpoints`` (base URLs, already checked by the caller), ties in
        this order; what was learnt about a peer is kept while it is away."""
        with self._state_lock:
            for endpoint in endpoints:
                self._peers.setdefault(endpoint, PeerState(endpoint))
            self._peer_order = list(endpoints)

    def peer_states(self) -> dict[str, PeerState]:
        """Return a copy of what is known about each peer, by endpoint."""
        with self._state_lock:
            return {k: PeerState(**vars(v)) for k, v in self._peers.items()}

    def stats(self) -> FetchStats:
        """Return the counters: blocks and bytes fetched, bad blocks, repairs, peers known."""
        with self._state_lock:
            return FetchStats(
                blocks_fetched=self._blocks_fetched,
                bytes_fetched=self._bytes_fetched,
                bad_blocks=self._bad_blocks,
                repaired_blocks=self._repaired,
                peers=len(self._peers),
            )

    def sync_dag(self, root: str) -> bool:
        """Return whether every block of the DAG under ``root`` is here (fetching what lacks).

        The DAG is walked level by level: a missing dag-pb block is asked for as one CAR of its
        DAG first (not walked below when that CAR is complete); the rest of a level is read or
        fetched block by block by up to ``FETCH_CONCURRENCY`` threads, ``FETCH_GROUP`` at a
        time, each group's fetched blocks stored in one durable write. Raises ``InvalidCID``
        if ``root`` is not a CID.
        """
        complete = True
        seen: set[str] = set()
        # CIDs stay binary: a multiformats object costs about a millisecond per CID
        level: list[bytes] = [bytes(parse_cid(root))]
        while level:
            todo: list[bytes] = []
            for cid in level:
                key = compute_block_key_of_cid_bytes(cid)
                if key not in seen:
                    seen.add(key)
                    todo.append(cid)
            level = []
            for start in range(0, len(todo), FETCH_GROUP):
                if self._stop.is_set():
                    return False
                group = todo[start : start + FETCH_GROUP]
                got = self._get_group(group)
                for cid, item in zip(group, got, strict=True):
                    if item is None:
                        complete = False
                    elif not item.below_complete:
                        level.extend(self._children(cid, item.data))
        return complete

    @staticmethod
    def _children(cid: bytes, data: bytes) -> list[bytes]:
        """Return the binary CIDs ``data`` links to (dag-pb only; none if it does not decode
        or a link is no CID)."""
        try:
            return get_link_cids(cid, data)
        except (UnsupportedNode, InvalidCID) as exc:
            log.warning("block %s is not a valid dag-pb node (%s)", format_cid_bytes(cid), exc)
            return []

    def _get_group(self, group: list[bytes]) -> list[_Got | None]:
        """Return each block of ``group`` from the store or a peer (``None``: none has it
        now); the blocks fetched one by one are stored together, in one durable write."""
        if len(group) > 1:
            got = list(self._pool.map(self._get_or_fetch, group))
        else:
            got = [self._get_or_fetch(cid) for cid in group]
        fresh = [
            (format_cid_bytes(cid), item.data)
            for cid, item in zip(group, got, strict=True)
            if item is not None and item.unstored
        ]
        if fresh:
            self.store.put_blocks(fresh)
            with self._state_lock:
                self._blocks_fetched += len(fresh)
                self._bytes_fetched += sum(len(data) for _, data in fresh)
        return got

    def repair_block(self, name: str) -> None:
        """Fetch block ``name`` again if the store lacks it or holds a corrupted copy."""
        try:
            cid = bytes(parse_cid(name))
            self.store.get_block(name)
            return  # fine after all
        except InvalidCID:
            return
        except (NotFoundInStore, BlockCorrupted):
            pass
        if self._fetch(cid, force=True) is not None:
            with self._state_lock:
                self._repaired += 1

    def _get_or_fetch(self, cid: bytes) -> _Got | None:
        """Return the verified bytes of ``cid`` from the store, else from a peer; ``None`` if
        no peer could serve it now. A block fetched alone is returned unstored."""
        name = format_cid_bytes(cid)
        try:
            return _Got(self.store.get_block(name))
        except NotFoundInStore:
            pass
        except BlockCorrupted as exc:
            log.warning("local block corrupted, re-fetching from peers: %s", exc)
            data = self._fetch(cid, force=True)
            if data is None:
                return None
            with self._state_lock:
                self._repaired += 1
            return _Got(data)
        dag_pb = get_codec_of_cid_bytes(cid) == CODEC_DAG_PB
        if self.use_car and dag_pb and not self._backing_off(cid):
            car = self._fetch_dag(cid)
            if car is not None:
                return car
            try:  # a CAR cut short may have brought this block before it broke off
                return _Got(self.store.get_block(name))
            except (NotFoundInStore, BlockCorrupted):
                pass
        data = self._fetch(cid, store=False)
        return None if data is None else _Got(data, unstored=True)

    def _backing_off(self, cid: bytes) -> bool:
        with self._missing_lock:
            _, retry_at = self._missing.get(compute_block_key_of_cid_bytes(cid), (0, 0.0))
        return retry_at > self._clock()

    def _fetch_dag(self, cid: bytes) -> _Got | None:
        """Return the root block of ``cid``'s DAG fetched as one CAR (``below_complete`` if
        the whole DAG came), or ``None`` if no peer sent its root that way."""
        now = self._clock()
        with self._state_lock:
            candidates = [
                p
                for p in compute_peer_order(
                    (self._peers[e] for e in self._peer_order), now, self._last_served
                )
                if p.car_retry_at <= now
            ]
        for peer in candidates:
            result = fetch_car(
                self._http,
                peer.endpoint,
                cid,
                self.store,
                deadline_seconds=FETCH_DEADLINE_FACTOR * self.timeout,
                max_block_bytes=MAX_BLOCK_BYTES,
                stop=self._stop,
            )
            self._note_car(peer, cid, result, now)
            if result.outcome == "complete" and result.root_block is not None:
                return _Got(result.root_block, below_complete=True)
            if result.outcome in ("lacks", "unsupported", "failed", "bad"):
                continue  # another peer may do better
            break  # partial, cut or too large: the walk fetches the rest
        return None

    def _note_car(self, peer: PeerState, cid: bytes, result: CarResult, now: float) -> None:
        """Count what a CAR fetch stored and learn from it about ``peer``."""
        name = format_cid_bytes(cid)
        with self._state_lock:
            self._blocks_fetched += result.blocks
            self._bytes_fetched += result.size
            peer.served_blocks += result.blocks
            if result.outcome in ("complete", "partial", "too-large"):
                peer.failures = 0
                peer.car_failures = 0
            elif result.outcome in ("unsupported", "cut"):
                peer.car_failures += 1
                peer.car_retry_at = now + compute_backoff(peer.car_failures, self.backoff_base)
            elif result.outcome == "failed":
                peer.failures += 1
                peer.retry_at = now + compute_backoff(peer.failures, self.backoff_base)
            elif result.outcome == "bad":
                peer.bad_blocks += 1
                peer.retry_at = now + compute_backoff(peer.bad_blocks, self.backoff_base)
                self._bad_blocks += 1
        if result.outcome == "bad":
            log.warning("peer %s sent a bad CAR for %s: %s", peer.endpoint, name, result.detail)
        elif result.outcome not in ("complete", "lacks"):
            log.info("CAR of %s from %s: %s %s", name, peer.endpoint, result.outcome, result.detail)
        if result.stored:
            with self._missing_lock:
                for key in result.stored:
                    self._missing.pop(key, None)

    def _fetch(self, cid: bytes, *, force: bool = False, store: bool = True) -> bytes | None:
        """Return block ``cid`` fetched from the first peer that serves the right bytes (stored
        here unless ``store`` is false: the caller stores it); ``None`` if none can now (the
        block then backs off unless ``force``)."""
        key = compute_block_key_of_cid_bytes(cid)
        now = self._clock()
        with self._missing_lock:
            attempts, retry_at = self._missing.get(key, (0, 0.0))
        if not force and retry_at > now:
            return None
        name = format_cid_bytes(cid)
        with self._state_lock:
            candidates = compute_peer_order(
                (self._peers[e] for e in self._peer_order), now, self._last_served
            )
        for peer in candidates:
            data = self._ask(peer, cid, name)
            if data is None:
                continue
            with self._missing_lock:
                self._missing.pop(key, None)
            if store:
                self.store.put_block(name, data)
                with self._state_lock:
                    self._blocks_fetched += 1
                    self._bytes_fetched += len(data)
            return data
        attempts += 1
        with self._missing_lock:
            self._missing[key] = (attempts, now + compute_backoff(attempts, self.backoff_base))
        return None

    def _ask(self, peer: PeerState, cid: bytes, name: str) -> bytes | None:
        """Return the right bytes of ``cid`` from ``peer``, or ``None`` (the peer's state is
        updated: failures and bad blocks put it in back-off)."""
        now = self._clock()
        try:
            data = self._download(peer.endpoint, name)
            check_block_bytes(cid, data, stored=False)
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
            self._last_served = peer.endpoint
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
