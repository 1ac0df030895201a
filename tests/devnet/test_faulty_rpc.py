"""The shared 3-node devnet, whose nodes reach anvil only through two fault-injecting proxies
(``devnet3``, see conftest.py: ``eth_getLogs`` range and result caps, 429 with
``Retry-After``, dropped answers after a transaction was applied, timeouts, a backend whose
``latest`` lags), keeps every promise through a crash, a fee spike, a reorg deeper than the
nodes' confirmations, an empty wallet and churn (a node dead past the liveness window):

* every acknowledged transaction is anchored exactly once on the canonical chain (each
  node's tree sizes strictly grow, its last one counts every leaf it acknowledged);
* every node's index holds exactly the chain's anchors (no gap, none dropped by the reorg
  left over);
* no node has a stuck nonce;
* after the reorg every node has attested every epoch again, with one root;
* ``collegium verify`` is clean on every node.

The epochs a test here made unattestable by some node (a node down, every wallet priced
out by the fee spike, an empty wallet, wallets busy after the reorg) are recorded with their
reason in ``DevnetPool.skipped_epochs``; the agreement test (test_agreement.py, run last on
``devnet3``) skips only those.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from node.devnet import Devnet, DevnetNode
from node.epoch.service import BACKFILL_EPOCHS
from node.ledger.follower import DEFAULT_CONFIRMATIONS
from tests.devnet.conftest import BLOCK_TIME, FAULTY, DevnetPool
from tests.devnet.support import (
    health,
    login,
    run_verify,
    submit_batch,
    tx_status,
    wait_anchored,
    wait_until,
)
from tests.devnet.test_churn import (
    assert_every_role_answered,
    epoch_at,
    hosts_of,
    lowered,
    routed_paths,
)

pytestmark = pytest.mark.skipif(
    not FAULTY, reason="COLLEGIUM_FAULTY_DEVNET=0: devnet3 runs without the fault proxies"
)
BATCH = 8
ROUNDS = 2
SPIKE_FACTOR = 10
"""The spiked base fee is this many times the pending anchor's ``maxFeePerGas``: it cannot
be mined until the nonce manager replaces it (``bump_after``, 15 s) at the new fees."""
LANDS_TIMEOUT = 120.0
T = TypeVar("T")


class Scenario:
    """The devnet, its proxies and what the tests acknowledged, per node URL."""

    def __init__(self, pool: DevnetPool, devnet: Devnet) -> None:
        self.pool = pool
        self.devnet = devnet
        self.a, self.b = pool.proxies
        self.registry = devnet.operator_registry()
        self.acked: dict[str, list[str]] = {n.url: [] for n in devnet.nodes}
        # each node's tree size before this module (the tests before it may have anchored)
        self.base_size = {n.url: self.tree_size(n) for n in devnet.nodes}

    def tree_size(self, node: DevnetNode) -> int:
        mine = self.own_anchors(node)
        return int(mine[-1].tree_size) if mine else 0

    def own_anchors(self, node: DevnetNode) -> list[Any]:
        address = node.address.lower()
        return [x for x in self.registry.anchors() if str(x.node).lower() == address]

    def submit(self, node: DevnetNode, count: int) -> list[str]:
        ids = submit_batch(node.url, self.devnet.operator, count)
        self.acked[node.url] += ids
        return ids

    def epoch_of(self, block: int) -> int:
        epoch = int(self.registry.current_epoch())
        while epoch > 0 and int(self.registry.epoch_start_block(epoch)) > block:
            epoch -= 1
        return epoch

    def head(self) -> int:
        return int(self.devnet.w3().eth.block_number)

    def skip_epochs(self, first_block: int, reason: str) -> None:
        """Record the epochs from the one of ``first_block`` to the next after the current
        one as not attestable by every node, for ``reason``; and those of the
        ``BACKFILL_EPOCHS`` before it that some node has still not attested (its attestation
        was in flight when it began: a node attests those late only if it is back within
        that horizon)."""
        start = self.epoch_of(first_block)
        for epoch in range(max(0, start - BACKFILL_EPOCHS), start):
            missing = [
                n.index
                for n in self.devnet.nodes
                if self.registry.attestation_of(epoch, n.address) is None
            ]
            if missing:
                self.pool.skipped_epochs.setdefault(
                    epoch, f"{reason}, with the attestation of node{missing} in flight"
                )
        for epoch in range(start, self.epoch_of(self.head()) + 2):
            self.pool.skipped_epochs.setdefault(epoch, reason)


@pytest.fixture(scope="module")
def scenario(devnet3: Devnet, devnet_pool: DevnetPool) -> Iterator[Scenario]:
    yield Scenario(devnet_pool, devnet3)


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


def nonces(devnet: Devnet, node: DevnetNode) -> tuple[int, int]:
    """Return the node's (mined, pending) nonces, read from anvil itself."""
    w3 = devnet.w3()
    return (
        int(w3.eth.get_transaction_count(node.address, "latest")),
        int(w3.eth.get_transaction_count(node.address, "pending")),
    )


