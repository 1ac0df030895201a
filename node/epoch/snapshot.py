"""The registry as it was at one block: the input every peer feeds to the assignment.

Every read is an ``eth_call`` with ``block_identifier=block``, so two nodes reading the same
boundary block get the same snapshot whatever happened on the chain since. This needs the
chain's state at that block: the embedded chain and anvil keep all of it; an external node
must be an archive node or not lag more than its pruning depth behind (geth: 128 blocks).

Liveness. Only the active nodes *live* at the boundary block are in the snapshot: the
contract's ``liveNodesAt(block)`` (a node is live iff it was seen, i.e. registered, updated,
attested or sent a heartbeat, within the liveness window before the block; if none is live,
all active nodes are kept). The others are listed in :attr:`Snapshot.left_out`.
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
    """The registry at ``block``: live nodes (by address) and subsystems (creation order).

    ``left_out`` are the active nodes that were not live at ``block`` (by address);
    ``kept_all`` is true when no active node was live, so all were kept;
    ``liveness_window`` is the window (blocks) in force at ``block`` (0: not read).
    """

    block: int
    nodes: tuple[SnapshotNode, ...]
    subsystems: tuple[str, ...]
    participants: dict[str, tuple[ChecksumAddress, ...]]
    left_out: tuple[ChecksumAddress, ...] = ()
    kept_all: bool = False
    liveness_window: int = 0

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
    """Return the registry's live nodes, subsystems and participants as of ``block``.

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
    active = [
        to_checksum_address(_call_at(registry, f.nodeAt(i), block)) for i in range(node_count)
    ]
    live_list, kept_all = _call_at(registry, f.liveNodesAt(block), block)
    live = {to_checksum_address(a) for a in live_list}
    window = int(_call_at(registry, f.livenessWindow(block), block))
    nodes = []
    for address in active:
        if address not in live:
            continue
        endpoint, capacity, roles_mask, home, is_active, _ = _call_at(
            registry, f.getNode(address), block
        )
        if not is_active:  # the active list never holds an inactive node; be defensive
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
    left_out = tuple(sorted((a for a in active if a not in live), key=str.lower))
    return Snapshot(
        block=block,
        nodes=tuple(nodes),
        subsystems=subsystems,
        participants=participants,
        left_out=left_out,
        kept_all=bool(kept_all),
        liveness_window=window,
    )
