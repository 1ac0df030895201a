"""Several real nodes on one anvil chain: they share the registry and all serve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from node.devnet import ANVIL_BIN, Devnet, start_devnet

pytestmark = pytest.mark.skipif(
    not ANVIL_BIN.exists(), reason=f"anvil binary absent at {ANVIL_BIN}: npm ci in contracts/"
)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = start_devnet(Path(tmp_path_factory.mktemp("devnet")), 3)
    try:
        yield net
    finally:
        net.stop()


def test_three_nodes_share_one_registry(devnet: Devnet) -> None:
    healths = [httpx.get(n.url + "/health", timeout=10).json() for n in devnet.nodes]
    assert {h["registry"] for h in healths} == {devnet.registry}
    assert {h["chain"]["chain_id"] for h in healths} == {31337}
    assert len({h["node"] for h in healths}) == 3
    from web3 import Web3

    from node.chain.registry import Registry

    registry = Registry(Web3(Web3.HTTPProvider(devnet.chain_url)), str(devnet.registry))
    registered = {info.address: info for info in registry.nodes()}
    for node, health in zip(devnet.nodes, healths, strict=True):
        info = registered[health["node"]]
        assert info.endpoint == node.url and info.home == node.home and info.active
    assert set(registry.subsystems()) >= {"main", "acme", "beta"}