def assert_not_stuck(devnet: Devnet, node: DevnetNode) -> None:
    """Every transaction the node has in the pool now is mined soon (a live node keeps
    sending attestations, so ``pending == latest`` at one instant is not the promise)."""
    _, pending = nonces(devnet, node)
    wait_until(
        lambda: nonces(devnet, node)[0] >= pending or None,
        30,
        f"node{node.index}'s nonce {pending - 1} mined (no stuck nonce)",
    )


def assert_anchored_once(s: Scenario) -> list[Any]:
    """Wait until every node's on-chain tree counts every leaf it acknowledged, then check
    each leaf is anchored once (tree sizes strictly grow, the counts add up to the last
    size) and every acknowledged transaction reads anchored; return the chain's anchors."""

    def counted(node: DevnetNode) -> Callable[[], bool | None]:
        want = s.base_size[node.url] + len(s.acked[node.url])
        return lambda: s.tree_size(node) >= want or None

    for node in s.devnet.nodes:
        wait_until(counted(node), LANDS_TIMEOUT, f"node{node.index}'s leaves on-chain")
    for node in s.devnet.nodes:
        mine = s.own_anchors(node)
        sizes = [int(x.tree_size) for x in mine]
        assert sizes == sorted(set(sizes)), f"duplicate anchor of node{node.index}: {sizes}"
        assert sum(int(x.count) for x in mine) == sizes[-1]
        assert sizes[-1] == s.base_size[node.url] + len(s.acked[node.url])
        for tx_id in s.acked[node.url]:
            wait_anchored(node.url, tx_id, timeout=LANDS_TIMEOUT)
        assert_not_stuck(s.devnet, node)
    return list(s.registry.anchors())


def assert_same_indexes(s: Scenario) -> None:
    """Every node's index holds exactly the chain's anchors, by index (no gap, nothing
    left over from a reorg)."""

    def same() -> bool | None:
        expected = [(int(x.index), "0x" + bytes(x.root).hex()) for x in s.registry.anchors()]
        assert [i for i, _ in expected] == list(range(len(expected)))
        for node in s.devnet.nodes:
            got = httpx.get(node.url + "/api/v1/anchors", params={"limit": 500}, timeout=10)
            view = sorted((x["index"], x["root"]) for x in got.json())
            if view != expected:
                return None
        return True

    wait_until(same, 90, "every index equal to the chain's anchors")


def test_promises_hold_behind_a_faulty_rpc(scenario: Scenario) -> None:
    s = scenario
    for round_ in range(ROUNDS):
        for node in s.devnet.nodes:
            s.submit(node, BATCH)
        if round_ == 0:  # crash one node right after it acknowledged, mid-anchor
            victim = s.devnet.nodes[0]
            killed_at = s.head()
            victim.stop(signal.SIGKILL)
            victim.launch()
            answering(victim)
            s.skip_epochs(killed_at, "node0 was killed (kill -9) and restarting")
    assert_anchored_once(s)

    # the faults happened
    assert s.a.counts["429"] + s.b.counts["429"] > 0
    assert s.a.counts["dropped"] + s.b.counts["dropped"] > 0
    assert s.a.counts["logs_range_refused"] + s.b.counts["logs_range_refused"] > 0
    assert s.b.counts["lagged"] > 0

    assert_same_indexes(s)
    for node in s.devnet.nodes:
        code, output = run_verify(node, s.devnet)
        assert code == 0, output


