"""Several real nodes on one anvil chain: they share the registry and all serve."""

from __future__ import annotations

import httpx

from node.devnet import Devnet


def test_three_nodes_share_one_registry(devnet3: Devnet) -> None:
    devnet = devnet3
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
        assert registry.is_participant(node.home, health["node"])  # member of its home
    assert set(registry.subsystems()) >= {"main", "acme", "beta"}
