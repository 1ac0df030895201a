"""Issue 13: each reason ``/health`` gives for ``degraded`` appears for a real cause and goes
once the cause is gone, in ``/health``, ``collegium status``, the Overview page (headless
Chromium) and the ``collegium_health_reason`` metric.

One in-process node on one anvil (restartable on its port with its state) serves the whole
module; each test makes its cause, watches the reason come, removes the cause and waits for
``status: ok`` again, so the next test starts from a healthy node. Epochs advance only when a
test mines (anvil mines a block per transaction, and the node does not autoadvance).
``slot_unserved`` is made in tests/epoch/test_api.py, ``clock_ahead`` (embedded chain only) in
tests/frontend/test_browser.py and tests/chain/test_embedded.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from typer.testing import CliRunner

from node.chain.registry import Registry, compute_roles_mask
from node.cli.main import app
from node.devnet import free_port
from node.health import HEALTH_CACHE_SECONDS
from tests.frontend.conftest import browser  # noqa: F401 -- the module's headless Chromium
from tests.support.anvil import RestartableAnvil
from tests.support.node import (
    InProcessNode,
    domain_of,
    in_process_node,
    make_submission,
    submit_anchored,
)

pytestmark = pytest.mark.anvil

EPOCH_PERIOD = 20  # blocks: room for a test's transactions within one epoch
ALL_ROLES = ("fe_system", "fe_subsystem", "be_system", "be_subsystem")
FUNDS_WEI = 10**21
#: how long a reason may take to come or go: a poll of the epoch service, the follower or the
#: syncer (0.2-1 s), the anchorer's back-off after a few failures, /health's cache (1 s)
REASON_TIMEOUT_SECONDS = 30.0
#: /health must answer within this while the chain is down (the node's own RPC provider
#: retries a request for up to a minute; the health probe tries each URL once)
DOWN_ANSWER_SECONDS = 5.0


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableAnvil]:
    chain = RestartableAnvil(tmp_path_factory.mktemp("anvil") / "state.json")
    chain.start()
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture(scope="module")
def node(
    anvil: RestartableAnvil, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessNode]:
    with in_process_node(
        tmp_path_factory.mktemp("health") / "node",
        chain_url=anvil.url,
        epoch_period=EPOCH_PERIOD,
        epoch_poll_seconds=0.2,
        follower_poll=0.2,
        sync_interval=0.5,
    ) as running:
        wait_health(running, lambda h: h["status"] == "ok")
        yield running


def health(node: InProcessNode) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(node.url + "/health", timeout=30).json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [r["code"] for r in body["reasons"]]


def wait_health(node: InProcessNode, ready: Any) -> dict[str, Any]:
    """Return ``/health`` once ``ready`` accepts it (polled; fails after the timeout)."""
    deadline = time.monotonic() + REASON_TIMEOUT_SECONDS
    body = health(node)
    while not ready(body):
        assert time.monotonic() < deadline, f"not reached; last /health: {body}"
        time.sleep(0.2)
        body = health(node)
    return body


def wait_reason(node: InProcessNode, code: str) -> dict[str, Any]:
    """Return ``/health`` once it is degraded with ``code``; return that reason's message too."""
    return wait_health(node, lambda h: h["status"] == "degraded" and code in codes(h))


def wait_ok(node: InProcessNode) -> dict[str, Any]:
    body = wait_health(node, lambda h: h["status"] == "ok")
    assert body["reasons"] == []
    return body


def message(body: dict[str, Any], code: str) -> str:
    return str(next(r["message"] for r in body["reasons"] if r["code"] == code))


def status_output(node: InProcessNode) -> str:
    """Return what ``collegium status`` prints for the node."""
    result = CliRunner().invoke(app, ["status", "--url", node.url])
    assert result.exit_code == 0, result.output
    return str(result.output)


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:  # noqa: F811
    """One Chromium page for the module's Overview checks."""
    context = browser.new_context()
    context.set_default_timeout(REASON_TIMEOUT_SECONDS * 1000)
    try:
        yield context.new_page()
    finally:
        context.close()


def metric_value(node: InProcessNode, code: str) -> float:
    """Return ``collegium_health_reason{reason=code}`` as ``/metrics`` exposes it."""
    text = httpx.get(node.url + "/metrics", timeout=30).text
    line = f'collegium_health_reason{{reason="{code}"}} '
    return float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1])


