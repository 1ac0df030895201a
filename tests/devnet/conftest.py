"""Devnets shared by the multi-node tests, one at a time.

Starting nodes is the expensive part (15-25 s on the 2-core VM), so the tests share two
devnets: ``devnet3`` (3 nodes) and ``devnet5`` (5 nodes). A :class:`DevnetPool` keeps at most
one running (8 node processes at once would starve the machine); the collection hook below
runs the tests of each devnet together, ``devnet3`` first and its agreement test last (it
judges the epochs that elapsed while the other tests ran).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from node.devnet import ANVIL_BIN, Devnet, start_devnet

EPOCH_PERIOD = 4
"""Blocks per epoch in the shared devnets (anvil mines one block a second)."""
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


def _start_three(base: Path) -> Devnet:
    return start_devnet(
        base, 3, epoch_period=EPOCH_PERIOD, block_time=BLOCK_TIME, settings=SETTINGS
    )


def _start_five(base: Path) -> Devnet:
    # homes main, acme, beta, main, acme; node3 also joins beta, so every subsystem's
    # be_subsystem has two eligible hosts (the policy clips replicas to the fewest eligible
    # nodes over all subsystems)
    return start_devnet(
        base, 5, capacity=6, epoch_period=EPOCH_PERIOD, block_time=BLOCK_TIME,
        settings=SETTINGS, members={3: ("beta",)},
    )  # fmt: skip


STARTERS: dict[str, Callable[[Path], Devnet]] = {THREE: _start_three, FIVE: _start_five}


@dataclass
class DevnetPool:
    """At most one running devnet, started on first use, stopped when another is wanted."""

    base: Path
    name: str | None = None
    devnet: Devnet | None = None
    first_epoch: dict[str, int] = field(default_factory=dict)

    def get(self, name: str) -> Devnet:
        """Return the running devnet ``name``, starting it (and stopping any other)."""
        if self.name == name and self.devnet is not None:
            return self.devnet
        self.close()
        started = time.monotonic()
        self.devnet = STARTERS[name](self.base / name)
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
        self.devnet = None
        self.name = None


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
    """Return the shared 3-node devnet (homes main, acme, beta; epochs of 4 blocks)."""
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
