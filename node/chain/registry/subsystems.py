"""Subsystems: admins, participants, front-ends, join requests and relayed signed actions."""

from __future__ import annotations

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from node.chain.actions import Action
from node.chain.contracts import TxResult
from node.chain.registry.binding import RegistryBinding
from node.chain.registry.records import Hash32


class SubsystemCalls(RegistryBinding):
    """The registry's subsystems, their join requests and the actions relayed for a signer."""

    # ------------------------------------------------------------------ subsystems

    def create_subsystem(self, name: str) -> TxResult:
        """Create subsystem ``name`` (1..64 bytes); the account becomes admin and participant."""
        return self._send(self._f.createSubsystem(name))

    def add_subsystem_admin(self, name: str, account: str) -> TxResult:
        """Make ``account`` an admin of ``name`` (subsystem admin only)."""
        return self._send(self._f.addSubsystemAdmin(name, to_checksum_address(account)))

    def remove_subsystem_admin(self, name: str, account: str) -> TxResult:
        """Remove admin ``account`` of ``name`` (subsystem admin only; the last one stays)."""
        return self._send(self._f.removeSubsystemAdmin(name, to_checksum_address(account)))

    def add_participant(self, name: str, account: str) -> TxResult:
        """Add participant ``account`` to ``name`` (subsystem admin only)."""
        return self._send(self._f.addParticipant(name, to_checksum_address(account)))

    def remove_participant(self, name: str, account: str) -> TxResult:
        """Remove participant ``account`` from ``name`` (subsystem admin only)."""
        return self._send(self._f.removeParticipant(name, to_checksum_address(account)))

    def set_subsystem_frontend(self, name: str, cid: str) -> TxResult:
        """Set the CID of the front-end of ``name`` (subsystem admin only)."""
        return self._send(self._f.setSubsystemFrontend(name, cid))

    def subsystem_frontend(self, name: str) -> str:
        """Return the front-end CID of ``name`` ("" if unset); rejects an unknown subsystem."""
        return str(self._call(self._f.subsystemFrontend(name)))

    def subsystem_exists(self, name: str) -> bool:
        """Return whether subsystem ``name`` exists."""
        return bool(self._call(self._f.subsystemExists(name)))

    def is_participant(self, name: str, account: str) -> bool:
        """Return whether ``account`` participates in ``name``."""
        return bool(self._call(self._f.isParticipant(name, to_checksum_address(account))))

    def is_subsystem_admin(self, name: str, account: str) -> bool:
        """Return whether ``account`` is an admin of ``name``."""
        return bool(self._call(self._f.isSubsystemAdmin(name, to_checksum_address(account))))

    def subsystem_admins(self, name: str) -> list[ChecksumAddress]:
        """Return the admins of ``name``; rejects an unknown subsystem."""
        return [to_checksum_address(a) for a in self._call(self._f.subsystemAdmins(name))]

    def subsystem_count(self) -> int:
        """Return the number of subsystems."""
        return int(self._call(self._f.subsystemCount()))

    def subsystem_at(self, i: int) -> str:
        """Return the name of subsystem ``i`` (creation order)."""
        return str(self._call(self._f.subsystemAt(i)))

    def subsystems(self) -> list[str]:
        """Return every subsystem name, in creation order."""
        return [self.subsystem_at(i) for i in range(self.subsystem_count())]

    def participants(self, name: str) -> list[ChecksumAddress]:
        """Return the participants of ``name``; rejects an unknown subsystem."""
        return [to_checksum_address(a) for a in self._call(self._f.participants(name))]

    # ------------------------------------------------------------------ join requests

    def request_join(self, name: str, message: str = "") -> TxResult:
        """Ask, as the account, to become a participant of ``name`` (message <= 280 bytes)."""
        return self._send(self._f.requestJoin(name, message))

    def cancel_join(self, name: str) -> TxResult:
        """Withdraw the account's pending request to join ``name``."""
        return self._send(self._f.cancelJoin(name))

    def deny_join(self, name: str, account: str) -> TxResult:
        """Refuse ``account``'s pending request to join ``name`` (subsystem admin only)."""
        return self._send(self._f.denyJoin(name, to_checksum_address(account)))

    def join_requests(self, name: str) -> list[ChecksumAddress]:
        """Return the accounts whose request to join ``name`` is pending (contract order)."""
        return [to_checksum_address(a) for a in self._call(self._f.joinRequests(name))]

    def join_request(self, name: str, account: str) -> tuple[bool, str]:
        """Return whether ``account`` has a pending request to join ``name``, and its message."""
        pending, message = self._call(self._f.joinRequest(name, to_checksum_address(account)))
        return bool(pending), str(message)

    # ------------------------------------------------------------------ signed actions

    def nonce_of(self, signer: str) -> int:
        """Return the next nonce ``signer`` must sign an action with."""
        return int(self._call(self._f.nonces(to_checksum_address(signer))))

    def action_digest(self, action: Action) -> Hash32:
        """Return the EIP-712 digest the contract computes for ``action``."""
        return Hash32(bytes(self._call(self._f.actionDigest(action.as_tuple()))))

    def relay(self, action: Action, signature: str) -> TxResult:
        """Send ``action``, signed by its signer, as the account (which pays the gas).

        The contract's checks surface as :class:`RegistryRejected` before anything is sent
        (``SignatureExpired``, ``InvalidNonce``, ``InvalidActionSignature``,
        ``NotSubsystemAdmin``…).
        """
        raw = bytes.fromhex(signature.removeprefix("0x"))
        return self._send(self._f.relay(action.as_tuple(), raw))
