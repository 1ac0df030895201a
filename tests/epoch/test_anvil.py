"""Three nodes on anvil (a real external chain over JSON-RPC) agree for ten consecutive epochs.

Here the epoch service itself ends each quiet epoch (``autoadvance`` with a test clock), the
way a dev network on a shared anvil would run; every node attests, every root matches.
"""

from __future__ import annotations

import pytest

from node.chain.backend import open_rpc
from node.chain.registry import Registry, compute_roles_mask
from node.epoch import EpochService
from tests.chain.conftest import ChainUnderTest, anvil_chain  # noqa: F401 - fixture

EPOCHS = 10
EPOCH_PERIOD = 4
HOMES = ("main", "shop", "lab")
ROLES_ALL = compute_roles_mask(("fe_system", "fe_subsystem", "be_system", "be_subsystem"))


@pytest.mark.anvil
def test_three_nodes_agree_for_ten_epochs_on_anvil(anvil_chain: ChainUnderTest) -> None:  # noqa: F811
    accounts = [anvil_chain.new_account() for _ in HOMES]
    url = str(anvil_chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    backend = open_rpc(url)
    try:
        address = Registry.deploy(backend.w3, accounts[0], EPOCH_PERIOD).address
        now = [0.0]
        services = []
        for account, home in zip(accounts, HOMES, strict=True):
            registry = Registry(backend.w3, address, account)
            registry.create_subsystem(home)
            registry.register_node(f"http://{home}.invalid", 6, ROLES_ALL, home)
            services.append(
                EpochService(
                    registry, backend, autoadvance=True, epoch_seconds=1.0, clock=lambda: now[0]
                )  # fmt: skip
            )
        reader = Registry(backend.w3, address)
        start = services[0].tick().epoch
        for step in range(1, EPOCHS + 1):
            now[0] += 1.0
            views = [service.tick() for service in services]  # the first one mines
            assert {v.epoch for v in views} == {start + step}
            (root,) = {v.root for v in views}
            assert root is not None
            assert {reader.attestation_of(start + step, a.address) for a in accounts} == {root}
            assert reader.verify_seed(start + step)
            assert all(s.divergence() == [] for s in services)
    finally:
        backend.close()
