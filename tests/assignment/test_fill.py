"""The fast fill (numpy scores, pruned candidates) equals the spec's one-score-at-a-time fill.

``reference_assignment`` is docs/assignment.md's ``compute_assignment`` written with the
reference ``compute_ranked_nodes`` / ``compute_slot_hosts``. Pruning is forced on small
topologies (``PRUNE_MIN_NODES = 1``, few candidates) so that its prefix, miss and deepening
paths all run, and checked on a few larger topologies with the production settings.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.assignment import (
    Assignment,
    CapacityExhaustedError,
    InsufficientCapacityError,
    Node,
    NotEnoughEligibleNodesError,
    Slot,
    compute_assignment,
    compute_slot_hosts,
    is_eligible,
)
from node.assignment import fill as fill_module
from node.assignment.compute import (
    compute_canonical_nodes,
    compute_canonical_subsystems,
    compute_ranked_nodes,
    compute_slot_keys,
)
from node.assignment.constants import SCORE_SHIFT
from node.assignment.fill import compute_load_bound
from node.assignment.hashing import compute_draw_cost, mix64
from node.assignment.root import compute_assignment_root
from node.assignment.vectorized import compute_draw_thresholds, compute_scores, mix64_array
from node.errors import AssignmentError
from tests.assignment.assignment_topologies import ALL_ROLES, REPLICAS, make_nodes


def reference_assignment(
    seed: bytes, epoch: int, nodes: Sequence[Node], subsystems: Sequence[str],
    replicas: Mapping[str, int],
) -> Assignment:  # fmt: skip
    """Return the assignment as the spec writes it, one score at a time."""
    nodes = compute_canonical_nodes(nodes)
    keys = compute_slot_keys(compute_canonical_subsystems(subsystems))
    for role, subsystem in keys:
        eligible = sum(1 for n in nodes if is_eligible(n, role, subsystem))
        if eligible < replicas[role]:
            raise NotEnoughEligibleNodesError(role, subsystem, replicas[role], eligible)
    required = sum(replicas[role] for role, _ in keys)
    available = sum(n.capacity for n in nodes)
    if available < required:
        raise InsufficientCapacityError(required, available)
    remaining = {n.id: n.capacity for n in nodes}
    preferred = {
        n.id: min(n.capacity, compute_load_bound(n.capacity, required, available)) for n in nodes
    }
    slots = []
    for role, subsystem in keys:
        ranked = compute_ranked_nodes(seed, epoch, role, subsystem, nodes)
        hosts = compute_slot_hosts(ranked, remaining, replicas[role], preferred)
        if len(hosts) < replicas[role]:
            raise CapacityExhaustedError(role, subsystem, replicas[role], len(hosts))
        for host in hosts:
            remaining[host] -= 1
            preferred[host] = max(preferred[host] - 1, 0)
        slots.append(Slot(role, subsystem, hosts))
    return Assignment(epoch, seed, tuple(slots), compute_assignment_root(epoch, seed, slots))


def outcome(function, *args) -> object:  # type: ignore[no-untyped-def]
    """Return the assignment, or the error's class and fields."""
    try:
        return function(*args)
    except AssignmentError as exc:
        return type(exc), sorted(vars(exc).items())


@pytest.fixture
def forced_pruning(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(fill_module, "PRUNE_MIN_NODES", 1)
    monkeypatch.setattr(fill_module, "PRUNE_CANDIDATES_PER_REPLICA", 1)
    monkeypatch.setattr(fill_module, "PRUNE_CANDIDATES_EXTRA", 0)
    monkeypatch.setattr(fill_module, "PRUNE_SLOT_BATCH", 2)
    yield


@st.composite
def topologies(draw: st.DrawFn) -> tuple[bytes, int, list[Node], list[str], dict[str, int]]:
    subsystems = [f"s{i}" for i in range(draw(st.integers(1, 6)))]
    count = draw(st.integers(1, 40))
    ids = draw(
        st.lists(st.binary(min_size=20, max_size=20), min_size=count, max_size=count, unique=True)
    )
    nodes = [
        Node(
            id="0x" + raw.hex(),
            capacity=draw(st.integers(1, 5)),
            home=draw(st.sampled_from(subsystems)),
            members_of=draw(st.frozensets(st.sampled_from(subsystems))),
            roles=draw(st.frozensets(st.sampled_from(sorted(ALL_ROLES)))),
        )
        for raw in ids
    ]
    replicas = {role: draw(st.integers(1, 3)) for role in sorted(ALL_ROLES)}
    seed = draw(st.binary(min_size=32, max_size=32))
    return seed, draw(st.integers(0, 2**64 - 1)), nodes, subsystems, replicas


SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_CHECKS)
@given(topologies())
def test_pruned_fill_equals_reference(
    forced_pruning: None, topology: tuple[bytes, int, list[Node], list[str], dict[str, int]]
) -> None:
    strict = functools.partial(compute_assignment, reduce=False)
    assert outcome(strict, *topology) == outcome(reference_assignment, *topology)


@pytest.mark.parametrize(("nodes", "capacities"), [(700, [1, 8]), (600, [1]), (800, [2, 3])])
def test_large_topologies_equal_reference(nodes: int, capacities: list[int]) -> None:
    rng = random.Random(nodes)
    subsystems = [f"sub-{i}" for i in range(60)]
    topology = make_nodes(rng, nodes, subsystems, capacities=capacities)
    seed = rng.randbytes(32)
    expected = reference_assignment(seed, 3, topology, subsystems, REPLICAS)
    assert compute_assignment(seed, 3, topology, subsystems, REPLICAS) == expected


def test_vectorized_score_equals_scalar() -> None:
    rng = random.Random(7)
    draws = [rng.getrandbits(64) for _ in range(3000)] + [0, 1, 2**16 - 1, 2**16, 2**64 - 1]
    capacities = [rng.choice([1, 2, 3, 8, 2**32 - 1]) for _ in draws]
    got = compute_scores(np.array(draws, dtype=np.uint64), np.array(capacities, dtype=np.uint64))
    expected = [
        (compute_draw_cost(d) << SCORE_SHIFT) // c for d, c in zip(draws, capacities, strict=True)
    ]
    assert got.tolist() == expected
    assert mix64_array(np.array(draws, dtype=np.uint64)).tolist() == [mix64(d) for d in draws]


@pytest.mark.parametrize("limit", [0, 1, 10**12, 10**17, 2**64 - 1])
def test_draw_thresholds_are_exact(limit: int) -> None:
    capacities = [1, 2, 7, 2**32 - 1]
    thresholds = compute_draw_thresholds(limit, np.array(capacities, dtype=np.uint64)).tolist()
    for capacity, threshold in zip(capacities, thresholds, strict=True):
        assert (compute_draw_cost(threshold) << SCORE_SHIFT) // capacity <= limit
        if threshold > 0:
            assert (compute_draw_cost(threshold - 1) << SCORE_SHIFT) // capacity > limit
