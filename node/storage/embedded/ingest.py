"""The embedded store's import writer: the blocks of imported DAGs made durable together.

Small blocks are packed in SQLite transactions of about ``PACKED_BYTES_PER_COMMIT`` bytes,
larger ones staged as files and made durable by one ``syncfs`` per
``STAGED_BLOCKS_PER_SYNC`` blocks, then renamed into place; the last small blocks and the
roots' pins are committed together in one SQLite transaction at the end (one fsync).
``write_blocks`` stores blocks fetched from peers the same way: one ``syncfs`` for the files,
then one SQLite commit for the small ones.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from node.sqlrows import insert_rows
from node.storage.cids import (
    check_block_bytes,
    compute_block_key_from_multihash,
    compute_block_key_of_cid_bytes,
    compute_multihash_of_cid_bytes,
    compute_sha256_multihash,
    format_cid_bytes,
)
from node.storage.embedded.repo import (
    PACKED_BLOCK_MAX,
    PACKED_BYTES_PER_COMMIT,
    PUT_BLOCKS,
    STAGED_BLOCKS_PER_SYNC,
    BlockRepo,
    fsync_dir,
    sync_dirs,
)
from node.storage.errors import BlockCorrupted
from node.storage.importer import BlockSink, DagLink


def write_dags(
    repo: BlockRepo,
    runs: Sequence[Callable[[BlockSink], DagLink]],
    *,
    pin: bool | Sequence[bool],
    reserve: Callable[[int], None],
    recount: Callable[[], None],
) -> list[str]:
    """Return the root CIDs of ``runs`` (one root each), their blocks stored in ``repo`` and
    the roots pinned (``pin``: all, or per run).

    ``reserve`` counts each block's bytes against the quota before it is written (and raises
    ``StoreFull``); on an error staged files are removed and ``recount`` is called.
    """
    with repo.lock(exclusive=False):
        touched: set[Path] = set()
        staged: list[tuple[str, Path]] = []
        packed: dict[str, bytes] = {}
        packed_bytes = 0

        def sink(cid_bytes: bytes, data: bytes) -> None:
            nonlocal packed_bytes
            reserve(len(data))
            mh = compute_multihash_of_cid_bytes(cid_bytes)
            key = compute_block_key_from_multihash(mh)
            if len(data) <= PACKED_BLOCK_MAX:
                packed[key] = data
                packed_bytes += len(data)
                if packed_bytes >= PACKED_BYTES_PER_COMMIT:
                    with repo.write() as db:
                        insert_rows(db, PUT_BLOCKS, packed.items(), 2)
                    packed.clear()
                    packed_bytes = 0
                return
            path = repo.key_path(key)
            repo.stage_block(path, data, staged, lambda old: compute_sha256_multihash(old) == mh)
            if len(staged) >= STAGED_BLOCKS_PER_SYNC:
                repo.commit_staged(staged, touched)

        try:
            roots = [format_cid_bytes(run(sink).cid) for run in runs]
            repo.commit_staged(staged, touched)
        except BaseException:
            for tmp_name, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
            # blocks committed before the failure stay (valid, unpinned: gc removes them)
            recount()
            raise
        for directory in touched:
            fsync_dir(directory)
        _commit_packed_and_pins(repo, packed, roots, pin)
    return roots


def _commit_packed_and_pins(
    repo: BlockRepo, packed: dict[str, bytes], roots: list[str], pin: bool | Sequence[bool]
) -> None:
    """Store the small blocks left in ``packed`` and pin ``roots`` in one SQLite commit."""
    # the packed blocks are re-hashed by construction (their keys were computed from
    # their bytes), so a stored copy is replaced: that also repairs a corrupted one
    with repo.write() as db:
        insert_rows(db, PUT_BLOCKS, packed.items(), 2)
        pins = [pin] * len(roots) if isinstance(pin, bool) else list(pin)
        db.executemany(
            "INSERT OR IGNORE INTO pins (cid) VALUES (?)",
            [(r,) for r, p in zip(roots, pins, strict=True) if p],
        )


def write_blocks(repo: BlockRepo, blocks: Iterable[tuple[bytes, bytes]]) -> None:
    """Store ``blocks`` (binary CID, bytes; already hash-checked) in ``repo`` in one durable
    write: files staged and made durable by one ``syncfs``, renamed into place, their
    directories fsynced, then the small blocks in one SQLite commit. A stored copy that no
    longer hashes to its CID is replaced."""
    with repo.lock(exclusive=False):
        touched: set[Path] = set()
        staged: list[tuple[str, Path]] = []
        packed: dict[str, bytes] = {}
        try:
            for cid_bytes, data in blocks:
                key = compute_block_key_of_cid_bytes(cid_bytes)
                if len(data) <= PACKED_BLOCK_MAX:
                    packed[key] = data
                    continue
                repo.stage_block(
                    repo.key_path(key), data, staged, functools.partial(_is_valid, cid_bytes)
                )
            repo.commit_staged(staged, touched)
        except BaseException:
            for tmp_name, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
            raise
        sync_dirs(touched)  # the renames: one syncfs, not one fsync per shard directory
        if packed:
            with repo.write() as db:
                insert_rows(db, PUT_BLOCKS, packed.items(), 2)


def _is_valid(cid_bytes: bytes, data: bytes) -> bool:
    try:
        check_block_bytes(cid_bytes, data, stored=True)
    except BlockCorrupted:
        return False
    return True
