"""Fetch a whole DAG from one peer as one CAR stream, checking every block before storing it.

:func:`fetch_car` asks ``GET {peer}/ipfs/{cid}?format=car&dag-scope=all&car-order=dfs&
car-dups=n`` and reads the answer section by section (:class:`node.storage.car.CarReader`).
The peer is not trusted for anything:

- the header must name exactly the root asked for;
- a block is accepted only if the root or an already accepted block links to it (so blocks
  must come in depth-first, parent-first order) and it is checked against the CID of that
  *link*, not the CID the peer wrote in front of it: a peer cannot add unrelated blocks, nor
  change a block's codec;
- no section may be longer than a block can be (``MAX_BLOCK_BYTES``) nor the stream longer
  than ``MAX_CAR_STREAM_BYTES``; a varint or CID that cannot be right ends the read before
  anything is allocated for it.

Accepted blocks are stored in batches (``store.put_blocks``: one durable write per
``CAR_BATCH_BLOCKS`` blocks or ``CAR_BATCH_BYTES`` bytes, written by a background thread
while the stream is read on), and whatever was accepted before a bad or cut stream ends
stays stored: every block of it is right, wherever the stream went
wrong after it. The outcome says what happened; what it means for the peer (back-off, bad
blocks) is decided by the caller, :class:`node.storage.fetch.BlockFetcher`.

| constant                 | value   | meaning                                              |
|--------------------------|---------|------------------------------------------------------|
| ``CAR_BATCH_BLOCKS``     | 256     | accepted blocks stored in one durable write          |
| ``CAR_BATCH_BYTES``      | 8 MiB   | ... or this many bytes, whichever comes first        |
| ``MAX_CAR_STREAM_BYTES`` | 256 MiB | + 1 MiB: a longer stream is cut off                  |
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, Literal

import httpx

from node.storage.base import BlockStore
from node.storage.car import CAR_MEDIA_TYPE, CarError, CarReader
from node.storage.cargateway import MAX_CAR_BYTES
from node.storage.cids import (
    CODEC_DAG_PB,
    check_block_bytes,
    check_cid_bytes,
    compute_block_key,
    compute_block_key_of_cid_bytes,
    format_cid,
    format_cid_bytes,
    get_codec_of_cid_bytes,
)
from node.storage.dagpb import decode_pb_node
from node.storage.errors import BlockMismatch, StoreError

CAR_BATCH_BLOCKS: Final = 256
CAR_BATCH_BYTES: Final = 8 * 1024 * 1024
MAX_CAR_STREAM_BYTES: Final = MAX_CAR_BYTES + 1024 * 1024
CAR_ACCEPT: Final = f"{CAR_MEDIA_TYPE}; version=1; order=dfs; dups=n"
CAR_PARAMS: Final = {"format": "car", "dag-scope": "all", "car-order": "dfs", "car-dups": "n"}
TOO_LARGE_PROBLEM: Final = "car-too-large"
PROBLEM_BYTES: Final = 4096  # of a 400 answer, read to tell "too large" from "no CAR here"

#: ``complete``: every block of the DAG is now stored; ``partial``: the stream ended cleanly
#: before the DAG did (the peer lacks blocks or capped the stream); ``cut``: the stream broke
#: off (network, time); ``lacks``: 404; ``too-large``: the peer will not send the DAG in one
#: CAR; ``unsupported``: the peer does not answer with a CAR; ``failed``: no answer (network
#: error, 5xx); ``bad``: the peer sent something that cannot be right (a block that does not
#: hash to its link, one not linked from the DAG, a wrong root, a malformed stream).
Outcome = Literal[
    "complete", "partial", "cut", "lacks", "too-large", "unsupported", "failed", "bad"
]


@dataclass
class CarResult:
    """What one CAR fetch did: its outcome, why, and the blocks it stored."""

    outcome: Outcome
    detail: str = ""
    blocks: int = 0
    size: int = 0
    root_block: bytes | None = None
    stored: list[str] = field(default_factory=list)  # keys of the blocks accepted


class _TooSlow(Exception):
    pass


class _Bad(Exception):
    pass


class _DagCheck:
    """The blocks a CAR may still carry (linked from accepted ones) and those accepted, by
    block key; CIDs stay binary (no ``multiformats`` object per block)."""

    def __init__(self, root: bytes) -> None:
        self.root = format_cid_bytes(root)
        self.expected: dict[str, bytes] = {compute_block_key_of_cid_bytes(root): root}
        self.accepted: set[str] = set()

    def accept(self, cid: bytes, data: bytes) -> tuple[str, bytes] | None:
        """Return (block key, the link's binary CID) of an acceptable block, ``None`` for a
        repeat; raises ``_Bad`` for a block that is not linked from the DAG so far or does
        not hash to the link that names it."""
        try:
            key = compute_block_key_of_cid_bytes(cid)
        except StoreError as exc:
            raise _Bad(f"invalid CID in the CAR: {exc}") from None
        if key in self.accepted:
            return None
        wanted = self.expected.get(key)
        if wanted is None:
            raise _Bad(f"block {format_cid_bytes(cid)} is not linked from {self.root}")
        try:
            check_block_bytes(wanted, data, stored=False)
        except BlockMismatch as exc:
            raise _Bad(str(exc)) from None
        self.accepted.add(key)
        for child in self._links(wanted, data):
            child_key = compute_block_key_of_cid_bytes(child)
            if child_key not in self.accepted:
                self.expected.setdefault(child_key, child)
        return key, wanted

    @staticmethod
    def _links(cid: bytes, data: bytes) -> list[bytes]:
        if get_codec_of_cid_bytes(cid) != CODEC_DAG_PB:
            return []
        try:
            links = [link.hash for link in decode_pb_node(data).links]
            for link in links:
                check_cid_bytes(link)
        except StoreError:
            return []  # not a dag-pb node we can read: a leaf, as the walk treats it
        return links

    @property
    def complete(self) -> bool:
        return len(self.accepted) == len(self.expected)


def fetch_car(
    http: httpx.Client,
    endpoint: str,
    root: bytes,
    store: BlockStore,
    *,
    deadline_seconds: float,
    max_block_bytes: int,
    stop: threading.Event,
) -> CarResult:
    """Return what fetching the DAG under ``root`` from ``endpoint`` as one CAR did; the
    accepted blocks are stored. Each block must arrive within ``deadline_seconds`` of the
    previous one (a peer that drips bytes is cut off)."""
    name = format_cid_bytes(root)
    headers = {"Accept": CAR_ACCEPT}
    try:
        with http.stream("GET", f"{endpoint}/ipfs/{name}", params=CAR_PARAMS, headers=headers) as r:
            early = _classify_answer(r)
            if early is not None:
                return early
            return _read_car(r, root, store, deadline_seconds, max_block_bytes, stop)
    except httpx.HTTPError as exc:
        return CarResult("failed", f"{type(exc).__name__}: {exc}")


def _classify_answer(resp: httpx.Response) -> CarResult | None:
    """Return the result of an answer that is not a CAR stream, ``None`` for one that is."""
    status = resp.status_code
    if status in (404, 410):
        return CarResult("lacks", f"HTTP {status}")
    if status >= 500:
        return CarResult("failed", f"HTTP {status}")
    if 400 <= status < 500:
        body = _read_at_most(resp, PROBLEM_BYTES) if status == 400 else b""
        if TOO_LARGE_PROBLEM.encode() in body:
            return CarResult("too-large", body.decode("utf-8", "replace"))
        return CarResult("unsupported", f"HTTP {status}")
    media_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if status != 200 or media_type != CAR_MEDIA_TYPE:
        return CarResult("unsupported", f"HTTP {status} {media_type or 'no content type'}")
    return None


def _read_at_most(resp: httpx.Response, limit: int) -> bytes:
    """Return the first ``limit`` bytes of ``resp``'s body (the rest is not read)."""
    out = b""
    for chunk in resp.iter_bytes():
        out += chunk
        if len(out) >= limit:
            break
    return out[:limit]


def _read_car(
    resp: httpx.Response,
    root: bytes,
    store: BlockStore,
    deadline_seconds: float,
    max_block_bytes: int,
    stop: threading.Event,
) -> CarResult:
    """Read, check and store the CAR in ``resp``; return the result (stored blocks kept)."""
    result = CarResult("partial")
    deadline = [time.monotonic() + deadline_seconds]
    reader = CarReader(
        _paced(resp.iter_bytes(), deadline),
        max_section_bytes=max_block_bytes + 128,  # + the CID in front of the block
        max_total_bytes=MAX_CAR_STREAM_BYTES,
    )
    dag = _DagCheck(root)
    writer = _Writer(store, result)
    batch: list[tuple[str, bytes]] = []
    batch_bytes = 0
    try:
        roots = reader.read_header()
        wanted = compute_block_key_of_cid_bytes(root)
        if [compute_block_key(r) for r in roots] != [wanted]:
            named = [format_cid(r) for r in roots]
            raise _Bad(f"CAR roots {named} are not [{format_cid_bytes(root)}]")
        for cid, data in reader:
            deadline[0] = time.monotonic() + deadline_seconds
            accepted = dag.accept(cid, data)
            if accepted is None:
                continue
            if result.root_block is None:
                result.root_block = data
            result.stored.append(accepted[0])
            batch.append((format_cid_bytes(accepted[1]), data))
            batch_bytes += len(data)
            if len(batch) >= CAR_BATCH_BLOCKS or batch_bytes >= CAR_BATCH_BYTES:
                writer.submit(batch)
                batch, batch_bytes = [], 0
            if stop.is_set():
                result.outcome, result.detail = "cut", "stopping"
                break
        else:
            result.outcome = "complete" if dag.complete else "partial"
    except _Bad as exc:
        result.outcome, result.detail = "bad", str(exc)
    except CarError as exc:
        result.outcome = "cut" if exc.truncated else "bad"
        result.detail = str(exc)
    except (_TooSlow, httpx.HTTPError) as exc:
        result.outcome, result.detail = "cut", f"{type(exc).__name__}: {exc}"
    finally:
        writer.finish(batch)  # what was accepted is right, however the stream ended
    return result


class _Writer:
    """Stores full batches in a background thread while the stream is read on (one batch
    written at a time, so at most two are held in memory); the last batch is written by
    :meth:`finish`, which also waits for the one under way and raises its error."""

    def __init__(self, store: BlockStore, result: CarResult) -> None:
        self._store = store
        self._result = result
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def submit(self, batch: list[tuple[str, bytes]]) -> None:
        self._wait()
        if self._pool is None:  # made on the first full batch: most DAGs are smaller
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="collegium-car-write")
        self._pending = self._pool.submit(self._write, batch)

    def finish(self, batch: list[tuple[str, bytes]]) -> None:
        try:
            self._wait()
            self._write(batch)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write(self, batch: list[tuple[str, bytes]]) -> None:
        """Store ``batch`` in one durable write and count it."""
        if not batch:
            return
        self._store.put_blocks(batch)
        self._result.blocks += len(batch)
        self._result.size += sum(len(data) for _, data in batch)


def _paced(chunks: Iterator[bytes], deadline: list[float]) -> Iterator[bytes]:
    """Yield ``chunks`` until ``deadline[0]`` (moved on by the reader) passes."""
    for chunk in chunks:
        if time.monotonic() > deadline[0]:
            raise _TooSlow("the peer sends a block slower than the deadline")
        yield chunk
