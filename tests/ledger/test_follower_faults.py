"""The chain follower behind the fault proxy: capped and refused ``eth_getLogs``, 429s and a
lagging load-balanced backend -- and no gap in the index.

The reference is anvil itself, asked directly: every registry log it has up to the
follower's target must be in ``registry_events``, no more, no less.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from node.chain.logpager import LogPager
from node.chain.provider import FailoverProvider
from node.chain.registry import Registry
from node.db.models import RegistryEvent
from node.errors import ChainError
from node.health import INDEX_STALLED_FAILURES, compute_health_reasons
from node.ledger.follower import INDEXED_EVENTS, ChainFollower
from tests.chain.conftest import ChainUnderTest, anvil_chain, mine_in_one_block  # noqa: F401
from tests.ledger.test_follower import sessions  # noqa: F401 - fixture: a migrated index
from tests.support.rpc_proxy import Faults, RpcProxy

pytestmark = pytest.mark.anvil


def test_no_gap_behind_capped_rate_limited_and_lagging_rpc(
    anvil_chain: ChainUnderTest,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    chain = anvil_chain
    admin = chain.new_account()
    registry = Registry.deploy(chain.w3, admin, 8)
    start = int(chain.w3.eth.block_number) + 1  # after the deploy block (several logs)
    for i in range(10):  # 10 events, several per block range, with empty blocks between
        registry.create_subsystem(f"shop{i}")
        chain.mine(1 + i % 3)
    upstream = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    faults = Faults(
        max_logs_range=6,
        max_logs_results=4,  # createSubsystem logs 3 events: one block fits, two do not
        rate_limit_every=9,
        retry_after="0.1",
        lag_every=3,
        lag_blocks=5,
    )
    with RpcProxy(upstream, faults) as proxy:
        provider = FailoverProvider([proxy.url], backoff_base=0.02)
        follower = follow_to_head(chain, provider, registry, sessions, start)
        assert proxy.counts["logs_range_refused"] > 0
        assert proxy.counts["logs_results_refused"] > 0
        assert proxy.counts["429"] > 0
        assert proxy.counts["lagged"] > 0
        assert follower.pager.shrinks > 0
        provider.close()
    assert follower.reorgs == 0
    assert len(assert_no_gap(chain, registry, start, follower, sessions)) >= 10


def follow_to_head(
    chain: ChainUnderTest,  # noqa: F811
    provider: FailoverProvider,
    registry: Registry,
    sessions: sessionmaker[Session],  # noqa: F811
    start: int,
) -> ChainFollower:
    """Return a follower through ``provider`` from ``start`` that has indexed up to anvil's
    head less its 2 confirmations (retrying the passes a lagging backend failed)."""
    follower = ChainFollower(
        w3=Web3(provider),
        registry_address=registry.address,
        sessions=sessions,
        confirmations=2,
        start_block=start,
        range_blocks=16,
    )
    head = int(chain.w3.eth.block_number)
    retries = 0
    while follower.last_indexed() < head - 2:
        try:
            follower.sync()
        except ChainError:
            retries += 1  # a lagging backend had not the block yet: the loop retries
            assert retries < 100
    return follower


def assert_no_gap(
    chain: ChainUnderTest,  # noqa: F811
    registry: Registry,
    start: int,
    follower: ChainFollower,
    sessions: sessionmaker[Session],  # noqa: F811
) -> set[tuple[int, int]]:
    """Check that ``registry_events`` holds every registry log anvil has from ``start`` up to
    the follower's last indexed block, no more; return them as (block, log index)."""
    direct = chain.w3.eth.get_logs(
        {"address": registry.address, "fromBlock": start, "toBlock": follower.last_indexed()}
    )
    with sessions() as s:
        indexed = {(e.block_number, e.log_index) for e in s.scalars(select(RegistryEvent))}
    topics = {str(registry.contract.events[n]().topic).lower() for n in INDEXED_EVENTS}
    expected = {
        (int(e["blockNumber"]), int(e["logIndex"]))
        for e in direct
        if "0x" + bytes(e["topics"][0]).hex() in topics
    }
    assert indexed == expected  # no gap, nothing extra
    return expected


def dense_registry(chain: ChainUnderTest) -> tuple[Registry, int, int]:  # noqa: F811
    """Deploy a registry and mine a block of three createSubsystem transactions (9 events),
    others around it; return the registry, the first block after the deploy and the dense
    block."""
    registry = Registry.deploy(chain.w3, chain.new_account(), 8)
    start = int(chain.w3.eth.block_number) + 1
    registry.create_subsystem("before")
    chain.mine(2)
    creates = registry.contract.functions.createSubsystem
    dense = mine_in_one_block(
        chain, [(chain.new_account(), creates(name)) for name in ("d-a", "d-b", "d-c")]
    )
    chain.mine(1)
    registry.create_subsystem("after")
    chain.mine(4)
    return registry, start, dense


