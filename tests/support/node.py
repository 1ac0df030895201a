"""Start real Collegium nodes for tests: in-process (uvicorn thread) or as a process."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import uvicorn
from eth_account import Account

from node.config import Settings
from node.devnet import free_port
from node.ledger.transaction import BusinessTx, Domain, sign_tx
from node.replication.replica import MAX_FOLLOWER_LAG_BLOCKS

UNBOUNDED_LEAD_SECONDS: Final = 10.0**9  # see in_process_node

STARTUP_TIMEOUT = 90.0


def wait_healthy(url: str, timeout: float = STARTUP_TIMEOUT, proc: Any = None) -> dict[str, Any]:
    """Return ``/health`` of the node at ``url`` once it answers and its chain follower has
    caught up (before that, the subsystems it hosts answer 503 "catching up")."""
    deadline = time.monotonic() + timeout
    last: Exception | str | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}")
        try:
            response = httpx.get(url + "/health", timeout=2)
            if response.status_code == 200:
                body = dict(response.json())
                lag = (body.get("index") or {}).get("lag")
                if lag is None or lag <= MAX_FOLLOWER_LAG_BLOCKS:
                    return body
                last = f"the chain follower is {lag} blocks behind"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"node at {url} not healthy after {timeout}s: {last}")


def wait_indexed(running: InProcessNode, timeout: float = STARTUP_TIMEOUT) -> None:
    """Return once the node's chain follower has indexed every block up to the head."""
    follower = running.node.follower
    head = int(running.node.chain.w3.eth.block_number) - follower.confirmations
    deadline = time.monotonic() + timeout
    while follower.last_indexed() < head:
        assert time.monotonic() < deadline, f"follower at {follower.last_indexed()} < {head}"
        time.sleep(0.1)


@dataclass
class InProcessNode:
    """A node whose API runs in a uvicorn thread of the test process."""

    url: str
    node: Any
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.node.close()


@contextlib.contextmanager
def in_process_node(
    data_dir: Path, init: dict[str, Any] | None = None, **settings: Any
) -> Iterator[InProcessNode]:
    """Yield a running node on a free port with its data in ``data_dir``.

    ``init`` goes to ``init_node`` (home, capacity, roles); ``settings`` to ``Settings``.
    """
    from node.api.main import create_app
    from node.api.server import CoalescingHttpProtocol
    from node.runtime import init_node, open_node

    port = free_port()
    password = secrets.token_hex(8)
    # No block clock unless asked: many tests check that a refused request left the chain as it
    # was (block number included). The clock itself: tests/cli/test_up_clock.py (a real
    # `collegium up`) and tests/epoch/test_api.py (block_seconds=1).
    settings.setdefault("block_seconds", 0)
    # Tests make time pass by mining blocks by hand (an epoch at a time), each stamped a second
    # after its parent: bounding the lead would make every later transaction wait for the wall
    # clock to catch up (minutes). The bound is tested where it is asked for explicitly
    # (test_up_clock, tests/chain/test_embedded.py, the Overview's clock_ahead test).
    settings.setdefault("chain_max_lead", UNBOUNDED_LEAD_SECONDS)
    cfg = Settings(data_dir=data_dir, port=port, **settings)
    init_node(cfg, password, **(init or {}))
    node = open_node(cfg, password)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(node),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            proxy_headers=False,
            http=CoalescingHttpProtocol,
        )  # fmt: skip
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    running = InProcessNode(f"http://127.0.0.1:{port}", node, server, thread)
    try:
        wait_healthy(running.url)
        yield running
    finally:
        running.stop()


@dataclass
class NodeProcess:
    """``collegium up`` running as a real OS process."""

    url: str
    data_dir: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, *extra: str) -> dict[str, Any]:
        assert self.proc is None or self.proc.poll() is not None
        self.log_path = self.data_dir.parent / f"node-{self.port}.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli.main", "up", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--log-level", "info", *extra],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            return wait_healthy(self.url, proc=self.proc)
        except Exception as exc:
            self.kill()
            raise RuntimeError(f"node did not start:\n{self.log_path.read_text()[-4000:]}") from exc

    def stop(self) -> None:
        """Stop with SIGTERM (graceful) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """Stop with SIGKILL (a crash) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def node_process(tmp_path: Path) -> NodeProcess:
    """Return an unstarted node process with a fresh data dir and password."""
    port = free_port()
    env = dict(os.environ)
    env["COLLEGIUM_PASSWORD"] = secrets.token_hex(8)
    return NodeProcess(f"http://127.0.0.1:{port}", tmp_path / "node", port, env)


def domain_of(url: str) -> Domain:
    """Return the EIP-712 domain a node at ``url`` verifies against."""
    doc = httpx.get(url + "/api/v1/transactions/typed-data", timeout=10).json()
    return Domain(int(doc["domain"]["chainId"]), doc["domain"]["verifyingContract"])


def make_submission(
    domain: Domain, wallet: Any = None, sign_with: Any = None, **fields: Any
) -> dict[str, Any]:
    """Return the JSON body of a signed submission (``sign_with`` forges the signature)."""
    wallet = wallet or Account.create()
    values: dict[str, Any] = {
        "subsystem": "main",
        "kind": "invoice",
        "parties": [Account.create().address],
        "amount": "125.5",
        "currency": "EUR",
        "memo": "consulting",
        "payload": "",
        "nonce": secrets.randbelow(2**63),
        "timestamp": int(time.time()),
    }
    values.update(fields)
    tx = BusinessTx(**{**values, "parties": tuple(values["parties"])})
    signature = sign_tx(domain, tx, (sign_with or wallet).key)
    return {"transaction": values, "signer": wallet.address, "signature": "0x" + signature.hex()}


def submit_anchored(node: InProcessNode, count: int, admin: Any = None) -> list[str]:
    """Submit ``count`` transactions signed by a new participant of "main" (added by the
    ``admin`` registry binding, default the node's own) to ``node``; wait until each is
    anchored (``?wait=true`` → 201); return their ids."""
    domain = domain_of(node.url)
    wallet = Account.create()
    (admin or node.node.registry).add_participant("main", wallet.address)
    ids = []
    for _ in range(count):
        response = httpx.post(
            node.url + "/api/v1/transactions",
            params={"wait": "true"},
            json=make_submission(domain, wallet),
            timeout=60,
        )
        assert response.status_code == 201, response.text
        ids.append(str(response.json()["id"]))
    return ids
