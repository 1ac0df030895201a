"""The embedded chain's storage: py-evm's key-value database over one sqlite table.

:class:`SqliteDB` is a py-evm ``BaseDB`` over ``kv(key BLOB PRIMARY KEY, value BLOB)`` in
WAL mode; :class:`SqliteAtomicDB` is py-evm's ``AtomicDB`` over it, one sqlite commit per
batch, or per RPC request inside :meth:`SqliteAtomicDB.hold` (crash safety: the package
docstring of :mod:`node.chain.embedded`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal

from eth.abc import AtomicWriteBatchAPI
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB

from node.errors import ChainError

SQLITE_CACHE_KIB: Final = 64 * 1024
"""sqlite page cache per connection (KiB); trie reads are random, so a large cache pays."""

READ_CACHE_ENTRIES: Final = 50_000
"""Key/value pairs kept in a dict in front of sqlite (write-through; cleared when full).
Saves a SELECT per trie-node read (~70 per transfer); at most ~25 MB of trie nodes."""

Synchronous = Literal["FULL", "NORMAL"]


class SqliteDB(BaseDB):
    """A py-evm key-value ``BaseDB`` over one sqlite3 table, in WAL mode.

    Writes go into an open sqlite transaction that :meth:`commit` ends; reads on the same
    connection see uncommitted writes. Not thread-safe by itself: callers serialise access
    (the provider lock of :class:`EmbeddedChain`).
    """

    def __init__(self, path: Path, synchronous: Synchronous = "FULL") -> None:
        self.path = path
        self._cache: dict[bytes, bytes] = {}
        # isolation_level=None: no implicit transactions, BEGIN/COMMIT are ours.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) "
            "WITHOUT ROWID"
        )

    @property
    def conn(self) -> sqlite3.Connection:
        """Return the open connection; raise ChainError once closed."""
        if self._conn is None:
            raise ChainError(f"chain database {self.path} is closed")
        return self._conn

    def _begin(self) -> sqlite3.Connection:
        conn = self.conn
        if not conn.in_transaction:
            conn.execute("BEGIN")
        return conn

    def __getitem__(self, key: bytes) -> bytes:
        value = self._cache.get(key)
        if value is not None:
            return value
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        self._remember(key, value)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._begin().execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))
        self._remember(key, bytes(value))

    def __delitem__(self, key: bytes) -> None:
        self._cache.pop(key, None)
        cursor = self._begin().execute("DELETE FROM kv WHERE key = ?", (key,))
        if cursor.rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        if key in self._cache:
            return True
        row = self.conn.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone()
        return row is not None

    def _remember(self, key: bytes, value: bytes) -> None:
        if len(self._cache) >= READ_CACHE_ENTRIES:
            self._cache.clear()
        self._cache[key] = value

    def commit(self) -> None:
        """Commit the open transaction, if any (one fsync with ``synchronous=FULL``)."""
        conn = self.conn
        if conn.in_transaction:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Commit pending writes and close the connection; idempotent."""
        if self._conn is not None:
            self.commit()
            self._conn.close()
            self._conn = None
            self._cache.clear()


class SqliteAtomicDB(AtomicDB):
    """py-evm's ``AtomicDB`` whose batches each commit once, atomically, in sqlite.

    ``AtomicDB`` applies a finished batch key by key to the wrapped db; here those writes
    share one sqlite transaction, committed right after the batch -- or, inside
    :meth:`hold`, when the outermost hold ends. Writes outside any batch commit at once
    unless held.
    """

    wrapped_db: SqliteDB

    def __init__(self, wrapped_db: SqliteDB) -> None:
        super().__init__(wrapped_db)
        self._hold_depth = 0
        self.commits = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.wrapped_db[key] = value
        self._commit_unless_held()

    def __delitem__(self, key: bytes) -> None:
        del self.wrapped_db[key]
        self._commit_unless_held()

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        """Yield a write batch; on clean exit apply it in one sqlite transaction and commit."""
        with super().atomic_batch() as batch:
            yield batch
        self._commit_unless_held()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Defer commits until the outermost ``hold`` exits, then commit once (also on error).

        An error leaves py-evm's in-memory state pointing at what was already written, so
        the written prefix is committed rather than rolled back; it is consistent anyway.
        """
        self._hold_depth += 1
        try:
            yield
        finally:
            self._hold_depth -= 1
            self._commit_unless_held()

    def _commit_unless_held(self) -> None:
        if self._hold_depth == 0 and self.wrapped_db.conn.in_transaction:
            self.wrapped_db.commit()
            self.commits += 1
