"""A loopback devnet: anvil plus N Collegium nodes as processes on 127.0.0.1.

``collegium devnet up --nodes 3`` starts anvil from npm (``contracts/node_modules``) and N
nodes, each with its own data directory, port and home subsystem. Ctrl-C stops everything.
The multi-node tests and ``bench/load.py`` use :func:`start_devnet` directly.

Start-up, in order (the nodes start in parallel, so 5 nodes take about as long as 2):

1. anvil (``--block-time`` if asked; otherwise it mines on demand);
2. the *operator*, a throwaway wallet funded with ``anvil_setBalance``, deploys the registry
   (it becomes the first system admin) and creates the home subsystems;
3. ``collegium init`` of every node (``--registry``: they all join that registry);
4. the operator adds each node's wallet as a participant of its home subsystem, so
   ``be_subsystem`` of a home has every node of that home as an eligible host;
5. ``collegium up`` of every node; each registers itself on its first start.

The operator key is what tests and tools use to create subsystems, admit participants and
sign business transactions; it never belongs to a node, so it never races a node's own
transactions (attestations, anchors) for a nonce. It is written to ``operator.key`` in the
base directory (a dev key on a dev chain, nothing else).

A node can be killed (``kill -9``) and restarted on its data directory:
:meth:`DevnetNode.kill`, :meth:`DevnetNode.restart`.

Long because the start-up above reads best as one file in its order (anvil, the nodes'
processes, the operator's set-up), and it is the one module besides ``node/config.py`` that
reads the environment (``tests/test_config.py`` names it), which a split would spread.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from node.config import DEFAULT_EPOCH_PERIOD
from node.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
ANVIL_BIN = (
    REPO_ROOT / "contracts" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
)
DEFAULT_HOMES = ("main", "acme", "beta")
STARTUP_TIMEOUT = 120.0
ANVIL_CHAIN_ID = 31337
OPERATOR_FUNDS_WEI: Final = 10**24
OPERATOR_KEY_FILE: Final = "operator.key"
SETUP_GAS: Final = 600_000
"""Gas limit of each set-up transaction (createSubsystem, addParticipant need < 250k)."""
RECEIPT_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 30.0
PROBE_TIMEOUT: Final = 15.0


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
    """Return ``GET url`` once it answers; raise ``ConfigError`` if ``proc`` exits first.

    Each try waits up to ``PROBE_TIMEOUT`` seconds: ``/health`` reads the chain, and behind
    a rate-limited RPC that takes seconds (a shorter wait gave up on every answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            return get_json(url, timeout=PROBE_TIMEOUT)
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
    chain_url: str = ""

    @property
    def url(self) -> str:
        """Return the node's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Return the file the node's output goes to."""
        return self.data_dir.parent / f"node{self.index}.log"

    @property
    def address(self) -> str:
        """Return the node's wallet address (from ``node.json``, written by ``init``)."""
        return str(json.loads((self.data_dir / "node.json").read_text())["address"])

    def launch(self, chain_url: str | None = None) -> None:
        """Start ``collegium up`` in the background (see :meth:`wait_healthy`)."""
        if self.running:
            raise ConfigError(f"node{self.index} is already running")
        self.chain_url = chain_url or self.chain_url
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli.main", "up", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--chain", self.chain_url, "--public-url", self.url,
             "--log-level", "info"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> Any:
        """Return ``/health`` once the node answers; raise ``ConfigError`` if it exits."""
        if self.proc is None:
            raise ConfigError(f"node{self.index} was never started")
        return wait_for(self.url + "/health", self.proc, timeout)

    def start(self, chain_url: str | None = None) -> Any:
        """Start ``collegium up`` and return its ``/health`` once it answers."""
        self.launch(chain_url)
        return self.wait_healthy()

    def restart(self) -> Any:
        """Start the node again on its data directory; return its ``/health``."""
        return self.start()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the node (SIGTERM is graceful, SIGKILL a crash) and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        """``kill -9`` the node (a crash: no shutdown code runs) and reap it."""
        self.stop(signal.SIGKILL)

    @property
    def running(self) -> bool:
        """Return whether the node process is alive."""
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Devnet:
    """anvil, the operator and the nodes; :meth:`stop` tears everything down."""

    base_dir: Path
    chain_url: str
    anvil: subprocess.Popen[bytes]
    nodes: list[DevnetNode] = field(default_factory=list)
    registry: str | None = None
    operator: Any = None  # eth_account LocalAccount: registry deployer, home-subsystem admin
    epoch_period: int = DEFAULT_EPOCH_PERIOD

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
                self.anvil.wait(timeout=10)

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """Call anvil's JSON-RPC and return the result; raise ``ConfigError`` on an error."""
        return anvil_rpc(self.chain_url, method, params)

    def w3(self) -> Any:
        """Return a ``Web3`` connected to anvil."""
        from web3 import Web3  # lazily: web3 is heavy and only the deploy step needs it

        return Web3(Web3.HTTPProvider(self.chain_url, request_kwargs={"timeout": 30}))

    def operator_registry(self) -> Any:
        """Return the registry facade signing with the operator's key."""
        from node.chain.registry import Registry  # lazily: it imports web3 (heavy)

        if self.registry is None:
            raise ConfigError("the devnet has no registry yet")
        return Registry(self.w3(), self.registry, self.operator)

    def fund(self, address: str, wei: int = OPERATOR_FUNDS_WEI) -> None:
        """Set ``address``'s balance to ``wei`` (anvil's ``anvil_setBalance``)."""
        self.rpc("anvil_setBalance", [address, hex(wei)])

    def setup(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Send the operator's registry ``calls`` (function name, args) in one go: consecutive
        nonces, then wait for every receipt (one or two blocks instead of one per call).

        Raises ``ConfigError`` if one is not mined in time or reverts.
        """
        if not calls:
            return
        registry = self.operator_registry()
        send_batch(registry.w3, self.operator, [registry.contract.functions[name](*args)
                                                for name, args in calls])  # fmt: skip

    def admit(self, subsystem: str, addresses: Sequence[str]) -> None:
        """Add ``addresses`` as participants of ``subsystem`` (the operator must be its admin,
        as it is of every home subsystem and of the subsystems it created)."""
        self.setup([("addParticipant", (subsystem, a)) for a in addresses])

    def create_subsystem(self, name: str, participants: Sequence[str] = ()) -> None:
        """Create subsystem ``name`` (the operator is its admin and first participant) and
        admit ``participants``."""
        self.setup(
            [("createSubsystem", (name,)), *(("addParticipant", (name, a)) for a in participants)]
        )


def anvil_rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    """Call ``method`` on the JSON-RPC endpoint ``url``; raise ``ConfigError`` on an error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        reply = json.loads(response.read())
    if "error" in reply:
        raise ConfigError(f"{method} failed: {reply['error']}")
    return reply["result"]


def send_batch(w3: Any, account: Any, calls: Sequence[Any]) -> None:
    """Sign ``calls`` (web3 ``ContractFunction``s) with consecutive nonces, send them all,
    then wait for every receipt. Gas is fixed (``SETUP_GAS``): later calls may depend on
    earlier ones, which an estimate against the current state would not see.

    Raises ``ConfigError`` if a call is not mined in time or reverts.
    """
    nonce = int(w3.eth.get_transaction_count(account.address, "pending"))
    chain_id = int(w3.eth.chain_id)
    hashes = []
    for i, call in enumerate(calls):
        tx = call.build_transaction(
            {"from": account.address, "nonce": nonce + i, "gas": SETUP_GAS, "chainId": chain_id}
        )
        signed = account.sign_transaction(tx)
        hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
    for call, tx_hash in zip(calls, hashes, strict=True):
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
        if int(receipt["status"]) != 1:
            raise ConfigError(f"devnet set-up call {call.fn_name}{call.args} reverted")


def start_anvil(port: int, block_time: float | None = None) -> subprocess.Popen[bytes]:
    """Start anvil on 127.0.0.1:``port`` and wait until it answers."""
    if not ANVIL_BIN.exists():
        raise ConfigError(f"anvil not found at {ANVIL_BIN}: run `npm ci` in contracts/")
    args = [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    if block_time:
        args += ["--block-time", str(block_time)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"anvil exited with {proc.returncode}")
        try:
            anvil_rpc(f"http://127.0.0.1:{port}", "eth_chainId")
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise ConfigError("anvil did not start within 30s")


def _deploy(devnet: Devnet, homes: Sequence[str]) -> None:
    """Fund the operator, deploy the registry and create the home subsystems."""
    # lazily: eth_account and the registry (web3) are heavy; only this deploy step needs them
    from eth_account import Account

    from node.chain.registry import Registry

    devnet.operator = Account.create()
    key_file = devnet.base_dir / OPERATOR_KEY_FILE
    key_file.write_text("0x" + bytes(devnet.operator.key).hex() + "\n")
    key_file.chmod(0o600)
    devnet.fund(devnet.operator.address)
    registry = Registry.deploy(devnet.w3(), devnet.operator, devnet.epoch_period)
    devnet.registry = str(registry.address)
    devnet.setup([("createSubsystem", (home,)) for home in dict.fromkeys(homes)])


def start_devnet(
    base_dir: Path,
    nodes: int,
    *,
    homes: tuple[str, ...] = DEFAULT_HOMES,
    capacity: int = 4,
    epoch_period: int | None = None,
    block_time: float | None = None,
    password: str | None = None,
    settings: Mapping[str, str] | None = None,
    members: Mapping[int, Sequence[str]] | None = None,
    node_chain_url: Callable[[str], str] | None = None,
) -> Devnet:
    """Start anvil and ``nodes`` nodes under ``base_dir``; return the running devnet.

    Node ``i`` has home ``homes[i % len(homes)]`` and is a participant of it and of the home
    subsystems listed in ``members[i]`` (before it starts, so the first epoch sees it). ``settings``
    are extra ``COLLEGIUM_*`` environment variables of every node (e.g.
    ``{"COLLEGIUM_SYNC_INTERVAL": "2"}``). ``node_chain_url(anvil_url)`` is the ``--chain``
    every node runs with (e.g. fault-injecting proxies in front of anvil; ``collegium init``
    and the operator's set-up still talk to anvil). Raises ``ConfigError`` if anvil or a
    node does not start (everything started is stopped again).
    """
    if nodes < 1:
        raise ConfigError("a devnet needs at least one node")
    if not homes:
        raise ConfigError("a devnet needs at least one home subsystem")
    base_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["COLLEGIUM_PASSWORD"] = password or secrets.token_hex(12)
    env.update(settings or {})
    anvil_port = free_port()
    devnet = Devnet(
        base_dir,
        f"http://127.0.0.1:{anvil_port}",
        start_anvil(anvil_port, block_time),
        epoch_period=epoch_period or DEFAULT_EPOCH_PERIOD,
    )
    try:
        node_homes = [homes[i % len(homes)] for i in range(nodes)]
        _deploy(devnet, node_homes)
        chain_url = devnet.chain_url if node_chain_url is None else node_chain_url(devnet.chain_url)
        devnet.nodes = [
            DevnetNode(i, base_dir / f"node{i}", free_port(), node_homes[i], env,
                       chain_url=chain_url)
            for i in range(nodes)
        ]  # fmt: skip
        _init_nodes(devnet, env, capacity)
        _add_participants(devnet, node_homes, members or {})
        for n in devnet.nodes:
            n.launch()
        for n in devnet.nodes:
            n.wait_healthy()
    except BaseException:
        devnet.stop()
        raise
    return devnet


def _init_nodes(devnet: Devnet, env: Mapping[str, str], capacity: int) -> None:
    """Run ``collegium init`` for every node of ``devnet`` at once (wallet, record, joining
    the devnet's registry). Raises ``ConfigError`` if one fails."""
    inits = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node.cli.main",
                "init",
                "--data-dir",
                str(n.data_dir),
                "--home",
                n.home,
                "--capacity",
                str(capacity),
                "--chain",
                devnet.chain_url,
                "--registry",
                str(devnet.registry),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for n in devnet.nodes
    ]
    for n, proc in zip(devnet.nodes, inits, strict=True):
        _, err = proc.communicate(timeout=STARTUP_TIMEOUT)
        if proc.returncode != 0:
            raise ConfigError(f"collegium init of node{n.index} failed: {err.decode()[-2000:]}")


def _add_participants(
    devnet: Devnet, node_homes: Sequence[str], members: Mapping[int, Sequence[str]]
) -> None:
    """Make each node a participant of its home and of the homes ``members`` lists for it.

    Raises ``ConfigError`` if ``members`` names an unknown node or a subsystem no node has
    as home.
    """
    for i, names in members.items():
        unknown = set(names) - set(node_homes)
        if unknown or not 0 <= i < len(devnet.nodes):
            raise ConfigError(f"members: node{i} cannot join {sorted(unknown)} (not homes)")
    devnet.setup(
        [
            ("addParticipant", (name, n.address))
            for n in devnet.nodes
            for name in dict.fromkeys([n.home, *members.get(n.index, ())])
        ]
    )
