"""The embedded store's blocks on disk: the packed SQLite database, block files, the repo lock.

:class:`BlockRepo` knows keys, bytes and paths only (layout and durability: the docstring of
:mod:`node.storage.embedded`); CIDs, quota, pins' meaning and UnixFS are the store's
(:mod:`node.storage.embedded.store`).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from multiformats import CID

from node.storage.cids import compute_block_key
from node.storage.errors import StoreError

BLOCKS_DIR: Final = "blocks"
TMP_DIR: Final = "tmp"
PINS_FILE: Final = "pins.json"  # pins of older versions, moved into PACKED_DB on open
PACKED_DB: Final = "blocks.sqlite"
#: Blocks up to this size are packed in ``PACKED_DB``; larger ones (file chunks) get a file each.
PACKED_BLOCK_MAX: Final = 64 * 1024
#: An import commits its packed blocks in transactions of about this many bytes.
PACKED_BYTES_PER_COMMIT: Final = 16 * 1024 * 1024
PUT_BLOCKS: Final = "INSERT OR REPLACE INTO blocks (key, data)"  # VALUES by insert_rows
SQLITE_BUSY_TIMEOUT_SECONDS: Final = 60.0
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS blocks (key TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS pins (cid TEXT PRIMARY KEY) WITHOUT ROWID",
)
LOCK_FILE: Final = "repo.lock"
BLOCK_SUFFIX: Final = ".data"
PINS_FORMAT_VERSION: Final = 1
#: An import makes its blocks durable with one ``syncfs`` per this many blocks (64 MiB of chunks).
STAGED_BLOCKS_PER_SYNC: Final = 256


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        return None
    function = getattr(libc, "syncfs", None)
    return None if function is None else function  # type: ignore[no-any-return]


_SYNCFS: Final = _load_syncfs()


def sync_files(directory: Path, names: list[str]) -> None:
    """Make the files ``names`` (all in ``directory``'s file system) durable: one ``syncfs(2)``
    where available (Linux), else one ``fsync`` per file."""
    if _SYNCFS is not None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    for name in names:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_dirs(directories: set[Path]) -> None:
    """Make the entries of ``directories`` (all in one file system) durable: one
    ``syncfs(2)`` where available (Linux), else one ``fsync`` per directory."""
    if not directories:
        return
    if _SYNCFS is not None:
        fd = os.open(next(iter(directories)), os.O_RDONLY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    for directory in directories:
        fsync_dir(directory)


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` durable (``fsync`` on the directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlockRepo:
    """The block files and packed database under ``root``; opening it creates the layout,
    moves an older ``pins.json`` into the ``pins`` table and empties ``tmp/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blocks_dir = self.root / BLOCKS_DIR
        self.tmp_dir = self.root / TMP_DIR
        self.blocks_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._pins_path = self.root / PINS_FILE
        self._db_path = self.root / PACKED_DB
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_mutex = threading.Lock()
        self._shards: set[Path] = set()
        with self.write() as db:
            for statement in _SCHEMA:
                db.execute(statement)
        self.migrate_pins_file()
        self.clean_tmp()

    # -- the packed database -------------------------------------------------------------------

    def db(self) -> sqlite3.Connection:
        """Return this thread's connection to the packed database (opened on first use)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self._db_path,
                timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # transactions are begun explicitly
                check_same_thread=False,  # closed by close(), from any thread
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
            with self._connections_mutex:
                self._connections.append(db)
        return db

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Yield this thread's connection inside ``BEGIN IMMEDIATE``; commit (durably) on exit."""
        db = self.db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close the connections to the packed database (the store reopens them if used)."""
        with self._connections_mutex:
            connections, self._connections = self._connections, []
        for db in connections:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        self._local = threading.local()

    def migrate_pins_file(self) -> None:
        """Move the pins of an older data directory (``pins.json``) into the ``pins`` table."""
        if not self._pins_path.exists():
            return
        try:
            document = json.loads(self._pins_path.read_text())
        except FileNotFoundError:  # another process migrated it meanwhile
            return
        except ValueError as exc:
            raise StoreError(f"{self._pins_path} is not valid JSON: {exc}") from None
        with self.write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO pins (cid) VALUES (?)",
                [(str(cid),) for cid in document.get("recursive", [])],
            )
        with contextlib.suppress(FileNotFoundError):
            self._pins_path.unlink()
        fsync_dir(self.root)

    # -- locking -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool, blocking: bool = True) -> Iterator[bool]:
        """Hold the repo flock (shared for writers, exclusive for gc); yield whether acquired."""
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                fcntl.flock(fd, mode if blocking else mode | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the flock

    def clean_tmp(self) -> None:
        """Remove blocks left half-written by a crash, unless another process is writing now."""
        with self.lock(exclusive=True, blocking=False) as acquired:
            if not acquired:
                return
            for leftover in self.tmp_dir.iterdir():
                with contextlib.suppress(OSError):
                    leftover.unlink()

    # -- blocks --------------------------------------------------------------------------------

    def block_path(self, cid: CID) -> Path:
        """Return the file path of block ``cid`` (whether or not it exists)."""
        return self.key_path(compute_block_key(cid))

    def key_path(self, key: str) -> Path:
        """Return the file path of block ``key``: ``blocks/<xy>/<key>.data``."""
        return self.blocks_dir / key[-3:-1] / f"{key}{BLOCK_SUFFIX}"

    def read_key(self, key: str) -> bytes | None:
        """Return the stored bytes of block ``key`` (packed first, then its file), or None."""
        # fetchall, not fetchone: a statement left unfinished keeps its read transaction
        # open, which stops WAL checkpoints (the WAL then grows and every access slows down)
        rows = self.db().execute("SELECT data FROM blocks WHERE key = ?", (key,)).fetchall()
        if rows:
            return bytes(rows[0][0])
        try:
            return self.key_path(key).read_bytes()
        except FileNotFoundError:
            return None

    def block_keys(self) -> list[tuple[str, int]]:
        """Return ``(key, size)`` of every stored block copy (packed and file), sorted."""
        found = [
            (str(key), int(size))
            for key, size in self.db().execute("SELECT key, length(data) FROM blocks")
        ]
        for shard in self.blocks_dir.iterdir():
            if shard.is_dir():
                for block in shard.iterdir():
                    found.append((block.name.removesuffix(BLOCK_SUFFIX), block.stat().st_size))
        return sorted(found)

    # -- space ---------------------------------------------------------------------------------

    def write_block(
        self, path: Path, data: bytes, touched: set[Path], is_valid: Callable[[bytes], bool]
    ) -> None:
        """Store ``data`` at ``path`` atomically unless a valid copy is already there."""
        if path.exists():
            try:
                if is_valid(path.read_bytes()):
                    return
            except OSError:
                pass  # unreadable: overwrite the bad copy below
        shard = path.parent
        if shard not in self._shards:
            shard.mkdir(exist_ok=True)
            self._shards.add(shard)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        touched.add(shard)

    def stage_block(
        self,
        path: Path,
        data: bytes,
        staged: list[tuple[str, Path]],
        is_valid: Callable[[bytes], bool],
    ) -> None:
        """Write ``data`` to a temporary file (not yet synced) to become ``path``, unless a valid
        copy is already there."""
        if path.exists():
            try:
                if is_valid(path.read_bytes()):
                    return
            except OSError:
                pass  # unreadable: overwrite the bad copy
        shard = path.parent
        if shard not in self._shards:
            shard.mkdir(exist_ok=True)
            self._shards.add(shard)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".tmp")
        staged.append((tmp_name, path))
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)

    def commit_staged(self, staged: list[tuple[str, Path]], touched: set[Path]) -> None:
        """Make staged blocks durable (one ``syncfs``), then rename them into place.

        A block appears under its final name only once its bytes are on disk; ``staged`` shrinks
        as blocks are renamed, so on an error the caller removes exactly the leftovers.
        """
        if not staged:
            return
        sync_files(self.tmp_dir, [name for name, _ in staged])
        while staged:
            tmp_name, path = staged[0]
            os.replace(tmp_name, path)
            staged.pop(0)
            touched.add(path.parent)
