"""Multi-row ``INSERT`` for ``sqlite3``: one statement per chunk of rows, not one per row.

``sqlite3`` releases the GIL around every ``sqlite3_step``, and ``executemany`` steps once
per row; a thread that gave the GIL up waits to get it back until the thread holding it
lets go (up to ``sys.getswitchinterval()``, 5 ms) whenever another thread runs Python — as
the node's request, anchorer and sync threads do under load. Measured beside one busy
Python thread: 1,000 index rows took 6 s through ``executemany`` and 40 ms as multi-row
``VALUES`` (docs/benchmarks.md, "Ingest"). The rows and their order are the same.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

#: rows per statement: full chunks reuse one prepared statement (sqlite3's statement cache)
CHUNK_ROWS = 500
#: SQLite's default SQLITE_MAX_VARIABLE_NUMBER since 3.32
MAX_VARIABLES = 32_766


def insert_rows(
    cursor: sqlite3.Cursor | sqlite3.Connection,
    head: str,
    rows: Iterable[Sequence[Any]],
    width: int,
) -> None:
    """Run ``head`` (``INSERT [OR …] INTO t (a, b, …)``) with ``VALUES`` for every row of
    ``rows`` (each ``width`` values), ``CHUNK_ROWS`` rows per statement."""
    for _ in _insert_chunks(cursor, head, rows, width):
        pass


def insert_rows_rowids(
    cursor: sqlite3.Cursor | sqlite3.Connection,
    head: str,
    rows: Iterable[Sequence[Any]],
    width: int,
) -> list[int]:
    """Run :func:`insert_rows` and return the rowid given to each row, in ``rows``' order,
    for a table whose key is an ``INTEGER PRIMARY KEY``: one multi-row ``INSERT`` inserts its
    rows in ``VALUES`` order, each with a new rowid above every rowid already in the table
    (the write lock of SQLite is held across the statement), so a chunk's rows have the
    consecutive rowids ending at ``lastrowid``. One ``sqlite3_step`` per statement, where a
    ``RETURNING`` clause steps (and gives the GIL up and takes it back) once per row."""
    rowids: list[int] = []
    for result, count in _insert_chunks(cursor, head, rows, width):
        last = result.lastrowid
        if last is None or result.rowcount != count:
            raise sqlite3.OperationalError(f"{head}: {result.rowcount} rows for {count}")
        rowids += range(last - count + 1, last + 1)
    return rowids


def _insert_chunks(
    cursor: sqlite3.Cursor | sqlite3.Connection,
    head: str,
    rows: Iterable[Sequence[Any]],
    width: int,
) -> Iterator[tuple[sqlite3.Cursor, int]]:
    """Execute ``head`` with ``VALUES`` for each chunk of ``rows`` in turn; yield, after each
    statement, its cursor and its number of rows."""
    per_statement = max(1, min(CHUNK_ROWS, MAX_VARIABLES // width))
    one = "(" + ", ".join("?" * width) + ")"
    iterator = iter(rows)
    while chunk := list(islice(iterator, per_statement)):
        result = cursor.execute(
            f"{head} VALUES {', '.join([one] * len(chunk))}",
            [value for row in chunk for value in row],
        )
        yield result, len(chunk)
