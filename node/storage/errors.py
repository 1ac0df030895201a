"""Errors of the content store; all derive from :class:`node.errors.StoreError`.

``NotFoundInStore`` and ``InvalidCID`` live in :mod:`node.errors` (shared with the rest of the
node); the subclasses below are specific to the store and carry expected vs. actual values.
"""

from __future__ import annotations

from node.errors import InvalidCID, NotFoundInStore, StoreError

__all__ = [
    "BlockCorrupted",
    "BlockMismatch",
    "DirectoryTooLarge",
    "InvalidCID",
    "InvalidPath",
    "IsADirectory",
    "KuboError",
    "NotADirectory",
    "NotFoundInStore",
    "StoreError",
    "StoreFull",
    "UnsupportedNode",
]


class StoreFull(StoreError):
    """A write would take the store past the space its node donates (``store_quota``).

    Nothing of the refused write stays referenced; what was stored before is untouched.
    """

    def __init__(self, used: int, incoming: int, quota: int) -> None:
        super().__init__(
            f"the content store is full: {used} bytes used, {incoming} more would pass the "
            f"quota of {quota} bytes (raise --store-quota, or `collegium ipfs gc`)"
        )
        self.used = used
        self.incoming = incoming
        self.quota = quota


class BlockCorrupted(StoreError):
    """A stored block no longer hashes to its CID (bit rot or tampering)."""

    def __init__(self, cid: str, expected: str, actual: str) -> None:
        super().__init__(f"block {cid} is corrupted: expected digest {expected}, got {actual}")
        self.cid = cid
        self.expected = expected
        self.actual = actual


class BlockMismatch(StoreError):
    """Bytes offered for a CID (``put_block``, a peer, a kubo node) do not hash to that CID."""

    def __init__(self, cid: str, expected: str, actual: str) -> None:
        super().__init__(f"data does not match {cid}: expected digest {expected}, got {actual}")
        self.cid = cid
        self.expected = expected
        self.actual = actual


class IsADirectory(StoreError):
    """A file operation (``cat``) was asked of a UnixFS directory."""


class NotADirectory(StoreError):
    """A path was resolved through something that is not a UnixFS directory."""


class InvalidPath(StoreError):
    """A path inside a DAG is malformed or tries to escape (``..``, ``.``, NUL)."""


class UnsupportedNode(StoreError):
    """A node uses a feature this store does not implement (HAMT shards, unknown codecs)."""


class DirectoryTooLarge(StoreError):
    """A directory is so large that kubo would shard it (HAMT); not supported, so refused."""


class KuboError(StoreError):
    """The kubo RPC API answered with an error or could not be reached."""
