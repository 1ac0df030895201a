"""Measures of an assignment used by the tests and the bench: load and movement."""

from __future__ import annotations

from collections import Counter

from node.assignment.containers import Assignment, Node


def compute_load(assignment: Assignment) -> Counter[str]:
    """Return the number of slots each host carries."""
    return Counter(host for slot in assignment.slots for host in slot.hosts)


def compute_replica_set(assignment: Assignment) -> set[tuple[str, str | None, str]]:
    """Return the set of slot-replicas ``(role, subsystem, host)``; rank is not part of it."""
    return {(s.role, s.subsystem, host) for s in assignment.slots for host in s.hosts}


def compute_moved_replicas(before: Assignment, after: Assignment) -> int:
    """Return how many slot-replicas of ``after`` were not there ``before`` (had to move in)."""
    return len(compute_replica_set(after) - compute_replica_set(before))


def compute_minimum_moves(before: Assignment, after: Assignment, changed: Node) -> int:
    """Return the fewest slot-replicas that must move when ``changed`` leaves or joins.

    Leave: every replica it held. Join: every replica it holds afterwards (each one displaces
    or adds one); any other move is avoidable churn.
    """
    held_before = compute_load(before)[changed.id]
    held_after = compute_load(after)[changed.id]
    return max(held_before, held_after)
