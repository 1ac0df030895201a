"""Child processes that run module-level functions for the node, over two pipes.

The protocol, on the child's standard input and output: each message is its length (4 bytes,
little-endian) and a pickle. A request is ``(function, argument)``: ``function`` is a
module-level ``function(context, argument)`` (pickled by reference: the child imports its
module); ``context`` is what the child was started with (None here; the SQLite writer's
connection in :mod:`node.db.writer`). The answer is ``(True, result)`` or ``(False,
exception)``, one per request, in order. A child leaves when its input ends: when the node
closes it, or when the node's process dies (even by ``kill -9``: the kernel closes the pipe);
it ignores SIGINT (a Ctrl-C in a terminal reaches the node, which closes its children).

Two ends for the node:

* a caller that may block (a thread) writes a request and reads its answer
  (:class:`node.db.writer.SqliteWriter`);
* an asyncio event loop drives :class:`LoopWorker`: the request is written and the answer
  read by the loop's own pipe transports (libuv's under uvloop), and the answer settles the
  request's future. No thread stands in between and no syscall of the loop gives the GIL
  up, so there is no hand-over of the GIL: through a ``ProcessPoolExecutor`` a request
  passes a feeder thread and a result a management thread, each of which must take the GIL
  back while the loop holds it (up to ``sys.getswitchinterval()`` each).

``python -m node.worker`` starts a child with no context.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any, Final, TypeVar

_LENGTH: Final = struct.Struct("<I")
MAX_REPLACEMENTS: Final = 5  # workers of a LoopWorkers replaced before it stays unusable

Item = TypeVar("Item")


class WorkerGone(Exception):
    """The child process ended before it answered: the outcome of the request is unknown
    if it was sent (``sent``)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


def frame(value: Any) -> bytes:
    """Return ``value`` pickled, behind its length: one message."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def read_message(stream: IO[bytes]) -> bytes | None:
    """Return the next message of the blocking ``stream``, or None at its end."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    body = stream.read(length)
    return body if len(body) == length else None


