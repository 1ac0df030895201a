"""Three node processes on anvil agree on the assignment of every epoch, on-chain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from web3 import Web3

from node.chain.registry import Registry
from node.devnet import ANVIL_BIN, Devnet, start_devnet

pytestmark = pytest.mark.skipif(
    not ANVIL_BIN.exists(), reason=f"anvil binary absent at {ANVIL_BIN}: npm ci in contracts/"
)

EPOCH_PERIOD = 4
EPOCHS_WANTED = 3
DEADLINE_SECONDS = 150


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = start_devnet(
        Path(tmp_path_factory.mktemp("agree")), 3, epoch_period=EPOCH_PERIOD, block_time=1
    )
    try:
        yield net
    finally:
        net.stop()


def test_every_epoch_has_one_root_attested_by_all(devnet: Devnet) -> None:
    registry = Registry(Web3(Web3.HTTPProvider(devnet.chain_url)), str(devnet.registry))
    nodes = [httpx.get(n.url + "/health", timeout=10).json()["node"] for n in devnet.nodes]
    first = registry.current_epoch() + 1  # every node is registered before this boundary
    unanimous: list[int] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    epoch = first
    while len(unanimous) < EPOCHS_WANTED and time.monotonic() < deadline:
        if registry.current_epoch() <= epoch:
            time.sleep(0.5)
            continue
        # epoch has ended: give late attestations one more period, then judge it
        time.sleep(EPOCH_PERIOD / 2)
        roots = {registry.attestation_of(epoch, node) for node in nodes}
        attested = roots - {None}
        assert len(attested) <= 1, f"epoch {epoch}: divergent roots {attested}"
        if None not in roots:
            unanimous.append(epoch)
            served = {
                httpx.get(f"{n.url}/api/v1/epochs/{epoch}", timeout=10).json()["root"]
                for n in devnet.nodes
            }
            assert served == {"0x" + next(iter(attested)).hex()}
        epoch += 1
    assert len(unanimous) >= EPOCHS_WANTED, f"only epochs {unanimous} attested by all 3 nodes"
    for n in devnet.nodes:
        assert n.running
