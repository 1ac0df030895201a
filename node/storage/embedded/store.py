"""The embedded store's ``BlockStore``: UnixFS import and export, quota, pins and garbage
collection over the blocks on disk (:class:`~node.storage.embedded.repo.BlockRepo`).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from multiformats import CID

from node.groupcommit import GroupCommit
from node.sqlrows import insert_rows
from node.storage.base import NodeStat
from node.storage.cids import (
    check_block,
    check_block_bytes,
    compute_block_key,
    compute_block_key_of_cid_bytes,
    compute_cid_bytes_of_name,
    format_cid,
    format_cid_bytes,
    is_block_valid,
    parse_cid,
)
from node.storage.embedded.gc import GcReport, compute_dag_keys, remove_unreachable
from node.storage.embedded.ingest import write_blocks, write_dags
from node.storage.embedded.repo import (
    PACKED_BLOCK_MAX,
    PUT_BLOCKS,
    BlockRepo,
    fsync_dir,
)
from node.storage.errors import (
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
    iter_file_range,
    resolve_path,
    stat_node,
)

GROUPED_ADD_MAX: Final = 64 * 1024  # add_bytes of at most this joins concurrent adds' commit
GROUPED_ADDS_PER_COMMIT: Final = 256


PINNED_QUERY_CHUNK = 500  # CIDs per query of ``pinned`` (SQLite's bound parameters)


class EmbeddedStore:
    """A kubo-compatible block store in a local directory (see :mod:`node.storage.embedded`)."""

    backend = "embedded"

    def __init__(self, root: Path, quota_bytes: int | None = None) -> None:
        if quota_bytes is not None and quota_bytes <= 0:
            raise ValueError(f"the store quota must be positive, got {quota_bytes}")
        self.root = Path(root)
        self.quota_bytes = quota_bytes
        self._used_lock = threading.Lock()
        self._used: int | None = None
        self._repo = BlockRepo(self.root)
        # concurrent small add_bytes calls share one commit (node.groupcommit)
        self._small_adds: GroupCommit[tuple[bytes, ImportParams, bool], str]
        self._small_adds = GroupCommit(self._add_group, max_items=GROUPED_ADDS_PER_COMMIT)

    def close(self) -> None:
        """Close the connections to the packed database (the store reopens them if used)."""
        self._repo.close()

    def block_keys(self) -> list[tuple[str, int]]:
        """Return ``(key, size)`` of every stored block copy (packed and file), sorted."""
        return self._repo.block_keys()

    # -- blocks --------------------------------------------------------------------------------

    def _read_verified(self, cid: CID) -> bytes:
        return self._read_verified_bytes(bytes(cid))

    def _get(self, cid: CID) -> bytes:
        return self._read_verified(cid)

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
        return write_dags(self._repo, runs, pin=pin, reserve=self._reserve, recount=self._recount)

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
        # no CID object: a CAR reads every block of a DAG this way
        return self._read_verified_bytes(compute_cid_bytes_of_name(cid))

    def _read_verified_bytes(self, cid_bytes: bytes) -> bytes:
        data = self._repo.read_key(compute_block_key_of_cid_bytes(cid_bytes))
        if data is None:
            raise NotFoundInStore(f"block {format_cid_bytes(cid_bytes)} is not in the store")
        check_block_bytes(cid_bytes, data, stored=True)
        return data

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

    def put_blocks(self, blocks: Iterable[tuple[str, bytes]]) -> None:
        """Store ``blocks`` (CID, bytes) in one durable write (one ``syncfs`` for the large
        ones, one SQLite commit for the small ones); raises ``BlockMismatch``, storing none,
        unless each hashes to its CID, ``StoreFull`` (storing none) beyond the quota.

        ``blocks`` may be a generator: each block is checked and its file written as it comes,
        and all of them are made durable and put in place once it ends."""

        def checked() -> Iterator[tuple[bytes, bytes]]:
            for cid, data in blocks:
                cid_bytes = compute_cid_bytes_of_name(cid)
                check_block_bytes(cid_bytes, data, stored=False)
                self._reserve(len(data))
                yield cid_bytes, data

        try:
            write_blocks(self._repo, checked())
        except BaseException:
            self._recount()
            raise

    def _put_block(self, parsed: CID, data: bytes) -> None:
        with self._repo.lock(exclusive=False):
            if len(data) <= PACKED_BLOCK_MAX:
                with self._repo.write() as db:
                    insert_rows(db, PUT_BLOCKS, [(compute_block_key(parsed), data)], 2)
                return
            touched: set[Path] = set()
            self._repo.write_block(
                self._repo.block_path(parsed),
                data,
                touched,
                lambda old: is_block_valid(parsed, old),
            )
            for directory in touched:
                fsync_dir(directory)

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
        with self._repo.lock(exclusive=False):
            self._walk(root, missing_ok=False)
            with self._repo.write() as db:
                db.execute("INSERT OR IGNORE INTO pins (cid) VALUES (?)", (format_cid(root),))

    def pin_many(self, cids: list[str]) -> None:
        """Pin every CID of ``cids`` recursively, in one transaction; raises
        ``NotFoundInStore`` (pinning none) if a block of one of their DAGs is missing."""
        roots = [parse_cid(cid) for cid in cids]
        with self._repo.lock(exclusive=False):
            for root in roots:
                self._walk(root, missing_ok=False)
            with self._repo.write() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO pins (cid) VALUES (?)",
                    [(format_cid(root),) for root in roots],
                )

    def unpin(self, cid: str) -> None:
        """Remove the recursive pin of ``cid``; raises ``NotFoundInStore`` if it is not pinned."""
        name = format_cid(parse_cid(cid))
        with self._repo.write() as db:
            removed = db.execute("DELETE FROM pins WHERE cid = ?", (name,)).rowcount
        if not removed:
            raise NotFoundInStore(f"{name} is not pinned")

    def pinned(self, cids: Sequence[str]) -> set[str]:
        """Return those of ``cids`` (canonical CID strings) pinned here as roots of their own:
        stored, every block of their DAGs with them (a pin is committed with its blocks)."""
        found: set[str] = set()
        db = self._repo.db()
        for start in range(0, len(cids), PINNED_QUERY_CHUNK):
            part = cids[start : start + PINNED_QUERY_CHUNK]
            marks = ",".join("?" * len(part))
            found.update(
                str(row[0])
                for row in db.execute(f"SELECT cid FROM pins WHERE cid IN ({marks})", part)
            )
        return found

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
        return {str(row[0]) for row in self._repo.db().execute("SELECT cid FROM pins")}

    def _walk(self, root: CID, *, missing_ok: bool) -> set[str]:
        """Return the block keys of the DAG under ``root`` (missing blocks skipped if allowed)."""
        return compute_dag_keys(self._read_verified_bytes, root, missing_ok=missing_ok)

    def gc(self) -> GcReport:
        """Remove every block not reachable from a pin and return what was removed.

        Runs under the exclusive repo lock, so no import is half-way when it decides.
        """
        with self._repo.lock(exclusive=True):
            live: set[str] = set()
            for pinned in self._read_pins():
                live |= self._walk(parse_cid(pinned), missing_ok=True)
            report = remove_unreachable(self._repo, live)
            self._recount()  # exact again on next use
            return report