def assert_said_everywhere(node: InProcessNode, page: Any, code: str, words: str) -> None:
    """The reason is in ``collegium status``, on the Overview in words, and in the metric."""
    out = status_output(node)
    assert "status     DEGRADED" in out, out
    assert f"  {code}: " in out and words in out, out
    page.goto(node.url + "/")
    shown = page.locator(f"[data-testid=health-degraded] [data-reason={code}]")
    shown.wait_for()
    assert words in shown.inner_text()
    assert metric_value(node, code) == 1


def assert_gone_everywhere(node: InProcessNode, page: Any, code: str) -> None:
    """After ``wait_ok``: the reason is in none of the places it was shown."""
    assert code not in status_output(node)
    page.goto(node.url + "/")
    page.get_by_test_id("height").wait_for()
    assert page.locator(f"[data-reason={code}]").count() == 0
    assert page.get_by_test_id("health-degraded").count() == 0
    metrics = httpx.get(node.url + "/metrics", timeout=30).text  # the gauge follows /health
    assert metric_value(node, code) == 0, metrics[-2000:]


def next_epoch(node: InProcessNode, anvil: RestartableAnvil) -> int:
    """Mine to the next epoch's boundary; return the epoch once the node has processed it."""
    registry = node.node.registry
    epoch = int(registry.current_epoch())
    boundary = int(registry.epoch_start_block(epoch + 1))
    anvil.mine(max(1, boundary - int(anvil.w3.eth.block_number)))
    wait_health(node, lambda h: (h["epochs"] or {}).get("epoch") == epoch + 1)
    return epoch + 1


def test_reads_are_reused_at_the_same_head_for_a_second(
    node: InProcessNode, anvil: RestartableAnvil
) -> None:
    cache = node.node._health_cache
    wait_ok(node)
    reads = cache.reads
    started = time.monotonic()
    bodies = [health(node) for _ in range(3)]
    heads = {b["chain"]["block_number"] for b in bodies}
    if len(heads) == 1 and time.monotonic() - started < HEALTH_CACHE_SECONDS:
        assert cache.reads - reads <= 1  # (a slow machine may cross the TTL, a heartbeat the head)
    anvil.mine(1)  # a new head: read afresh at once, however recent the last reading
    after = health(node)
    assert after["chain"]["block_number"] > bodies[-1]["chain"]["block_number"]
    assert after["epoch"] == node.node.registry.current_epoch()


def test_chain_unreachable_while_the_chain_is_down(
    node: InProcessNode, anvil: RestartableAnvil, page: Any
) -> None:
    wait_ok(node)
    page.goto(node.url + "/")  # the page was open before the outage
    anvil.stop()
    try:
        started = time.monotonic()
        body = health(node)
        assert time.monotonic() - started < DOWN_ANSWER_SECONDS  # a probe, not the retries
        assert body["status"] == "degraded" and codes(body) == ["chain_unreachable"], body
        assert "the chain does not answer" in message(body, "chain_unreachable")
        assert body["chain"]["block_number"] is None
        assert body["epochs"]["root"] is not None  # as last read
        assert_said_everywhere(node, page, "chain_unreachable", "the chain does not answer")
    finally:
        anvil.start()  # same port, same state: the outage is over
    wait_ok(node)
    # the probe's answer ended the node's provider's cooldown: no request waits out the rest of
    # its backoff (a later /health did, past `collegium status`'s 5 s timeout)
    provider = node.node.chain.w3.provider
    assert all(e.ready_at <= time.monotonic() for e in provider.endpoints)
    assert_gone_everywhere(node, page, "chain_unreachable")


def test_no_assignment_while_no_slot_can_be_served(
    node: InProcessNode, anvil: RestartableAnvil, page: Any
) -> None:
    """The only node offers ``be_subsystem`` alone: no system role has a host, the subsystem
    lacks its front-end, so no slot can be served and the epoch has no root."""
    wait_ok(node)
    registry = node.node.registry
    endpoint = node.node.settings.endpoint
    registry.update_node(endpoint, 4, compute_roles_mask(("be_subsystem",)), "main")
    try:
        epoch = next_epoch(node, anvil)
        body = wait_reason(node, "no_assignment")
        assert f"epoch {epoch} has no assignment" in message(body, "no_assignment")
        assert body["epochs"]["root"] is None
        assert_said_everywhere(node, page, "no_assignment", f"epoch {epoch} has no assignment")
    finally:
        registry.update_node(endpoint, 4, compute_roles_mask(ALL_ROLES), "main")
    next_epoch(node, anvil)
    body = wait_ok(node)
    assert body["epochs"]["root"] is not None
    assert_gone_everywhere(node, page, "no_assignment")


