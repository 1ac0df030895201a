"""The embedded store's garbage collection: which blocks a pinned DAG reaches, and removing
every other block from the packed database and the block files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from multiformats import CID

from node.storage.cids import (
    CODEC_DAG_PB,
    compute_block_key_of_cid_bytes,
    get_codec_of_cid_bytes,
)
from node.storage.dagpb import decode_pb_node
from node.storage.embedded.repo import BLOCK_SUFFIX, BlockRepo
from node.storage.errors import BlockCorrupted, NotFoundInStore


@dataclass(frozen=True)
class GcReport:
    """What a garbage collection removed."""

    removed_blocks: int
    freed_bytes: int
    kept_blocks: int


def compute_dag_keys(read: Callable[[bytes], bytes], root: CID, *, missing_ok: bool) -> set[str]:
    """Return the block keys of the DAG under ``root``, its blocks read (and hash-checked) by
    ``read`` (given binary CIDs; missing blocks skipped if ``missing_ok``, else
    ``NotFoundInStore`` raised). Links stay binary CIDs: no ``multiformats`` object per block."""
    keys: set[str] = set()
    stack = [bytes(root)]
    while stack:
        cid = stack.pop()
        key = compute_block_key_of_cid_bytes(cid)
        if key in keys:
            continue
        try:
            data = read(cid)
        except NotFoundInStore:
            if not missing_ok:
                raise
            continue
        except BlockCorrupted:
            keys.add(key)  # keep a pinned block even if damaged; it can be repaired
            continue
        keys.add(key)
        if get_codec_of_cid_bytes(cid) == CODEC_DAG_PB:
            stack.extend(link.hash for link in decode_pb_node(data).links)
    return keys


def remove_unreachable(repo: BlockRepo, live: set[str]) -> GcReport:
    """Remove every block of ``repo`` whose key is not in ``live``; return what was removed.

    Requires the exclusive repo lock (``repo.lock(exclusive=True)``).
    """
    removed = freed = kept = 0
    with repo.write() as db:
        dead: list[tuple[str]] = []
        for key, size in db.execute("SELECT key, length(data) FROM blocks").fetchall():
            if key in live:
                kept += 1
                continue
            dead.append((key,))
            removed += 1
            freed += int(size)
        db.executemany("DELETE FROM blocks WHERE key = ?", dead)
    for shard in repo.blocks_dir.iterdir():
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
    return GcReport(removed, freed, kept)
