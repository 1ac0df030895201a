"""Typed facade over the ``Registry`` contract (``contracts/src/Registry.sol``).

One Python method per contract function, snake_case, with typed results. Writes are signed
locally with the registry's account and sent raw (see :mod:`node.chain.contracts`); a revert
raises :class:`RegistryRejected` naming the contract's custom error, e.g.
``registry rejected the call: NotRegisteredNode(0xAbC…)``. Reads need no account.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NewType

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from node.chain.actions import Action
from node.chain.contracts import (
    Artifact,
    ContractRevert,
    TxHash,
    TxResult,
    deploy,
    load_artifact,
    revert_from_exception,
    send_transaction,
    tx_result,
)
from node.errors import ChainError

Hash32 = NewType("Hash32", bytes)
"""A 32-byte hash: Merkle root, seed, block hash."""

CONTRACT_NAME = "Registry"

SEED_DOMAIN = Hash32(keccak(text="collegium/epoch-seed/v1"))
"""Domain tag of epoch seeds; equals the contract's ``SEED_DOMAIN``."""

ROLE_BITS: Mapping[str, int] = {
    "fe_system": 1 << 0,
    "fe_subsystem": 1 << 1,
    "be_system": 1 << 2,
    "be_subsystem": 1 << 3,
}
"""Bit of each hosting role in a node's ``rolesMask``."""

ZERO_HASH = Hash32(bytes(32))


class RegistryError(ChainError):
    """The registry could not be used (no account for a write, bad argument)."""


class RegistryRejected(ContractRevert, RegistryError):
    """The registry contract reverted; ``error_name`` is its custom error."""


@dataclass(frozen=True)
class NodeInfo:
    """A node's record; ``active`` is false once it left."""

    address: ChecksumAddress
    endpoint: str
    capacity: int
    roles_mask: int
    home: str
    active: bool
    registered_at: int

    @property
    def roles(self) -> tuple[str, ...]:
        """Return the role ids in ``roles_mask``, in bit order."""
        return compute_roles(self.roles_mask)


@dataclass(frozen=True)
class Anchor:
    """One anchored batch: Merkle ``root`` over ``count`` txs, log size ``tree_size``."""

    index: int
    root: Hash32
    tree_size: int
    count: int
    batch_cid: str
    subsystem: str
    node: ChecksumAddress
    block_number: int


@dataclass(frozen=True)
class AnchorReceipt:
    """The mined ``anchor`` transaction and the index of the new anchor."""

    tx_hash: TxHash
    block_number: int
    index: int
    gas_used: int


@dataclass(frozen=True)
class SeedInfo:
    """A fixed seed, the block whose hash it used and the block whose tx fixed it."""

    epoch: int
    seed: Hash32
    source_block: int
    fixed_at: int


@dataclass(frozen=True)
class Period:
    """A stretch of the epoch schedule: epoch ``start_epoch`` starts at ``start_block``."""

    start_epoch: int
    start_block: int
    length: int


@dataclass(frozen=True)
class Proposal:
    """A proposed epoch period; ``votes`` counts voters that are still active nodes."""

    id: int
    new_period: int
    proposer: ChecksumAddress
    executed: bool
    votes: int


@dataclass(frozen=True)
class ProposalReceipt:
    """The mined ``proposeEpochPeriod`` transaction, its proposal id and whether it executed."""

    tx_hash: TxHash
    block_number: int
    id: int
    executed: bool
    gas_used: int


def compute_roles_mask(roles: Iterable[str]) -> int:
    """Return the ``rolesMask`` of role ids; raises :class:`RegistryError` on an unknown id."""
    mask = 0
    for role in roles:
        if role not in ROLE_BITS:
            raise RegistryError(f"unknown role {role!r}, expected one of {sorted(ROLE_BITS)}")
        mask |= ROLE_BITS[role]
    return mask


def compute_roles(mask: int) -> tuple[str, ...]:
    """Return the role ids whose bits are set in ``mask``, in bit order."""
    return tuple(role for role, bit in ROLE_BITS.items() if mask & bit)


def compute_subsystem_id(name: str) -> Hash32:
    """Return the on-chain id of subsystem ``name``: keccak256 of its UTF-8 bytes."""
    return Hash32(keccak(name.encode("utf-8")))


def compute_seed(epoch: int, source_hash: bytes) -> Hash32:
    """Return keccak256(abi.encode(SEED_DOMAIN, epoch, source_hash)), as ``fixSeed`` does.

    ``source_hash`` is the hash of the epoch's boundary block (``epoch_start_block``), or of
    the fallback block recorded in :class:`SeedInfo` when the seed was fixed late.
    """
    encoded = abi_encode(["bytes32", "uint64", "bytes32"], [SEED_DOMAIN, epoch, source_hash])
    return Hash32(keccak(encoded))


