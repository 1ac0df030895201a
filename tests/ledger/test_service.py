"""Unit tests of the ledger service's write order and recovery.

The registry and the store are in-memory fakes here on purpose: this tests the
service's own logic (nothing written on bad input, pending rows finished exactly once
after a crash). The real chain and store are exercised in tests/api and tests/cli.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import func, select

from node.db.models import Anchor, BusinessTransaction, TransactionStatus
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.errors import ChainError, CollegiumError, ValidationError
from node.ledger.batch import Batch, decode_batch
from node.ledger.participants import ParticipantCache
from node.ledger.proof import compute_root
from node.ledger.service import (
    LedgerService,
    NotAParticipant,
    ReplayedTransaction,
    SignerMismatch,
    Submission,
    TxFilter,
    UnknownSubsystem,
    compute_leaf_cid,
    compute_micros,
)
from node.ledger.transaction import BusinessTx, Domain, sign_tx
from node.ledger.verify import verify_consistency, verify_inclusion
from tests.db.postgres import postgres_server, postgres_url  # noqa: F401


@dataclasses.dataclass
class FakeAnchor:
    root: bytes
    tree_size: int
    count: int
    batch_cid: str
    subsystem: str
    node: str
    block_number: int
    index: int
    tx_hash: bytes


@dataclasses.dataclass
class FakeReceipt:
    tx_hash: bytes
    block_number: int
    index: int


class FakeRegistry:
    def __init__(self, node: str) -> None:
        self.node = node
        self.anchors: list[FakeAnchor] = []
        self.fail = False
        self.members: set[str] | None = None  # None: everyone participates
        self.participant_calls = 0

    def subsystem_exists(self, name: str) -> bool:
        return name == "main"

    def is_participant(self, name: str, account: str) -> bool:
        self.participant_calls += 1
        return self.members is None or account in self.members

    def anchor(self, subsystem: str, root: bytes, tree_size: int, count: int, cid: str) -> Any:
        if self.fail:
            raise ChainError("chain unreachable")
        index = len(self.anchors)
        tx_hash = bytes([index + 1]) * 32
        self.anchors.append(
            FakeAnchor(root, tree_size, count, cid, subsystem, self.node, 10, index, tx_hash)
        )
        return FakeReceipt(tx_hash, 10, index)

    def get_anchor(self, index: int) -> FakeAnchor:
        return self.anchors[index]

    def own_anchors(self, node: str, from_block: int = 0) -> list[FakeAnchor]:
        return [
            a
            for a in self.anchors
            if a.node.lower() == node.lower() and a.block_number >= from_block
        ]


class FakeStore:
    backend = "fake"

    def __init__(self) -> None:
        self.blocks: dict[str, bytes] = {}

    def add_bytes(
        self, data: bytes, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        cid = compute_leaf_cid(data)
        if not only_hash:
            self.blocks[cid] = data
        return cid

    def add_tree(
        self,
        tree: Mapping[str, Any],
        *,
        cid_version: int = 1,
        pin: bool = True,
        only_hash: bool = False,
    ) -> str:
        for folder in tree.values():
            for body in folder.values():
                self.add_bytes(body, only_hash=only_hash)
        return ""

    def cat(self, cid: str, path: str = "") -> bytes:
        return self.blocks[cid]

    def has(self, cid: str) -> bool:
        return cid in self.blocks


@pytest.fixture(params=["sqlite", "postgresql"])
def parts(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The service over SQLite and over a real PostgreSQL (skipped, with the reason, when
    the server or the driver is absent: see tests/db/postgres.py)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    sessions = make_session_factory(engine)
    node = Account.create().address
    registry, store = FakeRegistry(node), FakeStore()
    domain = Domain(1337, "0x" + "11" * 20)
    service = LedgerService(
        session_factory=sessions, store=store, registry=registry, domain=domain, node_address=node
    )
    yield service, registry, store, sessions
    engine.dispose()


def signed(service: LedgerService, wallet: Any, **changes: Any) -> tuple[BusinessTx, bytes]:
    tx = BusinessTx("main", "payment", (), "10", "EUR", "", "", 1, 1_764_000_000)
    tx = dataclasses.replace(tx, **changes)
    return tx, sign_tx(service.domain, tx, wallet.key)


def count_rows(sessions: Any) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(BusinessTransaction)))


def test_submit_stores_then_anchor_batches(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet = Account.create()
    rows = []
    for n in range(3):
        tx, sig = signed(service, wallet, nonce=n)
        rows.append(service.submit(tx, sig, wallet.address))
    assert all(r.status == TransactionStatus.PENDING for r in rows)
    assert all(store.blocks[r.cid] == r.body for r in rows)  # body stored at acceptance
    anchor = service.anchor_pending()
    assert anchor is not None and anchor.tree_size == 3 and anchor.count == 3
    assert service.anchor_pending() is None
    on_chain = registry.anchors[0]
    leaves = [bytes.fromhex(r.leaf_hash[2:]) for r in rows]
    assert on_chain.root == compute_root(leaves)
    assert decode_batch(store.blocks[on_chain.batch_cid]).leaf_cids == tuple(r.cid for r in rows)
    for i, r in enumerate(rows):
        bundle = service.inclusion(r.tx_id)
        assert bundle is not None and bundle.leaf_index == i and bundle.tree_size == 3
        verify_inclusion(
            i, 3, leaves[i], [bytes.fromhex(p[2:]) for p in bundle.path], on_chain.root
        )
    # a second batch extends the same log; consistency between the heads verifies
    tx, sig = signed(service, wallet, nonce=9)
    service.submit(tx, sig, wallet.address)
    second = service.anchor_pending()
    assert second is not None and second.tree_size == 4 and second.count == 1
    proof = [bytes.fromhex(p[2:]) for p in service.consistency(3, 4)]
    verify_consistency(3, 4, registry.anchors[0].root, registry.anchors[1].root, proof)


def test_rejections_write_nothing(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet, other = Account.create(), Account.create()
    tx, sig = signed(service, wallet)
    with pytest.raises(SignerMismatch):
        service.submit(tx, sig, other.address)
    bad_tx, bad_sig = signed(service, wallet, subsystem="nope")
    with pytest.raises(UnknownSubsystem):
        service.submit(bad_tx, bad_sig, wallet.address)
    with pytest.raises(ValidationError):
        service.submit(dataclasses.replace(tx, amount="1.0"), sig, wallet.address)
    assert count_rows(sessions) == 0 and not store.blocks and not registry.anchors
    service.submit(tx, sig, wallet.address)
    with pytest.raises(ReplayedTransaction):
        service.submit(tx, sig, wallet.address)
    tx2, sig2 = signed(service, wallet, amount="11")  # same nonce, other content
    with pytest.raises(ReplayedTransaction):
        service.submit(tx2, sig2, wallet.address)
    assert count_rows(sessions) == 1 and len(store.blocks) == 1


def test_chain_failure_keeps_pending_then_retry(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet = Account.create()
    registry.fail = True
    tx, sig = signed(service, wallet)
    row = service.submit(tx, sig, wallet.address)
    with pytest.raises(ChainError):
        service.anchor_pending()
    assert service.get(row.tx_id).status == TransactionStatus.PENDING  # type: ignore[union-attr]
    registry.fail = False
    assert service.anchor_pending() is not None
    assert service.get(row.tx_id).status == TransactionStatus.ANCHORED  # type: ignore[union-attr]
    assert len(registry.anchors) == 1


def test_recover_adopts_anchor_sent_before_crash(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet = Account.create()
    rows = []
    for n in range(2):
        tx, sig = signed(service, wallet, nonce=n)
        rows.append(service.submit(tx, sig, wallet.address))
    # the anchor reached the chain, then the process died before the SQL update
    batch = Batch(0, tuple(r.cid for r in rows)).encode()
    batch_cid = store.add_bytes(batch)
    root = compute_root([bytes.fromhex(r.leaf_hash[2:]) for r in rows])
    receipt = registry.anchor("", root, 2, 2, batch_cid)
    assert service.recover() == 2
    assert service.anchor_pending() is None  # nothing anchored twice
    assert len(registry.anchors) == 1
    for i, r in enumerate(rows):
        got = service.get(r.tx_id)
        assert got is not None and got.leaf_index == i and got.anchor_index == 0
    with sessions() as s:  # the adopted anchor names the chain transaction that made it
        adopted = s.get(Anchor, 0)
        assert adopted is not None and adopted.chain_tx_hash == "0x" + receipt.tx_hash.hex()
    assert service.recover() == 0  # adopted once


def test_recover_skips_other_nodes_and_starts_after_the_newest_own_anchor(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet = Account.create()
    tx, sig = signed(service, wallet, nonce=0)
    service.submit(tx, sig, wallet.address)
    assert service.anchor_pending() is not None  # anchor 0, recorded in SQL
    # another node's anchor (its batch is nowhere: adopting it would fail)
    registry.anchors.append(
        FakeAnchor(b"\x09" * 32, 3, 3, "nowhere", "", "0x" + "ab" * 20, 11, 1, b"\x02" * 32)
    )
    assert service.recover() == 0
    tx, sig = signed(service, wallet, nonce=1)
    row = service.submit(tx, sig, wallet.address)
    batch_cid = store.add_bytes(Batch(1, (row.cid,)).encode())  # crash after anchor 2
    registry.anchor("", b"\x07" * 32, 2, 1, batch_cid)
    assert service.recover() == 1
    got = service.get(row.tx_id)
    assert got is not None and got.leaf_index == 1 and got.anchor_index == 2


def test_recover_looks_below_the_block_of_the_newest_own_anchor(parts: Any) -> None:
    """A reorg can mine this node's newest recorded anchor again in a lower block, and the
    anchor after it too: recovery looks a reorg window below the block it recorded."""
    service, registry, store, sessions = parts
    wallet = Account.create()
    tx, sig = signed(service, wallet, nonce=0)
    service.submit(tx, sig, wallet.address)
    assert service.anchor_pending() is not None  # recorded at block 10
    tx, sig = signed(service, wallet, nonce=1)
    row = service.submit(tx, sig, wallet.address)
    batch_cid = store.add_bytes(Batch(1, (row.cid,)).encode())
    registry.anchor("", b"\x07" * 32, 2, 1, batch_cid)
    registry.anchors[-1].block_number = 4  # then the crash
    assert service.recover(from_block=0) == 1
    got = service.get(row.tx_id)
    assert got is not None and got.leaf_index == 1 and got.anchor_index == 1


def test_recover_refuses_a_foreign_batch(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet = Account.create()
    tx, sig = signed(service, wallet)
    service.submit(tx, sig, wallet.address)
    batch_cid = store.add_bytes(Batch(5, ("fake-unknown",)).encode())
    registry.anchor("", b"\x00" * 32, 6, 1, batch_cid)
    with pytest.raises(CollegiumError, match="does not match"):
        service.recover()


def test_list_filters_and_cursor(parts: Any) -> None:
    service, _, _, _ = parts
    wallet = Account.create()
    party = Account.create().address
    for n in range(5):
        tx, sig = signed(
            service, wallet, nonce=n, kind="invoice" if n % 2 else "payment", parties=(party,)
        )
        service.submit(tx, sig, wallet.address)
    service.anchor_pending()
    page = service.list(limit=2)
    assert [r.nonce for r in page.items] == [4, 3]
    page2 = service.list(limit=2, before=page.next_cursor)
    assert [r.nonce for r in page2.items] == [2, 1]
    assert [r.nonce for r in service.list(kind="invoice").items] == [3, 1]
    assert len(service.list(party=party).items) == 5
    assert service.list(party=Account.create().address).items == []
    assert service.count() == {"anchored": 5}


def test_only_participants_may_sign_and_answers_are_cached(parts: Any) -> None:
    service, registry, store, sessions = parts
    member, outsider = Account.create(), Account.create()
    registry.members = {member.address}
    clock = [0.0]
    service.participants = ParticipantCache(registry, ttl=10, clock=lambda: clock[0])
    tx, sig = signed(service, outsider)
    with pytest.raises(NotAParticipant, match="not a participant of 'main'"):
        service.submit(tx, sig, outsider.address)
    assert count_rows(sessions) == 0 and not store.blocks
    for n in range(3):
        tx, sig = signed(service, member, nonce=n)
        service.submit(tx, sig, member.address)
    assert registry.participant_calls == 2  # outsider once, member once: then cached
    registry.members = set()  # removed on-chain
    tx, sig = signed(service, member, nonce=10)
    service.submit(tx, sig, member.address)  # still cached
    service.participants.invalidate("main", member.address)  # what the follower does
    tx, sig = signed(service, member, nonce=11)
    with pytest.raises(NotAParticipant):
        service.submit(tx, sig, member.address)
    registry.members = {member.address}
    clock[0] += 11  # the TTL expires even without the follower
    service.submit(tx, sig, member.address)


def test_submit_many_commits_good_items_and_reports_bad_ones(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet, other = Account.create(), Account.create()
    done = service.submit(*signed(service, wallet, nonce=100), wallet.address)
    items = [
        Submission(*signed(service, wallet, nonce=0), wallet.address),
        Submission(*signed(service, wallet, nonce=0, amount="3"), wallet.address),  # dup nonce
        Submission(*signed(service, wallet, nonce=1), other.address),  # claimed signer wrong
        Submission(*signed(service, wallet, nonce=100), wallet.address),  # replay of `done`
        Submission(*signed(service, wallet, nonce=2, subsystem="nope"), wallet.address),
        Submission(*signed(service, wallet, nonce=3), wallet.address),
    ]
    results = service.submit_many(items)
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "AcceptedTx", "ReplayedTransaction", "SignerMismatch", "ReplayedTransaction",
        "UnknownSubsystem", "AcceptedTx",
    ]  # fmt: skip
    assert count_rows(sessions) == 3
    assert service.anchor_pending() is not None  # the anchorer stores the bodies first
    for r in results[0], results[5]:
        assert store.blocks[r.cid] == r.body  # type: ignore[union-attr]
    assert service.get(done.tx_id).leaf_index == 0  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="at most"):
        service.submit_many([items[0]] * 1001)


def test_time_and_anchor_filters(parts: Any) -> None:
    service, _, _, _ = parts
    wallet = Account.create()
    for n, stamp in enumerate((100, 200, 300)):
        service.submit(*signed(service, wallet, nonce=n, timestamp=stamp), wallet.address)
        service.anchor_pending()
    assert [r.timestamp for r in service.list(since=200).items] == [300, 200]
    assert [r.timestamp for r in service.list(until=200).items] == [100]
    assert [r.timestamp for r in service.list(anchor=1).items] == [200]
    assert [r.timestamp for r in service.iter_all(TxFilter(since=150), chunk=1)] == [300, 200]


def test_export_pages_grow_from_the_first_page_to_the_chunk(parts: Any) -> None:
    service, _, _, _ = parts
    wallet = Account.create()
    for n in range(8):
        service.submit(*signed(service, wallet, nonce=n, timestamp=100 + n), wallet.address)
    pages = list(service.iter_pages(TxFilter(), first=1, chunk=3))
    assert [len(page) for page in pages] == [1, 2, 3, 2]  # doubling, capped at the chunk
    assert [r.timestamp for page in pages for r in page] == list(range(107, 99, -1))
    assert [len(page) for page in service.iter_pages(TxFilter(since=200), first=1)] == [0]


def test_rollback_own_anchors_reanchors_the_same_leaves(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet = Account.create()
    rows = [service.submit(*signed(service, wallet, nonce=n), wallet.address) for n in range(3)]
    service.anchor_pending()
    registry.anchors[0].block_number = 10
    assert service.rollback_own_anchors_above(10) == 0
    dropped = registry.anchors.pop()  # the reorg removed the anchor from the chain
    service.submit(*signed(service, wallet, nonce=3), wallet.address)
    with pytest.raises(ChainError, match="not on-chain any more"):
        service.anchor_pending()  # never extend leaves the chain lost
    registry.anchors.append(dropped)
    assert service.rollback_own_anchors_above(9) == 3  # the reorg dropped block 10
    assert all(service.get(r.tx_id).status == "pending" for r in rows)  # type: ignore[union-attr]
    assert service.tree_size() == 0
    registry.anchors.clear()
    again = service.anchor_pending()
    assert again is not None and again.tree_size == 4
    assert [service.get(r.tx_id).leaf_index for r in rows] == [0, 1, 2]  # type: ignore[union-attr]


def test_batch_document_records_acceptance_times(parts: Any) -> None:
    service, registry, store, sessions = parts
    wallet = Account.create()
    row = service.submit(*signed(service, wallet), wallet.address)
    service.anchor_pending()
    batch = decode_batch(store.blocks[registry.anchors[0].batch_cid])
    assert batch.leaf_cids == (row.cid,)
    assert batch.received_at_us == (compute_micros(row.received_at),)
    assert decode_batch(Batch(0, ("a",)).encode()).received_at_us == ()  # version 1 still reads


def test_leaf_cid_is_the_cid_kubo_gives(tmp_path: Path) -> None:
    from node.storage import open_store

    assert compute_leaf_cid(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    store = open_store(tmp_path)
    for size in (1, 100, 4096, 256 * 1024):
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert compute_leaf_cid(body) == store.add_bytes(body, only_hash=True)


def test_on_a_chain_without_reorgs_only_an_earlier_runs_anchor_is_read_back(
    parts: Any,
) -> None:
    service, registry, store, sessions = parts
    wallet = Account.create()
    reads: list[int] = []
    get_anchor = registry.get_anchor

    def counted(index: int) -> Any:
        reads.append(index)
        return get_anchor(index)

    registry.get_anchor = counted
    service.submit(*signed(service, wallet, nonce=0), wallet.address)
    service.anchor_pending()
    assert reads == []  # no anchor yet
    # a later run (a new service on the same index) on a chain no one else can reorganise
    later = LedgerService(
        session_factory=sessions, store=store, registry=registry, domain=service.domain,
        node_address=service.node_address, chain_reorgs=False,
    )  # fmt: skip
    for nonce in (1, 2, 3):
        later.submit(*signed(later, wallet, nonce=nonce), wallet.address)
        later.anchor_pending()
    assert reads == [0]  # the earlier run's anchor, once; its own ones are known on-chain
    registry.anchors.pop()  # were one lost all the same, a new run would find out
    again = LedgerService(
        session_factory=sessions, store=store, registry=registry, domain=service.domain,
        node_address=service.node_address, chain_reorgs=False,
    )  # fmt: skip
    again.submit(*signed(again, wallet, nonce=4), wallet.address)
    with pytest.raises(ChainError, match="not on-chain any more"):
        again.anchor_pending()