def pending_max_fee(devnet: Devnet, node: DevnetNode) -> int | None:
    """Return the ``maxFeePerGas`` of the node's transaction in anvil's pool, if one is."""
    content = devnet.rpc("txpool_content")
    for group in content.values():
        for sender, by_nonce in group.items():
            if sender.lower() == node.address.lower():
                return max(int(tx["maxFeePerGas"], 16) for tx in by_nonce.values())
    return None


def test_an_anchor_priced_under_a_fee_spike_is_replaced_and_lands_once(
    scenario: Scenario,
) -> None:
    s = scenario
    node = s.devnet.nodes[2]
    replaced_before = answering(node)["wallet"]["replacements"]
    paused_at = s.head()
    s.devnet.rpc("evm_setIntervalMining", [0])  # no block: the anchor waits in the pool
    try:
        ids = s.submit(node, 4)
        max_fee = wait_until(
            lambda: pending_max_fee(s.devnet, node), 60, f"node{node.index}'s anchor in the pool"
        )
        # the next blocks' base fee is far above what the anchor offers (then it decays)
        s.devnet.rpc("anvil_setNextBlockBaseFeePerGas", [hex(max_fee * SPIKE_FACTOR)])
    finally:
        s.devnet.rpc("evm_setIntervalMining", [BLOCK_TIME])
    s.skip_epochs(paused_at, "blocks paused, then every wallet priced out by the fee spike")
    mined, pending = nonces(s.devnet, node)
    assert pending > mined, "the anchor was mined before the spike"
    for tx_id in ids:
        wait_anchored(node.url, tx_id, timeout=LANDS_TIMEOUT)
    s.skip_epochs(paused_at, "blocks paused, then every wallet priced out by the fee spike")
    assert answering(node)["wallet"]["replacements"] > replaced_before
    assert_anchored_once(s)


def test_a_reorg_deeper_than_the_confirmations_is_undone_and_redone_once(
    scenario: Scenario,
) -> None:
    s = scenario
    fresh = {n.url: s.submit(n, 3) for n in s.devnet.nodes}
    for node in s.devnet.nodes:
        for tx_id in fresh[node.url]:
            wait_anchored(node.url, tx_id, timeout=LANDS_TIMEOUT)
    lowest = min(int(x.block_number) for n in s.devnet.nodes for x in s.own_anchors(n)[-1:])
    fork = lowest - 1  # the new anchors (and the attestations after them) are above it
    # every node has attested an epoch that begins above the fork and indexed past it: the
    # reorg replaces blocks its follower trusted and drops attestations
    above = s.epoch_of(fork) + 1

    def attested_above(node: DevnetNode) -> bool:
        return any(
            s.registry.attestation_of(e, node.address) for e in range(above, s.epoch_of(s.head()))
        )

    wait_until(
        lambda: all(attested_above(n) for n in s.devnet.nodes) or None,
        LANDS_TIMEOUT,
        f"an epoch from {above} on attested by every node",
    )
    wait_until(lambda: s.head() >= lowest + DEFAULT_CONFIRMATIONS + 3 or None, 30, "depth")
    assert_same_indexes(s)
    before = len(s.registry.anchors())

    # what each node has attested on-chain from the fork's epoch on, before the reorg
    epochs = range(s.epoch_of(fork), s.epoch_of(s.head()) + 1)
    before_reorg = {
        (n.address, e): s.registry.attestation_of(e, n.address)
        for n in s.devnet.nodes
        for e in epochs
    }
    depth = s.head() - fork  # read just before: blocks keep coming while the above is read
    assert depth > DEFAULT_CONFIRMATIONS + 1
    s.devnet.rpc("anvil_reorg", [depth, []])  # the replaced blocks' transactions are gone
    assert len(s.registry.anchors()) < before
    lost = [k for k, root in before_reorg.items() if root is not None and
            s.registry.attestation_of(k[1], k[0]) is None]  # fmt: skip
    assert lost, "the reorg dropped no attestation"
    # the lost anchors are sent again (each leaf anchored once), the indexes follow the chain
    assert_anchored_once(s)
    assert_same_indexes(s)

    # every attestation the reorg dropped is sent again, and every epoch attested by all
    # nodes has one root (an epoch's boundary may have changed: a new seed, a new root)
    for address, epoch in lost:
        wait_until(
            lambda a=address, e=epoch: s.registry.attestation_of(e, a),  # type: ignore[misc]
            LANDS_TIMEOUT,
            f"epoch {epoch} attested again by {address}",
        )
    for epoch in epochs:  # (an epoch every node was too busy to attest has no root at all)
        roots = {s.registry.attestation_of(epoch, n.address) for n in s.devnet.nodes}
        assert len(roots - {None}) <= 1, f"epoch {epoch}: divergent roots {roots}"
    # while the nodes re-sent their anchors and filled the nonce gaps the reorg left, their
    # epoch threads waited on the same wallets: epochs that passed meanwhile may be missed
    s.skip_epochs(fork, "after the reorg every wallet was busy re-sending what it dropped")
    for node in s.devnet.nodes:
        code, output = run_verify(node, s.devnet)
        assert code == 0, output


