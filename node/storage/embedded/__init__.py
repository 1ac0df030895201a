"""The embedded content store: small blocks packed in SQLite, large blocks one file each.

One module per job (this ``__init__`` re-exports the public names): ``repo.py`` the blocks on
disk (packed database, block files, fsync/``syncfs``, the repo lock), ``ingest.py`` the import
writer (an import's blocks and pins made durable together), ``gc.py`` what a pin reaches and
garbage collection, ``store.py`` :class:`EmbeddedStore`, the ``BlockStore`` (UnixFS import
and export, quota, pins).

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

from node.storage.embedded.gc import GcReport
from node.storage.embedded.repo import (
    BLOCK_SUFFIX,
    BLOCKS_DIR,
    LOCK_FILE,
    PACKED_BLOCK_MAX,
    PACKED_BYTES_PER_COMMIT,
    PACKED_DB,
    PINS_FILE,
    PINS_FORMAT_VERSION,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    STAGED_BLOCKS_PER_SYNC,
    TMP_DIR,
    BlockRepo,
)
from node.storage.embedded.store import GROUPED_ADD_MAX, GROUPED_ADDS_PER_COMMIT, EmbeddedStore

__all__ = [
    "BLOCKS_DIR",
    "BLOCK_SUFFIX",
    "GROUPED_ADDS_PER_COMMIT",
    "GROUPED_ADD_MAX",
    "LOCK_FILE",
    "PACKED_BLOCK_MAX",
    "PACKED_BYTES_PER_COMMIT",
    "PACKED_DB",
    "PINS_FILE",
    "PINS_FORMAT_VERSION",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "STAGED_BLOCKS_PER_SYNC",
    "TMP_DIR",
    "BlockRepo",
    "EmbeddedStore",
    "GcReport",
]
