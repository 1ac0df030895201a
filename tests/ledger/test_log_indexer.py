"""``LogIndexer`` on a real embedded store and SQLite index (the anchors rows stand for what the
chain follower indexed): batches wait for the store, a transaction in two logs is a row per
log, a leaf signed for another registry is refused, nothing of a refused batch is written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import Anchor, BusinessTransaction
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.ledger import tree
from node.ledger.batch import Batch
from node.ledger.hasher import hash_leaf
from node.ledger.logs import LogIndexer
from node.ledger.proof import CompactRange, inclusion_proof
from node.ledger.service import compute_leaf_cid, new_row
from node.ledger.transaction import BusinessTx, Domain, SignedBusinessTx, sign_tx, verify_signed_tx
from node.storage import open_store
from node.storage.base import BlockStore
from tests.support.ledger import count_log_rows

DOMAIN = Domain(31337, "0x" + "ab" * 20)
OTHER = Account.create().address
OWN = Account.create().address


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[sessionmaker[Session], BlockStore]]:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    yield make_session_factory(engine), open_store(tmp_path)
    engine.dispose()


def signed_txs(count: int, domain: Domain = DOMAIN, first_nonce: int = 0) -> list[SignedBusinessTx]:
    wallet = Account.create()
    out = []
    for nonce in range(first_nonce, first_nonce + count):
        tx = BusinessTx("main", "invoice", (OWN,), "2.5", "EUR", "", "", nonce, 1_700_000_000)
        out.append(verify_signed_tx(domain, tx, sign_tx(domain, tx, wallet.key)))
    return out


class Log:
    """Another node's log: writes batch documents (optionally into the store) and anchors."""

    def __init__(self, sessions: sessionmaker[Session], store: BlockStore) -> None:
        self.sessions, self.store = sessions, store
        self.frontier = CompactRange()
        self.hashes: list[bytes] = []

    def anchor(
        self, index: int, leaves: list[SignedBusinessTx], *, stored: bool = True,
        bad_root: bool = False,
    ) -> list[str]:  # fmt: skip
        first = self.frontier.size
        bodies = [s.encode() for s in leaves]
        cids = [compute_leaf_cid(b) for b in bodies]
        document = Batch(first, tuple(cids), tuple(range(1, len(cids) + 1))).encode()
        if stored:
            for body in bodies:
                self.store.add_bytes(body)
        batch_cid = self.store.add_bytes(document, only_hash=not stored)
        for body in bodies:
            self.frontier.append(hash_leaf(body))
            self.hashes.append(hash_leaf(body))
        root = b"\x02" * 32 if bad_root else self.frontier.root()
        with self.sessions() as session:
            session.add(
                Anchor(
                    index=index,
                    root="0x" + root.hex(),
                    tree_size=self.frontier.size,
                    count=len(bodies),
                    batch_cid=batch_cid,
                    subsystem="",
                    node=OTHER,
                    block_number=index,
                    chain_tx_hash="0x",
                )  # fmt: skip
            )
            session.commit()
        return [s.tx_id for s in leaves]

    def store_all(self, leaves: list[SignedBusinessTx]) -> None:
        for s in leaves:
            self.store.add_bytes(s.encode())


def test_batches_wait_for_the_store_then_are_indexed_in_order(
    env: tuple[sessionmaker[Session], BlockStore],
) -> None:
    sessions, store = env
    clock = Clock()
    indexer = LogIndexer(sessions=sessions, store=store, node_address=OWN, domain=DOMAIN,
                         clock=clock)  # fmt: skip
    log = Log(sessions, store)
    first, second = signed_txs(5), signed_txs(3, first_nonce=10)
    log.anchor(0, first, stored=False)  # the syncer has not fetched it yet
    log.anchor(1, second)
    assert indexer.index() == []
    assert count_log_rows(sessions, OTHER) == 0 and indexer.bad_batches == 0
    # fetched now, but the log waits out its back-off before trying again
    log.store_all(first)
    store.add_bytes(Batch(0, tuple(compute_leaf_cid(s.encode()) for s in first),
                          (1, 2, 3, 4, 5)).encode())  # fmt: skip
    assert indexer.index() == []
    clock.now += 10
    done = indexer.index()
    assert [(b.anchor_index, b.leaves) for b in done] == [(0, 5), (1, 3)]
    with sessions() as session:
        assert tree.persisted_size(session, OTHER) == 8
        for i in range(8):
            assert tree.inclusion_path(session, OTHER, i, 8) == inclusion_proof(i, log.hashes)


def test_a_transaction_in_two_logs_is_one_row_per_log_and_the_own_one_first(
    env: tuple[sessionmaker[Session], BlockStore],
) -> None:
    sessions, store = env
    shared = signed_txs(2)
    with sessions() as session:  # this node accepted the first one too (pending here)
        body = shared[0].encode()
        session.add(new_row(shared[0], body, compute_leaf_cid(body), datetime.now(UTC)))
        session.commit()
    log = Log(sessions, store)
    log.anchor(0, shared)
    LogIndexer(sessions=sessions, store=store, node_address=OWN, domain=DOMAIN).index()
    with sessions() as session:
        rows = session.scalars(
            select(BusinessTransaction).where(BusinessTransaction.tx_id == shared[0].tx_id)
        ).all()
    assert sorted(r.origin for r in rows) == ["", OTHER]
    assert count_log_rows(sessions, OTHER) == 2


@pytest.mark.parametrize("defect", ["root", "domain", "repeated"])
def test_a_bad_batch_writes_nothing_and_blocks_that_log(
    env: tuple[sessionmaker[Session], BlockStore], defect: str
) -> None:
    sessions, store = env
    log = Log(sessions, store)
    domain = Domain(31337, "0x" + "cd" * 20) if defect == "domain" else DOMAIN
    leaves = signed_txs(4, domain)
    if defect == "repeated":  # a node anchoring one signed transaction twice in its log
        leaves = [*leaves, leaves[1]]
    log.anchor(0, leaves, bad_root=defect == "root")
    log.anchor(1, signed_txs(2, first_nonce=50))
    indexer = LogIndexer(sessions=sessions, store=store, node_address=OWN, domain=DOMAIN)
    assert indexer.index() == []
    assert indexer.bad_batches == 1
    assert count_log_rows(sessions, OTHER) == 0
    with sessions() as session:
        assert tree.persisted_size(session, OTHER) == 0
