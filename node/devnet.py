"""A loopback devnet: anvil plus N Collegium nodes as processes on 127.0.0.1.

``collegium devnet up --nodes 3`` starts anvil from npm (``contracts/node_modules``),
the first node (which deploys the registry), then the others joining that registry,
each with its own data directory, port and home subsystem. Ctrl-C stops everything.
The multi-node tests use :func:`start_devnet` directly.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
ANVIL_BIN = (
    REPO_ROOT / "contracts" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
)
DEFAULT_HOMES = ("main", "acme", "beta")
STARTUP_TIMEOUT = 120.0
ANVIL_CHAIN_ID = 31337


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 3.0) -> Any:
    """Return the JSON body of ``GET url``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = STARTUP_TIMEOUT) -> Any:
    """Return ``GET url`` once it answers; raise ``ConfigError`` if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            return get_json(url)
        except OSError:
            time.sleep(0.2)
    raise ConfigError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class DevnetNode:
    """One node of the devnet."""

    index: int
    data_dir: Path
    port: int
    home: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the node's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Return the file the node's output goes to."""
        return self.data_dir.parent / f"node{self.index}.log"

    def start(self, chain_url: str) -> Any:
        """Start ``collegium up`` and return its ``/health`` once it answers."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli.main", "up", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--chain", chain_url, "--public-url", self.url,
             "--log-level", "info"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        return wait_for(self.url + "/health", self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the node (SIGTERM is graceful, SIGKILL a crash) and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    @property
    def running(self) -> bool:
        """Return whether the node process is alive."""
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Devnet:
    """anvil and the nodes; :meth:`stop` tears everything down."""

    base_dir: Path
    chain_url: str
    anvil: subprocess.Popen[bytes]
    nodes: list[DevnetNode] = field(default_factory=list)
    registry: str | None = None

    def stop(self) -> None:
        """Stop every node, then anvil."""
        for node in self.nodes:
            node.stop()
        if self.anvil.poll() is None:
            self.anvil.terminate()
            try:
                self.anvil.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.anvil.kill()

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """Call anvil's JSON-RPC and return the result."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        request = urllib.request.Request(
            self.chain_url, body.encode(), {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            reply = json.loads(response.read())
        if "error" in reply:
            raise ConfigError(f"anvil {method} failed: {reply['error']}")
        return reply["result"]


def start_anvil(port: int, block_time: float | None = None) -> subprocess.Popen[bytes]:
    """Start anvil on 127.0.0.1:``port`` and wait until it answers."""
    if not ANVIL_BIN.exists():
        raise ConfigError(f"anvil not found at {ANVIL_BIN}: run `npm ci` in contracts/")
    args = [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    if block_time:
        args += ["--block-time", str(block_time)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"anvil exited with {proc.returncode}")
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}", body, {"content-type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=2).read()  # noqa: S310
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise ConfigError("anvil did not start within 30s")


def start_devnet(
    base_dir: Path,
    nodes: int,
    *,
    homes: tuple[str, ...] = DEFAULT_HOMES,
    capacity: int = 4,
    epoch_period: int | None = None,
    block_time: float | None = None,
    password: str | None = None,
) -> Devnet:
    """Start anvil and ``nodes`` nodes under ``base_dir``; return the running devnet.

    Raises ``ConfigError`` if anvil or a node does not start (everything started is
    stopped again).
    """
    if nodes < 1:
        raise ConfigError("a devnet needs at least one node")
    base_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["COLLEGIUM_PASSWORD"] = password or secrets.token_hex(12)
    if epoch_period is not None:
        env["COLLEGIUM_EPOCH_PERIOD"] = str(epoch_period)
    anvil_port = free_port()
    devnet = Devnet(base_dir, f"http://127.0.0.1:{anvil_port}", start_anvil(anvil_port, block_time))
    try:
        for i in range(nodes):
            node = DevnetNode(i, base_dir / f"node{i}", free_port(), homes[i % len(homes)], env)
            init = [
                *(sys.executable, "-m", "node.cli.main", "init", "--data-dir", str(node.data_dir)),
                *("--home", node.home, "--capacity", str(capacity), "--chain", devnet.chain_url),
            ]
            if devnet.registry is not None:
                init += ["--registry", devnet.registry]
            subprocess.run(init, env=env, check=True, capture_output=True, timeout=120)
            health = node.start(devnet.chain_url)
            devnet.registry = devnet.registry or str(health["registry"])
            devnet.nodes.append(node)
    except BaseException:
        devnet.stop()
        raise
    return devnet