def spawn(module: str, *args: str) -> subprocess.Popen[bytes]:
    """Start ``python -m module args`` with pipes for the protocol, in the directory that
    holds the ``node`` package the caller runs (``-m`` puts it first on the child's path, so
    the child imports the same code; a path among ``args`` must be absolute)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=root,
    )


def end(process: subprocess.Popen[bytes]) -> None:
    """Close the child's input and reap it (it leaves at the end of its input)."""
    try:
        if process.stdin is not None:
            process.stdin.close()
    except OSError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def serve(context: Any, after_error: Callable[[], None] | None = None) -> None:
    """The child: answer each request on standard input until it ends (see the module doc);
    ``after_error`` runs after a function raised (e.g. a rollback)."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever else prints goes to stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    while (message := read_message(requests)) is not None:
        function, argument = pickle.loads(message)
        try:
            answer: tuple[bool, Any] = (True, function(context, argument))
        except Exception as exc:
            if after_error is not None:
                after_error()
            answer = (False, exc)
        try:
            data = frame(answer)
        except Exception as exc:  # a result or an exception that does not pickle
            data = frame((False, RuntimeError(f"{function.__name__}: {exc!r}")))
        answers.write(data)
        answers.flush()


class LoopWorker:
    """One child process driven from an asyncio loop (see the module doc): :meth:`run`
    writes a request to the child's input and returns a future that the answer, read by the
    loop, settles. Both pipes are the loop's own transports (``connect_read_pipe``,
    ``connect_write_pipe``: libuv's under uvloop, so the loop gives the GIL up for neither).
    Create it, call it and close it on the loop's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._process = spawn("node.worker")
        self._buffer = bytearray()
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._requests: asyncio.WriteTransport | None = None
        self._answers: asyncio.ReadTransport | None = None
        self._unsent: list[bytes] = []  # requests made before the pipes are connected
        self.alive = True
        self._connecting = loop.create_task(self._connect())

    async def _connect(self) -> None:
        process = self._process
        try:
            self._answers, _ = await self._loop.connect_read_pipe(
                lambda: _Answers(self), process.stdout
            )
            self._requests, _ = await self._loop.connect_write_pipe(
                lambda: _Requests(self), process.stdin
            )
        except OSError as exc:
            self._gone(f"its pipes failed: {exc}")
            return
        if not self.alive:  # closed meanwhile
            self._close_pipes()
            return
        for data in self._unsent:
            self._requests.write(data)
        self._unsent.clear()

    @property
    def pid(self) -> int:
        """Return the child's process id."""
        return self._process.pid

    @property
    def load(self) -> int:
        """Return the requests sent and not answered yet."""
        return len(self._pending)

    def run(self, function: Callable[[None, Any], Any], argument: Any) -> asyncio.Future[Any]:
        """Send ``function(None, argument)`` to the child; return the future of its result
        (it raises what the function raised, or :class:`WorkerGone`)."""
        future: asyncio.Future[Any] = self._loop.create_future()
        if not self.alive:
            future.set_exception(WorkerGone("the worker process has ended", sent=False))
            return future
        self._pending.append(future)
        data = frame((function, argument))
        if self._requests is None:
            self._unsent.append(data)
        else:
            self._requests.write(data)  # a failure ends the worker (_Requests.connection_lost)
        return future

    def close(self) -> None:
        """End the child; requests not answered yet get :class:`WorkerGone`."""
        self._gone("closed")

    def _received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if len(self._buffer) < _LENGTH.size + length:
                break
            message = bytes(self._buffer[_LENGTH.size : _LENGTH.size + length])
            del self._buffer[: _LENGTH.size + length]
            ok, value = pickle.loads(message)
            future = self._pending.popleft()
            if future.done():  # its caller left
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _gone(self, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(WorkerGone(f"the worker process: {why}", sent=True))
        self._close_pipes()
        end(self._process)

    def _close_pipes(self) -> None:
        # abort, not close: a write transport's close() waits for its buffer to drain, and
        # end() closes the pipe files now: the loop must not close their fds a second time
        # later (by then the numbers may belong to other files)
        if self._requests is not None:
            self._requests.abort()
        if self._answers is not None:
            self._answers.close()  # a read transport closes at once


class _Answers(asyncio.Protocol):
    """The read side of a :class:`LoopWorker`'s pipes."""

    def __init__(self, worker: LoopWorker) -> None:
        self.worker = worker

    def data_received(self, data: bytes) -> None:
        self.worker._received(data)

    def eof_received(self) -> bool:
        self.worker._gone("it ended")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker._gone(f"its output closed ({exc})" if exc else "its output closed")


class _Requests(asyncio.BaseProtocol):
    """The write side of a :class:`LoopWorker`'s pipes."""

    def __init__(self, worker: LoopWorker) -> None:
        self.worker = worker

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker._gone(f"its input closed ({exc})" if exc else "its input closed")


def import_modules(_: None, modules: Sequence[str]) -> int:
    """In a child: import ``modules`` (where the functions it will be given live); return
    its process id."""
    for module in modules:
        importlib.import_module(module)
    return os.getpid()


def split(items: Sequence[Item], parts: int, min_part: int) -> list[list[Item]]:
    """Return ``items`` cut into at most ``parts`` parts, in order, each of at least
    ``min_part`` items (one part if there are fewer than twice that)."""
    count = max(1, min(parts, len(items) // min_part))
    size = math.ceil(len(items) / count)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class LoopWorkers:
    """``count`` :class:`LoopWorker` children for one event loop: started in the background
    (:meth:`warm`), used once each has answered (:attr:`usable`), each request sent to the
    least busy one. A child that ended is replaced by the next :meth:`warm`; after
    ``MAX_REPLACEMENTS`` the pool stays unusable (the caller does the work itself)."""

    def __init__(self, count: int, preload: tuple[str, ...] = ()) -> None:
        """``preload``: modules each child imports first (where the work lives)."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self.count = count
        self.preload = preload
        self._workers: list[LoopWorker] = []
        self._warming = False
        self.replaced = 0  # children replaced after they ended

    @property
    def usable(self) -> bool:
        """Return whether every child runs and has answered once."""
        return (
            not self._warming
            and len(self._workers) == self.count
            and all(w.alive for w in self._workers)
        )

    def pids(self) -> list[int]:
        """Return the process ids of the running children (for tests and diagnostics)."""
        return sorted(w.pid for w in self._workers if w.alive)

    def warm(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any] | None:
        """Start the missing children in the background (on ``loop``'s thread); they are
        used once each has answered. Return the future of their answers (None if no child
        was started)."""
        if self._warming or self.replaced >= MAX_REPLACEMENTS:
            return None
        alive = [w for w in self._workers if w.alive]
        if len(alive) == self.count:
            return None
        if self._workers:  # children ended: replaced
            self.replaced += self.count - len(alive)
        fresh = [LoopWorker(loop) for _ in range(self.count - len(alive))]
        self._workers = alive + fresh
        self._warming = True
        answers = [w.run(import_modules, self.preload) for w in fresh]
        warmed = asyncio.gather(*answers, return_exceptions=True)
        warmed.add_done_callback(self._warmed)
        return warmed

    def _warmed(self, _: asyncio.Future[Any]) -> None:
        self._warming = False

    def split(self, items: Sequence[Item], min_part: int) -> list[list[Item]]:
        """Return ``items`` cut into one part per child (:func:`split`)."""
        return split(items, self.count, min_part)

    def run(self, function: Callable[[None, Any], Any], argument: Any) -> asyncio.Future[Any]:
        """Send ``function(None, argument)`` to the least busy running child; return the
        future of its result (:meth:`LoopWorker.run`)."""
        alive = [w for w in self._workers if w.alive]
        if not alive:
            raise WorkerGone("no worker process runs", sent=False)
        return min(alive, key=lambda w: w.load).run(function, argument)

    def close(self) -> None:
        """End every child (on the loop's thread)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()


if __name__ == "__main__":
    serve(None)
