"""Three node processes on anvil agree on the assignment of every epoch, on-chain.

Ten epochs of 4 blocks (anvil mines a block a second). The devnet is shared: this test runs
last among the 3-node tests (see conftest.py) and judges every epoch since all three nodes
were registered, including those that elapsed while the other tests loaded the nodes.
"""

from __future__ import annotations

import time

import httpx
from web3 import Web3

from node.chain.registry import Registry
from node.devnet import Devnet
from tests.devnet.conftest import EPOCH_PERIOD, THREE, DevnetPool

EPOCHS_WANTED = 10
DEADLINE_SECONDS = 150


def test_every_epoch_has_one_root_attested_by_all(devnet3: Devnet, devnet_pool: DevnetPool) -> None:
    devnet = devnet3
    registry = Registry(Web3(Web3.HTTPProvider(devnet.chain_url)), str(devnet.registry))
    nodes = [httpx.get(n.url + "/health", timeout=10).json()["node"] for n in devnet.nodes]
    first = devnet_pool.first_epoch[THREE]  # every node was registered before this boundary
    unanimous: list[int] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    epoch = first
    while epoch < first + EPOCHS_WANTED and time.monotonic() < deadline:
        current = registry.current_epoch()
        if current <= epoch:
            time.sleep(0.5)
            continue
        if current == epoch + 1:
            # epoch has just ended: give late attestations half a period, then judge it
            time.sleep(EPOCH_PERIOD / 2)
        roots = {registry.attestation_of(epoch, node) for node in nodes}
        attested = roots - {None}
        assert len(attested) <= 1, f"epoch {epoch}: divergent roots {attested}"
        assert None not in roots, f"epoch {epoch}: not attested by every node: {roots}"
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
