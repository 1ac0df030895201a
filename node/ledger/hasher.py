"""RFC 6962 / RFC 9162 tree hashing with keccak256 (so Solidity can verify proofs).

``hash_leaf(data) = keccak256(0x00 || data)`` and
``hash_children(l, r) = keccak256(0x01 || l || r)``: the domain separation of
Certificate Transparency, with Ethereum's hash function instead of SHA-256.
"""

from __future__ import annotations

from node.hashing import Hash32 as Hash32  # re-exported: proof and verify read it from here
from node.hashing import keccak256

RFC6962_LEAF_HASH_PREFIX = b"\x00"
RFC6962_NODE_HASH_PREFIX = b"\x01"
HASH_SIZE = 32


def hash_leaf(leaf: bytes) -> Hash32:
    """Return the leaf hash of ``leaf`` (prefix 0x00)."""
    return Hash32(keccak256(RFC6962_LEAF_HASH_PREFIX + leaf))


def hash_children(left: bytes, right: bytes) -> Hash32:
    """Return the interior node hash of ``left`` and ``right`` (prefix 0x01)."""
    return Hash32(keccak256(RFC6962_NODE_HASH_PREFIX + left + right))


def empty_root() -> Hash32:
    """Return the root hash of the empty tree (keccak256 of nothing)."""
    return Hash32(keccak256(b""))