def test_no_gap_behind_a_result_cap_below_one_block_s_events(
    anvil_chain: ChainUnderTest,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    """A provider capping ``eth_getLogs`` at 2 results, below the 9 events of one block (and
    3 of the others), also rate-limiting and lagging: the follower reads those blocks from
    their receipts and indexes every event."""
    chain = anvil_chain
    registry, start, dense = dense_registry(chain)
    upstream = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    faults = Faults(
        max_logs_range=6,
        max_logs_results=2,
        rate_limit_every=9,
        retry_after="0.1",
        lag_every=4,
        lag_blocks=3,
    )
    with RpcProxy(upstream, faults) as proxy:
        provider = FailoverProvider([proxy.url], backoff_base=0.02)
        follower = follow_to_head(chain, provider, registry, sessions, start)
        assert proxy.counts["logs_results_refused"] > 0
        assert proxy.counts["lagged"] > 0
        assert follower.pager.receipt_fallbacks >= 1
        provider.close()
    expected = assert_no_gap(chain, registry, start, follower, sessions)
    # SubsystemCreated and ParticipantAdded of each of the three (SubsystemAdminAdded, the
    # block's other three events, is not indexed)
    assert len([e for e in expected if e[0] == dense]) == 6
    with sessions() as s:
        names = set(s.scalars(select(RegistryEvent.name)).all())
    assert "SubsystemCreated" in names and "ParticipantAdded" in names


def test_a_follower_stuck_on_refused_logs_and_receipts_says_why_in_health(
    anvil_chain: ChainUnderTest,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    """Behind a provider that caps results below one block's events and serves no receipts,
    the follower cannot go on: its loop keeps retrying, and ``/health`` → ``index`` (and the
    ``index_stalled`` reason) says why; with receipts served again it catches up, no gap."""
    chain = anvil_chain
    registry, start, dense = dense_registry(chain)
    upstream = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    faults = Faults(
        max_logs_results=2,
        refused_methods=frozenset({"eth_getBlockReceipts", "eth_getTransactionReceipt"}),
    )
    with RpcProxy(upstream, faults) as proxy:
        provider = FailoverProvider([proxy.url], backoff_base=0.02)
        follower = ChainFollower(
            w3=Web3(provider),
            registry_address=registry.address,
            sessions=sessions,
            confirmations=2,
            start_block=start,
            range_blocks=16,
            poll_seconds=0.02,
        )
        follower.start()
        try:
            deadline = time.monotonic() + 30
            while follower.consecutive_failures < INDEX_STALLED_FAILURES:
                assert time.monotonic() < deadline, follower.progress()
                time.sleep(0.02)
            index = follower.progress().as_dict()
            assert index["block"] < dense  # indexed up to the block before, no further
            assert index["failures"] >= INDEX_STALLED_FAILURES
            assert "cannot read the logs of block" in index["last_error"]
            assert "use a provider" in index["last_error"]
            (reason,) = compute_health_reasons(
                chain_error=None,
                epochs=None,
                sync=None,
                anchoring=None,
                clock_lead=None,
                max_lead=None,
                index=index,
            )
            assert reason["code"] == "index_stalled"
            assert index["last_error"] in reason["message"]

            proxy.faults.refused_methods = frozenset()  # a provider that serves receipts
            head = int(chain.w3.eth.block_number)
            while follower.last_indexed() < head - 2 or follower.consecutive_failures:
                assert time.monotonic() < deadline + 30, follower.progress()
                time.sleep(0.02)
        finally:
            follower.stop()
            provider.close()
    assert follower.progress().last_error is None
    assert_no_gap(chain, registry, start, follower, sessions)


def test_pager_repairs_a_short_answer_from_a_lagging_backend(
    anvil_chain: ChainUnderTest,  # noqa: F811
) -> None:
    chain = anvil_chain
    admin = chain.new_account()
    registry = Registry.deploy(chain.w3, admin, 8)
    first = int(chain.w3.eth.block_number)
    for i in range(3):
        registry.create_subsystem(f"lag{i}")
    last = int(chain.w3.eth.block_number)
    upstream = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    with RpcProxy(upstream, Faults(lag_every=1, lag_blocks=2)) as proxy:
        provider = FailoverProvider([proxy.url])
        pager = LogPager(Web3(provider), registry.address)
        short = pager.fetch(first, last)  # clamped to last - 2 by the lagging backend
        blocks = {n: chain.w3.eth.get_block(n) for n in range(first, last + 1)}
        repaired = pager.check_blooms(short, blocks)
        provider.close()
    direct = chain.w3.eth.get_logs(
        {"address": registry.address, "fromBlock": first, "toBlock": last}
    )
    assert len(short) < len(direct)
    assert [(e["blockNumber"], e["logIndex"]) for e in repaired] == [
        (e["blockNumber"], e["logIndex"]) for e in direct
    ]
    assert pager.bloom_repairs == 2


def test_follows_the_finalized_tag_and_falls_back_to_confirmations_without_it(
    anvil_chain: ChainUnderTest,  # noqa: F811
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    chain = anvil_chain
    admin = chain.new_account()
    registry = Registry.deploy(chain.w3, admin, 8)
    start = int(chain.w3.eth.block_number) + 1
    registry.create_subsystem("final")
    created = int(chain.w3.eth.block_number)
    chain.mine(10)
    follower = ChainFollower(
        w3=chain.w3,
        registry_address=registry.address,
        sessions=sessions,
        confirmations=2,
        finality="finalized",
        start_block=start,
    )
    follower.sync()
    assert follower.finality_supported is True
    assert follower.last_indexed() < created  # 10 confirmations, but not finalized yet
    finalized = int(chain.w3.eth.get_block("finalized")["number"])
    assert follower.last_indexed() == finalized or follower.last_indexed() == start - 1
    chain.mine(64)  # anvil finalizes latest - 64
    follower.sync()
    assert follower.last_indexed() >= created
    with sessions() as s:
        assert "SubsystemCreated" in s.scalars(select(RegistryEvent.name)).all()

    upstream = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    with RpcProxy(upstream, Faults(no_finality_tags=True)) as proxy:
        provider = FailoverProvider([proxy.url])
        fallback = ChainFollower(
            w3=Web3(provider),
            registry_address=registry.address,
            sessions=sessions,
            confirmations=2,
            finality="safe",
            start_block=start,
        )
        fallback.sync()
        assert proxy.counts["tag_refused"] == 1  # asked once, then confirmations only
        assert fallback.finality_supported is False
        assert fallback.last_indexed() == int(chain.w3.eth.block_number) - 2
        provider.close()
