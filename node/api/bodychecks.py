"""The bodies of concurrent single submissions checked in the verifier's worker processes.

Under load the event loop is the node's busiest thread, and every single ``POST
/transactions`` was parsed (JSON, schema) and verified (field checks, EIP-712 digest,
libsecp256k1 recovery, leaf body, CID and hash) on it: about a third of the loop's time per
request, on the one core the GIL gives the node. :class:`BodyChecks` moves that work to
worker processes driven by the loop itself (:class:`node.worker.LoopWorkers`: the chunk is
written to a child's pipe and its answer read by the loop, with no thread between that would
wait for the GIL; through the verifier's ``ProcessPoolExecutor`` a round trip took ~9 ms
under load) when requests come together: the bodies that arrive within one turn of the loop
go to a worker as one chunk (:func:`node.api.batchitems.check_bodies`, the same pure
functions) and each request awaits its own result. The loop keeps the checks that read the
node's state (participants, replays) and the commit.

A request that finds fewer than ``POOL_INFLIGHT`` submissions in flight, or a pool not
warm yet, is checked on the loop as before, and so are the bodies of a turn that gathered
fewer than ``POOL_MIN_BODIES``: a round trip to a worker costs the workers ~0.25 ms of CPU and
the loop a little, more than a body or two saves (measured with 8 clients). The workers are
started in the background (never by a request that waits for them) once ``WARM_INFLIGHT``
submissions are in flight at once. A chunk whose worker ended is checked on the loop (the
worker is replaced by the next warm-up); a chunk whose worker failed otherwise is checked on
the loop too, body by body, so that one body's failure is never its neighbours'.

| constant | value | meaning |
|---|---|---|
| ``POOL_INFLIGHT`` | 4 | submissions in flight from which bodies are gathered per loop turn |
| ``POOL_MIN_BODIES`` | 4 | bodies of one turn from which they go to the workers as a chunk |
| ``WARM_INFLIGHT`` | 8 | submissions in flight from which the workers are started |
| ``CHUNK_MIN_BODIES`` | 8 | a chunk is split over the workers only in parts of at least this |
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Final, TypeAlias

from node.api.batchitems import check_chunk, read_body
from node.errors import ValidationError
from node.ledger.service import Submission
from node.ledger.transaction import Domain
from node.ledger.verifier import Checked, VerifiedTx, to_verified, verify_many
from node.worker import LoopWorkers, WorkerGone

log = logging.getLogger(__name__)

POOL_INFLIGHT: Final = 4
POOL_MIN_BODIES: Final = 4
WARM_INFLIGHT: Final = 8
CHUNK_MIN_BODIES: Final = 8

#: a body's check: None (not a submission: the route answers it) or the submission with its
#: verified transaction or the ``ValidationError`` its signature check raised
BodyCheck: TypeAlias = tuple[Submission, VerifiedTx | ValidationError] | None
_Waiting: TypeAlias = list[tuple[bytes, "asyncio.Future[BodyCheck]"]]
_Read: TypeAlias = list[tuple[Submission, Checked] | None]  # what check_bodies returns


class BodyChecks:
    """Check the bodies of single submissions, in worker processes when they come together
    (see the module doc)."""

    def __init__(self, domain: Domain, workers: int) -> None:
        """``workers``: worker processes to check bodies in (none: always on the loop)."""
        self.domain = domain
        self.workers = LoopWorkers(workers, (check_chunk.__module__,)) if workers > 0 else None
        self._waiting: _Waiting = []
        self.chunks = 0  # chunks sent to the workers (for tests and diagnostics)
        self.pool_inflight = POOL_INFLIGHT
        self.pool_min_bodies = POOL_MIN_BODIES
        self.warm_inflight = WARM_INFLIGHT

    async def check(self, body: bytes, inflight: int) -> BodyCheck:
        """Return the check of ``body``; ``inflight``: single submissions in flight now
        (this one among them)."""
        workers = self.workers
        if workers is None or inflight < self.pool_inflight:
            return self.check_here(body)
        loop = asyncio.get_running_loop()
        if not workers.usable:
            if inflight >= self.warm_inflight:
                workers.warm(loop)
            return self.check_here(body)
        future: asyncio.Future[BodyCheck] = loop.create_future()
        if not self._waiting:  # the first body of this turn: send the chunk at its end
            loop.call_soon(self._send, workers)
        self._waiting.append((body, future))
        return await future

    def check_here(self, body: bytes) -> BodyCheck:
        """Return the check of ``body`` done in this thread."""
        item = read_body(body)
        if item is None:
            return None
        return item, verify_many(self.domain, [(item.tx, item.signature)])[0]

    def close(self) -> None:
        """End the worker processes (on the loop's thread)."""
        if self.workers is not None:
            self.workers.close()

    def _send(self, workers: LoopWorkers) -> None:
        """Send the bodies gathered this turn to the workers (one part per worker for a
        large chunk), or check them here if they are fewer than ``POOL_MIN_BODIES``; settle
        each request's future when its part is back."""
        waiting, self._waiting = self._waiting, []
        if len(waiting) < self.pool_min_bodies:  # a round trip would cost more than it saves
            self._settle_here(waiting)
            return
        for part in workers.split(waiting, CHUNK_MIN_BODIES):
            try:
                sent = workers.run(check_chunk, (self.domain, [body for body, _ in part]))
            except WorkerGone:
                self._settle_here(part)
                continue
            self.chunks += 1
            sent.add_done_callback(functools.partial(self._settle, part))

    def _settle(self, part: _Waiting, done: asyncio.Future[_Read]) -> None:
        """Give each request of ``part`` its check (on the loop)."""
        try:
            results = done.result()
        except BaseException as exc:  # check here, body by body: a failure stays its own
            if not isinstance(exc, WorkerGone):
                log.warning(
                    "checking %d bodies in a worker failed (%r); checking here", len(part), exc
                )
            self._settle_here(part)
            return
        read = [r for r in results if r is not None]
        verified = iter(
            to_verified(self.domain, [(s.tx, s.signature) for s, _ in read], [c for _, c in read])
        )
        for (_, future), result in zip(part, results, strict=True):
            check = None if result is None else (result[0], next(verified))
            if not future.done():
                future.set_result(check)

    def _settle_here(self, part: Sequence[tuple[bytes, asyncio.Future[BodyCheck]]]) -> None:
        for body, future in part:
            if future.done():
                continue
            try:
                future.set_result(self.check_here(body))
            except Exception as exc:  # as a check on the loop would have raised it
                future.set_exception(exc)
