"""The chain follower on a real anvil chain: confirmations, incremental ranges, reorgs.

The reorg is real: ``evm_snapshot``, index a branch, ``evm_revert``, mine a different and
longer branch; the follower must roll back what it indexed above the fork and apply the
new branch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.chain.registry import Registry
from node.db.models import Anchor, IndexedBlock, Participant, RegisteredNode, RegistryEvent
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.ledger.follower import ChainFollower
from tests.chain.conftest import ChainUnderTest, anvil_chain  # noqa: F401

pytestmark = pytest.mark.anvil

ROOT_1 = b"\x01" * 32
ROOT_2 = b"\x02" * 32


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def participants(sessions: sessionmaker[Session], subsystem: str) -> set[str]:
    with sessions() as s:
        return set(
            s.scalars(select(Participant.address).where(Participant.subsystem == subsystem)).all()
        )


def anchors(sessions: sessionmaker[Session]) -> list[tuple[int, str]]:
    with sessions() as s:
        return [(a.index, a.root) for a in s.scalars(select(Anchor).order_by(Anchor.index))]


def rpc(chain: ChainUnderTest, method: str, *params: object) -> object:
    response = chain.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    return response["result"]


def test_follower_indexes_confirmed_events_and_survives_a_reorg(
    anvil_chain: ChainUnderTest,  # noqa: F811
    sessions: sessionmaker[Session],
) -> None:
    chain = anvil_chain
    admin, other = chain.new_account(), chain.new_account()
    alice, bob, carol = (Account.create().address for _ in range(3))
    registry = Registry.deploy(chain.w3, admin, 8)
    start = int(chain.w3.eth.block_number)
    other_node = Registry(chain.w3, registry.address, other)
    notified: list[tuple[str | None, str | None]] = []
    follower = ChainFollower(
        w3=chain.w3,
        registry_address=registry.address,
        sessions=sessions,
        node_address=admin.address,
        confirmations=2,
        start_block=start,
        range_blocks=3,  # several ranges per sync: the incremental path is exercised
        on_participants_changed=lambda s, a: notified.append((s, a)),
    )

    registry.create_subsystem("shop")
    registry.add_participant("shop", alice)
    other_node.register_node("http://other", 2, 1, "shop")
    other_node.anchor("", ROOT_1, 1, 1, "bafy-batch-1")
    # the last two blocks are not confirmed yet: the anchor is not indexed
    follower.sync()
    assert anchors(sessions) == []
    chain.mine(2)
    follower.sync()
    assert participants(sessions, "shop") == {admin.address, alice}
    assert anchors(sessions) == [(0, "0x" + ROOT_1.hex())]
    assert ("shop", alice) in notified
    with sessions() as s:
        node_row = s.get(RegisteredNode, other.address)
        assert node_row is not None and node_row.home == "shop" and node_row.active

    snapshot = rpc(chain, "evm_snapshot")
    registry.add_participant("shop", bob)
    registry.remove_participant("shop", alice)
    other_node.anchor("", ROOT_2, 2, 1, "bafy-batch-2")
    chain.mine(2)
    follower.sync()
    assert participants(sessions, "shop") == {admin.address, bob}
    assert [i for i, _ in anchors(sessions)] == [0, 1]
    orphaned_head = int(chain.w3.eth.block_number)

    assert rpc(chain, "evm_revert", snapshot) is True
    registry.add_participant("shop", carol)  # a different branch, longer than the old one
    chain.mine(orphaned_head - int(chain.w3.eth.block_number) + 3)
    notified.clear()
    first = follower.sync()
    assert first.rolled_back_to is not None and first.rolled_back_to < orphaned_head
    follower.sync()
    assert follower.reorgs == 1
    assert participants(sessions, "shop") == {admin.address, alice, carol}
    assert anchors(sessions) == [(0, "0x" + ROOT_1.hex())]
    assert (None, None) in notified  # the participant cache was dropped
    with sessions() as s:
        names = s.scalars(select(RegistryEvent.name)).all()
        assert names.count("ParticipantRemoved") == 0 and names.count("Anchored") == 1
        # every kept block hash is the chain's
        for row in s.scalars(select(IndexedBlock)):
            assert "0x" + bytes(chain.w3.eth.get_block(row.number)["hash"]).hex() == row.hash
    head = int(chain.w3.eth.block_number)
    assert follower.last_indexed() == head - follower.confirmations


def test_follower_resumes_from_the_last_indexed_block(
    anvil_chain: ChainUnderTest,  # noqa: F811
    sessions: sessionmaker[Session],
) -> None:
    chain = anvil_chain
    admin = chain.new_account()
    registry = Registry.deploy(chain.w3, admin, 8)
    start = int(chain.w3.eth.block_number)

    def follower() -> ChainFollower:
        return ChainFollower(
            w3=chain.w3,
            registry_address=registry.address,
            sessions=sessions,
            confirmations=0,
            start_block=start,
        )

    registry.create_subsystem("a")
    assert follower().sync().events == 2  # SubsystemCreated, ParticipantAdded
    registry.create_subsystem("b")
    again = follower()  # a new process: picks up after the last indexed block
    result = again.sync()
    assert result.events == 2
    with sessions() as s:
        assert s.scalar(select(RegistryEvent.name).order_by(RegistryEvent.block_number.desc()))
        assert len(s.scalars(select(RegistryEvent)).all()) == 4


def test_own_anchor_dropped_by_a_reorg_is_anchored_again(
    anvil_chain: ChainUnderTest,  # noqa: F811
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """The real ledger service on anvil: a reorg removes this node's newest anchor; the
    anchorer refuses to build on it, the follower returns its leaves to pending, and they
    are anchored again with the same tree head; the audit is clean."""
    from node.errors import ChainError
    from node.ledger.audit import audit
    from node.ledger.service import LedgerService
    from node.ledger.transaction import BusinessTx, Domain, sign_tx
    from node.storage import open_store

    chain = anvil_chain
    admin = chain.new_account()
    registry = Registry.deploy(chain.w3, admin, 8)
    start = int(chain.w3.eth.block_number)
    registry.create_subsystem("main")
    registry.register_node("http://me", 2, 15, "main")
    wallet = Account.create()
    registry.add_participant("main", wallet.address)
    store = open_store(tmp_path / "store")
    domain = Domain(int(chain.w3.eth.chain_id), registry.address)
    ledger = LedgerService(
        session_factory=sessions, store=store, registry=registry, domain=domain,
        node_address=admin.address,
    )  # fmt: skip
    follower = ChainFollower(
        w3=chain.w3, registry_address=registry.address, sessions=sessions,
        node_address=admin.address, confirmations=0, start_block=start,
        on_participants_changed=ledger.participants.invalidate,
        rollback_own_anchors=ledger.rollback_own_anchors_above,
    )  # fmt: skip

    def submit(nonce: int) -> str:
        tx = BusinessTx("main", "invoice", (), "1", "EUR", "", "", nonce, 1_764_000_000)
        return ledger.submit(tx, sign_tx(domain, tx, wallet.key), wallet.address).tx_id

    first = [submit(n) for n in range(2)]
    assert ledger.anchor_pending() is not None
    follower.sync()
    snapshot = rpc(chain, "evm_snapshot")
    later = [submit(n) for n in range(2, 4)]
    lost = ledger.anchor_pending()
    assert lost is not None and lost.index == 1 and lost.tree_size == 4
    follower.sync()
    orphaned_head = int(chain.w3.eth.block_number)

    assert rpc(chain, "evm_revert", snapshot) is True
    chain.mine(orphaned_head - int(chain.w3.eth.block_number) + 2)
    newest = submit(4)
    with pytest.raises(ChainError, match="not on-chain any more"):
        ledger.anchor_pending()  # would extend leaves 2, 3 that the chain lost
    follower.sync()
    assert [ledger.get(t).status for t in later] == ["pending", "pending"]  # type: ignore[union-attr]
    assert ledger.get(first[0]).status == "anchored"  # type: ignore[union-attr]
    again = ledger.anchor_pending()
    assert again is not None and again.index == 1 and again.tree_size == 5
    # the same leaves in the same order, then the new one
    assert [ledger.get(t).leaf_index for t in [*later, newest]] == [2, 3, 4]  # type: ignore[union-attr]
    report = audit(sessions, store, Registry(chain.w3, registry.address), admin.address)
    assert report.ok, [str(f) for f in report.findings]


def test_follower_passes_empty_blocks_on_the_embedded_chain(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """eth-tester drops a bloom's leading zero bytes and knows no ``blockHash`` filter: the
    follower must still read a bloom right (no re-read of every block) and index past blocks
    without registry logs (it once stopped at the first one)."""
    from node.chain.embedded import EmbeddedChain

    admin = Account.create()
    with EmbeddedChain.open(tmp_path / "chain", fund=[admin.address]) as chain:
        registry = Registry.deploy(chain.w3, admin, 8)
        follower = ChainFollower(
            w3=chain.w3,
            registry_address=registry.address,
            sessions=sessions,
            node_address=admin.address,
            confirmations=0,
            start_block=0,
        )
        registry.create_subsystem("shop")
        chain.mine(30)
        alice = Account.create().address
        registry.add_participant("shop", alice)
        follower.sync()
        assert follower.last_indexed() == int(chain.w3.eth.block_number)
        assert participants(sessions, "shop") == {admin.address, alice}
        assert follower.pager.bloom_repairs == 0


def test_follower_reports_its_progress_while_catching_up(
    tmp_path: Path, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """A node joining a long history says how far it got, towards which block and how fast
    (``/health`` → ``index``), and logs it every ``PROGRESS_LOG_SECONDS`` until caught up."""
    from node.chain.embedded import EmbeddedChain
    from node.ledger import follower as follower_module
    from node.runtime.context import NodeContext

    now = [1000.0]

    def clock() -> float:
        now[0] += 2.0  # every reading is two seconds later: each range "takes" time
        return now[0]

    admin = Account.create()
    with EmbeddedChain.open(tmp_path / "chain", fund=[admin.address]) as chain:
        registry = Registry.deploy(chain.w3, admin, 8)
        chain.mine(60)
        follower = ChainFollower(
            w3=chain.w3,
            registry_address=registry.address,
            sessions=sessions,
            confirmations=0,
            start_block=0,
            range_blocks=4,
            clock=clock,
        )
        before = follower.progress()
        assert (before.block, before.target, before.blocks_per_second) == (-1, None, None)
        head = int(chain.w3.eth.block_number)
        with caplog.at_level("INFO", logger=follower_module.__name__):
            follower.sync(max_ranges=5)
            midway = follower.progress()
            assert midway.block == 19 and midway.target == head
            assert midway.blocks_per_second is not None and midway.blocks_per_second > 0
            assert midway.eta_seconds is not None and midway.eta_seconds > 0
            index = NodeContext._index_progress(cast(Any, SimpleNamespace(follower=follower)), head)
            assert index == {
                "block": 19,
                "lag": head - 19,
                "target": head,
                "blocks_per_second": round(midway.blocks_per_second, 1),
                "eta_seconds": round(midway.eta_seconds),
                "failures": 0,  # passes failed in a row, and why the last one did
                "last_error": None,
            }
            follower.sync()
        done = follower.progress()
        assert done.block == head and done.eta_seconds is None and done.blocks_per_second is None
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("chain follower: indexed to block") for m in messages), messages
        assert any(m.startswith(f"chain follower: caught up at block {head}") for m in messages)
