"""Errors of the assignment: malformed input, and constraints that cannot be met."""

from __future__ import annotations

from node.assignment.constants import ROLE_BE_SUBSYSTEM
from node.errors import AssignmentError, ValidationError


def format_slot(role: str, subsystem: str | None) -> str:
    """Return the human-readable name of slot ``(role, subsystem)``."""
    return role if subsystem is None else f"{role}[{subsystem}]"


class InvalidTopologyError(ValidationError):
    """The input is malformed (bad seed, address, capacity, role, ...); ``path`` names the field."""

    kind = "invalid_topology"

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class NotEnoughEligibleNodesError(AssignmentError):
    """A slot has fewer eligible nodes than replicas (e.g. a subsystem without member node)."""

    kind = "not_enough_eligible_nodes"

    def __init__(self, role: str, subsystem: str | None, required: int, eligible: int) -> None:
        self.role = role
        self.subsystem = subsystem
        self.required = required
        self.eligible = eligible
        who = "nodes offering the role"
        if subsystem is not None and role == ROLE_BE_SUBSYSTEM:
            who = f"member nodes of subsystem {subsystem!r} offering the role"
        super().__init__(
            f"slot {format_slot(role, subsystem)} needs {required} replicas on distinct nodes, "
            f"but only {eligible} {who} exist"
        )


class InsufficientCapacityError(AssignmentError):
    """The nodes' total capacity is smaller than the total number of replicas."""

    kind = "insufficient_capacity"

    def __init__(self, required: int, available: int) -> None:
        self.required = required
        self.available = available
        super().__init__(
            f"the slots need {required} replicas in total, but the nodes' total capacity is "
            f"{available}"
        )


class CapacityExhaustedError(AssignmentError):
    """A slot's eligible nodes have no capacity left after the slots filled before it."""

    kind = "capacity_exhausted"

    def __init__(self, role: str, subsystem: str | None, required: int, placed: int) -> None:
        self.role = role
        self.subsystem = subsystem
        self.required = required
        self.placed = placed
        super().__init__(
            f"slot {format_slot(role, subsystem)} needs {required} replicas, but only {placed} "
            f"eligible nodes have capacity left after the slots filled before it"
        )


__all__ = [
    "AssignmentError",
    "CapacityExhaustedError",
    "InsufficientCapacityError",
    "InvalidTopologyError",
    "NotEnoughEligibleNodesError",
    "ValidationError",
]
