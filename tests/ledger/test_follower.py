"""The chain follower on a real anvil chain: confirmations, incremental ranges, reorgs.

The reorg is real: ``evm_snapshot``, index a branch, ``evm_revert``, mine a different and
longer branch; the follower must roll back what it indexed above the fork and apply the
new branch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
