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
    with in_process_node(
        tmp_path / "n", init={"capacity": 2}, epoch_seconds=0.5, epoch_poll_seconds=0.1
    ) as running:
        base = running.url + "/api/v1"
        me = running.node.address

        def current() -> httpx.Response:
            return httpx.get(base + "/epochs/current", timeout=10)

        # a single node of capacity 2 cannot hold four slots: reported, not hidden
        first = _wait_for(
            current, lambda r: r.status_code == 200 and "capacity" in (r.json()["error"] or "")
        ).json()
        assert first["root"] is None and "capacity" in first["error"]
        assert first["slots"] == []
        # the router then routes as a lone node: every slot here, root zero, never attested
        epoch, table = running.node.assignment_source.current()
        assert epoch >= first["epoch"] and table.root == bytes(32)
        assert table.slots and all(s.hosts == (me.lower(),) for s in table.slots)
        assert first["attestations"][0]["root"] is None
        # no root, so no attestation: the node keeps itself live with heartbeats instead
        registered_at = running.node.registry.get_node(me).registered_at
        beating = _wait_for(
            lambda: httpx.get(running.url + "/health", timeout=10).json()["epochs"],
            lambda e: e.get("heartbeats_sent", 0) >= 1,
        )
        assert beating["last_seen"] > registered_at
        assert beating["left_out"] == [] and beating["kept_all"] is False

        registry = running.node.registry
        registry.update_node(
            running.node.settings.endpoint, ENOUGH_CAPACITY, compute_roles_mask(ALL_ROLES), "main"
        )
        body = _wait_for(current, lambda r: r.json()["root"] is not None).json()
        assert body["epoch"] > first["epoch"]  # autoadvance moved the quiet chain on
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

        health = httpx.get(running.url + "/health", timeout=10).json()
        assert health["epochs"]["enabled"] is True
        assert health["epochs"]["agree"] == [me]
        result = CliRunner().invoke(app, ["status", "--url", running.url])
        assert result.exit_code == 0, result.output
        assert "assignment root 0x" in result.output
        assert "1 agree, 0 disagree" in result.output
