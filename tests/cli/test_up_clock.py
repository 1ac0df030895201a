"""`collegium up` on the embedded chain: chain time is wall time (issue 13).

One real node process, epoch period 10 blocks: blocks come from the block clock (one per
second), so the newest block is never stamped past the wall clock by more than the bound
(``chain_max_lead``), epochs pass at about one block per second, epoch 0 already assigns the
deploying node, and a restart after an idle period resumes with no burst of blocks.
About 45 s on a loaded 2-core machine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.node import NodeProcess, node_process

MAX_LEAD = 5  # Settings.chain_max_lead, the documented bound
IDLE_SECONDS = 4  # the node is down this long between its two runs


def _health(node: NodeProcess) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(node.url + "/health", timeout=10).json()
    return body


def _watch(node: NodeProcess, seconds: float) -> list[dict[str, Any]]:
    """Return /health samples over ``seconds``, checking the clock bound at each."""
    samples = []
    end = time.time() + seconds
    while time.time() < end:
        body = _health(node)
        lead = body["chain"]["head_timestamp"] - time.time()
        assert lead <= MAX_LEAD, body["chain"]
        samples.append(body)
        time.sleep(0.5)
    return samples


def test_chain_time_is_wall_time_across_idle_and_restart(tmp_path: Path) -> None:
    node = node_process(tmp_path)
    node.env.update(COLLEGIUM_EPOCH_PERIOD="10", COLLEGIUM_EPOCH_POLL_SECONDS="0.2")
    first = node.start()
    try:
        assert first["chain"]["max_lead_seconds"] == MAX_LEAD
        start_block, started = first["chain"]["block_number"], time.time()
        # epoch 0 includes the deploying node: assigned from its first minute, healthy
        assert first["epochs"]["epoch"] == 0, first["epochs"]
        zero = httpx.get(node.url + "/api/v1/epochs/0", timeout=10).json()
        assert zero["root"] is not None and any(s["mine"] for s in zero["slots"]), zero
        assert zero["snapshot_block"] > zero["boundary_block"]  # read once it registered
        assert first["status"] == "ok", first["reasons"]
        samples = _watch(node, 12)
        last = samples[-1]
        assert last["status"] == "ok", last["reasons"]
        elapsed = time.time() - started
        made = last["chain"]["block_number"] - start_block
        assert 0.5 * elapsed <= made <= elapsed + MAX_LEAD  # about one block per second
        assert last["epochs"]["epoch"] >= 1  # a period of 10 blocks is about 10 s
        assert all(s["epochs"]["root"] is not None for s in samples)
        stopped_block, sampled = last["chain"]["block_number"], time.monotonic()
    finally:
        node.stop()
    time.sleep(IDLE_SECONDS)  # idle, node down: no blocks, and none owed
    second = node.start()
    try:
        lead = second["chain"]["head_timestamp"] - time.time()
        assert lead <= MAX_LEAD
        # no burst: one block per second while the node ran (its stop and its start-up take
        # seconds on a loaded machine) and one for the gap; a burst would add one block per
        # idle second too
        running = time.monotonic() - sampled - IDLE_SECONDS
        made = second["chain"]["block_number"] - stopped_block
        assert made <= 2 + running, (made, running, second["chain"])
        _watch(node, 3)
    finally:
        node.stop()
