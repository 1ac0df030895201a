"""``LogPager`` behind a provider whose ``eth_getLogs`` result cap is below one block's events
(real anvil, the fault proxy of tests/support/rpc_proxy): the block is read from its
transaction receipts, completely and in log-index order; when the receipts cannot be read
either, a :class:`ChainError` says what to do.

The reference is anvil itself, asked directly with the same filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3

from node.chain.logpager import LogPager
from node.chain.provider import FailoverProvider
from node.chain.registry import Registry
from node.errors import ChainError
from tests.chain.conftest import ChainUnderTest, mine_in_one_block, spawn_anvil
from tests.support.rpc_proxy import Faults, RpcProxy

pytestmark = pytest.mark.anvil

CAP = 2  # createSubsystem logs 3 events: no block of the dense ones fits


@pytest.fixture(scope="module")
def anvil() -> Iterator[ChainUnderTest]:
    with spawn_anvil() as chain:  # its own: the tests switch automine off for a while
        yield chain


@pytest.fixture(scope="module")
def dense(anvil: ChainUnderTest) -> tuple[Registry, int, int, int]:
    """A registry with one block of three createSubsystem transactions (9 events) and one
    of one (3 events), empty blocks around; return it, the first and last block and the dense
    block."""
    registry = Registry.deploy(anvil.w3, anvil.new_account(), 8)
    first = int(anvil.w3.eth.block_number) + 1
    anvil.mine(2)
    creates = registry.contract.functions.createSubsystem
    block = mine_in_one_block(
        anvil, [(anvil.new_account(), creates(name)) for name in ("dense-a", "dense-b", "dense-c")]
    )
    anvil.mine(1)
    registry.create_subsystem("single")
    anvil.mine(2)
    return registry, first, int(anvil.w3.eth.block_number), block


def upstream_of(chain: ChainUnderTest) -> str:
    return str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]


def shape(entries: list[Any]) -> list[tuple[Any, ...]]:
    """Return every field a caller reads of each log, as plain values."""
    return [
        (
            int(e["blockNumber"]),
            int(e["logIndex"]),
            int(e["transactionIndex"]),
            HexBytes(e["transactionHash"]).hex(),
            HexBytes(e["blockHash"]).hex(),
            str(e["address"]),
            [HexBytes(t).hex() for t in e["topics"]],
            HexBytes(e["data"]).hex(),
        )
        for e in entries
    ]


def topic_of(registry: Registry, event: str) -> str:
    return "0x" + bytes(HexBytes(registry.contract.events[event]().topic)).hex()


@pytest.mark.parametrize("block_receipts", [True, False], ids=["blockReceipts", "txReceipts"])
def test_a_block_with_more_events_than_the_result_cap_is_read_from_its_receipts(
    anvil: ChainUnderTest, dense: tuple[Registry, int, int, int], block_receipts: bool
) -> None:
    registry, first, last, block = dense
    refused = frozenset() if block_receipts else frozenset({"eth_getBlockReceipts"})
    created = topic_of(registry, "SubsystemCreated")
    added = topic_of(registry, "ParticipantAdded")
    filters: list[list[Any] | None] = [
        None,
        [created],
        [[created.upper().replace("0X", "0x"), added]],  # any of two, hex in another case
        [None, None, "0x" + "00" * 32],  # matches nothing
    ]
    with RpcProxy(
        upstream_of(anvil), Faults(max_logs_results=CAP, refused_methods=refused)
    ) as proxy:
        provider = FailoverProvider([proxy.url])
        fell_back = 0  # pagers that read a block from receipts
        for topics in filters:
            query: dict[str, Any] = {
                "address": registry.address,
                "fromBlock": first,
                "toBlock": last,
            }
            if topics is not None:
                query["topics"] = topics
            direct = anvil.w3.eth.get_logs(query)  # type: ignore[arg-type]
            pager = LogPager(Web3(provider), registry.address, max_span=64, topics=topics)
            got = pager.fetch(first, last)
            assert shape(got) == shape(direct), topics
            dense_logs = [e for e in direct if int(e["blockNumber"]) == block]
            if len(dense_logs) > CAP:
                assert pager.receipt_fallbacks >= 1, topics
            fell_back += pager.receipt_fallbacks > 0
        provider.close()
        assert proxy.counts["logs_results_refused"] > 0
        if block_receipts:
            assert proxy.counts["method:eth_getBlockReceipts"] > 0
        else:
            # each pager asked once, then remembered it is not served
            assert proxy.counts["refused:eth_getBlockReceipts"] == fell_back == 3
            assert proxy.counts["method:eth_getTransactionReceipt"] >= 3
    # the dense block really holds more than the cap, with and without topics
    assert len([e for e in direct_all(anvil, registry, block)]) == 9


def direct_all(chain: ChainUnderTest, registry: Registry, block: int) -> list[Any]:
    return list(
        chain.w3.eth.get_logs({"address": registry.address, "fromBlock": block, "toBlock": block})
    )


def test_a_refusal_of_the_receipts_too_is_a_clear_chain_error(
    anvil: ChainUnderTest, dense: tuple[Registry, int, int, int]
) -> None:
    registry, first, last, block = dense
    faults = Faults(
        max_logs_results=CAP,
        refused_methods=frozenset({"eth_getBlockReceipts", "eth_getTransactionReceipt"}),
    )
    with RpcProxy(upstream_of(anvil), faults) as proxy:
        provider = FailoverProvider([proxy.url])
        pager = LogPager(Web3(provider), registry.address, max_span=64)
        with pytest.raises(ChainError) as raised:
            pager.fetch(first, last)
        provider.close()
    message = str(raised.value)
    assert f"block {block}" in message
    assert "more than 2 results" in message  # the provider's refusal, as it said it
    assert "use a provider" in message
    assert pager.receipt_fallbacks == 0


def test_a_lagging_backend_s_missing_block_is_an_error_never_an_empty_page(
    anvil: ChainUnderTest, dense: tuple[Registry, int, int, int]
) -> None:
    """A short answer is re-read by hash (``check_blooms``); refused there by the cap, the
    block is read from its receipts -- which a backend that has not the block answers null:
    an error to retry, not an empty block."""
    registry, first, last, block = dense
    blocks = {n: anvil.w3.eth.get_block(n) for n in range(first, last + 1)}
    lagging = Faults(max_logs_results=CAP, lag_every=1, lag_blocks=last - block + 1)
    with RpcProxy(upstream_of(anvil), lagging) as proxy:
        provider = FailoverProvider([proxy.url])
        pager = LogPager(Web3(provider), registry.address, max_span=64)
        with pytest.raises(ChainError, match="not available"):
            pager.check_blooms([], {block: blocks[block]})
        assert proxy.counts["lagged"] > 0
        proxy.faults.lag_every = None  # the backend caught up
        repaired = pager.check_blooms([], blocks)
        provider.close()
    assert shape(repaired) == shape(
        anvil.w3.eth.get_logs({"address": registry.address, "fromBlock": first, "toBlock": last})
    )
    assert pager.receipt_fallbacks == 2  # both blocks: 3 events are over the cap too


def test_own_anchors_behind_a_result_cap_below_one_block_s_anchors(
    anvil: ChainUnderTest, dense: tuple[Registry, int, int, int]
) -> None:
    """Recovery's ``own_anchors`` (topic-filtered pages) reads a block with more of this
    node's anchors than the cap, among another node's, through the receipts."""
    registry = dense[0]
    node, other = anvil.new_account(), anvil.new_account()
    for i, account in enumerate((node, other)):
        Registry(anvil.w3, registry.address, account).register_node(
            f"http://127.0.0.1:{9100 + i}", 2, 5, ""
        )
    anchor = registry.contract.functions.anchor
    sends = [
        (node, anchor("", keccak(b"mine 1"), 1, 1, "bafy-1")),
        (other, anchor("", keccak(b"theirs"), 1, 1, "bafy-t")),
        (node, anchor("", keccak(b"mine 2"), 2, 1, "bafy-2")),
        (node, anchor("", keccak(b"mine 3"), 3, 1, "bafy-3")),
    ]
    block = mine_in_one_block(anvil, sends)
    expected = list(registry.own_anchors(node.address, block, block))  # anvil, directly
    assert [a.batch_cid for a in expected] == ["bafy-1", "bafy-2", "bafy-3"]
    with RpcProxy(upstream_of(anvil), Faults(max_logs_results=CAP)) as proxy:
        provider = FailoverProvider([proxy.url])
        capped = Registry(Web3(provider), registry.address)
        assert list(capped.own_anchors(node.address, block, block)) == expected
        assert [a.batch_cid for a in capped.own_anchors(other.address, block, block)] == ["bafy-t"]
        provider.close()
        assert proxy.counts["logs_results_refused"] == 1  # only this node's page: 3 > 2


def test_a_null_receipt_from_a_lagging_backend_is_an_error_never_a_short_block(
    anvil: ChainUnderTest, dense: tuple[Registry, int, int, int]
) -> None:
    """Read one receipt at a time, a receipt the backend answers null (it lags) fails the
    block: to be retried, not read without that transaction's logs."""
    registry, _, _, block = dense
    # requests: 1 eth_getLogs (refused: over the cap), 2 the header, 3 eth_getBlockReceipts
    # (not served), 4.. one receipt each: the first is answered by a backend 100 blocks behind
    faults = Faults(
        max_logs_results=CAP,
        refused_methods=frozenset({"eth_getBlockReceipts"}),
        lag_every=4,
        lag_blocks=100,
    )
    with RpcProxy(upstream_of(anvil), faults) as proxy:
        provider = FailoverProvider([proxy.url])
        pager = LogPager(Web3(provider), registry.address, max_span=64)
        with pytest.raises(ChainError, match="not available"):
            pager.fetch(block, block)
        provider.close()
        assert proxy.counts["lagged"] == 1
        assert proxy.counts["method:eth_getTransactionReceipt"] == 1  # the first: null
    assert pager.receipt_fallbacks == 0
