"""SQLite writes in a process of their own, so that they never wait for the GIL.

``sqlite3`` gives the GIL up around each statement it prepares and each step it takes; the
thread then waits to take it back while another thread runs Python (up to
``sys.getswitchinterval()``, 5 ms). Under load the node's event loop runs Python most of the
time, so a group commit of ~26 single submissions (a replay probe, two multi-row inserts,
the zone upsert, the commit: ~5 ms of CPU) took 11–15 ms of wall time, most of it spent
waiting for the GIL, and the group commit, busy ~90 % of the time, was what bounded the node
(docs/benchmarks.md, "Ingest"). :class:`SqliteWriter` runs such a write in a child process
(``python -m node.db.writer PATH``) that has a connection of its own and no other thread: the
caller sends one request and waits once for its answer.

The child speaks :mod:`node.worker`'s protocol: a request is a module-level
``function(connection, argument)`` (its module should be a light one: the child imports it)
and its argument; after an exception the child rolls back whatever the function left open.
The child's connection has the node's pragmas (:func:`apply_pragmas`: WAL,
``synchronous=FULL``, foreign keys, a busy timeout) and ``isolation_level=None``: the function
begins and commits its own transaction. The child leaves when :meth:`SqliteWriter.close`
closes its input, when the writer object is collected, or when the node's process dies. A
write whose answer never came (the child died during it) has an unknown outcome:
:class:`WorkerGone` says so, and the caller finds out from the database (the commit is
atomic: all of the write or none of it is there).
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Final, TypeVar

from node.worker import WorkerGone, end, frame, read_message, serve, spawn

#: the node's connection settings (the engine's connections get the same, node.db.session)
PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",  # readers (explorer, `collegium verify`) never block the writer
    "PRAGMA synchronous=FULL",  # a commit is on disk before its receipt (kill -9, power loss)
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    # statement journals in memory: a multi-row INSERT into indexed tables keeps one (to undo
    # itself alone on a constraint error), and past 64 KiB SQLite spills it to a temporary
    # file created, written page by page and deleted per statement: ~30 % of a group
    # commit's CPU (docs/benchmarks.md, "Ingest")
    "PRAGMA temp_store=MEMORY",
)

A = TypeVar("A")
R = TypeVar("R")


def apply_pragmas(connection: sqlite3.Connection) -> None:
    """Give ``connection`` the node's settings (:data:`PRAGMAS`)."""
    cursor = connection.cursor()
    for pragma in PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


class SqliteWriter:
    """Run write functions on the SQLite database ``path`` in a child process (see the
    module doc); one call at a time (callers from several threads queue)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)  # the child runs in another directory
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self.started = 0  # child processes started (a dead one is replaced on the next call)

    def call(self, function: Callable[[sqlite3.Connection, A], R], argument: A) -> R:
        """Return ``function(connection, argument)`` run in the child; raise what it raised,
        or :class:`WorkerGone` if the child ended first."""
        message = frame((function, argument))
        with self._lock:
            try:
                process = self._send(message)
            except OSError:  # the child had ended (nothing was sent): once more, to a new one
                try:
                    process = self._send(message)
                except OSError as exc:
                    raise WorkerGone(f"the SQLite writer process ended: {exc}", sent=False) from exc
            assert process.stdout is not None
            answer = read_message(process.stdout)
            if answer is None:
                self._forget(process)
                raise WorkerGone("the SQLite writer process ended during a write", sent=True)
        ok, value = pickle.loads(answer)
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    @property
    def pid(self) -> int | None:
        """Return the child's process id, if one runs (for tests and diagnostics)."""
        process = self._process
        return None if process is None or process.poll() is not None else process.pid

    def close(self) -> None:
        """End the child (its input closes; it leaves once its current write is through)."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            end(process)

    def _send(self, message: bytes) -> subprocess.Popen[bytes]:
        """Write ``message`` to the child (started if need be); return it. Raises ``OSError``
        (the child forgotten) if it had ended."""
        process = self._process  # a child that ended is found out by the write (no poll:
        if process is None:  # a waitpid per call would give the GIL up and wait for it back)
            process = self._process = spawn("node.db.writer", self.path)
            weakref.finalize(self, end, process)
            self.started += 1
        assert process.stdin is not None
        try:
            process.stdin.write(message)
            process.stdin.flush()
        except OSError:
            self._forget(process)
            raise
        return process

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        if self._process is process:
            self._process = None
        end(process)


def main() -> None:
    """``python -m node.db.writer PATH``: the writer process."""
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    apply_pragmas(connection)

    def roll_back() -> None:
        if connection.in_transaction:
            connection.rollback()

    try:
        serve(connection, roll_back)
    finally:
        connection.close()


if __name__ == "__main__":
    main()
