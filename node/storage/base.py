"""The one content-store interface; the embedded and kubo backends both implement it.

Like web3.py's providers, callers (ledger, gateway, sync, CLI) code against ``BlockStore`` only;
``node.storage.open_store`` picks the backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from node.storage.importer import FileTree

#: What a CID points at: a UnixFS file, directory or symlink, or a bare ``raw`` block (a file of
#: one chunk added with raw leaves); ``unknown`` for a directory entry whose block we lack.
NodeKind = Literal["file", "dir", "raw", "symlink", "unknown"]


@dataclass(frozen=True)
class DirEntry:
    """One entry of a UnixFS directory: name, CID, size (content bytes of files, cumulative DAG
    bytes of directories or of entries we lack) and kind."""

    name: str
    cid: str
    size: int
    kind: NodeKind


@dataclass(frozen=True)
class NodeStat:
    """What a CID (or a path under it) is: resolved CID, kind, size and directory entries.

    ``size`` is the content length for files, raw blocks and symlinks (target length) and the
    cumulative DAG size for directories. ``entries`` is empty unless ``kind == "dir"``.
    """

    cid: str
    kind: NodeKind
    size: int
    entries: tuple[DirEntry, ...] = field(default=())


@runtime_checkable
class BlockStore(Protocol):
    """A content-addressed block store with UnixFS import and read, CIDs identical to kubo's.

    Errors (all ``node.errors.StoreError``): ``InvalidCID`` for a malformed CID,
    ``NotFoundInStore`` for a CID or path we do not have, ``IsADirectory`` when ``cat`` meets a
    directory, ``BlockCorrupted`` when a stored block no longer matches its CID, ``BlockMismatch``
    when offered bytes do not match the CID they are offered for.
    """

    backend: str  # "embedded" | "kubo"

    def add_bytes(
        self, data: bytes, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        """Return the CID of ``data`` added as a UnixFS file (``ipfs add --cid-version N``)."""
        ...

    def add_path(
        self, path: Path, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        """Return the root CID of a file or directory (recursive) added as ``ipfs add -r``."""
        ...

    def add_tree(
        self, tree: FileTree, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        """Return the root CID of an in-memory directory tree (name -> bytes or sub-tree): the
        CID ``add_path`` gives the same files on disk, stored and pinned the same way."""
        ...

    def cat(self, cid: str, path: str = "") -> bytes:
        """Return the bytes of the file at ``cid`` (or ``path`` inside the directory ``cid``)."""
        ...

    def iter_cat(
        self, cid: str, path: str = "", *, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """Yield the bytes ``[offset, offset + length)`` of a file, piece by piece."""
        ...

    def get_block(self, cid: str) -> bytes:
        """Return the raw bytes of one block, checked against its CID."""
        ...

    def put_block(self, cid: str, data: bytes) -> None:
        """Store one block; raises ``BlockMismatch`` unless ``data`` hashes to ``cid``."""
        ...

    def put_blocks(self, blocks: Iterable[tuple[str, bytes]]) -> None:
        """Store ``blocks`` (CID, bytes, possibly from a generator) in one durable write;
        raises ``BlockMismatch``, storing none of them, unless each one's bytes hash to its
        CID."""
        ...

    def has(self, cid: str) -> bool:
        """Return whether the block ``cid`` is stored here (its bytes checked against the CID)."""
        ...

    def pin(self, cid: str) -> None:
        """Pin ``cid`` recursively: it and every block it links to survive garbage collection."""
        ...

    def pin_many(self, cids: list[str]) -> None:
        """Pin every CID of ``cids`` recursively; raises ``NotFoundInStore`` if a block of one
        of their DAGs is missing (the embedded store then pins none of them)."""
        ...

    def pins(self) -> list[str]:
        """Return the recursively pinned CIDs, sorted."""
        ...

    def stat(self, cid: str, path: str = "") -> NodeStat:
        """Return what ``cid`` (or ``path`` under it) is; directories list their entries."""
        ...

    def usage(self) -> dict[str, Any]:
        """Return where the blocks are, the bytes they use and the quota (what ``/health``
        shows of the store); empty when the backend keeps its own accounts (kubo)."""
        ...

    def close(self) -> None:
        """Release the store's connections (it reopens them if used again)."""
        ...
