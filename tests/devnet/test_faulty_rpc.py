"""A 3-node devnet whose nodes reach anvil only through two fault-injecting proxies.

Proxy A caps ``eth_getLogs`` (range and results), answers 429 with ``Retry-After`` every 9th
request, drops the answer of every 3rd ``eth_sendRawTransaction`` after anvil applied it and
times out now and then; proxy B has the same caps and drops, 429s every 13th request and is
a backend whose ``latest`` lags 3 blocks on every other request (the nodes fail over from A
to B on the first 429 and stay there). Each node gets ``--chain A,B``. Traffic goes to every node,
one node is ``kill -9``-ed mid-stream and restarted; at the end every acknowledged
transaction is anchored exactly once (on-chain: each node's tree sizes strictly grow, the
leaves add up), every node's index holds the same anchors, no node has a stuck nonce, and
``collegium verify`` is clean on every node.

Cost: one more devnet start (~30-60 s on the 2-core VM) plus ~1 minute of traffic.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.devnet import Devnet, DevnetNode, start_devnet
from tests.devnet.conftest import BLOCK_TIME, EPOCH_PERIOD, SETTINGS, DevnetPool
from tests.devnet.support import (
    health,
    run_verify,
    submit_batch,
    tx_status,
    wait_anchored,
    wait_until,
)
from tests.support.rpc_proxy import Faults, RpcProxy

BATCH = 8
ROUNDS = 2

# Opt-in: a second devnet behind two proxies costs minutes the 25-minute suite does not have;
# the proxy, provider, pager, nonce manager and follower are exercised by the lean tests in
# tests/chain/test_provider.py, test_nonces.py and tests/ledger/test_follower_faults.py.
pytestmark = pytest.mark.skipif(
    not os.environ.get("COLLEGIUM_FAULTY_DEVNET"),
    reason="opt-in (suite time): COLLEGIUM_FAULTY_DEVNET=1 python3 -m pytest "
    "tests/devnet/test_faulty_rpc.py",
)


@pytest.fixture(scope="module")
def faulty(
    devnet_pool: DevnetPool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Devnet, RpcProxy, RpcProxy]]:
    devnet_pool.close()  # one devnet at a time on this machine
    base: Path = tmp_path_factory.mktemp("faulty")
    devnet = start_devnet(
        base, 3, epoch_period=EPOCH_PERIOD, block_time=BLOCK_TIME, settings=SETTINGS
    )
    caps = {"max_logs_range": 20, "max_logs_results": 6}
    a = RpcProxy(
        devnet.chain_url,
        Faults(**caps, rate_limit_every=9, retry_after="1", drop_every=3, timeout_every=97),
    )
    b = RpcProxy(
        devnet.chain_url,
        Faults(**caps, lag_every=2, lag_blocks=3, rate_limit_every=13, drop_every=3),
    )
    try:
        for node in devnet.nodes:
            node.stop()
        for node in devnet.nodes:
            node.launch(f"{a.url},{b.url}")
        for node in devnet.nodes:
            answering(node)
        yield devnet, a, b
    finally:
        devnet.stop()
        a.close()
        b.close()


def answering(node: DevnetNode, timeout: float = 180) -> dict[str, Any]:
    """Wait for ``/health``: behind these proxies one takes seconds (several chain reads,
    each maybe a 429 or a lagging answer away), more than ``wait_healthy``'s 3 s per try."""

    def probe() -> dict[str, Any] | None:
        if not node.running:
            raise AssertionError(f"node{node.index} exited")
        try:
            return health(node)
        except httpx.HTTPError:
            return None

    return wait_until(probe, timeout, f"node{node.index} /health")


def assert_not_stuck(devnet: Devnet, node: DevnetNode) -> None:
    """Every transaction the node has in the pool now is mined soon (a live node keeps
    sending attestations, so ``pending == latest`` at one instant is not the promise)."""
    w3 = devnet.w3()
    pending = int(w3.eth.get_transaction_count(node.address, "pending"))
    wait_until(
        lambda: int(w3.eth.get_transaction_count(node.address, "latest")) >= pending or None,
        30,
        f"node{node.index}'s nonce {pending - 1} mined (no stuck nonce)",
    )


def test_promises_hold_behind_a_faulty_rpc(faulty: tuple[Devnet, RpcProxy, RpcProxy]) -> None:
    devnet, a, b = faulty
    acked: dict[str, list[str]] = {n.url: [] for n in devnet.nodes}
    for round_ in range(ROUNDS):
        for node in devnet.nodes:
            acked[node.url] += submit_batch(node.url, devnet.operator, BATCH)
        if round_ == 0:  # crash one node right after it acknowledged, mid-anchor
            victim = devnet.nodes[0]
            victim.stop(signal.SIGKILL)
            victim.launch()
            answering(victim)
    for url, ids in acked.items():
        for tx_id in ids:
            wait_anchored(url, tx_id, timeout=180)

    # the faults happened
    assert a.counts["429"] + b.counts["429"] > 0
    assert a.counts["dropped"] + b.counts["dropped"] > 0
    assert a.counts["logs_range_refused"] + b.counts["logs_range_refused"] > 0
    assert b.counts["lagged"] > 0

    # on-chain: every acknowledged transaction anchored exactly once
    registry = devnet.operator_registry()
    onchain = registry.anchors()
    for node in devnet.nodes:
        mine = [x for x in onchain if str(x.node).lower() == node.address.lower()]
        sizes = [int(x.tree_size) for x in mine]
        assert sizes == sorted(set(sizes)), f"duplicate anchor of node{node.index}: {sizes}"
        assert sum(int(x.count) for x in mine) == len(acked[node.url]) == sizes[-1]
        assert_not_stuck(devnet, node)

    # every index holds the same anchors
    def same_indexes() -> bool | None:
        views = []
        for node in devnet.nodes:
            got = httpx.get(node.url + "/api/v1/anchors", params={"limit": 500}, timeout=10)
            views.append(sorted((x["index"], x["root"]) for x in got.json()))
        expected = sorted((int(x.index), "0x" + bytes(x.root).hex()) for x in onchain)
        return all(v[: len(expected)] == expected for v in views) or None

    wait_until(same_indexes, 60, "identical indexes")
    for node in devnet.nodes:
        code, output = run_verify(node, devnet)
        assert code == 0, output


def test_a_dry_wallet_shows_in_health_and_anchoring_resumes_when_funded(
    faulty: tuple[Devnet, RpcProxy, RpcProxy],
) -> None:
    devnet, _a, _b = faulty
    node = devnet.nodes[1]
    balance = int(devnet.w3().eth.get_balance(node.address))
    devnet.fund(node.address, 0)  # anvil_setBalance: the wallet is empty from now on
    try:
        ids = submit_batch(node.url, devnet.operator, 4)  # acknowledged all the same

        def reports_dry() -> dict[str, Any] | None:
            wallet = answering(node)["wallet"]
            return wallet if wallet["insufficient_funds"] and wallet["error"] else None

        wallet = wait_until(reports_dry, 30, "/health reporting the empty wallet")
        assert "cannot pay" in wallet["error"]
        assert all(tx_status(node.url, tx_id) == "pending" for tx_id in ids)
    finally:
        devnet.fund(node.address, balance)
    for tx_id in ids:
        wait_anchored(node.url, tx_id, timeout=90)
    assert answering(node)["wallet"]["insufficient_funds"] is False
    assert_not_stuck(devnet, node)
