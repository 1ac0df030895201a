"""Read and overwrite a block of an embedded store behind its back (a disk fault, an intruder),
whichever layout holds it: packed in ``blocks.sqlite`` or a file under ``blocks/``."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from node.storage.cids import compute_block_key, parse_cid


def _key(cid: str) -> str:
    return compute_block_key(parse_cid(cid))


def _file(store_root: Path, key: str) -> Path:
    return store_root / "blocks" / key[-3:-1] / f"{key}.data"


def read_stored_block(store_root: Path, cid: str) -> bytes | None:
    """Return the bytes stored for ``cid`` in the store at ``store_root`` (unchecked), or None."""
    key = _key(cid)
    with contextlib.closing(sqlite3.connect(store_root / "blocks.sqlite", timeout=30)) as db:
        row = db.execute("SELECT data FROM blocks WHERE key = ?", (key,)).fetchone()
    if row is not None:
        return bytes(row[0])
    path = _file(store_root, key)
    return path.read_bytes() if path.exists() else None


def stored_block_keys(store_root: Path) -> list[str]:
    """Return the keys of every block stored at ``store_root``, packed or in a file, sorted."""
    keys = [p.name.removesuffix(".data") for p in (store_root / "blocks").rglob("*.data")]
    if (store_root / "blocks.sqlite").exists():
        with contextlib.closing(sqlite3.connect(store_root / "blocks.sqlite", timeout=30)) as db:
            keys += [str(row[0]) for row in db.execute("SELECT key FROM blocks")]
    return sorted(keys)


def write_stored_block(store_root: Path, cid: str, data: bytes) -> None:
    """Overwrite the stored copy of ``cid`` with ``data`` (no hash check), wherever it is."""
    key = _key(cid)
    db = sqlite3.connect(store_root / "blocks.sqlite", timeout=30, isolation_level=None)
    with contextlib.closing(db):
        changed = db.execute("UPDATE blocks SET data = ? WHERE key = ?", (data, key)).rowcount
    if not changed:
        path = _file(store_root, key)
        if not path.exists():
            raise FileNotFoundError(f"block {cid} is not stored under {store_root}")
        path.write_bytes(data)


class StoredBlock:
    """One block of a store on disk, read and written like a file (``read_bytes``,
    ``write_bytes``) whichever layout holds it."""

    def __init__(self, store_root: Path, cid: str) -> None:
        self.store_root = store_root
        self.cid = cid

    def read_bytes(self) -> bytes:
        """Return the stored bytes (unchecked); raises ``FileNotFoundError`` if absent."""
        data = read_stored_block(self.store_root, self.cid)
        if data is None:
            raise FileNotFoundError(f"block {self.cid} is not stored under {self.store_root}")
        return data

    def write_bytes(self, data: bytes) -> None:
        """Overwrite the stored copy (no hash check)."""
        write_stored_block(self.store_root, self.cid, data)
