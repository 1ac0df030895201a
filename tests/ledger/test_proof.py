"""Merkle tree heads and proofs against a slow reference tree (RFC 6962 section 2.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger.hasher import empty_root, hash_children, hash_leaf
from node.ledger.proof import compute_root, consistency_proof, inclusion_proof
from node.ledger.verify import (
    ProofError,
    RootMismatchError,
    verify_consistency,
    verify_inclusion,
)


def ref_root(leaves: list[bytes]) -> bytes:
    """The MTH definition, recursively, straight from the RFC."""
    n = len(leaves)
    if n == 0:
        return empty_root()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hash_children(ref_root(leaves[:k]), ref_root(leaves[k:]))


def leaves_of(n: int) -> list[bytes]:
    return [hash_leaf(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("n", range(0, 34))
def test_root_matches_reference(n: int) -> None:
    assert compute_root(leaves_of(n)) == ref_root(leaves_of(n))


def test_known_small_roots() -> None:
    a, b, c = (hash_leaf(x) for x in (b"a", b"b", b"c"))
    assert compute_root([a]) == a
    assert compute_root([a, b]) == hash_children(a, b)
    assert compute_root([a, b, c]) == hash_children(hash_children(a, b), c)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31])
def test_every_inclusion_proof_verifies(n: int) -> None:
    leaves = leaves_of(n)
    root = compute_root(leaves)
    for i in range(n):
        proof = inclusion_proof(i, leaves)
        verify_inclusion(i, n, leaves[i], proof, root)
        if proof:
            bad = list(proof)
            bad[0] = hash_leaf(b"evil")
            with pytest.raises(RootMismatchError):
                verify_inclusion(i, n, leaves[i], bad, root)
            with pytest.raises(ProofError):
                verify_inclusion(i, n, leaves[i], proof[:-1], root)  # truncated
        with pytest.raises(ProofError):
            verify_inclusion(i, n, leaves[i], [*proof, root], root)  # too long
        with pytest.raises(RootMismatchError):
            verify_inclusion(i, n, hash_leaf(b"other"), proof, root)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.data())
def test_consistency_proofs_verify(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    m = data.draw(st.integers(1, n))
    proof = consistency_proof(m, leaves)
    root1, root2 = compute_root(leaves[:m]), compute_root(leaves)
    verify_consistency(m, n, root1, root2, proof)
    if m < n:
        with pytest.raises(ProofError):
            verify_consistency(m, n, hash_leaf(b"x"), root2, proof)
        with pytest.raises(ProofError):
            verify_consistency(m, n, root1, hash_leaf(b"x"), proof)
        if proof:
            with pytest.raises(ProofError):
                verify_consistency(m, n, root1, root2, proof[:-1])


def test_consistency_edge_cases() -> None:
    leaves = leaves_of(5)
    root = compute_root(leaves)
    verify_consistency(5, 5, root, root, [])
    verify_consistency(0, 5, empty_root(), root, [])
    with pytest.raises(ProofError):
        verify_consistency(6, 5, root, root, [])
    with pytest.raises(ProofError):
        verify_consistency(2, 5, compute_root(leaves[:2]), root, [])
    with pytest.raises(ValueError):
        consistency_proof(0, leaves)
    with pytest.raises(ValueError):
        inclusion_proof(5, leaves)
