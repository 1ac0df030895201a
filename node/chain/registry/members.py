"""Who is in: system admins and the system front-end, nodes and their liveness."""

from __future__ import annotations

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from node.chain.contracts import TxResult
from node.chain.registry.binding import RegistryBinding
from node.chain.registry.records import NodeInfo


class MemberCalls(RegistryBinding):
    """The registry's system admins, system front-end, nodes and liveness."""

    def add_system_admin(self, account: str) -> TxResult:
        """Make ``account`` a system admin (system admin only)."""
        return self._send(self._f.addSystemAdmin(to_checksum_address(account)))

    def remove_system_admin(self, account: str) -> TxResult:
        """Remove system admin ``account`` (system admin only; the last one stays)."""
        return self._send(self._f.removeSystemAdmin(to_checksum_address(account)))

    def is_system_admin(self, account: str) -> bool:
        """Return whether ``account`` is a system admin."""
        return bool(self._call(self._f.isSystemAdmin(to_checksum_address(account))))

    def system_admins(self) -> list[ChecksumAddress]:
        """Return the system admins."""
        return [to_checksum_address(a) for a in self._call(self._f.systemAdmins())]

    def set_frontend(self, cid: str) -> TxResult:
        """Set the CID of the system front-end (system admin only)."""
        return self._send(self._f.setFrontend(cid))

    def frontend_cid(self) -> str:
        """Return the CID of the system front-end ("" if unset)."""
        return str(self._call(self._f.frontendCid()))

    # ------------------------------------------------------------------ nodes

    def register_node(self, endpoint: str, capacity: int, roles_mask: int, home: str) -> TxResult:
        """Register the account as an active node (capacity > 0, 0 < roles_mask < 16)."""
        return self._send(self._f.registerNode(endpoint, capacity, roles_mask, home))

    def update_node(self, endpoint: str, capacity: int, roles_mask: int, home: str) -> TxResult:
        """Update the account's node record (registered nodes only)."""
        return self._send(self._f.updateNode(endpoint, capacity, roles_mask, home))

    def leave_node(self) -> TxResult:
        """Deactivate the account's node (registered nodes only)."""
        return self._send(self._f.leaveNode())

    def node_count(self) -> int:
        """Return the number of active nodes."""
        return int(self._call(self._f.nodeCount()))

    def node_at(self, i: int) -> ChecksumAddress:
        """Return the address of active node ``i`` (order changes when a node leaves)."""
        return to_checksum_address(self._call(self._f.nodeAt(i)))

    def get_node(self, address: str) -> NodeInfo:
        """Return the record of ``address`` (all-empty and inactive if never registered)."""
        checksum = to_checksum_address(address)
        endpoint, capacity, roles_mask, home, active, registered_at = self._call(
            self._f.getNode(checksum)
        )
        return NodeInfo(
            address=checksum,
            endpoint=endpoint,
            capacity=int(capacity),
            roles_mask=int(roles_mask),
            home=home,
            active=bool(active),
            registered_at=int(registered_at),
        )

    def is_node(self, address: str) -> bool:
        """Return whether ``address`` is an active node."""
        return bool(self._call(self._f.isNode(to_checksum_address(address))))

    def nodes(self) -> list[NodeInfo]:
        """Return every active node, in contract order."""
        return [self.get_node(self.node_at(i)) for i in range(self.node_count())]

    # ------------------------------------------------------------------ liveness

    def heartbeat(self) -> TxResult:
        """Mark the account's node as seen at this block (registered nodes only)."""
        return self._send(self._f.heartbeat())

    def last_seen(self, address: str) -> int:
        """Return the block ``address`` was last seen at (0 if never registered)."""
        return int(self._call(self._f.lastSeen(to_checksum_address(address))))

    def liveness_window(self, at_block: int) -> int:
        """Return the liveness window (blocks) at ``at_block``: ``LIVENESS_EPOCHS`` periods."""
        return int(self._call(self._f.livenessWindow(at_block)))

    def is_live_at(self, address: str, at_block: int) -> bool:
        """Return whether ``address`` is an active node seen in the window before ``at_block``."""
        return bool(self._call(self._f.isLiveAt(to_checksum_address(address), at_block)))

    def live_nodes_at(self, at_block: int) -> tuple[list[ChecksumAddress], bool]:
        """Return the active nodes live at ``at_block`` (contract order) and ``kept_all``:
        true when none was live, so every active node is returned."""
        nodes, kept_all = self._call(self._f.liveNodesAt(at_block))
        return [to_checksum_address(a) for a in nodes], bool(kept_all)
