"""Three real ``collegium up`` processes on one anvil chain: routing by the epoch's
assignment and failover after ``kill -9`` of a slot's first host."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from node.auth.client import SessionAuth, open_session
from node.chain.keys import load_account
from node.chain.registry import Registry
from tests.chain.conftest import ChainUnderTest, anvil_chain  # noqa: F401 - fixture
from tests.support.node import NodeProcess, node_process

HOME = "main"
EPOCH_PERIOD = 60
AGREE_TIMEOUT = 90.0
RECORDS = f"/api/v1/subsystems/{HOME}/data/records"


def start_node(parent: Path, chain_url: str, registry: str | None) -> NodeProcess:
    parent.mkdir(parents=True)
    proc = node_process(parent)
    init = [sys.executable, "-m", "node.cli.main", "init", "--data-dir", str(proc.data_dir),
            "--chain", chain_url, "--home", HOME, "--capacity", "4"]  # fmt: skip
    if registry is not None:
        init += ["--registry", registry]
    subprocess.run(init, env=proc.env, check=True, capture_output=True)
    proc.start("--chain", chain_url, "--epoch-period", str(EPOCH_PERIOD))
    return proc


def current_epochs(procs: list[NodeProcess], epoch: int) -> list[dict[str, Any]]:
    """Return each node's view of ``epoch`` once all computed the same root."""
    deadline = time.monotonic() + AGREE_TIMEOUT
    views: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        views = [httpx.get(p.url + "/api/v1/epochs/current", timeout=10).json() for p in procs]
        roots = {v.get("root") for v in views}
        if all(v.get("epoch") == epoch for v in views) and len(roots) == 1 and None not in roots:
            return views
        time.sleep(0.5)
    raise AssertionError(f"nodes did not agree on epoch {epoch}: {views}")


def login(proc: NodeProcess, wallet: Any) -> SessionAuth:
    return open_session(proc.url, wallet)


@pytest.mark.anvil
@pytest.mark.slow
def test_every_node_routes_to_the_assigned_host_and_fails_over_after_kill_9(
    anvil_chain: ChainUnderTest,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = str(anvil_chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    procs: list[NodeProcess] = []
    try:
        procs.append(start_node(tmp_path / "a", url, None))
        registry_address = json.loads((procs[0].data_dir / "node.json").read_text())["registry"]
        procs.append(start_node(tmp_path / "b", url, registry_address))
        procs.append(start_node(tmp_path / "c", url, registry_address))
        addresses = [httpx.get(p.url + "/health").json()["node"].lower() for p in procs]

        # the first node created "main": its wallet admits the other nodes and a user
        admin = load_account(
            procs[0].data_dir / "keystore.json", procs[0].env["COLLEGIUM_PASSWORD"]
        )
        registry = Registry(anvil_chain.w3, registry_address, admin)
        user = Account.create()
        for address in (*addresses[1:], user.address):
            registry.add_participant(HOME, address)
        target = registry.current_epoch() + 1
        anvil_chain.mine_to(registry.epoch_start_block(target))
        views = current_epochs(procs, target)
        (slot,) = [s for s in views[0]["slots"]
                   if s["role"] == "be_subsystem" and s["subsystem"] == HOME]  # fmt: skip
        hosts = [h.lower() for h in slot["hosts"]]
        assert len(hosts) == 2
        by_address = dict(zip(addresses, procs, strict=True))
        outsider = next(p for a, p in by_address.items() if a not in hosts)

        # every node answers; the slot's first host serves
        sessions = {p.url: login(p, user) for p in procs}
        for proc, address in zip(procs, addresses, strict=True):
            r = httpx.get(proc.url + RECORDS, auth=sessions[proc.url], timeout=10)
            assert r.status_code == 200, r.text
            expected = address if address in hosts else hosts[0]
            assert r.headers["x-collegium-served-by"].lower() == expected
            assert r.headers["x-collegium-epoch"] == str(target)
            system = httpx.get(f"{proc.url}/api/v1/system/users/{user.address}",
                               auth=sessions[proc.url], timeout=10)  # fmt: skip
            assert system.status_code == 200, system.text
            assert system.json()["subsystems"] == [HOME]
        written = httpx.post(outsider.url + RECORDS, auth=sessions[outsider.url],
                             json={"key": "k", "value": "written-through-the-router"})  # fmt: skip
        assert written.status_code == 201, written.text
        assert written.json()["author"] == user.address

        # kill -9 the first host: the outsider's requests go to the second host
        by_address[hosts[0]].kill()
        start = time.monotonic()
        r = httpx.get(outsider.url + RECORDS, auth=sessions[outsider.url], timeout=10)
        elapsed = time.monotonic() - start
        assert r.status_code == 200, r.text
        assert r.headers["x-collegium-served-by"].lower() == hosts[1]
        print(f"failover: {elapsed * 1000:.0f} ms")
        metrics = httpx.get(outsider.url + "/metrics", timeout=10).text
        assert 'collegium_proxy_failovers_total{role="be_subsystem"} 1.0' in metrics
    finally:
        for proc in procs:
            proc.kill()
