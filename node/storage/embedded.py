"""The embedded content store: small blocks packed in SQLite, large blocks one file each.

On-disk layout (under ``root``, by default ``<data dir>/ipfs``):

| path                       | what                                                         |
|----------------------------|--------------------------------------------------------------|
| ``blocks.sqlite``          | SQLite (WAL, ``synchronous=FULL``): table ``blocks(key,      |
|                            | data)`` holds every block of at most ``PACKED_BLOCK_MAX``    |
|                            | bytes, table ``pins(cid)`` the recursive pins                |
| ``blocks/<xy>/<key>.data`` | one larger block; ``key`` = multihash in base32, ``xy`` = its |
|                            | next-to-last two characters (kubo flatfs ``next-to-last/2``) |
| ``tmp/``                   | blocks being written; emptied when a store is opened         |
| ``repo.lock``              | flock: imports/pins shared, garbage collection exclusive     |

Small blocks (UnixFS directory nodes, ledger leaves, batch documents) are packed like kubo's
leveldb/pebble datastores pack them instead of flatfs: creating one file per 300-byte leaf was
the ingest path's largest cost. Keys are the same (multihash in base32), so CIDs are unchanged,
and reads look in both places, so a data directory written with one file per block (older
versions) stays readable as it is; its ``pins.json`` is moved into the ``pins`` table when the
store is opened.

Durability: a packed block is durable once its SQLite transaction commits (an import writes its
packed blocks and its pin in one transaction). A file block is written to ``tmp/`` and made
durable before it is renamed into ``blocks/`` (the rename is atomic); an import syncs its staged
files with one ``syncfs(2)`` per ``STAGED_BLOCKS_PER_SYNC`` blocks instead of one ``fsync`` per
block, and the directories are fsynced before the import's packed blocks and pin are committed.
A crash therefore leaves either no block or a complete one; never a partial block under its
final name, never a pin of an incomplete DAG. A block's bytes are re-hashed on every read
(``get_block``, ``cat``, ``has``): a tampered copy raises ``BlockCorrupted``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from multiformats import CID

from node.groupcommit import GroupCommit
from node.sqlrows import insert_rows
from node.storage.base import NodeStat
from node.storage.cids import (
    check_block,
    compute_block_key,
    compute_block_key_from_multihash,
    compute_multihash_of_cid_bytes,
    compute_sha256_multihash,
    format_cid,
    format_cid_bytes,
    is_block_valid,
    parse_cid,
)
from node.storage.errors import (
    BlockCorrupted,
    IsADirectory,
    NotFoundInStore,
    StoreError,
    StoreFull,
)
from node.storage.importer import (
    BlockSink,
    DagLink,
    FileTree,
    ImportParams,
    import_bytes,
    import_path,
    import_tree,
)
from node.storage.reader import (
    decode_node,
    get_child_cids,
    iter_file_range,
    resolve_path,
    stat_node,
)

BLOCKS_DIR: Final = "blocks"
TMP_DIR: Final = "tmp"
PINS_FILE: Final = "pins.json"  # pins of older versions, moved into PACKED_DB on open
PACKED_DB: Final = "blocks.sqlite"
#: Blocks up to this size are packed in ``PACKED_DB``; larger ones (file chunks) get a file each.
PACKED_BLOCK_MAX: Final = 64 * 1024
GROUPED_ADD_MAX: Final = 64 * 1024  # add_bytes of at most this joins concurrent adds' commit
GROUPED_ADDS_PER_COMMIT: Final = 256
#: An import commits its packed blocks in transactions of about this many bytes.
PACKED_BYTES_PER_COMMIT: Final = 16 * 1024 * 1024
_PUT_BLOCKS: Final = "INSERT OR REPLACE INTO blocks (key, data)"  # VALUES by insert_rows
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


@dataclass(frozen=True)
class GcReport:
    """What a garbage collection removed."""

    removed_blocks: int
    freed_bytes: int
    kept_blocks: int


def _sha256_mh(data: bytes) -> bytes:
    return compute_sha256_multihash(data)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        return None
    function = getattr(libc, "syncfs", None)
    return None if function is None else function  # type: ignore[no-any-return]


_SYNCFS: Final = _load_syncfs()


def _sync_files(directory: Path, names: list[str]) -> None:
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EmbeddedStore:
    """A kubo-compatible block store in a local directory (see the module docstring)."""

    backend = "embedded"

    def __init__(self, root: Path, quota_bytes: int | None = None) -> None:
        if quota_bytes is not None and quota_bytes <= 0:
            raise ValueError(f"the store quota must be positive, got {quota_bytes}")
        self.root = Path(root)
        self.quota_bytes = quota_bytes
        self._used_lock = threading.Lock()
        self._used: int | None = None
        self._blocks = self.root / BLOCKS_DIR
        self._tmp = self.root / TMP_DIR
        self._blocks.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._pins_path = self.root / PINS_FILE
        self._db_path = self.root / PACKED_DB
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_mutex = threading.Lock()
        self._shards: set[Path] = set()
        # concurrent small add_bytes calls share one commit (node.groupcommit)
        self._small_adds: GroupCommit[tuple[bytes, ImportParams, bool], str]
        self._small_adds = GroupCommit(self._add_group, max_items=GROUPED_ADDS_PER_COMMIT)
        with self._write() as db:
            for statement in _SCHEMA:
                db.execute(statement)
        self._migrate_pins_file()
        self._clean_tmp()

    # -- the packed database -------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
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
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Yield this thread's connection inside ``BEGIN IMMEDIATE``; commit (durably) on exit."""
        db = self._db()
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

    def _migrate_pins_file(self) -> None:
        """Move the pins of an older data directory (``pins.json``) into the ``pins`` table."""
        if not self._pins_path.exists():
            return
        try:
            document = json.loads(self._pins_path.read_text())
        except FileNotFoundError:  # another process migrated it meanwhile
            return
        except ValueError as exc:
            raise StoreError(f"{self._pins_path} is not valid JSON: {exc}") from None
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO pins (cid) VALUES (?)",
                [(str(cid),) for cid in document.get("recursive", [])],
            )
        with contextlib.suppress(FileNotFoundError):
            self._pins_path.unlink()
        _fsync_dir(self.root)

    # -- locking -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _repo_lock(self, *, exclusive: bool, blocking: bool = True) -> Iterator[bool]:
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

    def _clean_tmp(self) -> None:
        """Remove blocks left half-written by a crash, unless another process is writing now."""
        with self._repo_lock(exclusive=True, blocking=False) as acquired:
            if not acquired:
                return
            for leftover in self._tmp.iterdir():
                with contextlib.suppress(OSError):
                    leftover.unlink()

    # -- blocks --------------------------------------------------------------------------------

    def _block_path(self, cid: CID) -> Path:
        return self._key_path(compute_block_key(cid))

    def _key_path(self, key: str) -> Path:
        return self._blocks / key[-3:-1] / f"{key}{BLOCK_SUFFIX}"

    def _read_key(self, key: str) -> bytes | None:
        """Return the stored bytes of block ``key`` (packed first, then its file), or None."""
        # fetchall, not fetchone: a statement left unfinished keeps its read transaction
        # open, which stops WAL checkpoints (the WAL then grows and every access slows down)
        rows = self._db().execute("SELECT data FROM blocks WHERE key = ?", (key,)).fetchall()
        if rows:
            return bytes(rows[0][0])
        try:
            return self._key_path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _read_verified(self, cid: CID) -> bytes:
        data = self._read_key(compute_block_key(cid))
        if data is None:
            raise NotFoundInStore(f"block {format_cid(cid)} is not in the store")
        check_block(cid, data, stored=True)
        return data

    def _get(self, cid: CID) -> bytes:
        return self._read_verified(cid)

    def block_keys(self) -> list[tuple[str, int]]:
        """Return ``(key, size)`` of every stored block copy (packed and file), sorted."""
        found = [
            (str(key), int(size))
            for key, size in self._db().execute("SELECT key, length(data) FROM blocks")
        ]
        for shard in self._blocks.iterdir():
            if shard.is_dir():
                for block in shard.iterdir():
                    found.append((block.name.removesuffix(BLOCK_SUFFIX), block.stat().st_size))
        return sorted(found)

    # -- space ---------------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Return the bytes of stored blocks (packed and files), counted once, then kept up to
        date by writes (a block stored again may count twice until the next ``gc``)."""
        with self._used_lock:
            if self._used is None:
                self._used = sum(size for _, size in self.block_keys())
            return self._used

    def _reserve(self, incoming: int) -> None:
        """Count ``incoming`` bytes as used; raise ``StoreFull`` (counting nothing) if they do
        not fit in the quota."""
        self.used_bytes()  # counted once
        with self._used_lock:
            used = self._used or 0
            if self.quota_bytes is not None and used + incoming > self.quota_bytes:
                raise StoreFull(used, incoming, self.quota_bytes)
            self._used = used + incoming

    def _recount(self) -> None:
        """Forget the running count: the next use counts the stored blocks again."""
        with self._used_lock:
            self._used = None

    def usage(self) -> dict[str, Any]:
        """Return where the blocks are, the bytes they use, the quota and whether it is reached."""
        used = self.used_bytes()
        quota = self.quota_bytes
        return {
            "path": str(self.root),
            "used_bytes": used,
            "quota_bytes": quota,
            "full": quota is not None and used >= quota,
        }

    def _write_block(
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
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, suffix=".tmp")
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

    def _stage_block(
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
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, suffix=".tmp")
        staged.append((tmp_name, path))
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)

    def _commit_staged(self, staged: list[tuple[str, Path]], touched: set[Path]) -> None:
        """Make staged blocks durable (one ``syncfs``), then rename them into place.

        A block appears under its final name only once its bytes are on disk; ``staged`` shrinks
        as blocks are renamed, so on an error the caller removes exactly the leftovers.
        """
        if not staged:
            return
        _sync_files(self._tmp, [name for name, _ in staged])
        while staged:
            tmp_name, path = staged[0]
            os.replace(tmp_name, path)
            staged.pop(0)
            touched.add(path.parent)

    def _import(self, run: Callable[[BlockSink], DagLink], *, pin: bool, only_hash: bool) -> str:
        return self._import_many([run], pin=pin, only_hash=only_hash)[0]

    def _import_many(
        self,
        runs: Sequence[Callable[[BlockSink], DagLink]],
        *,
        pin: bool | Sequence[bool],
        only_hash: bool,
    ) -> list[str]:
        """Import every ``run`` (one root each; ``pin``: all, or per run); their small blocks
        and pins are committed together in one SQLite transaction at the end (one fsync)."""
        if only_hash:
            return [format_cid_bytes(run(lambda cid, data: None).cid) for run in runs]
        with self._repo_lock(exclusive=False):
            touched: set[Path] = set()
            staged: list[tuple[str, Path]] = []
            packed: dict[str, bytes] = {}
            packed_bytes = 0

            def sink(cid_bytes: bytes, data: bytes) -> None:
                nonlocal packed_bytes
                self._reserve(len(data))
                mh = compute_multihash_of_cid_bytes(cid_bytes)
                key = compute_block_key_from_multihash(mh)
                if len(data) <= PACKED_BLOCK_MAX:
                    packed[key] = data
                    packed_bytes += len(data)
                    if packed_bytes >= PACKED_BYTES_PER_COMMIT:
                        with self._write() as db:
                            insert_rows(db, _PUT_BLOCKS, packed.items(), 2)
                        packed.clear()
                        packed_bytes = 0
                    return
                path = self._key_path(key)
                self._stage_block(path, data, staged, lambda old: _sha256_mh(old) == mh)
                if len(staged) >= STAGED_BLOCKS_PER_SYNC:
                    self._commit_staged(staged, touched)

            try:
                roots = [format_cid_bytes(run(sink).cid) for run in runs]
                self._commit_staged(staged, touched)
            except BaseException:
                for tmp_name, _ in staged:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp_name)
                # blocks committed before the failure stay (valid, unpinned: gc removes them)
                self._recount()
                raise
            for directory in touched:
                _fsync_dir(directory)
            # the packed blocks are re-hashed by construction (their keys were computed from
            # their bytes), so a stored copy is replaced: that also repairs a corrupted one
            with self._write() as db:
                insert_rows(db, _PUT_BLOCKS, packed.items(), 2)
                pins = [pin] * len(roots) if isinstance(pin, bool) else list(pin)
                db.executemany(
                    "INSERT OR IGNORE INTO pins (cid) VALUES (?)",
                    [(r,) for r, p in zip(roots, pins, strict=True) if p],
                )
        return roots

    # -- BlockStore ----------------------------------------------------------------------------

    def add_bytes(
        self,
        data: bytes,
        *,
        cid_version: int = 1,
        pin: bool = True,
        only_hash: bool = False,
        raw_leaves: bool | None = None,
    ) -> str:
        """Return the CID of ``data`` imported as a UnixFS file, exactly as kubo's ``ipfs add``.

        ``raw_leaves=None`` is kubo's default (raw leaves with CIDv1 only).
        Raises ``StoreError`` for an unknown ``cid_version``.
        """
        params = ImportParams(cid_version=cid_version, raw_leaves=raw_leaves)
        if not only_hash and len(data) <= GROUPED_ADD_MAX:  # one commit with concurrent adds
            return self._small_adds.submit((data, params, pin))
        return self._import(
            lambda sink: import_bytes(data, params, sink), pin=pin, only_hash=only_hash
        )

    def _add_group(self, group: list[tuple[bytes, ImportParams, bool]]) -> list[str]:
        """Import a group of small ``add_bytes`` calls: one SQLite commit for all of them."""
        runs = [functools.partial(import_bytes, data, params) for data, params, _ in group]
        return self._import_many(runs, pin=[pin for _, _, pin in group], only_hash=False)

    def add_many(
        self,
        datas: Sequence[bytes],
        *,
        cid_version: int = 1,
        pin: bool = True,
        raw_leaves: bool | None = None,
    ) -> list[str]:
        """Return the CIDs of ``datas``, each imported as ``add_bytes`` would, stored (and
        pinned) in one durable write: one SQLite commit for all their small blocks and pins.
        """
        params = ImportParams(cid_version=cid_version, raw_leaves=raw_leaves)
        runs = [
            (lambda sink, data=data: import_bytes(data, params, sink))  # type: ignore[misc]
            for data in datas
        ]
        return self._import_many(runs, pin=pin, only_hash=False)

    def add_path(
        self,
        path: Path,
        *,
        cid_version: int = 1,
        pin: bool = True,
        only_hash: bool = False,
        hidden: bool = False,
        raw_leaves: bool | None = None,
    ) -> str:
        """Return the root CID of a file, symlink or directory (recursive), streamed from disk.

        Dot-files inside directories are skipped unless ``hidden`` (kubo's default); ``raw_leaves``
        as in ``add_bytes``. Raises
        ``NotFoundInStore`` if ``path`` does not exist, ``DirectoryTooLarge`` for directories kubo
        would shard, ``StoreError`` for special files.
        """
        path = Path(path)
        if not os.path.lexists(path):
            raise NotFoundInStore(f"{path} does not exist")
        params = ImportParams(cid_version=cid_version, hidden=hidden, raw_leaves=raw_leaves)
        return self._import(
            lambda sink: import_path(path, params, sink), pin=pin, only_hash=only_hash
        )

    def add_tree(
        self,
        tree: FileTree,
        *,
        cid_version: int = 1,
        pin: bool = True,
        only_hash: bool = False,
        raw_leaves: bool | None = None,
    ) -> str:
        """Return the root CID of an in-memory directory tree (name -> bytes or sub-tree),
        the CID ``add_path`` gives the same files on disk; stored and pinned the same way.

        Raises ``DirectoryTooLarge`` for directories kubo would shard.
        """
        params = ImportParams(cid_version=cid_version, raw_leaves=raw_leaves)
        return self._import(
            lambda sink: import_tree(tree, params, sink), pin=pin, only_hash=only_hash
        )

    def cat(self, cid: str, path: str = "") -> bytes:
        """Return the whole content of the file at ``cid``/``path``.

        Raises ``InvalidCID``, ``NotFoundInStore``, ``IsADirectory``, ``BlockCorrupted``.
        """
        return b"".join(self.iter_cat(cid, path))

    def iter_cat(
        self, cid: str, path: str = "", *, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """Return an iterator over bytes ``[offset, offset + length)`` of the file ``cid``/``path``.

        The path is resolved and the root checked before returning, so those errors are raised
        here: ``InvalidCID``, ``NotFoundInStore``, ``IsADirectory``, ``BlockCorrupted``.
        """
        if offset < 0 or (length is not None and length < 0):
            raise StoreError("offset and length must not be negative")
        target = resolve_path(self._get, parse_cid(cid), path)
        if decode_node(target, self._get(target)).kind == "dir":
            raise IsADirectory(f"{format_cid(target)} is a directory")
        return iter_file_range(self._get, target, offset, length)

    def get_block(self, cid: str) -> bytes:
        """Return the bytes of block ``cid``; raises ``NotFoundInStore`` or ``BlockCorrupted``."""
        return self._read_verified(parse_cid(cid))

    def put_block(self, cid: str, data: bytes) -> None:
        """Store ``data`` as block ``cid``; raises ``BlockMismatch`` if it does not hash to it.

        A corrupted stored copy is replaced (that is how a block is repaired)."""
        parsed = parse_cid(cid)
        check_block(parsed, data, stored=False)
        self._reserve(len(data))
        try:
            self._put_block(parsed, data)
        except BaseException:
            self._recount()
            raise

    def _put_block(self, parsed: CID, data: bytes) -> None:
        with self._repo_lock(exclusive=False):
            if len(data) <= PACKED_BLOCK_MAX:
                with self._write() as db:
                    insert_rows(db, _PUT_BLOCKS, [(compute_block_key(parsed), data)], 2)
                return
            touched: set[Path] = set()
            self._write_block(
                self._block_path(parsed), data, touched, lambda old: is_block_valid(parsed, old)
            )
            for directory in touched:
                _fsync_dir(directory)

    def has(self, cid: str) -> bool:
        """Return whether block ``cid`` is stored; its bytes are re-hashed.

        Raises ``BlockCorrupted`` if the stored copy no longer matches (``put_block`` repairs it),
        ``InvalidCID`` for a malformed CID.
        """
        try:
            self._read_verified(parse_cid(cid))
        except NotFoundInStore:
            return False
        return True

    def pin(self, cid: str) -> None:
        """Pin ``cid`` recursively; raises ``NotFoundInStore`` if a block of its DAG is missing."""
        root = parse_cid(cid)
        with self._repo_lock(exclusive=False):
            self._walk(root, missing_ok=False)
            with self._write() as db:
                db.execute("INSERT OR IGNORE INTO pins (cid) VALUES (?)", (format_cid(root),))

    def pin_many(self, cids: list[str]) -> None:
        """Pin every CID of ``cids`` recursively, in one transaction; raises
        ``NotFoundInStore`` (pinning none) if a block of one of their DAGs is missing."""
        roots = [parse_cid(cid) for cid in cids]
        with self._repo_lock(exclusive=False):
            for root in roots:
                self._walk(root, missing_ok=False)
            with self._write() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO pins (cid) VALUES (?)",
                    [(format_cid(root),) for root in roots],
                )

    def unpin(self, cid: str) -> None:
        """Remove the recursive pin of ``cid``; raises ``NotFoundInStore`` if it is not pinned."""
        name = format_cid(parse_cid(cid))
        with self._write() as db:
            removed = db.execute("DELETE FROM pins WHERE cid = ?", (name,)).rowcount
        if not removed:
            raise NotFoundInStore(f"{name} is not pinned")

    def pins(self) -> list[str]:
        """Return the recursively pinned CIDs, sorted."""
        return sorted(self._read_pins())

    def stat(self, cid: str, path: str = "") -> NodeStat:
        """Return kind, size and entries of ``cid``/``path``.

        Raises ``InvalidCID``, ``NotFoundInStore``, ``NotADirectory``, ``UnsupportedNode``.
        """
        return stat_node(self._get, resolve_path(self._get, parse_cid(cid), path))

    # -- pins and garbage collection --------------------------------------------------------

    def _read_pins(self) -> set[str]:
        return {str(row[0]) for row in self._db().execute("SELECT cid FROM pins")}

    def _walk(self, root: CID, *, missing_ok: bool) -> set[str]:
        """Return the block keys of the DAG under ``root`` (missing blocks skipped if allowed)."""
        keys: set[str] = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            key = compute_block_key(cid)
            if key in keys:
                continue
            try:
                data = self._read_verified(cid)
            except NotFoundInStore:
                if not missing_ok:
                    raise
                continue
            except BlockCorrupted:
                keys.add(key)  # keep a pinned block even if damaged; it can be repaired
                continue
            keys.add(key)
            stack.extend(get_child_cids(cid, data))
        return keys

    def gc(self) -> GcReport:
        """Remove every block not reachable from a pin and return what was removed.

        Runs under the exclusive repo lock, so no import is half-way when it decides.
        """
        with self._repo_lock(exclusive=True):
            live: set[str] = set()
            for pinned in self._read_pins():
                live |= self._walk(parse_cid(pinned), missing_ok=True)
            removed = freed = kept = 0
            with self._write() as db:
                dead: list[tuple[str]] = []
                for key, size in db.execute("SELECT key, length(data) FROM blocks").fetchall():
                    if key in live:
                        kept += 1
                        continue
                    dead.append((key,))
                    removed += 1
                    freed += int(size)
                db.executemany("DELETE FROM blocks WHERE key = ?", dead)
            for shard in self._blocks.iterdir():
                if not shard.is_dir():
                    continue
                for block in shard.iterdir():
                    key = block.name.removesuffix(BLOCK_SUFFIX)
                    if key in live:
                        kept += 1
                        continue
                    size = block.stat().st_size
                    block.unlink()
                    removed += 1
                    freed += size
            self._recount()  # exact again on next use
            return GcReport(removed, freed, kept)
