"""Group commit: items handed in by concurrent threads made durable together.

Each request thread verifies its own transaction (signature recovery runs in parallel in the
request threads; libsecp256k1 releases the GIL), then hands the verified item to
:class:`GroupCommit` and blocks until its own result is known. Whichever waiting thread finds
no commit in flight becomes the **leader**: it takes every item queued so far (at most
``max_items``), commits them with one call of ``commit`` (one SQL transaction, one fsync)
and hands each thread its own result. Items that arrive while a commit is in flight wait
for it and form the next group. There is no timer: a lone request is committed
at once (a group of one), and under load a group is whatever arrived during the previous
commit — the same rule as the anchorer's batches.

A caller that must not block (a request on the event loop) hands its item in with
:meth:`GroupCommit.submit_later` and a ``done`` callback instead: up to ``COMMITTERS``
committer threads of the group commit lead for such items (two, so that the next group
commits while one thread still calls back the previous group's items), and call ``done``
with the item's result or error from the committing thread once its group is through. A
committer thread leaves after ``COMMITTER_IDLE_SECONDS`` without work and is started again
when needed.

``commit`` returns one result per item (an accepted leaf or the item's own
``ValidationError``), so a bad item gets its own 4xx and never its neighbour's. If ``commit``
itself raises (the database is gone), every item of that group gets that exception, as a lone
request would have.

| constant | value | meaning |
|---|---|---|
| ``GROUP_MAX_ITEMS`` | 1,000 | most items per group (as the batch endpoint's request bound) |
| ``COMMITTERS`` | 2 | committer threads for :meth:`GroupCommit.submit_later`'s items |
| ``COMMITTER_IDLE_SECONDS`` | 5 | a committer thread's idle time before it leaves |
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

GROUP_MAX_ITEMS: Final = 1_000
COMMITTERS: Final = 2
COMMITTER_IDLE_SECONDS: Final = 5.0

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


#: called with (result, None) or (None, error) once an item's group is through
Done = Callable[[R | None, BaseException | None], None]


class _Slot(Generic[T, R]):
    __slots__ = ("item", "result", "error", "done", "taken", "on_done")

    def __init__(self, item: T, on_done: Done[R] | None = None) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False
        self.taken = False  # in a group being committed
        self.on_done = on_done  # submit_later's callback


class GroupCommit(Generic[T, R]):
    """Commit items handed in by concurrent threads in groups (see the module doc)."""

    def __init__(
        self,
        commit: Callable[[list[T]], Sequence[R]],
        *,
        max_items: int = GROUP_MAX_ITEMS,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self._commit = commit
        self.max_items = max_items
        self._cond = threading.Condition()
        self._queue: list[_Slot[T, R]] = []
        self._busy = False
        self.groups = 0  # groups committed (for metrics and tests)
        self.items = 0  # items committed in them
        self.largest = 0  # largest group so far
        self._committers = 0  # committer threads running (submit_later)

    def submit(self, item: T) -> R:
        """Return ``item``'s own result once its group is committed (or raise what the
        commit of its group raised)."""
        slot: _Slot[T, R] = _Slot(item)
        with self._cond:
            self._queue.append(slot)
        while True:
            with self._cond:
                while not slot.done and (self._busy or slot.taken):
                    self._cond.wait()
                if slot.done:
                    return self._outcome(slot)
                group = self._take()  # lead: commit what is queued (this slot among it)
            self._lead(group)

    def submit_later(self, item: T, done: Done[R]) -> None:
        """Queue ``item`` and return at once; ``done(result, None)`` or ``done(None, error)``
        is called from a committing thread once its group is through."""
        with self._cond:
            self._queue.append(_Slot(item, done))
            if self._committers < COMMITTERS:
                self._committers += 1
                threading.Thread(
                    target=self._commit_queued, name="group-commit", daemon=True
                ).start()
            self._cond.notify_all()

    def _commit_queued(self) -> None:
        """A committer thread: lead whatever is queued; leave once idle for a while (never
        while items wait: a long commit by another leader is not idleness)."""
        while True:
            with self._cond:
                if not self._cond.wait_for(
                    lambda: bool(self._queue) and not self._busy, COMMITTER_IDLE_SECONDS
                ):
                    if self._queue:
                        continue
                    self._committers -= 1
                    return
                group = self._take()
            self._lead(group)

    def _take(self) -> list[_Slot[T, R]]:
        """Take the next group off the queue and mark a commit in flight (lock held)."""
        self._busy = True
        group = self._queue[: self.max_items]
        del self._queue[: self.max_items]
        for s in group:
            s.taken = True
        return group

    def _lead(self, group: list[_Slot[T, R]]) -> None:
        """Commit ``group`` and give each slot its result, or every slot the commit's error."""
        try:
            results = list(self._commit([s.item for s in group]))
            if len(results) != len(group):
                raise RuntimeError(f"commit gave {len(results)} results for {len(group)}")
        except BaseException as exc:  # every item of the group learns it
            with self._cond:
                for s in group:
                    s.error, s.done = exc, True
                self._busy = False
                self._cond.notify_all()
            self._call_back(group)
            return
        with self._cond:
            for s, result in zip(group, results, strict=True):
                s.result, s.done = result, True
            self.groups += 1
            self.items += len(group)
            self.largest = max(self.largest, len(group))
            self._busy = False
            self._cond.notify_all()
        self._call_back(group)

    @staticmethod
    def _call_back(group: list[_Slot[T, R]]) -> None:
        for s in group:
            if s.on_done is not None:
                try:
                    s.on_done(s.result, s.error)
                except Exception:  # one caller's callback never stops the others'
                    log.exception("group commit callback failed")

    @staticmethod
    def _outcome(slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]
