"""`collegium up` as a real process: a restart keeps transactions, chain and registry,
and a transaction acknowledged before `kill -9` is still there afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
from eth_account import Account

from tests.support.node import domain_of, make_submission, node_process

TX_PATH = "/api/v1/transactions"


def test_restart_keeps_everything(tmp_path: Path) -> None:
    node = node_process(tmp_path)
    node.env["COLLEGIUM_REQUIRE_PARTICIPANT"] = "false"  # random wallets sign here
    first = node.start()
    try:
        domain = domain_of(node.url)
        created = httpx.post(
            node.url + TX_PATH,
            params={"wait": "true"},
            json=make_submission(domain, Account.create()),
            timeout=60,
        ).json()
        assert created["status"] == "anchored"
        height = httpx.get(node.url + "/health", timeout=10).json()["chain"]["block_number"]
    finally:
        node.stop()
    # uvicorn re-raises SIGTERM after a graceful shutdown; the node closed its parts first
    assert node.proc is not None and node.proc.returncode in (0, -signal.SIGTERM)
    assert node.log_path is not None and "stopped cleanly" in node.log_path.read_text()

    second = node.start()
    try:
        assert second["registry"] == first["registry"]
        assert second["node"] == first["node"]
        assert second["chain"]["block_number"] >= height
        got = httpx.get(f"{node.url}{TX_PATH}/{created['id']}", timeout=10).json()
        assert got == created
        raw = httpx.get(f"{node.url}/ipfs/{created['cid']}?format=raw", timeout=10)
        assert raw.status_code == 200
        # the node can still write after the restart (nonce and chain state resumed)
        again = httpx.post(
            node.url + TX_PATH,
            params={"wait": "true"},
            json=make_submission(domain, Account.create()),
            timeout=60,
        )
        assert again.status_code == 201
    finally:
        node.stop()
    verify = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "verify", "--data-dir", str(node.data_dir)],
        env=node.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "checked 2 transactions (2 anchored, 0 pending): all match" in verify.stdout


def test_acknowledged_transaction_survives_kill_9(tmp_path: Path) -> None:
    node = node_process(tmp_path)
    node.env["COLLEGIUM_REQUIRE_PARTICIPANT"] = "false"  # random wallets sign here
    node.start()
    try:
        domain = domain_of(node.url)
        acked = []
        for _ in range(3):
            response = httpx.post(
                node.url + TX_PATH, json=make_submission(domain, Account.create()), timeout=60
            )
            assert response.status_code in (201, 202)
            acked.append(response.json()["id"])
    finally:
        node.kill()
    node.start()
    try:
        for tx_id in acked:
            assert wait_status(node.url, tx_id) == "anchored"
    finally:
        node.stop()


def wait_status(url: str, tx_id: str, timeout: float = 60) -> str:
    """Return the status of ``tx_id`` once anchored (or the last one seen at timeout)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        got = httpx.get(f"{url}{TX_PATH}/{tx_id}", timeout=10)
        assert got.status_code == 200, got.text
        status = str(got.json()["status"])
        if status == "anchored" or time.monotonic() > deadline:
            return status
        time.sleep(0.2)
