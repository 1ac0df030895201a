"""Typed facade over the ``Registry`` contract (``contracts/src/Registry.sol``).

One Python method per contract function, snake_case, with typed results. Writes are signed
locally with the registry's account and sent raw (see :mod:`node.chain.sending`); a revert
raises :class:`RegistryRejected` naming the contract's custom error, e.g.
``registry rejected the call: NotRegisteredNode(0xAbC…)``. Reads need no account.

The package has one module per job: ``records`` (the returned dataclasses, role bits, ids,
seeds, errors, the artifact), ``binding`` (the contract, its account and the send/call
plumbing), then one group of calls each: ``members`` (system admins, front-end, nodes,
liveness), ``subsystems`` (subsystems, join requests, relayed actions), ``anchors`` and
``epochs`` (schedule, seeds, attestations, slot score, period vote). Callers import every
name from ``node.chain.registry``.
"""

from __future__ import annotations

from node.chain.registry.anchors import AnchorCalls
from node.chain.registry.binding import RegistryBinding
from node.chain.registry.epochs import EpochCalls
from node.chain.registry.members import MemberCalls
from node.chain.registry.records import (
    CONTRACT_NAME,
    ROLE_BITS,
    SEED_DOMAIN,
    ZERO_HASH,
    Anchor,
    AnchorReceipt,
    Hash32,
    LoggedAnchor,
    NodeInfo,
    Period,
    Proposal,
    ProposalReceipt,
    RegistryError,
    RegistryRejected,
    SeedInfo,
    compute_roles,
    compute_roles_mask,
    compute_seed,
    compute_subsystem_id,
    get_registry_artifact,
)
from node.chain.registry.subsystems import SubsystemCalls


class Registry(MemberCalls, SubsystemCalls, AnchorCalls, EpochCalls):
    """Typed access to one deployed ``Registry`` contract: every group of calls in one object.

    ``account`` signs every write; it may be ``None`` for a read-only facade (a write then
    raises :class:`RegistryError`). Safe to share between threads.
    """


__all__ = [
    "CONTRACT_NAME",
    "ROLE_BITS",
    "SEED_DOMAIN",
    "ZERO_HASH",
    "Anchor",
    "AnchorCalls",
    "AnchorReceipt",
    "EpochCalls",
    "Hash32",
    "LoggedAnchor",
    "MemberCalls",
    "NodeInfo",
    "Period",
    "Proposal",
    "ProposalReceipt",
    "Registry",
    "RegistryBinding",
    "RegistryError",
    "RegistryRejected",
    "SeedInfo",
    "SubsystemCalls",
    "compute_roles",
    "compute_roles_mask",
    "compute_seed",
    "compute_subsystem_id",
    "get_registry_artifact",
]
