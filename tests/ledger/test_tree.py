"""The SQL-persisted Merkle tree gives exactly the proofs of the O(n) reference
(``node.ledger.proof``), at every size, whatever part of it is persisted."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from node.db.models import BusinessTransaction, MerkleNode
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.ledger import tree
from node.ledger.hasher import hash_leaf
from node.ledger.proof import compute_root, consistency_proof, inclusion_proof
from node.ledger.verify import verify_consistency, verify_inclusion

OTHER = "0x00000000000000000000000000000000000000b2"


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    with make_session_factory(engine)() as s:
        yield s
    engine.dispose()


def leaf_hashes(n: int, salt: str = "") -> list[bytes]:
    return [hash_leaf(f"{salt}{i}".encode()) for i in range(n)]


def add_leaves(session: Session, origin: str, hashes: list[bytes], first: int = 0) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "origin": origin, "leaf_index": first + i, "tx_id": f"0x{origin[-4:]}{first + i:060x}",
            "signer": "0x" + "11" * 20, "nonce": first + i, "subsystem": "s", "kind": "k",
            "amount": "1", "currency": "EUR", "memo": "", "payload": "", "timestamp": 0,
            "signature": "0x", "body": b"", "leaf_hash": "0x" + h.hex(), "cid": "c",
            "status": "anchored", "received_at": now,
        }
        for i, h in enumerate(hashes)
    ]  # fmt: skip
    if rows:
        session.execute(insert(BusinessTransaction), rows)
    session.flush()


def check_all(session: Session, origin: str, hashes: list[bytes], rng: random.Random) -> None:
    """Compare roots, inclusion and consistency proofs with the reference at many sizes."""
    n = len(hashes)
    sizes = sorted({1, 2, n, n - 1, *(rng.randint(1, n) for _ in range(6))} - {0})
    sizes = [s for s in sizes if 0 < s <= n]
    for size in sizes:
        prefix = hashes[:size]
        expected_root = compute_root(prefix)
        assert tree.root(session, origin, size) == expected_root
        assert tree.frontier(session, origin, size).root() == expected_root
        indexes = {0, size - 1, *(rng.randrange(size) for _ in range(5))}
        for i in indexes:
            path = tree.inclusion_path(session, origin, i, size)
            assert path == inclusion_proof(i, prefix), (i, size)
            verify_inclusion(i, size, prefix[i], path, expected_root)
        for size1 in {1, size, *(rng.randint(1, size) for _ in range(4))}:
            proof = tree.consistency_path(session, origin, size1, size)
            assert proof == consistency_proof(size1, prefix), (size1, size)
            verify_consistency(size1, size, compute_root(hashes[:size1]), expected_root, proof)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 15, 16, 17, 31, 33, 255, 256, 257, 300, 1000, 4097])
def test_proofs_equal_reference_unpersisted_partly_and_fully(session: Session, n: int) -> None:
    rng = random.Random(n)
    hashes = leaf_hashes(n)
    add_leaves(session, "", hashes)
    check_all(session, "", hashes, rng)  # nothing persisted: all from the leaf hashes
    partly = rng.randint(0, n)
    assert tree.catch_up(session, "", partly) == partly
    check_all(session, "", hashes, rng)
    assert tree.catch_up(session, "") == n
    assert tree.persisted_size(session, "") == n
    check_all(session, "", hashes, rng)


def test_exhaustive_small_sizes_every_index_every_pair(session: Session) -> None:
    hashes = leaf_hashes(70)
    add_leaves(session, "", hashes)
    tree.catch_up(session, "", 37)
    for size in range(1, 71):
        for i in range(size):
            assert tree.inclusion_path(session, "", i, size) == inclusion_proof(i, hashes[:size])
        for size1 in range(1, size + 1):
            assert tree.consistency_path(session, "", size1, size) == consistency_proof(
                size1, hashes[:size]
            )


def test_incremental_catch_up_in_uneven_steps_stores_every_fourth_level(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tree, "CATCH_UP_CHUNK", 64)  # several chunks per step
    rng = random.Random(7)
    hashes = leaf_hashes(5000)
    done = 0
    while done < len(hashes):
        step = min(len(hashes), done + rng.choice([1, 3, 16, 17, 250, 700]))
        add_leaves(session, "", hashes[done:step], done)
        tree.catch_up(session, "")
        done = step
    levels = dict(
        session.execute(select(MerkleNode.level, func.count()).group_by(MerkleNode.level)).all()
    )
    assert levels == {4: 5000 // 16, 8: 5000 // 256, 12: 5000 // 4096}
    # every stored node is the reference root of its leaves
    for level, idx, value in session.execute(select(MerkleNode.level, MerkleNode.idx,
                                                    MerkleNode.hash)).all():  # fmt: skip
        assert value == compute_root(hashes[idx << level : (idx + 1) << level])
    check_all(session, "", hashes, rng)


def test_logs_are_separate_and_truncate_forgets_the_rolled_back_part(session: Session) -> None:
    rng = random.Random(3)
    own, other = leaf_hashes(600), leaf_hashes(300, "other")
    add_leaves(session, "", own)
    add_leaves(session, OTHER, other)
    tree.catch_up(session, "")
    tree.catch_up(session, OTHER)
    check_all(session, OTHER, other, rng)
    check_all(session, "", own, rng)
    # roll back to 333 leaves, re-append different ones
    session.execute(
        BusinessTransaction.__table__.delete().where(
            BusinessTransaction.origin == "", BusinessTransaction.leaf_index >= 333
        )
    )
    tree.truncate(session, "", 333)
    assert tree.persisted_size(session, "") == 333
    changed = own[:333] + leaf_hashes(400, "again")[333:]
    add_leaves(session, "", changed[333:], 333)
    tree.catch_up(session, "")
    check_all(session, "", changed, rng)


def test_missing_leaf_is_an_error_not_a_wrong_proof(session: Session) -> None:
    hashes = leaf_hashes(40)
    add_leaves(session, "", hashes[:20])
    add_leaves(session, "", hashes[21:], 21)
    with pytest.raises(LookupError):
        tree.inclusion_path(session, "", 3, 40)
    with pytest.raises(LookupError):
        tree.catch_up(session, "", 40)
    with pytest.raises(ValueError):
        tree.inclusion_path(session, "", 40, 40)
