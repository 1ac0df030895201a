"""Which hashes form a proof: RFC 6962 / RFC 9162 Merkle tree heads and proofs.

All functions take the list of *leaf hashes* (``hash_leaf(leaf)``) of the log, in
order. They are O(n) in the tree size: the node answers proofs from the tree persisted in
SQL (``node.ledger.tree``, O(log n) reads); these stay the reference its tests compare with.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.ledger.hasher import Hash32, empty_root, hash_children


def compute_split(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n``. Requires n > 1."""
    assert n > 1
    return 1 << ((n - 1).bit_length() - 1)


def compute_root(leaf_hashes: Sequence[bytes]) -> Hash32:
    """Return the Merkle tree hash (MTH) of the leaves, as RFC 6962 section 2.1 defines it."""
    frontier = CompactRange()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[Hash32]:
    """Return the audit path PATH(index, D[n]). Requires 0 <= index < n."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is outside a tree of size {n}")
    if n == 1:
        return []
    k = compute_split(n)
    if index < k:
        return inclusion_proof(index, leaf_hashes[:k]) + [compute_root(leaf_hashes[k:])]
    return inclusion_proof(index - k, leaf_hashes[k:]) + [compute_root(leaf_hashes[:k])]


def consistency_proof(size1: int, leaf_hashes: Sequence[bytes]) -> list[Hash32]:
    """Return PROOF(size1, D[n]) between tree sizes. Requires 0 < size1 <= n."""
    n = len(leaf_hashes)
    if not 0 < size1 <= n:
        raise ValueError(f"consistency proof needs 0 < size1 <= size2, got {size1}, {n}")
    return _subproof(size1, leaf_hashes, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[Hash32]:
    n = len(leaves)
    if m == n:
        return [] if complete else [compute_root(leaves)]
    k = compute_split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [compute_root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [compute_root(leaves[:k])]


class CompactRange:
    """The right frontier of a growing log: append leaf hashes, read the root in O(log n)."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    @classmethod
    def of(cls, subtrees: Sequence[tuple[int, bytes]], size: int) -> CompactRange:
        """Return the compact range of a log of ``size`` leaves from its full subtrees
        ``(height, hash)``, left to right (one per set bit of ``size``, highest first)."""
        assert sum(1 << h for h, _ in subtrees) == size
        frontier = cls()
        frontier._stack = [(h, bytes(node)) for h, node in subtrees]
        frontier.size = size
        return frontier

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf hash to the log."""
        height, node = 0, bytes(leaf_hash)
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            node = hash_children(left, node)
            height += 1
        self._stack.append((height, node))
        self.size += 1

    def root(self) -> Hash32:
        """Return the Merkle tree hash of every leaf appended so far."""
        if not self._stack:
            return empty_root()
        root = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            root = hash_children(left, root)
        return Hash32(root)