def test_attestations_disagree_while_a_node_attests_another_root(
    node: InProcessNode, anvil: RestartableAnvil, page: Any
) -> None:
    """A second registered node attests a root of its own for the current epoch; the reason
    goes when that node leaves (it is neither active nor in the epoch's snapshot)."""
    wait_ok(node)
    epoch = next_epoch(node, anvil)  # a fresh epoch: its few transactions stay within it
    wait_health(node, lambda h: h["epochs"]["root"] is not None)
    other = Account.create()
    anvil.set_balance(other.address, FUNDS_WEI)
    rogue = Registry(node.node.chain.w3, node.node.record.registry, other)
    rogue.register_node("http://127.0.0.1:9", 1, compute_roles_mask(("fe_system",)), "main")
    rogue.attest(epoch, rogue.seed_info(epoch).seed, b"\x01" * 32)  # type: ignore[union-attr]
    body = wait_reason(node, "attestations_disagree")
    said = message(body, "attestations_disagree")
    assert f"attested another root for epoch {epoch}" in said and other.address in said
    assert body["epochs"]["epoch"] == epoch and body["epochs"]["disagree"] == [other.address]
    assert_said_everywhere(node, page, "attestations_disagree", other.address)
    rogue.leave_node()
    wait_ok(node)
    assert_gone_everywhere(node, page, "attestations_disagree")


def test_anchoring_stalled_while_the_wallet_cannot_pay_gas(
    node: InProcessNode, anvil: RestartableAnvil, page: Any
) -> None:
    wait_ok(node)
    wallet = Account.create()
    node.node.registry.add_participant("main", wallet.address)  # while the node can pay
    address = node.node.address
    anvil.set_balance(address, 0)
    try:
        response = httpx.post(
            node.url + "/api/v1/transactions",
            json=make_submission(domain_of(node.url), wallet),
            timeout=30,
        )
        assert response.status_code == 202, response.text  # accepted, waiting for an anchor
        body = wait_health(  # (the wallet is read with the chain: up to a second older)
            node,
            lambda h: "anchoring_stalled" in codes(h) and h["wallet"]["insufficient_funds"],
        )
        assert "1 transaction(s) wait for an anchor" in message(body, "anchoring_stalled")
        assert_said_everywhere(node, page, "anchoring_stalled", "wait for an anchor")
    finally:
        anvil.set_balance(address, FUNDS_WEI)
    body = wait_health(node, lambda h: h["status"] == "ok" and h["wallet"]["balance_wei"] > 0)
    assert body["log"]["pending"] == 0
    tx = httpx.get(f"{node.url}/api/v1/transactions/{response.json()['id']}", timeout=10)
    assert tx.json()["status"] == "anchored"
    assert_gone_everywhere(node, page, "anchoring_stalled")


def test_sync_behind_while_no_peer_serves_what_the_chain_references(
    node: InProcessNode, anvil: RestartableAnvil, page: Any, tmp_path: Any
) -> None:
    """A peer anchors a batch while its registered endpoint leads nowhere: this node wants the
    batch and no peer serves it. The peer registers its real endpoint; this node catches up."""
    wait_ok(node)
    dead = f"http://127.0.0.1:{free_port()}"
    with in_process_node(
        tmp_path / "peer",
        init={"registry": node.node.record.registry},
        chain_url=anvil.url,
        public_url=dead,
        epoch_service=False,
        sync=False,
    ) as peer:
        submit_anchored(peer, 1, admin=node.node.registry)
        body = wait_reason(node, "sync_behind")
        assert "could not be fetched from any peer" in message(body, "sync_behind")
        assert body["sync"]["have"] < body["sync"]["want"]
        assert_said_everywhere(node, page, "sync_behind", "could not be fetched from any peer")
        info = peer.node.registry.get_node(peer.node.address)
        peer.node.registry.update_node(peer.url, info.capacity, info.roles_mask, info.home)
        body = wait_ok(node)
        assert body["sync"]["have"] == body["sync"]["want"]
        assert_gone_everywhere(node, page, "sync_behind")
