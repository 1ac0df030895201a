"""The SQLite writer process (``node.db.writer``): a function runs in a child process with a
connection of its own; its result, or its exception (its transaction rolled back), comes
back; a child that died between calls is replaced; one that dies during a call is reported
as such (the outcome unknown)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from node.db.writer import SqliteWriter
from node.worker import WorkerGone


def _pid_and_pragmas(connection: sqlite3.Connection, _: None) -> tuple[int, str, int]:
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = connection.execute("PRAGMA synchronous").fetchone()[0]
    return os.getpid(), mode, synchronous


def _insert(connection: sqlite3.Connection, values: list[int]) -> int:
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in values])
    connection.execute("COMMIT")
    return len(values)


def _insert_then_fail(connection: sqlite3.Connection, values: list[int]) -> None:
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany("INSERT INTO t (v) VALUES (?)", [(v,) for v in values])
    raise ValueError(f"refusing {values}")


def _sleep(connection: sqlite3.Connection, seconds: float) -> None:
    time.sleep(seconds)


def _table(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [v for (v,) in db.execute("SELECT v FROM t ORDER BY v")]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (v INTEGER UNIQUE)")
    return path


def test_a_call_runs_in_a_child_with_the_node_settings(db: Path) -> None:
    writer = SqliteWriter(str(db))
    try:
        pid, mode, synchronous = writer.call(_pid_and_pragmas, None)
        assert pid == writer.pid and pid != os.getpid()
        assert (mode, synchronous) == ("wal", 2)  # WAL, synchronous=FULL
        assert writer.call(_insert, [1, 2, 3]) == 3
        assert _table(db) == [1, 2, 3]  # committed: another connection reads it
    finally:
        writer.close()
    assert writer.pid is None


def test_an_error_comes_back_and_its_transaction_is_rolled_back(db: Path) -> None:
    writer = SqliteWriter(str(db))
    try:
        with pytest.raises(ValueError, match=r"refusing \[4, 5\]"):
            writer.call(_insert_then_fail, [4, 5])
        with pytest.raises(sqlite3.IntegrityError):
            writer.call(_insert, [6, 6])
        assert writer.call(_insert, [7]) == 1  # the same child goes on
        assert _table(db) == [7]
        assert writer.started == 1
    finally:
        writer.close()


def test_a_child_killed_between_calls_is_replaced(db: Path) -> None:
    writer = SqliteWriter(str(db))
    try:
        writer.call(_insert, [1])
        first = writer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        time.sleep(0.3)  # dead, and the writer has not looked yet
        assert writer.call(_insert, [2]) == 1
        assert writer.pid != first and writer.started == 2
        assert _table(db) == [1, 2]
    finally:
        writer.close()


def test_a_child_killed_during_a_call_reports_an_unknown_outcome(db: Path) -> None:
    writer = SqliteWriter(str(db))
    try:
        writer.call(_insert, [1])
        pid = writer.pid
        assert pid is not None
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(WorkerGone) as gone:
            writer.call(_sleep, 30.0)
        assert gone.value.sent
        assert writer.call(_insert, [2]) == 1  # a new child takes the next call
        assert _table(db) == [1, 2]
    finally:
        writer.close()
