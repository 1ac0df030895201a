"""Put the bodies (leaves) of an anchor batch into the content store, pinned, in bulk.

Many bodies go in as one UnixFS directory (``<leaf index // 1000>/<leaf index>``): one import
and one pin of the directory (which pins every leaf recursively) instead of one import and one
pin per leaf. A single-chunk file with raw leaves has the raw CID of its bytes, so every leaf
keeps the CID it was given at acceptance. The embedded store builds the directory from memory
(``add_tree``); other stores (kubo) import it from a staging copy on disk (``add_path``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from node.errors import CollegiumError

DIRECTORY_IMPORT_MIN = 8  # from this many bodies, import them as one directory
LEAVES_PER_DIRECTORY = 1000  # keeps each UnixFS directory far below kubo's sharding size
RAM_SCRATCH_DIR = "/dev/shm"  # staging copies of leaves: RAM, when there is one


class LeafRow(Protocol):
    """What is needed of a pending leaf: its id, recorded CID and body."""

    tx_id: str
    cid: str
    body: bytes


def store_bodies(store: Any, rows: Sequence[LeafRow], first: int) -> None:
    """Put the bodies of ``rows`` (leaf indexes ``first``, ``first + 1``, …) into ``store``,
    pinned.

    Raises ``StoreError`` if the store fails, and ``CollegiumError`` if a body did not get
    its recorded CID.
    """
    add_tree = getattr(store, "add_tree", None)
    add_path = getattr(store, "add_path", None)
    if len(rows) < DIRECTORY_IMPORT_MIN or (add_tree is None and add_path is None):
        for row in rows:
            if not store.has(row.cid):
                store.add_bytes(row.body)
        return
    if add_tree is not None:
        tree: dict[str, dict[str, bytes]] = {}
        for leaf_index, row in enumerate(rows, first):
            tree.setdefault(str(leaf_index // LEAVES_PER_DIRECTORY), {})[str(leaf_index)] = row.body
        add_tree(tree)
    elif add_path is not None:
        scratch = RAM_SCRATCH_DIR if os.path.isdir(RAM_SCRATCH_DIR) else None
        with tempfile.TemporaryDirectory(prefix="collegium-batch-", dir=scratch) as tmp:
            root = Path(tmp) / "leaves"
            for leaf_index, row in enumerate(rows, first):
                folder = root / str(leaf_index // LEAVES_PER_DIRECTORY)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / str(leaf_index)).write_bytes(row.body)
            add_path(root)
    for row in (rows[0], rows[-1]):  # CIDs are equal by construction; spot-check it
        if not store.has(row.cid):
            raise CollegiumError(f"the store did not keep leaf {row.tx_id} as {row.cid}")
