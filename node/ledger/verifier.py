"""Signature checks (and leaf encoding) of large batch requests in worker processes.

Verifying a signed business transaction (field checks, EIP-712 digest, libsecp256k1 public-key
recovery) and encoding its leaf (canonical RLP body, its CID, its RFC 6962 leaf hash) is a pure
function of the domain, the transaction and the signature, and it is most of the batch
endpoint's time. :class:`VerifierPool` spreads the items of a large request over a
small :class:`~concurrent.futures.ProcessPoolExecutor` so this work leaves the node's process
(and its GIL); small requests are verified in-process, where a round trip would cost more
than it saves.

Results are exactly those of :func:`~node.ledger.transaction.verify_signed_tx`: per item the
verified transaction with its leaf (:class:`VerifiedTx`) or the ``ValidationError`` it raised
(exceptions pickle with their message). Workers are started with ``spawn`` (the node is
multi-threaded; forking it is unsafe), lazily by the first large request, ignore ``SIGINT``
(the node handles it) and watch their parent: if the node dies, even by ``kill -9``, they exit
within ``PARENT_POLL_SECONDS``. :meth:`VerifierPool.close` stops them with the node. A broken
pool (a worker killed) is replaced; the request that found it is verified in-process.

| constant              | value | meaning                                                   |
|-----------------------|-------|-----------------------------------------------------------|
| ``POOL_MIN_ITEMS``    | 64    | smaller requests are verified in-process                  |
| ``CHUNK_MIN_ITEMS``   | 64    | a request is cut into one chunk per worker, at least this |
| ``PARENT_POLL_SECONDS`` | 0.5 | how often a worker checks that the node is alive          |
| ``MAX_REPLACEMENTS``  | 5     | broken pools replaced; then verification stays in-process |
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.queues import SimpleQueue
from typing import Any, Final, TypeAlias, TypeVar

from node.base32 import b32encode_lower
from node.errors import ValidationError
from node.ledger.hasher import hash_leaf
from node.ledger.transaction import (
    BusinessTx,
    Domain,
    SignedBusinessTx,
    TxId,
    compute_digest,
    encode_leaf,
    recover_digest_signer,
    validate_tx,
)
from node.worker import split

log = logging.getLogger(__name__)

POOL_MIN_ITEMS: Final = 64
CHUNK_MIN_ITEMS: Final = 64
PARENT_POLL_SECONDS: Final = 0.5
WARM_TIMEOUT_SECONDS: Final = 60.0  # workers spawn a fresh interpreter each: slow under load
MAX_REPLACEMENTS: Final = 5  # broken pools replaced before the node verifies in-process for good
UNIXFS_CHUNK_SIZE: Final = 256 * 1024  # kubo's default chunker (size-262144)
RAW_CIDV1_SHA256_PREFIX: Final = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw, sha2-256, 32 B

Result = TypeVar("Result")

# per valid item: (signer, digest, leaf body, leaf CID, 0x-hex leaf hash); else why invalid
Checked: TypeAlias = tuple[str, bytes, bytes, str, str] | ValidationError


@dataclass(frozen=True)
class VerifiedTx:
    """A verified transaction with its leaf: canonical body, CID and 0x-hex leaf hash."""

    signed: SignedBusinessTx
    body: bytes
    cid: str
    leaf_hash: str


def compute_leaf_cid(body: bytes) -> str:
    """Return the CID ``ipfs add --cid-version 1`` gives ``body``: a file of one chunk with
    raw leaves is the raw block itself, so its CID is ``b`` + base32(0x01 0x55 0x12 0x20 ||
    sha256(body)). Requires ``len(body) <= UNIXFS_CHUNK_SIZE`` (leaves are far smaller)."""
    assert len(body) <= UNIXFS_CHUNK_SIZE, "a leaf fits in one UnixFS chunk"
    digest = RAW_CIDV1_SHA256_PREFIX + hashlib.sha256(body).digest()
    return "b" + b32encode_lower(digest)


def check_items(domain: Domain, items: Sequence[tuple[BusinessTx, bytes]]) -> list[Checked]:
    """Return, per ``(tx, signature)``, the recovered signer, the EIP-712 digest and the leaf
    (body, CID, leaf hash), or the ``ValidationError``
    :func:`~node.ledger.transaction.verify_signed_tx` raises for it.

    Pure (runs in worker processes): the same inputs give the same outputs anywhere.
    """
    out: list[Checked] = []
    for tx, signature in items:
        try:
            validate_tx(tx)
            digest = compute_digest(domain, tx)
            signer = recover_digest_signer(digest, signature)
        except ValidationError as exc:
            out.append(exc)
            continue
        body = encode_leaf(domain, tx, signature)
        leaf_hash = "0x" + hash_leaf(body).hex()
        out.append((signer, digest, body, compute_leaf_cid(body), leaf_hash))
    return out


def to_verified(
    domain: Domain, items: Sequence[tuple[BusinessTx, bytes]], checked: Sequence[Checked]
) -> list[VerifiedTx | ValidationError]:
    """Return the verified transactions (or errors) of ``items`` from their ``checked``."""
    out: list[VerifiedTx | ValidationError] = []
    for (tx, signature), result in zip(items, checked, strict=True):
        if isinstance(result, ValidationError):
            out.append(result)
        else:
            signer, digest, body, cid, leaf_hash = result
            signed = SignedBusinessTx(domain, tx, signature, signer, TxId("0x" + digest.hex()))
            out.append(VerifiedTx(signed, body, cid, leaf_hash))
    return out


def verify_many(
    domain: Domain, items: Sequence[tuple[BusinessTx, bytes]]
) -> list[VerifiedTx | ValidationError]:
    """Verify ``items`` in this process (what :class:`VerifierPool` does in its workers)."""
    return to_verified(domain, items, check_items(domain, items))


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:  # re-parented: the node is gone
            os._exit(0)


def _init_worker(parent: int, started: SimpleQueue[int], preload: tuple[str, ...] = ()) -> None:
    """Worker initialiser: import the ``preload`` modules (the work a pool is given beside
    :func:`check_items`), report this worker's pid on ``started``, leave SIGINT to the node,
    exit when the node is gone."""
    for module in preload:
        importlib.import_module(module)
    started.put(os.getpid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent", daemon=True).start()


class VerifierPool:
    """Verify the items of large requests in ``workers`` processes (see the module doc)."""

    def __init__(
        self,
        domain: Domain,
        workers: int,
        *,
        min_items: int = POOL_MIN_ITEMS,
        preload: tuple[str, ...] = (),
    ) -> None:
        """``preload``: modules each worker imports when it starts (where the functions given
        to :meth:`map_items` live), so the first request does not pay for the import."""
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.domain = domain
        self.workers = workers
        self.min_items = min_items
        self.preload = preload
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        # the current executor's workers report their pids here (no private pool attributes)
        self._started: SimpleQueue[int] | None = None
        self._pids: list[int] = []
        self._closed = False
        self.replaced = 0  # broken pools replaced

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the verifier pool is closed")
            if self._executor is None:
                context = multiprocessing.get_context("spawn")
                self._started, self._pids = context.SimpleQueue(), []
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=context,
                    initializer=_init_worker,
                    initargs=(os.getpid(), self._started, self.preload),
                )
            return self._executor

    def warm(self) -> None:
        """Start every worker now and wait until each has answered once."""
        pool = self._pool()
        futures = [pool.submit(check_items, self.domain, []) for _ in range(self.workers * 2)]
        for future in futures:
            future.result()
        # one worker may have answered every warm-up call while the others were still starting
        deadline = time.monotonic() + WARM_TIMEOUT_SECONDS
        while len(self.pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(PARENT_POLL_SECONDS / 10)

    def pids(self) -> list[int]:
        """Return the process ids of the current pool's started workers (for tests and
        diagnostics)."""
        with self._lock:
            while self._started is not None and not self._started.empty():
                self._pids.append(self._started.get())
            return sorted(self._pids)

    def verify_many(
        self, items: Sequence[tuple[BusinessTx, bytes]]
    ) -> list[VerifiedTx | ValidationError]:
        """Return, per ``(tx, signature)``, the verified transaction (with its leaf) or its
        ``ValidationError``
        (in-process below ``min_items`` items or if the pool is closed or broke)."""
        return to_verified(self.domain, items, self.map_items(check_items, (self.domain,), items))

    def map_items(
        self, work: Callable[..., list[Result]], args: tuple[Any, ...], items: Sequence[Any]
    ) -> list[Result]:
        """Return ``work(*args, items)``, computed in the workers: ``items`` cut into one
        chunk per worker, the results joined in order. ``work`` must be a pure, module-level
        function returning one result per item (e.g. :func:`check_items`); it runs in-process
        below ``min_items`` items or if the pool is closed or broke."""
        if len(items) < self.min_items or self._closed or self.replaced >= MAX_REPLACEMENTS:
            return work(*args, items)
        parts = split(items, self.workers, CHUNK_MIN_ITEMS)
        try:
            pool = self._pool()
            futures = [pool.submit(work, *args, part) for part in parts]
            return [result for future in futures for result in future.result()]
        except (BrokenProcessPool, RuntimeError) as exc:
            self.note_broken(exc)
            return work(*args, items)

    def note_broken(self, exc: BaseException) -> None:
        """Replace a pool found broken (``exc``: what said so); after ``MAX_REPLACEMENTS``
        the work stays in-process for good."""
        log.warning("verifier pool unusable (%s); verifying in-process", exc)
        if self.replaced + 1 >= MAX_REPLACEMENTS:
            log.error("verifier workers keep failing; verifying in-process from now on")
        self._replace()

    def _replace(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._started, self._pids = None, []
            if executor is not None and not self._closed:
                self.replaced += 1
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers and wait for them (idempotent); later calls verify in-process."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            self._started, self._pids = None, []
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
