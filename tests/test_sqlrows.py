"""``node.sqlrows.insert_rows`` writes exactly what ``executemany`` writes, in order."""

from __future__ import annotations

import sqlite3

import pytest

from node import sqlrows


@pytest.mark.parametrize("count", [0, 1, 499, 500, 501, 1234])
def test_same_rows_as_executemany(count: int) -> None:
    db = sqlite3.connect(":memory:")
    for table in ("a", "b"):
        db.execute(f"CREATE TABLE {table} (n INTEGER PRIMARY KEY, s TEXT, b BLOB, f REAL)")
    rows = [(None, f"row {i}", bytes([i % 256]) * (i % 7), i / 3) for i in range(count)]
    db.executemany("INSERT INTO a (n, s, b, f) VALUES (?, ?, ?, ?)", rows)
    sqlrows.insert_rows(db, "INSERT INTO b (n, s, b, f)", iter(rows), 4)  # any iterable
    expected = db.execute("SELECT * FROM a ORDER BY n").fetchall()
    assert db.execute("SELECT * FROM b ORDER BY n").fetchall() == expected
    assert len(expected) == count and [r[1] for r in expected] == [r[1] for r in rows]


def test_wide_rows_stay_under_the_variable_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlrows, "MAX_VARIABLES", 10)  # 3 rows of 3 values per statement
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (x, y, z)")
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    sqlrows.insert_rows(db, "INSERT INTO t (x, y, z)", [(i, i, i) for i in range(7)], 3)
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert [s.count("(") - 1 for s in inserts] == [3, 3, 1]
    assert db.execute("SELECT x FROM t").fetchall() == [(i,) for i in range(7)]


def test_or_replace_keeps_the_last_row_of_a_key() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    sqlrows.insert_rows(db, "INSERT OR REPLACE INTO t (k, v)", [("a", 1), ("b", 2), ("a", 3)], 2)
    assert dict(db.execute("SELECT k, v FROM t").fetchall()) == {"a": 3, "b": 2}


@pytest.mark.parametrize("count", [1, 499, 500, 501, 1234])
def test_rowids_are_the_rows_own(count: int) -> None:
    """``insert_rows_rowids`` gives each row the rowid SQLite gave it (read back by its
    unique text), across chunks and above a gap left by a deleted row and an explicit one."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, s TEXT UNIQUE)")
    db.execute("INSERT INTO t (seq, s) VALUES (7, 'first'), (4000, 'high')")
    db.execute("DELETE FROM t WHERE seq = 7")
    rows = [(f"row {i}",) for i in range(count)]
    rowids = sqlrows.insert_rows_rowids(db, "INSERT INTO t (s)", rows, 1)
    stored = dict(db.execute("SELECT s, seq FROM t WHERE s LIKE 'row %'").fetchall())
    assert rowids == [stored[s] for (s,) in rows]
    assert rowids == list(range(4001, 4001 + count))


def test_rowids_of_a_failed_insert_raise() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, s TEXT UNIQUE)")
    sqlrows.insert_rows_rowids(db, "INSERT INTO t (s)", [("a",)], 1)
    with pytest.raises(sqlite3.IntegrityError):
        sqlrows.insert_rows_rowids(db, "INSERT INTO t (s)", [("b",), ("a",)], 1)
    assert db.execute("SELECT s FROM t").fetchall() == [("a",)]  # the statement is undone
    with pytest.raises(sqlite3.OperationalError, match="0 rows for 1"):
        sqlrows.insert_rows_rowids(db, "INSERT OR IGNORE INTO t (s)", [("a",)], 1)
