"""Checking proofs: RFC 9162 sections 2.1.3.2 (inclusion) and 2.1.4.2 (consistency).

Pure functions; an auditor needs only these, the leaf, and the root read on-chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.errors import CollegiumError
from node.ledger.hasher import Hash32, hash_children


class ProofError(CollegiumError):
    """A proof is malformed or does not verify."""


class RootMismatchError(ProofError):
    """The root computed from a proof differs from the expected root."""

    def __init__(self, expected: bytes, computed: bytes) -> None:
        self.expected = bytes(expected)
        self.computed = bytes(computed)
        super().__init__(f"root mismatch: expected 0x{self.expected.hex()}, "
                         f"computed 0x{self.computed.hex()}")  # fmt: skip


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> Hash32:
    """Return the root implied by an inclusion proof. Requires 0 <= index < size."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return Hash32(r)


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree (``size``, ``root``).

    Raises ``ProofError`` (``RootMismatchError`` when the proof leads to another root).
    """
    computed = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if computed != bytes(root):
        raise RootMismatchError(root, computed)


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that tree (size1, root1) is a prefix of tree (size2, root2).

    Requires 0 <= size1 <= size2. Raises ``ProofError`` / ``RootMismatchError``.
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"consistency needs 0 <= size1 <= size2, got {size1}, {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if bytes(root1) != bytes(root2):
            raise RootMismatchError(root2, root1)
        return
    if size1 == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = [bytes(p) for p in proof]
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is a node of the new tree
        path = [bytes(root1), *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != bytes(root1):
        raise RootMismatchError(root1, fr)
    if sr != bytes(root2):
        raise RootMismatchError(root2, sr)
