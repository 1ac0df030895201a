"""Devnets shared by the multi-node tests, one at a time.

Starting nodes is the expensive part (15-25 s on the 2-core VM), so the tests share two
devnets: ``devnet3`` (3 nodes) and ``devnet5`` (5 nodes). A :class:`DevnetPool` keeps at most
one running (8 node processes at once would starve the machine); the collection hook below
runs the tests of each devnet together, ``devnet3`` first and its agreement test last (it
judges the epochs that elapsed while the other tests ran).

``devnet3`` is the faulty one: its nodes reach anvil only through two fault-injecting
proxies (``--chain A,B``, :data:`FAULTS_A` and :data:`FAULTS_B`, kept in
:attr:`DevnetPool.proxies`), from their first start, so every ``devnet3`` test -- the
agreement, the schema fuzzing, verify after tampering, the faulty-RPC scenario -- runs with
the public-provider faults on. The operator and the tests' own reads go to anvil directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from node.devnet import ANVIL_BIN, Devnet, start_devnet
from tests.support.rpc_proxy import Faults, RpcProxy

EPOCH_PERIOD = 4
"""Blocks per epoch in the 5-node devnet (anvil mines one block a second)."""
EPOCH_PERIOD_THREE = 8
"""Blocks per epoch in the 3-node devnet behind the fault proxies. There one attestation takes
1-3 s (the snapshot's ~15 reads, each maybe a 429 with a 1 s ``Retry-After``, then the
transaction's own block), so with 4-block epochs a node that fell behind backfilled four
epochs in about the time four more passed, and lost the oldest out of its ``BACKFILL_EPOCHS``
horizon (seen in a CI run). Real chains' epochs last minutes."""
BLOCK_TIME = 1
SETTINGS = {
    "COLLEGIUM_SYNC_INTERVAL": "2",  # peers fetch new batches within seconds
    "COLLEGIUM_RATE_LIMIT": "0",  # every client is 127.0.0.1 here
}
THREE = "three"
FIVE = "five"
AGREEMENT_TEST = "test_every_epoch_has_one_root_attested_by_all"
FOR_GOOD_TEST = "test_private_data_survives"  # kills a node for good: last of its devnet
DEVNET_DIR = Path(__file__).resolve().parent
LOGS_CAPS = {"max_logs_range": 20, "max_logs_results": 16}
"""A result cap must stay above the most registry events one block holds (the set-up's
blocks hold about ten): a block over the cap cannot be paged, on any provider."""
FAULTS_A = Faults(
    **LOGS_CAPS, rate_limit_every=150, retry_after="1", drop_every=3, timeout_every=397
)
"""Proxy A: ``eth_getLogs`` range and result caps, a 429 with ``Retry-After`` every 150th
request, every 3rd ``eth_sendRawTransaction`` answer dropped after anvil applied it, a
timeout (1.5 s, then the connection closed) every 397th request. Three nodes ask about 30
reads a second together, so that is a 429 every few seconds; denser faults (a 429 every
9th request, as the opt-in test had) kept the nodes waiting out one ``Retry-After`` after
another: the devnet took minutes to start and every node missed epochs."""
FAULTS_B = Faults(**LOGS_CAPS, lag_every=2, lag_blocks=3, rate_limit_every=200, drop_every=3)
"""Proxy B: the same caps and drops, a 429 every 200th request, and a load-balanced backend
whose ``latest`` lags 3 blocks on every other request (the nodes fail over from A to B on
a 429 or a timeout)."""

Started = tuple[Devnet, list[RpcProxy]]
FAULTY = os.environ.get("COLLEGIUM_FAULTY_DEVNET", "1") != "0"
"""``devnet3`` runs behind the fault proxies unless ``COLLEGIUM_FAULTY_DEVNET=0`` (to tell a
fault's effect from a plain bug while debugging; CI always runs them)."""


def _start_three(base: Path) -> Started:
    proxies: list[RpcProxy] = []
    if not FAULTY:
        devnet = start_devnet(
            base, 3, epoch_period=EPOCH_PERIOD_THREE, block_time=BLOCK_TIME, settings=SETTINGS
        )
        return devnet, proxies

    def behind_proxies(anvil_url: str) -> str:
        proxies.extend(RpcProxy(anvil_url, replace(f)) for f in (FAULTS_A, FAULTS_B))
        return ",".join(p.url for p in proxies)

    try:
        devnet = start_devnet(
            base, 3, epoch_period=EPOCH_PERIOD_THREE, block_time=BLOCK_TIME,
            settings=SETTINGS, node_chain_url=behind_proxies,
        )  # fmt: skip
    except BaseException:
        for proxy in proxies:
            proxy.close()
        raise
    return devnet, proxies


def _start_five(base: Path) -> Started:
    # homes main, acme, beta, main, acme; node3 also joins beta, so every subsystem's
    # be_subsystem has two eligible hosts (the policy clips replicas to the fewest eligible
    # nodes over all subsystems)
    devnet = start_devnet(
        base, 5, capacity=6, epoch_period=EPOCH_PERIOD, block_time=BLOCK_TIME,
        settings=SETTINGS, members={3: ("beta",)},
    )  # fmt: skip
    return devnet, []


STARTERS: dict[str, Callable[[Path], Started]] = {THREE: _start_three, FIVE: _start_five}


@dataclass
class DevnetPool:
    """At most one running devnet, started on first use, stopped when another is wanted."""

    base: Path
    name: str | None = None
    devnet: Devnet | None = None
    first_epoch: dict[str, int] = field(default_factory=dict)
    proxies: list[RpcProxy] = field(default_factory=list)
    """The running devnet's proxies between its nodes and anvil (``devnet3``: A, B)."""
    skipped_epochs: dict[int, str] = field(default_factory=dict)
    """Epochs of the running devnet that a test made unattestable by some node, and why
    (a node killed, a node's wallet stuck behind a fee spike): the agreement test skips them."""

    def get(self, name: str) -> Devnet:
        """Return the running devnet ``name``, starting it (and stopping any other)."""
        if self.name == name and self.devnet is not None:
            return self.devnet
        self.close()
        started = time.monotonic()
        self.devnet, self.proxies = STARTERS[name](self.base / name)
        self.name = name
        registry = self.devnet.operator_registry()
        # every node is registered: the next epoch is the first they must all attest
        self.first_epoch[name] = registry.current_epoch() + 1
        print(f"devnet {name}: {len(self.devnet.nodes)} nodes up in "
              f"{time.monotonic() - started:.1f}s")  # fmt: skip
        return self.devnet

    def close(self) -> None:
        """Stop the running devnet, if any."""
        if self.devnet is not None:
            self.devnet.stop()
        for proxy in self.proxies:
            proxy.close()
        self.devnet = None
        self.name = None
        self.proxies = []
        self.skipped_epochs = {}


@pytest.fixture(scope="package")
def devnet_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetPool]:
    if not ANVIL_BIN.exists():
        pytest.skip(f"anvil binary absent at {ANVIL_BIN}: npm ci in contracts/")
    pool = DevnetPool(tmp_path_factory.mktemp("devnets"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def devnet3(devnet_pool: DevnetPool) -> Devnet:
    """Return the shared 3-node devnet (homes main, acme, beta; epochs of 8 blocks; behind
    the fault proxies)."""
    return devnet_pool.get(THREE)


@pytest.fixture(scope="module")
def devnet5(devnet_pool: DevnetPool) -> Devnet:
    """Return the shared 5-node devnet (homes main, acme, beta, main, acme; node3 also in
    beta; capacity 6)."""
    return devnet_pool.get(FIVE)


def _group(item: pytest.Item) -> tuple[int, int]:
    names = getattr(item, "fixturenames", ())
    last = 1 if item.name.startswith((AGREEMENT_TEST, FOR_GOOD_TEST)) else 0
    if "devnet3" in names:
        return 0, last
    if "devnet5" in names:
        return 1, last
    return 2, last


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run each devnet's tests together (3-node first, agreement last among them)."""
    slots = [i for i, item in enumerate(items) if DEVNET_DIR in Path(str(item.path)).parents]
    ordered = sorted((items[i] for i in slots), key=_group)  # stable: file order kept
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item
