"""Tests of the rules of MISSION.md on ``compute_assignment``."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.assignment import (
    CapacityExhaustedError,
    InsufficientCapacityError,
    Node,
    NotEnoughEligibleNodesError,
    compute_assignment,
    is_eligible,
)
from node.assignment.fill import compute_load_bound
from node.assignment.metrics import (
    compute_load,
    compute_minimum_moves,
    compute_moved_replicas,
)
from node.errors import AssignmentError
from tests.assignment.assignment_topologies import ALL_ROLES, REPLICAS, make_nodes, make_seed

REPO = Path(__file__).resolve().parents[2]
SUBSYSTEMS = [f"s{i}" for i in range(6)]


def assign(nodes: list[Node], seed: bytes = b"\x07" * 32, epoch: int = 1, **replicas: int):  # type: ignore[no-untyped-def]
    return compute_assignment(seed, epoch, nodes, SUBSYSTEMS, {**REPLICAS, **replicas})


# --- 1. determinism ------------------------------------------------------------------------------


def test_input_order_does_not_matter() -> None:
    rng = random.Random(1)
    nodes = make_nodes(rng, 30, SUBSYSTEMS)
    expected = assign(nodes)
    for _ in range(5):
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        subsystems = SUBSYSTEMS[:]
        rng.shuffle(subsystems)
        replicas = dict(reversed(list(REPLICAS.items())))
        got = compute_assignment(b"\x07" * 32, 1, shuffled, subsystems, replicas)
        assert got == expected


def test_same_root_under_different_hash_seeds() -> None:
    vector = REPO / "tests" / "vectors" / "assignment" / "many-subsystems.json"
    script = (
        "import json,sys; from node.assignment import compute_assignment_from_json as c;"
        f"print(c(json.load(open({str(vector)!r}))['input']).root.hex())"
    )
    roots = set()
    for hash_seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        roots.add(out.stdout.strip())
    expected = json.loads(vector.read_text())["output"]["root"]
    assert roots == {expected[2:]}


def test_epoch_and_seed_rotate_the_assignment() -> None:
    nodes = make_nodes(random.Random(2), 30, SUBSYSTEMS)
    a, b, c = assign(nodes, epoch=1), assign(nodes, epoch=2), assign(nodes, seed=b"\x08" * 32)
    assert len({a.root, b.root, c.root}) == 3
    assert a.slots != b.slots


# --- 2. capacity ---------------------------------------------------------------------------------


def test_capacity_proportionality() -> None:
    # Ample capacity (budgets never bind): a node's expected load is proportional to capacity.
    rng = random.Random(3)
    capacities = [1, 2, 4, 8]
    nodes = make_nodes(rng, 40, SUBSYSTEMS, capacities=[c * 100 for c in capacities])
    per_capacity: Counter[int] = Counter()
    for epoch in range(60):
        load = compute_load(assign(nodes, seed=make_seed(rng), epoch=epoch))
        for node in nodes:
            per_capacity[node.capacity // 100] += load[node.id]
    total = sum(per_capacity.values())
    units = sum(capacities)
    for c in capacities:
        share = per_capacity[c] / total
        assert abs(share - c / units) / (c / units) < 0.15, (c, share, c / units)


def test_capacity_four_gets_about_twice_capacity_two() -> None:
    rng = random.Random(4)
    nodes = make_nodes(rng, 20, SUBSYSTEMS, capacities=[200, 400])
    load: Counter[str] = Counter()
    for epoch in range(80):
        load.update(compute_load(assign(nodes, seed=make_seed(rng), epoch=epoch)))
    two = sum(load[n.id] for n in nodes if n.capacity == 200)
    four = sum(load[n.id] for n in nodes if n.capacity == 400)
    assert 1.7 < four / two < 2.3


def test_budget_binds_in_a_tight_topology() -> None:
    rng = random.Random(5)
    nodes = make_nodes(rng, 20, SUBSYSTEMS, capacities=[2, 3])
    assignment = assign(nodes)
    load = compute_load(assignment)
    assert all(load[n.id] <= n.capacity for n in nodes)
    assert sum(load.values()) == sum(len(s.hosts) for s in assignment.slots)


# --- property tests over random topologies ------------------------------------------------------

roles_st = st.frozensets(st.sampled_from(sorted(ALL_ROLES)), min_size=0, max_size=4)


@st.composite
def topologies(draw: st.DrawFn) -> tuple[bytes, int, list[Node], list[str], dict[str, int]]:
    subsystems = [f"s{i}" for i in range(draw(st.integers(1, 4)))]
    count = draw(st.integers(1, 14))
    ids = draw(
        st.lists(st.binary(min_size=20, max_size=20), min_size=count, max_size=count, unique=True)
    )
    nodes = [
        Node(
            id="0x" + raw.hex(),
            capacity=draw(st.integers(1, 6)),
            home=draw(st.sampled_from(subsystems)),
            members_of=draw(st.frozensets(st.sampled_from(subsystems))),
            roles=draw(roles_st),
        )
        for raw in ids
    ]
    replicas = {role: draw(st.integers(1, 3)) for role in sorted(ALL_ROLES)}
    return (
        draw(st.binary(min_size=32, max_size=32)),
        draw(st.integers(0, 2**64 - 1)),
        nodes,
        subsystems,
        replicas,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_rules_hold_or_a_named_error(
    topology: tuple[bytes, int, list[Node], list[str], dict[str, int]],
) -> None:
    seed, epoch, nodes, subsystems, replicas = topology
    try:
        assignment = compute_assignment(seed, epoch, nodes, subsystems, replicas, reduce=False)
    except NotEnoughEligibleNodesError as exc:
        eligible = [n for n in nodes if is_eligible(n, exc.role, exc.subsystem)]
        assert len(eligible) == exc.eligible < exc.required == replicas[exc.role]
        return
    except InsufficientCapacityError as exc:
        assert exc.available == sum(n.capacity for n in nodes) < exc.required
        return
    except CapacityExhaustedError as exc:
        assert exc.placed < exc.required
        return
    by_id = {n.id: n for n in nodes}
    load = compute_load(assignment)
    assert all(load[i] <= by_id[i].capacity for i in load)  # never beyond capacity
    for slot in assignment.slots:
        assert len(slot.hosts) == replicas[slot.role]  # never fewer replicas than asked
        assert len(set(slot.hosts)) == len(slot.hosts)  # anti-affinity: distinct nodes
        for host in slot.hosts:
            assert is_eligible(by_id[host], slot.role, slot.subsystem)  # offered, members-only
    keys = [(s.role, "" if s.subsystem is None else s.subsystem) for s in assignment.slots]
    assert keys == sorted(keys)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_reduction_serves_what_it_can_and_says_so(
    topology: tuple[bytes, int, list[Node], list[str], dict[str, int]],
) -> None:
    """docs/assignment.md, "Reduction": only a topology with no eligible node for any slot
    fails; otherwise every served slot has its role's effective count, never over capacity,
    and every shortfall is an adjustment."""
    seed, epoch, nodes, subsystems, replicas = topology
    try:
        assignment = compute_assignment(seed, epoch, nodes, subsystems, replicas)
    except NotEnoughEligibleNodesError:
        assert not any(is_eligible(n, r, s) for n in nodes for r, s in slot_keys_of(subsystems))
        return
    by_id = {n.id: n for n in nodes}
    load = compute_load(assignment)
    assert all(load[i] <= by_id[i].capacity for i in load)
    effective = assignment.replicas(replicas)
    unserved = {(a.role, a.subsystem) for a in assignment.adjustments if a.to == 0}
    assert any(slot.hosts for slot in assignment.slots)
    for slot in assignment.slots:
        if (slot.role, slot.subsystem) in unserved:
            assert slot.hosts == ()
            continue
        assert len(slot.hosts) == effective[slot.role] <= replicas[slot.role]
        assert len(set(slot.hosts)) == len(slot.hosts)
        assert all(is_eligible(by_id[h], slot.role, slot.subsystem) for h in slot.hosts)
    strict = None
    try:
        strict = compute_assignment(seed, epoch, nodes, subsystems, replicas, reduce=False)
    except AssignmentError:
        assert assignment.adjustments  # a shortage is never silent
    if strict is not None:  # no shortage: the very same answer, root included
        assert strict == assignment and not assignment.adjustments


def slot_keys_of(subsystems: list[str]) -> list[tuple[str, str | None]]:
    """Return every (role, subsystem) slot of ``subsystems``."""
    roles = sorted(ALL_ROLES)
    return [(r, s) for r in roles for s in (subsystems if r.endswith("_subsystem") else [None])]


def test_one_node_with_two_and_five_subsystems_is_assigned() -> None:
    """Issue 13: one node of capacity 4 with 2 or 5 subsystems gets an assignment (it was
    ``insufficient_capacity``); the fe_subsystem slots go first, then be_subsystem ones."""
    for count, unserved in ((2, 2), (5, 8)):
        names = [f"s{i}" for i in range(count)]
        lone = Node("0x" + "11" * 20, 4, "s0", frozenset(names), frozenset(ALL_ROLES))
        a = compute_assignment(bytes(32), 1, [lone], names, REPLICAS)
        served = [s for s in a.slots if s.hosts]
        assert len(served) == 4 and all(s.hosts == (lone.id,) for s in served)
        dropped = [(x.role, x.subsystem) for x in a.adjustments if x.to == 0]
        assert len(dropped) == unserved and dropped[0] == ("fe_subsystem", names[-1])
        assert ("be_system", None) in {(s.role, s.subsystem) for s in served}
        assert a.replicas(REPLICAS) == dict.fromkeys(REPLICAS, 1)


# --- 3. anti-affinity ----------------------------------------------------------------------------


def test_system_roles_spread_over_homes() -> None:
    rng = random.Random(6)
    nodes = make_nodes(rng, 24, SUBSYSTEMS[:4], capacities=[50])
    for epoch in range(20):
        a = compute_assignment(
            make_seed(rng),
            epoch,
            nodes,
            SUBSYSTEMS[:4],
            {**REPLICAS, "fe_system": 4, "be_system": 6},
        )
        homes = {n.id: n.home for n in nodes}
        for slot in a.slots:
            used = [homes[h] for h in slot.hosts]
            assert len(set(used)) == min(len(slot.hosts), 4), slot
            # the first hosts take one node per home, in rank order
            assert len(set(used[:4])) == min(4, len(used))


def test_home_spread_prefers_a_lower_ranked_node_of_an_unused_home() -> None:
    nodes = [
        Node(
            id=f"0x{i:040x}",
            capacity=10,
            home="a" if i < 6 else "b",
            members_of=frozenset(),
            roles=ALL_ROLES,
        )
        for i in range(1, 8)
    ]
    for epoch in range(20):
        a = compute_assignment(
            bytes(32), epoch, nodes, [], {**REPLICAS, "be_system": 2, "fe_system": 2}
        )
        for slot in a.slots:
            assert {n.home for n in nodes if n.id in slot.hosts} == {"a", "b"}


def test_be_subsystem_only_on_members() -> None:
    rng = random.Random(7)
    nodes = make_nodes(rng, 30, SUBSYSTEMS, members_per_node=1)
    a = assign(nodes)
    by_id = {n.id: n for n in nodes}
    for slot in a.slots:
        if slot.role == "be_subsystem":
            assert all(slot.subsystem in by_id[h].members_of for h in slot.hosts)


def test_node_only_gets_roles_it_offers() -> None:
    rng = random.Random(8)
    nodes = [
        Node(
            id=n.id,
            capacity=n.capacity + 10,
            home=n.home,
            members_of=n.members_of,
            roles=frozenset(rng.sample(sorted(ALL_ROLES), 2)),
        )
        for n in make_nodes(rng, 40, SUBSYSTEMS)
    ]
    a = assign(nodes, fe_system=2, be_system=2, fe_subsystem=1, be_subsystem=1)
    by_id = {n.id: n for n in nodes}
    assert all(slot.role in by_id[h].roles for slot in a.slots for h in slot.hosts)


# --- 4. minimal movement ------------------------------------------------------------------------


def movement_ratio(nodes: list[Node], changed: Node, joining: bool, seed: bytes) -> tuple[int, int]:
    with_node = nodes if not joining else [*nodes, changed]
    without = [n for n in with_node if n.id != changed.id]
    before, after = (
        (assign(without, seed), assign(with_node, seed))
        if joining
        else (assign(with_node, seed), assign(without, seed))
    )
    return compute_moved_replicas(before, after), compute_minimum_moves(before, after, changed)


@pytest.mark.parametrize("joining", [False, True])
def test_movement_is_minimal_with_ample_capacity(joining: bool) -> None:
    rng = random.Random(9)
    for _ in range(10):
        nodes = make_nodes(rng, 30, SUBSYSTEMS, capacities=[40, 80])
        changed = (
            make_nodes(rng, 1, SUBSYSTEMS, capacities=[60])[0] if joining else rng.choice(nodes)
        )
        moved, minimum = movement_ratio(nodes, changed, joining, make_seed(rng))
        assert moved == minimum


@pytest.mark.parametrize("joining", [False, True])
def test_movement_is_bounded_when_budgets_bind(joining: bool) -> None:
    rng = random.Random(10)
    total_moved = total_minimum = 0
    for _ in range(20):
        nodes = make_nodes(rng, 30, SUBSYSTEMS, capacities=[2, 3, 4])
        changed = (
            make_nodes(rng, 1, SUBSYSTEMS, capacities=[3])[0] if joining else rng.choice(nodes)
        )
        try:
            moved, minimum = movement_ratio(nodes, changed, joining, make_seed(rng))
        except AssignmentError:
            continue
        total_moved += moved
        total_minimum += minimum
    assert total_minimum > 0
    assert total_moved / total_minimum <= 2.0


# --- 5. impossible constraints (the strict function, reduce=False) ------------------------------


def test_subsystem_without_member_node() -> None:
    nodes = make_nodes(random.Random(11), 10, SUBSYSTEMS[:2], members_per_node=0)
    with pytest.raises(
        NotEnoughEligibleNodesError,
        match=r"be_subsystem\[orphan\].*member nodes of subsystem 'orphan'",
    ) as info:
        compute_assignment(bytes(32), 0, nodes, [*SUBSYSTEMS[:2], "orphan"], REPLICAS, reduce=False)
    assert (info.value.role, info.value.subsystem, info.value.required, info.value.eligible) == (
        "be_subsystem",
        "orphan",
        2,
        0,
    )


def test_fewer_nodes_than_replicas() -> None:
    nodes = make_nodes(random.Random(12), 2, SUBSYSTEMS[:1])
    with pytest.raises(
        NotEnoughEligibleNodesError,
        match="slot be_system needs 3 replicas on distinct nodes, but only 2",
    ) as info:
        compute_assignment(bytes(32), 0, nodes, [], REPLICAS, reduce=False)
    assert isinstance(info.value, AssignmentError)


def test_total_capacity_too_small() -> None:
    nodes = make_nodes(random.Random(13), 4, SUBSYSTEMS[:1], capacities=[1], members_per_node=1)
    with pytest.raises(InsufficientCapacityError, match="need 10 replicas in total.*capacity is 4"):
        compute_assignment(bytes(32), 0, nodes, SUBSYSTEMS[:1], REPLICAS, reduce=False)


def test_capacity_used_by_earlier_slots() -> None:
    only_member = Node(
        id="0x" + "01" * 20,
        capacity=1,
        home="a",
        members_of=frozenset({"a"}),
        roles=frozenset({"be_subsystem", "fe_system"}),
    )
    other = Node(
        id="0x" + "02" * 20,
        capacity=9,
        home="a",
        members_of=frozenset(),
        roles=frozenset({"be_system", "fe_subsystem"}),
    )
    ones = {role: 1 for role in ALL_ROLES}
    with pytest.raises(
        CapacityExhaustedError, match=r"slot fe_system needs 1 replicas, but only 0"
    ):
        compute_assignment(bytes(32), 0, [only_member, other], ["a"], ones, reduce=False)


# --- 6. load bound (bounded loads, a preference) ------------------------------------------------


def test_equal_capacities_stay_within_the_load_bound() -> None:
    rng = random.Random(12)
    subsystems = [f"b{i}" for i in range(40)]
    nodes = [
        Node(
            id="0x" + rng.randbytes(20).hex(),
            capacity=1000,
            home=f"home-{i}",
            members_of=frozenset(subsystems),
            roles=ALL_ROLES,
        )
        for i in range(20)
    ]
    required = 40 * 4 + 6  # share 8.3 per node: bound max(4, 9, floor(9.96)) = 9
    assert compute_load_bound(1000, required, 20 * 1000) == 9
    for epoch in range(5):
        a = compute_assignment(make_seed(rng), epoch, nodes, subsystems, REPLICAS)
        load = compute_load(a)
        assert sum(load.values()) == required
        assert max(load.values()) <= 9


def test_load_bound_formula() -> None:
    assert compute_load_bound(1, 10, 1000) == 4  # tiny share: the minimum
    assert compute_load_bound(1, 4006, 1000) == 5  # share 4.006: ceil wins over floor(4.8)
    assert compute_load_bound(1, 40006, 1000) == 48  # share 40.006: floor(48.007)
    assert compute_load_bound(3, 100, 6) == 60  # share 50: floor(60)


def test_load_bound_is_a_preference_not_a_limit() -> None:
    # The only member node of ten subsystems has a small share (bound 4) but must host all ten
    # be_subsystem slots: above its bound, within its capacity.
    subsystems = [f"m{i}" for i in range(10)]
    member = Node(
        id="0x" + "01" * 20,
        capacity=12,
        home="a",
        members_of=frozenset(subsystems),
        roles=frozenset({"be_subsystem"}),
    )
    others = [
        Node(
            id="0x" + f"{i + 2:02x}" * 20,
            capacity=100,
            home=f"h{i}",
            members_of=frozenset(),
            roles=frozenset({"fe_system", "be_system", "fe_subsystem"}),
        )
        for i in range(3)
    ]
    ones = {role: 1 for role in ALL_ROLES}
    assert compute_load_bound(12, 22, 312) == 4
    a = compute_assignment(bytes(32), 0, [member, *others], subsystems, ones)
    assert compute_load(a)[member.id] == 10
