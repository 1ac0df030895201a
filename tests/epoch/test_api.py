"""A real node (embedded chain, HTTP on 127.0.0.1): epochs over HTTP and in `collegium status`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from node.chain.registry import compute_roles_mask
from node.cli.main import app
from tests.support.node import in_process_node

POLL_TIMEOUT_SECONDS = 60.0
ALL_ROLES = ("fe_system", "fe_subsystem", "be_system", "be_subsystem")
ENOUGH_CAPACITY = 4  # one node, one subsystem: four slots


def _wait_for(fetch: Callable[[], Any], ready: Callable[[Any], bool]) -> Any:
    """Return ``fetch()`` once ``ready`` accepts it (polling; fails after the timeout)."""
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    value = fetch()
    while not ready(value):
        assert time.monotonic() < deadline, f"condition not reached; last value: {value}"
        time.sleep(0.1)
        value = fetch()
    return value


def test_epochs_over_http_and_in_status(tmp_path: Path) -> None:
    """Also issue 13's degraded health: a node too small for its slots is assigned what fits,
    and ``/health`` and ``collegium status`` say which slots have no host until it grows."""
    with in_process_node(
        tmp_path / "n",
        init={"capacity": 2},
        epoch_period=4,
        epoch_poll_seconds=0.1,
        block_seconds=1,
    ) as running:
        base = running.url + "/api/v1"
        me = running.node.address

        def current() -> httpx.Response:
            return httpx.get(base + "/epochs/current", timeout=10)

        # a single node of capacity 2 cannot hold four slots: two are served, two reported
        first = _wait_for(
            current, lambda r: r.status_code == 200 and r.json()["root"] is not None
        ).json()
        assert first["error"] is None
        assert sum(1 for s in first["slots"] if s["hosts"] == [me.lower()]) == 2
        assert sum(1 for s in first["slots"] if not s["hosts"]) == 2
        assert sum("unserved (capacity)" in a for a in first["adjustments"]) == 2
        health = httpx.get(running.url + "/health", timeout=10).json()
        assert health["status"] == "degraded"
        assert "slot_unserved" in [r["code"] for r in health["reasons"]], health["reasons"]
        result = CliRunner().invoke(app, ["status", "--url", running.url])
        assert result.exit_code == 0, result.output
        assert "status     DEGRADED" in result.output
        assert "slot_unserved: epoch" in result.output and "fe_subsystem[main]" in result.output

        registry = running.node.registry
        registry.update_node(
            running.node.settings.endpoint, ENOUGH_CAPACITY, compute_roles_mask(ALL_ROLES), "main"
        )
        body = _wait_for(
            current,
            lambda r: r.json()["root"] is not None and all(s["hosts"] for s in r.json()["slots"]),
        ).json()
        assert body["epoch"] > first["epoch"]  # the block clock moved the quiet chain on
        assert {(s["role"], s["subsystem"]) for s in body["slots"]} == {
            ("be_subsystem", "main"), ("be_system", None), ("fe_subsystem", "main"),
            ("fe_system", None),
        }  # fmt: skip
        assert all(s["mine"] and s["hosts"] == [me.lower()] for s in body["slots"])
        assert body["attestations"] == [{"node": me, "root": body["root"], "matches": True}]
        assert body["source_block"] == body["boundary_block"]
        period = running.node.registry.epoch_period()
        assert body["left_out"] == [] and body["liveness_window"] == 2 * period

        past = httpx.get(f"{base}/epochs/{body['epoch']}", timeout=10).json()
        assert past["root"] == body["root"] and past["seed"] == body["seed"]
        missing = httpx.get(f"{base}/epochs/{body['epoch'] + 1000}", timeout=10)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

        nodes = httpx.get(base + "/nodes", timeout=10).json()
        assert [(n["address"], n["capacity"], n["home"]) for n in nodes] == [
            (me, ENOUGH_CAPACITY, "main")
        ]
        subsystems = httpx.get(base + "/subsystems", timeout=10).json()
        assert subsystems == [{"name": "main", "participants": [me]}]

        health = _wait_for(
            lambda: httpx.get(running.url + "/health", timeout=10).json(),
            lambda h: h["status"] == "ok",
        )
        assert health["reasons"] == [] and health["epochs"]["enabled"] is True
        assert health["epochs"]["agree"] == [me]
        result = CliRunner().invoke(app, ["status", "--url", running.url])
        assert result.exit_code == 0, result.output
        assert "assignment root 0x" in result.output
        assert "1 agree, 0 disagree" in result.output
        assert "status     ok" in result.output and "slot_unserved" not in result.output
