"""Rate-limit bypass (issue 16), from outside against a real ``collegium up`` process: a
self-declared ``X-Collegium-Hops`` or any ``X-Forwarded-For`` (the server trusted it from
127.0.0.1) gave a client a fresh bucket on every request; a peer signature it cannot make
gives it nothing either."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
from eth_account import Account

from node.auth.peer import PEER_HEADER, sign_peer_request
from tests.support.node import node_process

RATE = "2"
BURST = "5"
REQUESTS = 40


def test_hops_forwarded_for_and_unregistered_peers_share_the_clients_bucket(
    tmp_path: Path,
) -> None:
    proc = node_process(tmp_path)
    proc.env |= {"COLLEGIUM_RATE_LIMIT": RATE, "COLLEGIUM_RATE_BURST": BURST}
    init = [sys.executable, "-m", "node.cli.main", "init", "--data-dir", str(proc.data_dir)]
    subprocess.run(init, env=proc.env, check=True, capture_output=True)
    stranger = Account.create()  # signs like a node, but is registered nowhere
    try:
        proc.start()
        statuses: list[int] = []
        with httpx.Client(timeout=10) as client:
            for i in range(REQUESTS):
                path = "/api/v1/anchors"
                headers = {
                    "x-collegium-hops": "1",
                    "x-forwarded-for": f"10.0.{i // 250}.{i % 250 + 1}",
                    "x-real-ip": f"10.1.0.{i % 250 + 1}",
                    PEER_HEADER: sign_peer_request(stranger, "GET", path, 1, int(time.time())),
                }
                statuses.append(client.get(proc.url + path, headers=headers).status_code)
        assert statuses.count(429) >= REQUESTS - int(BURST) - 5, statuses
        assert set(statuses) <= {200, 429}, statuses
    finally:
        proc.stop()
