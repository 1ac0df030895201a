"""Put the bodies (leaves) of an anchor batch into the content store, pinned, in bulk.

Many bodies go in as one UnixFS directory (``<leaf index // 1000>/<leaf index>``): one import
and one pin of the directory (which pins every leaf recursively) instead of one import and one
pin per leaf. A single-chunk file with raw leaves has the raw CID of its bytes, so every leaf
keeps the CID it was given at acceptance. Every store takes the directory from memory
(``BlockStore.add_tree``; kubo's stages it on disk).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from node.errors import CollegiumError

DIRECTORY_IMPORT_MIN = 8  # from this many bodies, import them as one directory
LEAVES_PER_DIRECTORY = 1000  # keeps each UnixFS directory far below kubo's sharding size


class LeafRow(Protocol):
    """What is needed of a pending leaf: its id, recorded CID and body."""

    tx_id: str
    cid: str
    body: bytes


def store_bodies(store: Any, rows: Sequence[LeafRow], first: int) -> None:
    """Put the bodies of ``rows`` (leaf indexes ``first``, ``first + 1``, …) into ``store``,
    pinned.

    ``store`` is a ``BlockStore`` (typed ``Any`` until the ledger's own ``ContentStore`` in
    ledger/protocols.py becomes ``BlockStore``: issue 17 items 2, 4).

    Bodies the store already holds pinned (the body writer stores those of single
    submissions as they are accepted) are not imported again, if the store can tell
    (``pinned``: the embedded store).

    Raises ``StoreError`` if the store fails, and ``CollegiumError`` if a body did not get
    its recorded CID.
    """
    missing = _not_pinned(store, rows, first)
    if len(missing) < DIRECTORY_IMPORT_MIN:
        for _, row in missing:
            if not store.has(row.cid):
                store.add_bytes(row.body)
        return
    tree: dict[str, dict[str, bytes]] = {}
    for leaf_index, row in missing:
        tree.setdefault(str(leaf_index // LEAVES_PER_DIRECTORY), {})[str(leaf_index)] = row.body
    store.add_tree(tree)
    for _, row in (missing[0], missing[-1]):  # CIDs are equal by construction; spot-check it
        if not store.has(row.cid):
            raise CollegiumError(f"the store did not keep leaf {row.tx_id} as {row.cid}")


def _not_pinned(store: Any, rows: Sequence[LeafRow], first: int) -> list[tuple[int, LeafRow]]:
    """Return ``(leaf index, row)`` of the ``rows`` whose bodies ``store`` does not hold
    pinned (all of them if it cannot tell)."""
    pinned = getattr(store, "pinned", None)
    held = pinned([row.cid for row in rows]) if pinned is not None and rows else set()
    return [(i, row) for i, row in enumerate(rows, first) if row.cid not in held]
