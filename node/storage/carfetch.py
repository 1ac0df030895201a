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
``CAR_BATCH_BLOCKS`` blocks or ``CAR_BATCH_BYTES`` bytes); past the first ``STREAM_AFTER``
bytes a background thread writes each block's file as it arrives while the stream is read
on, and makes each batch durable when it closes. Whatever was accepted before a bad or cut
stream ends stays stored: every block of it is right, wherever the stream went wrong after.
The outcome says what happened; what it means for the peer (back-off, bad blocks) is decided
by the caller, :class:`node.storage.fetch.BlockFetcher`.

| constant                 | value   | meaning                                              |
|--------------------------|---------|------------------------------------------------------|
| ``CAR_BATCH_BLOCKS``     | 256     | accepted blocks stored in one durable write          |
| ``CAR_BATCH_BYTES``      | 8 MiB   | ... or this many bytes, whichever comes first        |
| ``STREAM_AFTER``         | 1 MiB   | a smaller DAG is stored in one write at its end      |
| ``WRITE_QUEUE_BLOCKS``   | 64      | accepted blocks waiting for the writer, at most      |
| ``MAX_CAR_STREAM_BYTES`` | 256 MiB | + 1 MiB: a longer stream is cut off                  |
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
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
WRITE_QUEUE_BLOCKS: Final = 64
STREAM_AFTER: Final = 1024 * 1024
_BATCH_END: Final = object()
_DONE: Final = object()
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


def get_link_cids(cid: bytes, data: bytes) -> list[bytes]:
    """Return the binary CIDs the block ``data`` (of ``cid``) links to: none for a block
    that is not dag-pb. Raises ``UnsupportedNode`` for a dag-pb node that does not decode and
    ``InvalidCID`` for a link that is not exactly one CID."""
    if get_codec_of_cid_bytes(cid) != CODEC_DAG_PB:
        return []
    links = [link.hash for link in decode_pb_node(data).links]
    for link in links:
        check_cid_bytes(link)
    return links


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
        try:
            return get_link_cids(cid, data)
        except StoreError:
            return []  # not a dag-pb node we can read: a leaf, as the walk treats it

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
    batch_blocks = batch_bytes = 0
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
            writer.add(format_cid_bytes(accepted[1]), data)
            batch_blocks += 1
            batch_bytes += len(data)
            if batch_blocks >= CAR_BATCH_BLOCKS or batch_bytes >= CAR_BATCH_BYTES:
                writer.end_batch()
                batch_blocks = batch_bytes = 0
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
        writer.finish()  # what was accepted is right, however the stream ended
    return result


class _Writer:
    """Stores accepted blocks while the stream is read on: past the first ``STREAM_AFTER``
    bytes (most DAGs are smaller: they are stored in one write at the end, no thread), a
    background thread writes each block's file as it comes (``put_blocks`` over a generator
    fed by a bounded queue) and makes each batch durable when it closes. :meth:`finish`
    stores or closes the last batch, waits, and raises the writer's error if it had one."""

    def __init__(self, store: BlockStore, result: CarResult) -> None:
        self._store = store
        self._result = result
        self._held: list[tuple[str, bytes]] = []
        self._held_bytes = 0
        self._queue: queue.Queue[tuple[str, bytes] | object] = queue.Queue(WRITE_QUEUE_BLOCKS)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done = False

    def add(self, name: str, data: bytes) -> None:
        """Store block ``name`` (accepted) with the others."""
        if self._thread is None:
            self._held.append((name, data))
            self._held_bytes += len(data)
            if self._held_bytes < STREAM_AFTER:
                return
            self._thread = threading.Thread(
                target=self._run, name="collegium-car-write", daemon=True
            )
            self._thread.start()
            held, self._held = self._held, []
            for item in held:
                self._queue.put(item)
            return
        if self._error is not None:
            raise self._error
        self._queue.put((name, data))

    def end_batch(self) -> None:
        """Close the current batch: its blocks are made durable together."""
        if self._thread is not None:
            self._queue.put(_BATCH_END)

    def finish(self) -> None:
        """Store what is left, wait for the writer and raise its error, if any."""
        if self._thread is None:
            self._write(self._held)
            return
        self._queue.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            while not self._done:
                self._write(self._batch())
        except BaseException as exc:  # handed to the reading thread by add() and finish()
            self._error = exc
            while not self._done:  # drain, so the reading thread never blocks on put()
                self._done = self._queue.get() is _DONE

    def _batch(self) -> Iterator[tuple[str, bytes]]:
        while True:
            item = self._queue.get()
            if item is _BATCH_END:
                return
            if item is _DONE:
                self._done = True
                return
            yield item  # type: ignore[misc]

    def _write(self, blocks: Iterable[tuple[str, bytes]]) -> None:
        """Store ``blocks`` in one durable write and count them once stored."""
        count = size = 0

        def counted() -> Iterator[tuple[str, bytes]]:
            nonlocal count, size
            for name, data in blocks:
                count += 1
                size += len(data)
                yield name, data

        self._store.put_blocks(counted())
        self._result.blocks += count
        self._result.size += size


def _paced(chunks: Iterator[bytes], deadline: list[float]) -> Iterator[bytes]:
    """Yield ``chunks`` until ``deadline[0]`` (moved on by the reader) passes."""
    for chunk in chunks:
        if time.monotonic() > deadline[0]:
            raise _TooSlow("the peer sends a block slower than the deadline")
        yield chunk
