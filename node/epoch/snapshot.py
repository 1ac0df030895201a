"""The registry as it was at one block: the input every peer feeds to the assignment.

Every read is an ``eth_call`` with ``block_identifier=block``, so two nodes reading the same
boundary block get the same snapshot whatever happened on the chain since. This needs the
chain's state at that block: the embedded chain and anvil keep all of it; an external node
must be an archive node or not lag more than its pruning depth behind (geth: 128 blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from web3.contract.contract import ContractFunction

from node.chain.contracts import revert_from_exception
from node.chain.registry import CONTRACT_NAME, Registry, RegistryError, RegistryRejected
from node.chain.registry import compute_roles as compute_role_names


@dataclass(frozen=True)
class SnapshotNode:
    """An active node's registry record at the snapshot block, with its memberships."""

    address: ChecksumAddress
    endpoint: str
    capacity: int
    roles: tuple[str, ...]
    home: str
    members_of: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    """The registry at ``block``: active nodes (by address) and subsystems (creation order)."""

    block: int
    nodes: tuple[SnapshotNode, ...]
    subsystems: tuple[str, ...]
    participants: dict[str, tuple[ChecksumAddress, ...]]

    def node(self, address: str) -> SnapshotNode | None:
        """Return the node ``address`` of the snapshot, or None."""
        wanted = address.lower()
        return next((n for n in self.nodes if n.address.lower() == wanted), None)


def _call_at(registry: Registry, fn: ContractFunction, block: int) -> Any:
    """Return ``fn`` called against the state after ``block``; raise ``RegistryError``."""
    try:
        return fn.call(block_identifier=block)
    except Exception as exc:
        revert = revert_from_exception(CONTRACT_NAME, registry.artifact.abi, exc, RegistryRejected)
        if revert is not None:
            raise revert from exc
        raise RegistryError(
            f"registry call {fn.fn_name} at block {block} failed (the chain may have pruned "
            f"that state; use an archive node): {exc}"
        ) from exc


def read_snapshot(registry: Registry, block: int) -> Snapshot:
    """Return the registry's nodes, subsystems and participants as of ``block``.

    Raises ``RegistryError`` if the chain cannot answer for that block.
    """
    f = registry.contract.functions
    subsystem_count = int(_call_at(registry, f.subsystemCount(), block))
    subsystems = tuple(
        str(_call_at(registry, f.subsystemAt(i), block)) for i in range(subsystem_count)
    )
    participants = {
        name: tuple(to_checksum_address(a) for a in _call_at(registry, f.participants(name), block))
        for name in subsystems
    }
    memberships: dict[str, list[str]] = {}
    for name in subsystems:
        for account in participants[name]:
            memberships.setdefault(account, []).append(name)
    node_count = int(_call_at(registry, f.nodeCount(), block))
    nodes = []
    for i in range(node_count):
        address = to_checksum_address(_call_at(registry, f.nodeAt(i), block))
        endpoint, capacity, roles_mask, home, active, _ = _call_at(
            registry, f.getNode(address), block
        )
        if not active:  # the active list never holds an inactive node; be defensive
            continue
        nodes.append(
            SnapshotNode(
                address=address,
                endpoint=str(endpoint),
                capacity=int(capacity),
                roles=compute_role_names(int(roles_mask)),
                home=str(home),
                members_of=tuple(sorted(memberships.get(address, ()))),
            )
        )
    nodes.sort(key=lambda n: n.address.lower())
    return Snapshot(
        block=block, nodes=tuple(nodes), subsystems=subsystems, participants=participants
    )
