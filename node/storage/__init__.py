"""Collegium storage package: the content store (IPFS blocks, UnixFS files and directories).

``open_store`` returns a ``BlockStore``: the embedded store in ``<data dir>/ipfs`` by default, or
a kubo node through its RPC API when a URL is given. Both produce the CIDs kubo produces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from node.storage.base import BlockStore, DirEntry, NodeKind, NodeStat
from node.storage.embedded import EmbeddedStore, GcReport
from node.storage.errors import (
    BlockCorrupted,
    BlockMismatch,
    DirectoryTooLarge,
    InvalidPath,
    IsADirectory,
    KuboError,
    NotADirectory,
    UnsupportedNode,
)

EMBEDDED_SUBDIR: Final = "ipfs"

__all__ = [
    "BlockCorrupted",
    "BlockMismatch",
    "BlockStore",
    "DirEntry",
    "DirectoryTooLarge",
    "EmbeddedStore",
    "GcReport",
    "InvalidPath",
    "IsADirectory",
    "KuboError",
    "NodeKind",
    "NodeStat",
    "NotADirectory",
    "UnsupportedNode",
    "open_node_store",
    "open_store",
]


def open_store(
    data_dir: Path,
    ipfs_api: str | None = None,
    *,
    root: Path | None = None,
    quota: int | None = None,
) -> BlockStore:
    """Return the node's content store.

    With ``ipfs_api`` (a kubo RPC URL such as ``http://127.0.0.1:5001``) a ``KuboStore``; otherwise
    an ``EmbeddedStore`` in ``root`` (default ``data_dir / "ipfs"``; created if missing) that
    refuses writes past ``quota`` bytes (``StoreFull``).
    Raises ``KuboError`` if the URL is malformed.
    """
    if ipfs_api:
        from node.storage.kubo import KuboStore  # imported lazily: ipfshttpclient is heavy

        return KuboStore(ipfs_api)
    return EmbeddedStore(Path(root) if root else Path(data_dir) / EMBEDDED_SUBDIR, quota)


def open_node_store(settings: Any) -> BlockStore:
    """Return the store a node's ``Settings`` name (kubo, or the embedded store with its
    directory and quota)."""
    return open_store(
        settings.data_dir,
        settings.ipfs_api,
        root=settings.store_path,
        quota=int(settings.store_quota) if settings.store_quota else None,
    )