def test_a_dry_wallet_shows_in_health_and_anchoring_resumes_when_funded(
    scenario: Scenario,
) -> None:
    s = scenario
    node = s.devnet.nodes[1]
    balance = int(s.devnet.w3().eth.get_balance(node.address))
    dried_at = s.head()
    s.devnet.fund(node.address, 0)  # anvil_setBalance: the wallet is empty from now on
    try:
        ids = s.submit(node, 4)  # acknowledged all the same

        def reports_dry() -> dict[str, Any] | None:
            wallet = answering(node)["wallet"]
            return wallet if wallet["insufficient_funds"] and wallet["error"] else None

        wallet = wait_until(reports_dry, 90, "/health reporting the empty wallet")
        assert "cannot pay" in wallet["error"]
        assert all(tx_status(node.url, tx_id) == "pending" for tx_id in ids)
    finally:
        s.devnet.fund(node.address, balance)
        s.skip_epochs(dried_at, "node1's wallet was empty (it could not pay an attestation)")
    for tx_id in ids:
        wait_anchored(node.url, tx_id, timeout=90)
    assert answering(node)["wallet"]["insufficient_funds"] is False
    assert_anchored_once(s)


def test_a_node_that_dies_is_left_out_rehosted_and_comes_back(scenario: Scenario) -> None:
    """Churn behind the faulty RPC: a node killed for longer than the liveness window is left
    out of the first epoch whose boundary is past its last sighting plus the window, holds no
    slot there, the live nodes serve every routed role that still has a live host, and once
    restarted (no manual step) it is back in the assignment."""
    s = scenario
    nodes = s.devnet.nodes
    victim, live = nodes[2], nodes[:2]
    dead = victim.address.lower()
    user = s.devnet.operator
    sessions = {n.url: login(n.url, user) for n in live}
    killed_at = s.head()
    victim.kill()
    try:
        seen = s.registry.last_seen(victim.address)  # an attestation in flight may still land
        window = s.registry.liveness_window(killed_at)
        bound = max(killed_at, seen) + window
        epoch = s.epoch_of(killed_at)
        while s.registry.epoch_start_block(epoch) < bound:
            epoch += 1
        view = epoch_at(live, epoch)
        assert dead in lowered(view) and not view["kept_all"]
        assert dead not in hosts_of(view)
        assert hosts_of(view) <= {n.address.lower() for n in live}
        served = {**view, "slots": [x for x in view["slots"] if x["hosts"]]}
        paths = routed_paths(served, user.address)
        assert ("be_system", None) in paths  # the victim's home has no other member node
        assert_every_role_answered(live, paths, sessions, dead)
    finally:
        if not victim.running:
            victim.launch()
        answering(victim)
        s.skip_epochs(killed_at, "node2 was killed, left out, then restarted")
    after = int(s.registry.current_epoch())

    def back() -> dict[str, Any] | None:
        current = int(s.registry.current_epoch())
        if current <= after:
            return None
        view = epoch_at(nodes, current)
        return view if dead in hosts_of(view) and dead not in lowered(view) else None

    wait_until(back, LANDS_TIMEOUT, "node2 back in the assignment")
    s.skip_epochs(killed_at, "node2 was killed, left out, then restarted")