@functools.cache
def get_registry_artifact() -> Artifact:
    """Return the ``Registry`` artifact (read from disk once per process)."""
    return load_artifact(CONTRACT_NAME)


def _as_hash(value: bytes) -> Hash32 | None:
    return None if bytes(value) == ZERO_HASH else Hash32(bytes(value))


class Registry:
    """Typed access to one deployed ``Registry`` contract.

    ``account`` signs every write; it may be ``None`` for a read-only facade (a write then
    raises :class:`RegistryError`). Safe to share between threads.
    """

    def __init__(self, w3: Web3, address: str, account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.address: ChecksumAddress = to_checksum_address(address)
        self.account = account
        self.artifact = get_registry_artifact()
        self.contract: Contract = w3.eth.contract(address=self.address, abi=list(self.artifact.abi))

    @classmethod
    def deploy(cls, w3: Web3, account: LocalAccount, epoch_period: int) -> Registry:
        """Deploy a new registry (``account`` becomes its first system admin) and return it."""
        address = deploy(w3, account, CONTRACT_NAME, epoch_period, error_type=RegistryRejected)
        return cls(w3, address, account)

    # ------------------------------------------------------------------ plumbing

    def _send(self, fn: ContractFunction) -> TxResult:
        return tx_result(self._transact(fn))

    def _transact(self, fn: ContractFunction) -> TxReceipt:
        if self.account is None:
            raise RegistryError("this Registry has no account: it can only read")
        return send_transaction(
            self.w3,
            self.account,
            fn,
            CONTRACT_NAME,
            self.artifact.abi,
            error_type=RegistryRejected,
        )

    def _call(self, fn: ContractFunction) -> Any:
        try:
            return fn.call()
        except Exception as exc:
            revert = revert_from_exception(CONTRACT_NAME, self.artifact.abi, exc, RegistryRejected)
            if revert is not None:
                raise revert from exc
            raise RegistryError(f"registry call {fn.fn_name} failed: {exc}") from exc

    @property
    def _f(self) -> Any:
        return self.contract.functions

    # ------------------------------------------------------------------ system admins, front-end

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

    # ------------------------------------------------------------------ anchors

    def anchor(
        self, subsystem: str, root: bytes, tree_size: int, count: int, batch_cid: str
    ) -> AnchorReceipt:
        """Anchor a batch's Merkle ``root`` (registered nodes only); ``subsystem`` "" = system."""
        receipt = self._transact(self._f.anchor(subsystem, root, tree_size, count, batch_cid))
        (event,) = self.contract.events.Anchored().process_receipt(receipt, errors=DISCARD)
        result = tx_result(receipt)
        return AnchorReceipt(
            tx_hash=result.tx_hash,
            block_number=result.block_number,
            index=int(event["args"]["index"]),
            gas_used=result.gas_used,
        )

    def anchor_count(self) -> int:
        """Return the number of anchors."""
        return int(self._call(self._f.anchorCount()))

    def get_anchor(self, i: int) -> Anchor:
        """Return anchor ``i``; rejects an index out of range."""
        root, tree_size, count, batch_cid, subsystem, node, block_number = self._call(
            self._f.getAnchor(i)
        )
        return Anchor(
            index=i,
            root=Hash32(bytes(root)),
            tree_size=int(tree_size),
            count=int(count),
            batch_cid=batch_cid,
            subsystem=subsystem,
            node=to_checksum_address(node),
            block_number=int(block_number),
        )

    def anchors(self, start: int = 0, stop: int | None = None) -> list[Anchor]:
        """Return anchors ``start`` up to ``stop`` (default: all)."""
        end = self.anchor_count() if stop is None else stop
        return [self.get_anchor(i) for i in range(start, end)]

    # ------------------------------------------------------------------ epochs and seeds

    def current_epoch(self) -> int:
        """Return the epoch of the latest block."""
        return int(self._call(self._f.currentEpoch()))

    def epoch_start_block(self, epoch: int) -> int:
        """Return the block at which ``epoch`` starts (the schedule as it stands)."""
        return int(self._call(self._f.epochStartBlock(epoch)))

    def epoch_period(self) -> int:
        """Return the epoch period, in blocks, in force at the latest block."""
        return int(self._call(self._f.epochPeriod()))

    def periods(self) -> list[Period]:
        """Return the epoch schedule, one :class:`Period` per period change (the first at 0)."""
        count = int(self._call(self._f.periodCount()))
        result = []
        for i in range(count):
            start_epoch, start_block, length = self._call(self._f.periodAt(i))
            result.append(Period(int(start_epoch), int(start_block), int(length)))
        return result

    def fix_seed(self, epoch: int) -> TxResult:
        """Fix the seed of ``epoch`` (anyone; once its start block is in the past, only once)."""
        return self._send(self._f.fixSeed(epoch))

    def seed(self, epoch: int) -> Hash32 | None:
        """Return the fixed seed of ``epoch``, or None if not fixed yet."""
        return _as_hash(self._call(self._f.seeds(epoch)))

    def seed_info(self, epoch: int) -> SeedInfo | None:
        """Return the seed of ``epoch`` with its source and fixing blocks, or None."""
        seed, source_block, fixed_at = self._call(self._f.seedInfo(epoch))
        value = _as_hash(seed)
        if value is None:
            return None
        return SeedInfo(epoch, value, int(source_block), int(fixed_at))

    def verify_seed(self, epoch: int) -> bool:
        """Return whether the stored seed of ``epoch`` matches its source block's header hash.

        Raises :class:`RegistryError` if the seed is not fixed.
        """
        info = self.seed_info(epoch)
        if info is None:
            raise RegistryError(f"seed of epoch {epoch} is not fixed")
        source = self.w3.eth.get_block(info.source_block)
        return compute_seed(epoch, bytes(source["hash"])) == info.seed

    # ------------------------------------------------------------------ attestations

    def attest(self, epoch: int, root: bytes) -> TxResult:
        """Attest the assignment ``root`` of ``epoch`` (registered nodes; once per epoch)."""
        return self._send(self._f.attest(epoch, root))

    def attestation_of(self, epoch: int, node: str) -> Hash32 | None:
        """Return the root ``node`` attested for ``epoch``, or None."""
        return _as_hash(self._call(self._f.attestationOf(epoch, to_checksum_address(node))))

    # ------------------------------------------------------------------ assignment score

    def slot_score(
        self,
        seed: bytes,
        epoch: int,
        role: str,
        subsystem: str | None,
        node: str,
        capacity: int,
    ) -> int:
        """Return the contract's ``slotScore``: ``node.assignment.compute_slot_score`` on-chain.

        ``subsystem`` is None (sent as "") for a system-wide slot. Raises
        :class:`RegistryRejected` (``UnknownRole``, ``InvalidCapacity``) for a bad role or a
        zero capacity.
        """
        fn = self._f.slotScore(
            bytes(seed), epoch, role, subsystem or "", to_checksum_address(node), capacity
        )
        return int(self._call(fn))

    # ------------------------------------------------------------------ epoch period vote

    def propose_epoch_period(self, new_period: int) -> ProposalReceipt:
        """Propose (and vote for) a new epoch period (registered nodes only)."""
        receipt = self._transact(self._f.proposeEpochPeriod(new_period))
        events = self.contract.events
        (event,) = events.EpochPeriodProposed().process_receipt(receipt, errors=DISCARD)
        executed = bool(events.EpochPeriodChanged().process_receipt(receipt, errors=DISCARD))
        result = tx_result(receipt)
        return ProposalReceipt(
            tx_hash=result.tx_hash,
            block_number=result.block_number,
            id=int(event["args"]["id"]),
            executed=executed,
            gas_used=result.gas_used,
        )

    def vote_epoch_period(self, proposal_id: int) -> TxResult:
        """Vote for proposal ``proposal_id``; it executes on a majority of active nodes."""
        return self._send(self._f.voteEpochPeriod(proposal_id))

    def execute_epoch_period(self, proposal_id: int) -> TxResult:
        """Execute proposal ``proposal_id`` if it has a majority now (anyone)."""
        return self._send(self._f.executeEpochPeriod(proposal_id))

    def proposal_count(self) -> int:
        """Return the number of proposals."""
        return int(self._call(self._f.proposalCount()))

    def get_proposal(self, proposal_id: int) -> Proposal:
        """Return proposal ``proposal_id``; rejects an unknown id."""
        new_period, proposer, executed, votes = self._call(self._f.getProposal(proposal_id))
        return Proposal(
            id=proposal_id,
            new_period=int(new_period),
            proposer=to_checksum_address(proposer),
            executed=bool(executed),
            votes=int(votes),
        )

    def has_voted(self, proposal_id: int, node: str) -> bool:
        """Return whether ``node`` voted for ``proposal_id``."""
        return bool(self._call(self._f.hasVoted(proposal_id, to_checksum_address(node))))
