"""`collegium up` as a real process: a restart keeps transactions, chain and registry,
and a transaction acknowledged before `kill -9` is still there afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from node.ledger.verifier import compute_leaf_cid
from tests.support.node import domain_of, make_submission, node_process

TX_PATH = "/api/v1/transactions"
STORM_CLIENTS = 16  # concurrent single-POST clients while the node is killed
STORM_PER_CLIENT = 20
STORM_KILL_AFTER = 40  # acknowledged transactions before SIGKILL


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
    """Three sequential submissions, then a storm of concurrent single POSTs (group
    committed) during which the node is killed with SIGKILL: every acknowledged transaction
    is there after the restart, gets anchored, and its body is in the content store (a 202
    comes before the body's store write: the anchorer stores the bodies the kill left out)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    node = node_process(tmp_path)
    node.env["COLLEGIUM_REQUIRE_PARTICIPANT"] = "false"  # random wallets sign here
    node.start()
    acked: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def storm(bodies: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=node.url, timeout=60) as client:
            for body in bodies:
                try:
                    response = client.post(TX_PATH, json=body)
                except httpx.TransportError:
                    assert killed.is_set()  # only the kill ends the storm
                    return
                assert response.status_code in (201, 202), response.text
                with lock:
                    acked.append(response.json()["id"])

    try:
        domain = domain_of(node.url)
        for _ in range(3):
            response = httpx.post(
                node.url + TX_PATH, json=make_submission(domain, Account.create()), timeout=60
            )
            assert response.status_code in (201, 202)
            acked.append(response.json()["id"])
        wallets = [Account.create() for _ in range(STORM_CLIENTS)]
        bodies = [
            [make_submission(domain, w, nonce=n) for n in range(STORM_PER_CLIENT)] for w in wallets
        ]
        with ThreadPoolExecutor(STORM_CLIENTS) as pool:
            futures = [pool.submit(storm, b) for b in bodies]
            while len(acked) < STORM_KILL_AFTER and not any(f.done() for f in futures):
                time.sleep(0.005)
            killed.set()
            node.kill()  # SIGKILL mid-storm: requests in flight get no answer
            for future in futures:
                future.result()
    finally:
        if not killed.is_set():
            node.kill()
    assert STORM_KILL_AFTER <= len(acked) < 3 + STORM_CLIENTS * STORM_PER_CLIENT
    node.start()
    try:
        cids = []
        for tx_id in acked:
            got = httpx.get(f"{node.url}{TX_PATH}/{tx_id}", timeout=10)
            assert got.status_code == 200, f"acknowledged {tx_id} lost: {got.text}"
            cids.append(got.json()["cid"])
        for tx_id in acked:
            assert wait_status(node.url, tx_id) == "anchored"
        for cid in cids:
            raw = httpx.get(f"{node.url}/ipfs/{cid}", params={"format": "raw"}, timeout=10)
            assert raw.status_code == 200 and compute_leaf_cid(raw.content) == cid
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
