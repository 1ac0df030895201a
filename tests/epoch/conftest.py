"""Three nodes (three keys) registered in one registry on one embedded py-evm chain.

Each node has its own ``Registry`` facade signing with its key and its own ``EpochService``;
they share the chain in-process, as three processes would share it over RPC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.chain.backend import ChainBackend, open_embedded
from node.chain.registry import Registry, compute_roles_mask
from node.epoch import EpochService

EPOCH_PERIOD = 5
LONG_EPOCH_PERIOD = 10  # for tests whose rounds send more transactions than 5 blocks hold
NODE_CAPACITY = 6
HOMES = ("main", "shop", "lab")
ALL_ROLES = ("fe_system", "fe_subsystem", "be_system", "be_subsystem")


@dataclass
class Member:
    """One node of the test network: its key, its registry facade, its epoch service."""

    account: LocalAccount
    registry: Registry
    home: str
    service: EpochService

    @property
    def address(self) -> str:
        return str(self.account.address)


@dataclass
class Network:
    """The shared chain, the registry address and the three members."""

    chain: ChainBackend
    address: str
    members: list[Member] = field(default_factory=list)

    def registry_for(self, account: LocalAccount | None) -> Registry:
        return Registry(self.chain.w3, self.address, account)

    def service_for(self, member: Member, **kwargs: object) -> EpochService:
        """Return a new EpochService for ``member`` (e.g. after a restart)."""
        return EpochService(self.registry_for(member.account), self.chain, **kwargs)  # type: ignore[arg-type]

    def mine_to_next_epoch(self) -> int:
        """Mine empty blocks up to the next epoch's boundary; return that epoch."""
        registry = self.members[0].registry
        head = self.chain.block_number()
        epoch = registry.current_epoch()
        while registry.epoch_start_block(epoch) > head:
            epoch -= 1
        boundary = registry.epoch_start_block(epoch + 1)
        self.chain.mine(boundary - head)
        return epoch + 1


@pytest.fixture
def network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Network]:
    """Three registered nodes, each the participant (creator) of its home subsystem.

    The epoch period is ``EPOCH_PERIOD`` blocks, or the fixture's parameter (indirect). The
    embedded chain mines one block per transaction, so a round of steps whose transactions
    outnumber the period's blocks straddles a boundary.
    """
    period = int(getattr(request, "param", EPOCH_PERIOD))
    accounts = [Account.create() for _ in HOMES]
    chain = open_embedded(tmp_path / "chain-data", fund=[a.address for a in accounts])
    try:
        deployer = Registry.deploy(chain.w3, accounts[0], period)
        net = Network(chain, str(deployer.address))
        for account, home in zip(accounts, HOMES, strict=True):
            registry = net.registry_for(account)
            registry.create_subsystem(home)
            registry.register_node(
                f"http://{home}.invalid", NODE_CAPACITY, compute_roles_mask(ALL_ROLES), home
            )
            net.members.append(Member(account, registry, home, EpochService(registry, chain)))
        yield net
    finally:
        for member in net.members:
            member.service.stop()
        chain.close()
