"""Topology factories shared by the assignment tests (not a test module)."""

from __future__ import annotations

import random

from node.assignment import ROLES, Node

ALL_ROLES = frozenset(ROLES)
REPLICAS = {"fe_system": 3, "be_system": 3, "fe_subsystem": 2, "be_subsystem": 2}


def make_nodes(
    rng: random.Random,
    count: int,
    subsystems: list[str],
    capacities: list[int] | None = None,
    members_per_node: int = 3,
) -> list[Node]:
    """Return ``count`` random nodes offering every role, homed and member in ``subsystems``."""
    nodes = []
    for i in range(count):
        home = subsystems[i % len(subsystems)]
        others = rng.sample(subsystems, min(members_per_node, len(subsystems)))
        nodes.append(
            Node(
                id="0x" + rng.randbytes(20).hex(),
                capacity=capacities[i % len(capacities)] if capacities else rng.randint(1, 8),
                home=home,
                members_of=frozenset({home, *others}),
                roles=ALL_ROLES,
            )
        )
    return nodes


def make_seed(rng: random.Random) -> bytes:
    """Return a random 32-byte seed."""
    return rng.randbytes(32)
