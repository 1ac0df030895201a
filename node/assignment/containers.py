"""Containers of the assignment: ``Node`` (input), ``Slot`` and ``Assignment`` (output)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import InitVar, dataclass
from typing import NewType

from node.assignment.constants import MAX_CAPACITY
from node.assignment.validation import (
    parse_address,
    parse_role,
    parse_string_list,
    parse_subsystem_name,
    parse_uint,
)

Address = NewType("Address", str)  # lowercase "0x" + 40 hex digits
Bytes32 = NewType("Bytes32", bytes)
Root = NewType("Root", bytes)
SlotKey = tuple[str, str | None]  # (role, subsystem); subsystem is None for system roles


@dataclass(frozen=True)
class Node:
    """A registered node: identity, capacity in slots, home subsystem, memberships, roles.

    Construction validates and normalizes (the one place a node is validated): ``id`` becomes
    lowercase, ``members_of`` and ``roles`` become frozensets; bad values raise
    ``InvalidTopologyError`` naming the field under ``path`` (default ``node '<id>'``).
    """

    id: str
    capacity: int
    home: str
    members_of: frozenset[str]
    roles: frozenset[str]
    path: InitVar[str | None] = None

    def __post_init__(self, path: str | None) -> None:
        """Validate the fields and normalize ``id``, ``members_of`` and ``roles``."""
        path = f"node {self.id!r}" if path is None else path
        object.__setattr__(self, "id", parse_address(self.id, f"{path}.id"))
        parse_uint(self.capacity, f"{path}.capacity", 1, MAX_CAPACITY)
        parse_subsystem_name(self.home, f"{path}.home")
        members = parse_string_list(self.members_of, f"{path}.members_of")
        members_of = frozenset(
            parse_subsystem_name(name, f"{path}.members_of[{i}]") for i, name in enumerate(members)
        )
        object.__setattr__(self, "members_of", members_of)
        offered = parse_string_list(self.roles, f"{path}.roles")
        roles = frozenset(parse_role(role, f"{path}.roles[{i}]") for i, role in enumerate(offered))
        object.__setattr__(self, "roles", roles)


@dataclass(frozen=True)
class Slot:
    """One slot: a role, its subsystem (``None`` for system-wide roles) and its ranked hosts."""

    role: str
    subsystem: str | None
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Adjustment:
    """One step of the reduction: a role's replica count lowered (``subsystem`` is None and
    ``to >= 1``) or one slot left unserved (``to == 0``), and why (``REASON_*``)."""

    reason: str
    role: str
    subsystem: str | None
    before: int
    to: int


@dataclass(frozen=True)
class Assignment:
    """The assignment of one epoch: slots in canonical order (an unserved slot has no hosts),
    the adjustments made to serve the topology, and the root committing to both."""

    epoch: int
    seed: bytes
    slots: tuple[Slot, ...]
    root: bytes
    adjustments: tuple[Adjustment, ...] = ()

    def replicas(self, requested: Mapping[str, int]) -> dict[str, int]:
        """Return each role's effective replica count, given the ``requested`` counts."""
        counts = dict(requested)
        for adjustment in self.adjustments:
            if adjustment.to > 0:
                counts[adjustment.role] = adjustment.to
        return counts
