"""docker-compose.yml brought up for real: the real Docker engine, the real compose file, the
real Dockerfile, one bring-up for the whole module.

Stand-ins (no container registry is reachable, see tests/deploy/engine.py) come in through a
compose override file and build arguments only; docker-compose.yml is never edited:
- the Python base image is a debootstrap Debian root, passed as the Dockerfile's PYTHON_IMAGE;
- the chain image (``ghcr.io/foundry-rs/foundry``) is built locally from the npm anvil and
  cast packages under the same name;
- kubo: no binary or image can be had on this machine, so the override leaves the ``ipfs``
  service out (the nodes use their embedded store; ``COLLEGIUM_IPFS_API`` emptied) — kubo's
  health check and unpublished RPC port are checked statically in test_compose.py;
- published ports are moved to free loopback ports (other engineers share this machine).
Small epochs (10 blocks of 1 s) keep it short. The order of the tests is the story: healthy,
a transaction crosses nodes, an epoch is attested by all, ``restart`` keeps state, a killed
chain recovers, ``down -v`` cleans up.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from node.chain.registry import Registry
from node.devnet import free_port
from tests.deploy.engine import (
    DockerEngine,
    EngineUnavailable,
    chain_context,
    docker_engine,
    import_python_base,
)
from tests.support.node import domain_of, make_submission

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NODES = ("node1", "node2", "node3")
EPOCH_BLOCKS = 10
#: anvil's first development account (public test mnemonic): a person with ether
PERSON_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
T = TypeVar("T")


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value is not None and value is not False:
                return value
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last})")


@dataclass
class Stack:
    engine: DockerEngine
    files: list[str]
    urls: dict[str, str]
    chain_url: str
    timings: dict[str, float]

    def compose(self, *args: str, timeout: float = 900) -> str:
        return self.engine.compose(*self.files, *args, timeout=timeout).stdout

    def health(self, name: str) -> dict[str, Any]:
        return dict(httpx.get(self.urls[name] + "/health", timeout=10).json())

    def logs(self) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", "60", timeout=60)
        except RuntimeError as exc:
            return str(exc)


def _override(chain_dir: Path, ports: dict[str, int]) -> str:
    """Return the override file: stand-ins, no kubo, free loopback ports (YAML ``!override``)."""
    lines = [
        "services:",
        "  chain:",
        "    build:",
        f"      context: {json.dumps(str(chain_dir))}",
        "      args:",
        "        BASE: ${COLLEGIUM_PYTHON_IMAGE}",
        "    pull_policy: build",
        f"    ports: !override ['127.0.0.1:{ports['chain']}:8545']",
    ]
    for name in NODES:
        lines += [
            f"  {name}:",
            "    environment:",
            '      COLLEGIUM_IPFS_API: ""',
            "    depends_on: !override",
            "      chain: {condition: service_healthy}",
        ]
        if name != "node1":
            lines.append("      node1: {condition: service_healthy}")
        else:
            lines += ["    build:", "      network: host"]
        lines.append(f"    ports: !override ['127.0.0.1:{ports[name]}:8000']")
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Append the services' last log lines to a failing test's report."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "stack" in request.fixturenames:
        stack: Stack = request.getfixturevalue("stack")
        report.sections.append(("docker compose logs", stack.logs()))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        engine_cm = docker_engine()
        engine = engine_cm.__enter__()
    except EngineUnavailable as exc:
        pytest.skip(f"no Docker engine can start here: {exc}")
    tmp = tmp_path_factory.mktemp("compose")
    try:
        timings["engine"] = time.monotonic() - started
        mark = time.monotonic()
        base = import_python_base(engine)
        chain_dir = chain_context(tmp / "chain")
        timings["stand-ins"] = time.monotonic() - mark
        ports = {name: free_port() for name in ("chain", *NODES)}
        override = tmp / "compose.standins.yml"
        override.write_text(_override(chain_dir, ports))
        engine.env.update(
            COLLEGIUM_PASSWORD=secrets.token_hex(12),
            COLLEGIUM_EPOCH_PERIOD=str(EPOCH_BLOCKS),
            COLLEGIUM_PYTHON_IMAGE=base,
        )
        files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(override)]
        urls = {name: f"http://127.0.0.1:{ports[name]}" for name in NODES}
        built = Stack(engine, files, urls, f"http://127.0.0.1:{ports['chain']}", timings)
        mark = time.monotonic()
        built.compose("build")
        timings["build"] = time.monotonic() - mark
        mark = time.monotonic()
        try:
            built.compose("up", "-d", "--wait", "--wait-timeout", "300", "chain", *NODES)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{built.logs()}") from exc
        timings["up"] = time.monotonic() - mark
        yield built
        mark = time.monotonic()
        built.compose("down", "-v", "--remove-orphans")
        timings["down"] = time.monotonic() - mark
        left = (
            engine.docker("ps", "-aq").stdout.split()
            + engine.docker("volume", "ls", "-q").stdout.split()
        )
        assert not left, f"down -v left containers/volumes behind: {left}"
    finally:
        engine_cm.__exit__(None, None, None)
        timings["total"] = time.monotonic() - started
        print("compose timings (s):", {k: round(v, 1) for k, v in timings.items()})
    assert not Path(engine.root).exists(), "the engine's data root was not removed"


def test_image_runs_the_wheel_as_a_non_root_user(stack: Stack) -> None:
    config = json.loads(stack.engine.docker("image", "inspect", "collegium-node:latest").stdout)[0]
    assert config["Config"]["User"] == "collegium"
    health = config["Config"]["Healthcheck"]
    assert "/livez" in " ".join(health["Test"]) and health["StartPeriod"] > 0
    listing = stack.engine.docker(
        "run", "--rm", "--entrypoint", "sh", "collegium-node:latest", "-c",
        "id -u; ls /src 2>&1; python3 -c 'import node, sys; print(node.__file__)'",
    ).stdout.split("\n")  # fmt: skip
    assert listing[0] != "0", "the node runs as root"
    assert "No such file" in listing[1], "the build stage's sources are in the image"
    assert "/site-packages/node/" in listing[2], "not installed from the wheel"


def test_build_context_is_small(stack: Stack, tmp_path: Path) -> None:
    """Defect 5: the context the engine receives (after .dockerignore) is the package, the
    migrations, the artifacts and the built front-end: no .git, no node_modules, a few MB."""
    dockerfile = tmp_path / "context.Dockerfile"
    dockerfile.write_text(f"FROM {stack.engine.env['COLLEGIUM_PYTHON_IMAGE']}\nCOPY . /ctx\n")
    stack.engine.docker("build", "-q", "--network", "host", "-t", "collegium-context:test",
                        "-f", str(dockerfile), str(ROOT))  # fmt: skip
    listing = stack.engine.docker(
        "run", "--rm", "--network", "none", "collegium-context:test", "sh", "-c",
        "du -sk /ctx | cut -f1; find /ctx -name .git -o -name node_modules -o -name tests",
    ).stdout.split()  # fmt: skip
    stack.engine.docker("rmi", "collegium-context:test")
    size_kib, strays = int(listing[0]), listing[1:]
    assert not strays, strays
    assert size_kib < 8 * 1024, f"build context is {size_kib} KiB"
    stack.timings["context-kib"] = size_kib


def test_three_nodes_healthy_on_one_registry(stack: Stack) -> None:
    healths = {name: stack.health(name) for name in NODES}
    registries = {h["registry"] for h in healths.values()}
    assert len(registries) == 1 and None not in registries, registries
    assert len({h["node"] for h in healths.values()}) == 3
    assert {h["home"] for h in healths.values()} == {"main", "acme", "beta"}
    # the front-end node1 published at deploy is what every node serves at /
    cids = {h["frontend"]["cid"] for h in healths.values()}
    assert len(cids) == 1 and None not in cids, cids
    (cid,) = cids
    for name in NODES:
        page = wait_until(
            lambda n=name: (
                r
                if (r := httpx.get(stack.urls[n] + "/", timeout=10)).headers.get(
                    "x-collegium-frontend"
                )
                == f"ipfs {cid}"
                else None
            ),
            60,
            f"{name} serving / from {cid}",
        )
        assert page.status_code == 200
        assert httpx.get(f"{stack.urls[name]}/ipfs/{cid}/", timeout=10).status_code == 200


def test_transaction_on_node1_is_listed_by_node2_and_node3_within_15_s(stack: Stack) -> None:
    w3 = Web3(HTTPProvider(stack.chain_url))
    registry_address = stack.health("node1")["registry"]
    person = Account.from_key(PERSON_KEY)
    registry = Registry(w3, registry_address, person)
    registry.create_subsystem("audit")
    wallet = Account.create()
    registry.add_participant("audit", wallet.address)
    body = make_submission(domain_of(stack.urls["node1"]), wallet, subsystem="audit")
    submitted = time.monotonic()
    response = httpx.post(stack.urls["node1"] + "/api/v1/transactions", json=body, timeout=30)
    assert response.status_code in (201, 202), response.text
    tx_id = response.json()["id"]
    for name in ("node2", "node3"):
        wait_until(
            lambda n=name: (
                httpx.get(f"{stack.urls[n]}/api/v1/transactions/{tx_id}", timeout=5).status_code
                == 200
            ),
            max(0.1, 15 - (time.monotonic() - submitted)),
            f"{name} listing {tx_id}",
        )
    stack.timings["tx-listed-by-peers"] = time.monotonic() - submitted


def _registry(stack: Stack) -> Registry:
    return Registry(Web3(HTTPProvider(stack.chain_url)), stack.health("node1")["registry"])


def test_an_epoch_passes_with_all_three_attesting_one_root(stack: Stack) -> None:
    registry = _registry(stack)
    nodes = [stack.health(name)["node"] for name in NODES]
    start = int(registry.current_epoch())

    def unanimous() -> int | None:
        for epoch in range(start, int(registry.current_epoch()) + 1):
            roots = {registry.attestation_of(epoch, node) for node in nodes}
            if None not in roots and len(roots) == 1:
                return epoch
        return None

    mark = time.monotonic()
    wait_until(unanimous, EPOCH_BLOCKS * 6, "an epoch attested by all three nodes with one root")
    stack.timings["epoch-attested"] = time.monotonic() - mark
    assert int(registry.current_epoch()) > start or start > 0


def test_a_killed_chain_and_compose_restart_keep_state(stack: Stack) -> None:
    """Defects 2 and 3, and ``docker compose restart``: kill the chain (no clean exit, so only
    its periodic saves count), bring it back, then restart the whole stack; the chain keeps
    its blocks, the nodes their identities and transactions, and epochs go on being attested
    (which reads historical block hashes: the state before the restart)."""
    before = {name: stack.health(name) for name in NODES}
    chain = Web3(HTTPProvider(stack.chain_url))
    block = int(chain.eth.block_number)
    block_hash = chain.eth.get_block(block)["hash"]
    # one --state-interval (5 s) later a save holds `block`; the blocks mined since the last
    # save before the kill are lost (a periodic save), those before it are not
    time.sleep(6)
    mark = time.monotonic()
    stack.compose("kill", "chain")
    stack.compose("up", "-d", "--wait", "--wait-timeout", "120", "chain")
    after_kill = int(chain.eth.block_number)
    assert after_kill >= block, f"the killed chain rolled back from {block} to {after_kill}"
    assert chain.eth.get_block(block)["hash"] == block_hash, f"block {block} changed"
    stack.compose("restart")
    stack.compose("up", "-d", "--wait", "--wait-timeout", "300", "chain", *NODES)
    stack.timings["kill-and-restart"] = time.monotonic() - mark
    for name in NODES:
        after = stack.health(name)
        assert after["node"] == before[name]["node"]
        assert after["registry"] == before[name]["registry"]
        count = sum(after["transactions"].values())
        assert count >= sum(before[name]["transactions"].values()) >= 1, after["transactions"]
        assert after["chain"]["block_number"] >= block
    _epochs_keep_working(stack)
    # each node's epoch service is without error once its current step is through: at an
    # epoch's first blocks one may be retrying "the seed of epoch N is not fixed yet" (its
    # own fix_seed not readable yet), which the next step clears; an error that stays fails
    wait_until(_no_epoch_errors(stack), EPOCH_BLOCKS * 2, "no epoch error on any node")


def _no_epoch_errors(stack: Stack) -> Callable[[], bool]:
    """Return a check for :func:`wait_until`: True once no node's epoch service reports an
    error; else it raises the errors (``wait_until`` shows the last one if it times out)."""

    def check() -> bool:
        errors = {name: stack.health(name)["epochs"]["last_error"] for name in NODES}
        if any(error is not None for error in errors.values()):
            raise ValueError(f"epoch errors: {errors}")
        return True

    return check


def _epochs_keep_working(stack: Stack) -> None:
    registry = _registry(stack)
    nodes = [stack.health(name)["node"] for name in NODES]
    start = int(registry.current_epoch())

    def attested_after_start() -> bool:
        current = int(registry.current_epoch())
        return current > start and all(
            registry.attestation_of(current, node) is not None for node in nodes
        )

    wait_until(attested_after_start, EPOCH_BLOCKS * 8, "a new epoch attested by all three")
