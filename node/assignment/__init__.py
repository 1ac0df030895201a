"""Collegium assignment: the pure map of hosting roles to nodes; spec in docs/assignment.md."""

from node.assignment.codec import (
    Topology,
    compute_assignment_from_json,
    encode_assignment,
    encode_error,
    parse_topology,
)
from node.assignment.compute import compute_assignment, compute_slot_hosts, is_eligible
from node.assignment.constants import (
    ROLE_BE_SUBSYSTEM,
    ROLE_BE_SYSTEM,
    ROLE_FE_SUBSYSTEM,
    ROLE_FE_SYSTEM,
    ROLES,
)
from node.assignment.containers import Adjustment, Assignment, Node, Slot
from node.assignment.errors import (
    CapacityExhaustedError,
    InsufficientCapacityError,
    InvalidTopologyError,
    NotEnoughEligibleNodesError,
)
from node.assignment.hashing import compute_role_seed, compute_slot_score
from node.assignment.root import compute_assignment_root

__all__ = [
    "ROLES",
    "ROLE_BE_SUBSYSTEM",
    "ROLE_BE_SYSTEM",
    "ROLE_FE_SUBSYSTEM",
    "ROLE_FE_SYSTEM",
    "Adjustment",
    "Assignment",
    "CapacityExhaustedError",
    "InsufficientCapacityError",
    "InvalidTopologyError",
    "Node",
    "NotEnoughEligibleNodesError",
    "Slot",
    "Topology",
    "compute_assignment",
    "compute_assignment_from_json",
    "compute_assignment_root",
    "compute_role_seed",
    "compute_slot_hosts",
    "compute_slot_score",
    "encode_assignment",
    "encode_error",
    "is_eligible",
    "parse_topology",
]
