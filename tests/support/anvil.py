"""An anvil that can be stopped and started again on the same port with the same chain.

``tests/chain/conftest.py``'s ``spawn_anvil`` runs one for a whole block of tests; this one
also survives a restart: its state (accounts, contracts, blocks and the states of past blocks)
is dumped to a file on exit and loaded again on start, so a node on it sees the chain go away
and come back as it was, as after an RPC provider's outage.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from web3 import Web3

from node.devnet import free_port
from tests.chain.conftest import ANVIL_BIN, ANVIL_START_TIMEOUT_SECONDS


class RestartableAnvil:
    """An anvil subprocess on a fixed 127.0.0.1 port whose state lives in ``state_file``."""

    def __init__(self, state_file: Path) -> None:
        if not ANVIL_BIN.exists():
            pytest.skip(f"anvil binary absent at {ANVIL_BIN}: run `npm ci` in contracts/")
        self.state_file = state_file
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start anvil (with the state of its last run, if any); return once it answers."""
        assert self.proc is None
        self.proc = subprocess.Popen(
            [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(self.port), "--accounts", "1",
             "--state", str(self.state_file), "--preserve-historical-states"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + ANVIL_START_TIMEOUT_SECONDS
        while not self.w3.is_connected():
            if self.proc.poll() is not None:
                stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
                pytest.fail(f"anvil exited with {self.proc.returncode}: {stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"anvil did not answer on port {self.port} in time")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop anvil gracefully (it dumps its state); nothing listens on the port after."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def mine(self, blocks: int) -> None:
        """Mine ``blocks`` empty blocks."""
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    def set_balance(self, address: str, wei: int) -> None:
        """Set the balance of ``address`` (a dev chore: no transaction)."""
        self.w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]
