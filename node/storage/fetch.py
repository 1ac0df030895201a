"""Fetch blocks by CID from peers' trustless gateways into the local store, hash-checked.

This module knows blocks, CIDs and peer endpoints (URLs it is handed), nothing else: which
roots to want and which peers to ask are decided above it (``node.replication.sync``).

:meth:`BlockFetcher.sync_dag` walks a root's DAG (dag-pb links) through the local store; a
block we lack, or whose stored copy no longer hashes to its CID (``BlockCorrupted``), is
fetched with ``GET {peer}/ipfs/{cid}?format=raw`` and ``Accept: application/vnd.ipld.raw``
(no redirects followed). Every block is hashed against its CID *before* ``put_block``; a peer
serving a wrong (or oversized) block is logged, counted and put in back-off, and peers with
fewer bad blocks and failures are asked first afterwards. Network errors and 5xx put a peer
in exponential back-off; a block no peer can serve backs off too (asked again in later walks).

| constant                  | value   | meaning                                               |
|---------------------------|---------|-------------------------------------------------------|
| ``FETCH_TIMEOUT_SECONDS`` | 10      | per-request HTTP timeout                              |
| ``FETCH_DEADLINE_FACTOR`` | 3       | a whole block download takes at most 3 × the timeout  |
| ``MAX_BLOCK_BYTES``       | 2 MiB   | larger answers are refused (the bitswap block limit)  |
| ``BACKOFF_BASE_SECONDS``  | 1       | first back-off; doubles on each further failure       |
| ``BACKOFF_MAX_SECONDS``   | 300     | back-off ceiling                                      |
| ``FETCH_CONCURRENCY``     | 8       | blocks of one DAG level read or fetched at once       |
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
from multiformats import CID

from node.errors import InvalidCID, NotFoundInStore
from node.storage.base import BlockStore
from node.storage.cids import check_block, compute_block_key, format_cid, parse_cid
from node.storage.errors import BlockCorrupted, BlockMismatch, UnsupportedNode
from node.storage.reader import get_child_cids

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS: Final = 10.0
#: A whole block download may take at most this many times the (per read) timeout.
FETCH_DEADLINE_FACTOR: Final = 3
MAX_BLOCK_BYTES: Final = 2 * 1024 * 1024
BACKOFF_BASE_SECONDS: Final = 1.0
BACKOFF_MAX_SECONDS: Final = 300.0
FETCH_CONCURRENCY: Final = 8
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

    def as_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready values."""
        return {
            "endpoint": self.endpoint,
            "failures": self.failures,
            "bad_blocks": self.bad_blocks,
            "served_blocks": self.served_blocks,
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


def compute_peer_order(peers: Iterable[PeerState], now: float) -> list[PeerState]:
    """Return the peers to ask, best first: those not in back-off, by fewest bad blocks, then
    fewest consecutive failures; ties keep the given order (``sorted`` is stable)."""
    ready = [p for p in peers if p.retry_at <= now]
    return sorted(ready, key=lambda p: (p.bad_blocks, p.failures))


class _PeerLacks(Exception):
    """The peer answered that it does not have the block (404/410)."""


class _PeerFailed(Exception):
    """The peer could not be asked or answered with an error."""


class _PeerMisbehaved(Exception):
    """The peer's answer cannot be right whatever the block (e.g. larger than any block)."""


class BlockFetcher:
    """Completes DAGs in ``store`` from the peers named by :meth:`set_peers`.

    ``clock`` returns monotonic seconds (replaced in unit tests). ``stop``, once set, ends a
    walk early. Thread-safe.
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
    ) -> None:
        self.store = store
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

        The DAG is walked level by level; the blocks of one level are read or fetched by up to
        ``FETCH_CONCURRENCY`` threads. Raises ``InvalidCID`` if ``root`` is not a CID.
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

    def repair_block(self, name: str) -> None:
        """Fetch block ``name`` again if the store lacks it or holds a corrupted copy."""
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
