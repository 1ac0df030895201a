"""The registry's records and pure helpers: role bits, ids, seeds, errors, the artifact.

Nothing here talks to a chain: the dataclasses are what the typed calls return, and the
``compute_*`` functions are the contract's own arithmetic done locally.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NewType

from eth_abi import encode as abi_encode
from eth_typing import ChecksumAddress
from eth_utils import keccak

from node.chain.contracts import Artifact, ContractRevert, TxHash, load_artifact
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
class LoggedAnchor(Anchor):
    """An anchor read from its ``Anchored`` event: also the chain transaction that made it."""

    tx_hash: TxHash


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


def as_hash(value: bytes) -> Hash32 | None:
    """Return ``value`` as a :data:`Hash32`, or None for the contract's zero hash (unset)."""
    return None if bytes(value) == ZERO_HASH else Hash32(bytes(value))
