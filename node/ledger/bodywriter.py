"""Store the bodies of just-accepted single submissions after their requests are answered.

A single submission is acknowledged (202) once its group's SQL commit is durable: the row
holds the signed body, so the transaction survives ``kill -9`` from then on, and the
anchorer stores any body missing from the content store before it anchors the leaf. Putting
the body into the content store (one more durable write, ~4 ms of fsync plus the store's
own work) is therefore not needed for the promise, only for readers of the content store
(``GET /ipfs/<cid>`` and its raw and CAR forms). :class:`BodyWriter` does that write on its
own thread, off the request's path:

* :meth:`BodyWriter.put` (called by the group commit before its requests are answered)
  records the bodies as *pending* and queues them;
* the writer thread takes everything queued so far and stores it with one ``store_many``
  call (one store commit for bodies of several groups), then drops them from *pending*;
* a reader that may ask for a body just acknowledged calls :meth:`BodyWriter.wait_stored`
  first: it returns at once unless that CID is pending, else once its write is through
  (stored, or failed and logged: the anchorer stores it later, as before).

So a ``GET /ipfs/<cid>`` sent right after the 202 finds the body exactly as before. Memory is
bounded: :meth:`BodyWriter.put` blocks while ``MAX_PENDING`` bodies wait (the group commit,
and with it new acknowledgements, slows to the store's pace). The thread leaves after
``IDLE_SECONDS`` without work and is started again by the next :meth:`BodyWriter.put`.

| constant | value | meaning |
|---|---|---|
| ``MAX_PENDING`` | 20,000 | bodies queued or being written before :meth:`BodyWriter.put` waits |
| ``MAX_PER_WRITE`` | 4,096 | most bodies stored by one ``store_many`` call |
| ``IDLE_SECONDS`` | 5 | the writer thread's idle time before it leaves |
| ``WAIT_SECONDS`` | 10 | how long :meth:`BodyWriter.wait_stored` waits by default |
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Final

MAX_PENDING: Final = 20_000
MAX_PER_WRITE: Final = 4_096
IDLE_SECONDS: Final = 5.0
WAIT_SECONDS: Final = 10.0

log = logging.getLogger(__name__)


class BodyWriter:
    """Store queued bodies on a thread of its own; tell readers which are still pending."""

    def __init__(
        self, store_many: Callable[[list[bytes]], None], *, max_pending: int = MAX_PENDING
    ) -> None:
        """``store_many`` stores (and pins) the bodies it is given; it may raise (logged)."""
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._store_many = store_many
        self.max_pending = max_pending
        self._cond = threading.Condition()
        self._queue: list[tuple[str, bytes]] = []
        self._pending: dict[str, int] = {}  # CID -> bodies queued or being written
        self._count = 0  # bodies queued or being written
        self._running = False  # a writer thread is alive
        self.writes = 0  # store_many calls made (for tests and metrics)
        self.failures = 0  # store_many calls that raised
        self.waiting = 0  # readers in wait_stored right now

    def put(self, bodies: Sequence[tuple[str, bytes]]) -> None:
        """Queue ``(cid, body)`` pairs to be stored; they are pending from now on. Waits while
        ``max_pending`` bodies are already pending."""
        if not bodies:
            return
        with self._cond:
            self._cond.wait_for(lambda: self._count < self.max_pending)
            for cid, body in bodies:
                self._pending[cid] = self._pending.get(cid, 0) + 1
                self._queue.append((cid, body))
            self._count += len(bodies)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="body-writer", daemon=True).start()
            self._cond.notify_all()

    def is_pending(self, cid: str) -> bool:
        """Return whether the body of ``cid`` is queued or being written."""
        return cid in self._pending

    def pending(self) -> int:
        """Return how many bodies are queued or being written."""
        return self._count

    def wait_stored(self, cid: str, timeout: float = WAIT_SECONDS) -> bool:
        """Return once the body of ``cid`` is not pending (at once if it never was): True, or
        False if it still is after ``timeout`` seconds."""
        if cid not in self._pending:  # the common case: no lock taken
            return True
        with self._cond:
            self.waiting += 1
            try:
                return self._cond.wait_for(lambda: cid not in self._pending, timeout)
            finally:
                self.waiting -= 1

    def flush(self, timeout: float | None = None) -> bool:
        """Return once every queued body is written (True), or False after ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)

    def _run(self) -> None:
        """The writer thread: store what is queued, in writes of at most ``MAX_PER_WRITE``;
        leave once idle for ``IDLE_SECONDS`` (never while bodies wait)."""
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: bool(self._queue), IDLE_SECONDS):
                    if self._queue:
                        continue
                    self._running = False
                    return
                batch = self._queue[:MAX_PER_WRITE]
                del self._queue[:MAX_PER_WRITE]
            self._write(batch)

    def _write(self, batch: list[tuple[str, bytes]]) -> None:
        """Store ``batch``; whatever happens, its bodies stop being pending."""
        try:
            self._store_many([body for _, body in batch])
        except Exception:  # the rows hold the bodies: the anchorer stores them later
            self.failures += 1
            log.exception("storing %d accepted bodies failed; the anchorer will", len(batch))
        finally:
            with self._cond:
                self.writes += 1
                for cid, _ in batch:
                    left = self._pending[cid] - 1
                    if left:
                        self._pending[cid] = left
                    else:
                        del self._pending[cid]
                self._count -= len(batch)
                self._cond.notify_all()
