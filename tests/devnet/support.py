"""Helpers of the multi-node tests: SIWE sessions, signed submissions, polling, verify."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from typer.testing import CliRunner

from node.auth.client import SessionAuth, open_session
from node.devnet import Devnet, DevnetNode
from node.ledger.transaction import Domain
from tests.support.blocks import StoredBlock
from tests.support.node import domain_of, make_submission

T = TypeVar("T")
ROUTED_TIMEOUT = 10.0
"""A routed request must be answered within this: a hung relay fails the test. How fast a
failover is (the issue's 2 s bound) is measured by bench/router.py (docs/benchmarks.md), not
here: the suite checks correctness only, and a loaded CI machine stretches any wall-clock bound."""
POLL = 0.3


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Return ``check()``'s first truthy value, polling; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(POLL)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def login(url: str, wallet: Any) -> SessionAuth:
    """Return a session key of ``wallet`` delegated at the node ``url`` (signs each request)."""
    return open_session(url, wallet)


def submission(domain: Domain, wallet: Any, subsystem: str = "main") -> dict[str, Any]:
    """Return a fresh signed submission body (random nonce) by ``wallet`` in ``subsystem``."""
    return make_submission(domain, wallet, subsystem=subsystem, nonce=secrets.randbelow(2**63))


def submit_batch(url: str, wallet: Any, count: int, subsystem: str = "main") -> list[str]:
    """Submit ``count`` transactions through the batch endpoint; return their ids."""
    domain = domain_of(url)
    items = [submission(domain, wallet, subsystem) for _ in range(count)]
    response = httpx.post(url + "/api/v1/transactions/batch", json={"items": items}, timeout=30)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert all(r["status"] == 202 for r in results), results
    return [str(r["id"]) for r in results]


def tx_status(url: str, tx_id: str) -> str | None:
    """Return the status of ``tx_id`` at ``url``, or None if the node does not know it."""
    response = httpx.get(f"{url}/api/v1/transactions/{tx_id}", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return str(response.json()["status"])


def wait_anchored(url: str, tx_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Return transaction ``tx_id`` once the node at ``url`` reports it anchored."""

    def anchored() -> dict[str, Any] | None:
        response = httpx.get(f"{url}/api/v1/transactions/{tx_id}", timeout=10)
        body = response.json() if response.status_code == 200 else None
        return body if body is not None and body["status"] == "anchored" else None

    return wait_until(anchored, timeout, f"{tx_id} anchored at {url}")


def run_verify(node: DevnetNode, devnet: Devnet) -> tuple[int, str]:
    """Return the exit code and output of ``collegium verify --data-dir … --chain …``."""
    from node.cli.main import app

    result = CliRunner().invoke(
        app, ["verify", "--data-dir", str(node.data_dir), "--chain", devnet.chain_url]
    )
    return result.exit_code, result.output


def health(node: DevnetNode) -> dict[str, Any]:
    """Return the node's ``/health``."""
    return dict(httpx.get(node.url + "/health", timeout=10).json())


def block_path(data_dir: Path, cid: str) -> StoredBlock:
    """Return block ``cid`` of a node's embedded store (packed or a file), file-like."""
    return StoredBlock(data_dir / "ipfs", cid)
