"""The epoch policy (pure): clipped replicas, unserved subsystems, capacity reductions, errors."""

from __future__ import annotations

import random

from eth_utils import to_checksum_address

from node.assignment import (
    NotEnoughEligibleNodesError,
    compute_assignment,
)
from node.assignment.constants import REDUCTION_ORDER
from node.epoch import DEFAULT_REPLICAS, Snapshot, SnapshotNode, compute_epoch_plan
from node.epoch.policy import compute_assignment_nodes, compute_heartbeat_due

SEED = bytes(range(32))
EPOCH = 7
ALL_ROLES = ("fe_system", "fe_subsystem", "be_system", "be_subsystem")


def _node(i: int, capacity: int, home: str, members: tuple[str, ...] = (),
          roles: tuple[str, ...] = ALL_ROLES) -> SnapshotNode:  # fmt: skip
    address = to_checksum_address(f"0x{i:040x}")
    return SnapshotNode(address, f"http://n{i}.invalid", capacity, roles, home, members)


def _snapshot(nodes: list[SnapshotNode], subsystems: tuple[str, ...]) -> Snapshot:
    return Snapshot(block=1, nodes=tuple(nodes), subsystems=subsystems, participants={})


def test_replicas_are_clipped_to_eligible_nodes_and_recorded() -> None:
    nodes = [_node(i, 6, h, (h,)) for i, h in enumerate(("main", "shop", "lab"), 1)]
    plan = compute_epoch_plan(SEED, EPOCH, _snapshot(nodes, ("main", "shop", "lab")))
    assert plan.error is None and plan.assignment is not None
    assert plan.replicas == {**DEFAULT_REPLICAS, "be_subsystem": 1}
    assert plan.default_replicas == dict(DEFAULT_REPLICAS)
    assert plan.adjustments == ("be_subsystem: 2 -> 1 replicas (eligible nodes)",)
    for slot in plan.assignment.slots:
        assert len(slot.hosts) == plan.replicas[slot.role]
    expected = compute_assignment(
        SEED, EPOCH, compute_assignment_nodes(_snapshot(nodes, ())), ["lab", "main", "shop"],
        DEFAULT_REPLICAS,
    )  # fmt: skip
    assert expected.root == plan.root  # the function reduces; the root commits to it
    strict = compute_assignment(
        SEED, EPOCH, compute_assignment_nodes(_snapshot(nodes, ())), ["lab", "main", "shop"],
        plan.replicas, reduce=False,
    )  # fmt: skip
    assert strict.slots == plan.assignment.slots and strict.root != plan.root


def test_a_subsystem_without_member_node_is_unserved_not_fatal() -> None:
    nodes = [_node(i, 8, "main", ("main",)) for i in range(1, 4)]
    plan = compute_epoch_plan(SEED, EPOCH, _snapshot(nodes, ("main", "orphan")))
    assert plan.error is None and plan.assignment is not None
    assert plan.unserved == ("orphan",) and plan.subsystems == ("main",)
    assert {s.subsystem for s in plan.assignment.slots} == {None, "main"}
    assert any("orphan" in note for note in plan.adjustments)


def test_short_capacity_takes_replicas_in_reduction_order() -> None:
    # one subsystem, every node a member: 2 + 3 + 2 + 3 = 10 replicas, capacity 9
    nodes = [_node(i, 3, h, ("main",)) for i, h in enumerate(("a", "b", "c"), 1)]
    plan = compute_epoch_plan(SEED, EPOCH, _snapshot(nodes, ("main",)))
    assert plan.error is None and plan.assignment is not None
    assert REDUCTION_ORDER[0] == "fe_system"
    assert plan.replicas == {**DEFAULT_REPLICAS, "fe_system": 2}
    assert plan.adjustments[-1] == "fe_system: 3 -> 2 replicas (capacity)"
    loads: dict[str, int] = {}
    for slot in plan.assignment.slots:
        for host in slot.hosts:
            loads[host] = loads.get(host, 0) + 1
    assert max(loads.values()) <= 3


def test_short_capacity_leaves_slots_unserved_and_says_so() -> None:
    lonely = [_node(1, 2, "main", ("main",))]  # 4 slots, capacity 2
    plan = compute_epoch_plan(SEED, EPOCH, _snapshot(lonely, ("main",)))
    assert plan.error is None and plan.assignment is not None and plan.root is not None
    served = [s for s in plan.assignment.slots if s.hosts]
    assert [(s.role, s.subsystem) for s in served] == [("be_system", None), ("fe_system", None)]
    assert plan.adjustments[-2:] == (
        "fe_subsystem[main]: unserved (capacity)",
        "be_subsystem[main]: unserved (capacity)",
    )
    assert set(plan.replicas.values()) == {1}


def test_a_role_nobody_offers_is_reported() -> None:
    nodes = [_node(i, 8, "main", ("main",), roles=("be_system", "be_subsystem")) for i in (1, 2)]
    plan = compute_epoch_plan(SEED, EPOCH, _snapshot(nodes, ("main",)))
    assert plan.assignment is not None and plan.error is None
    assert "fe_system: unserved (no eligible node)" in plan.adjustments
    assert plan.unserved == ("main",)  # no node offers fe_subsystem


def test_nothing_servable_is_an_error() -> None:
    nodes = [_node(i, 8, "main", ("main",), roles=("fe_subsystem",)) for i in (1, 2)]
    plan = compute_epoch_plan(SEED, EPOCH, _snapshot(nodes, ("main",)))
    assert plan.assignment is None and plan.root is None
    assert isinstance(plan.error, NotEnoughEligibleNodesError)


def test_plan_ignores_snapshot_order() -> None:
    nodes = [_node(i, 2 + i % 3, f"h{i % 4}", ("main",) if i % 2 else ()) for i in range(1, 13)]
    subsystems = ("main", "b", "a")
    first = compute_epoch_plan(SEED, EPOCH, _snapshot(nodes, subsystems))
    rng = random.Random(1234)
    for _ in range(5):
        shuffled = nodes[:]
        rng.shuffle(shuffled)
        names = list(subsystems)
        rng.shuffle(names)
        again = compute_epoch_plan(SEED, EPOCH, _snapshot(shuffled, tuple(names)))
        assert again.root == first.root and again.adjustments == first.adjustments


def test_an_empty_home_is_its_own_failure_domain() -> None:
    (node,) = compute_assignment_nodes(_snapshot([_node(5, 1, "")], ()))
    assert node.home == node.id == "0x" + "0" * 39 + "5"


def test_heartbeat_is_due_after_half_the_window() -> None:
    window = 8
    assert not compute_heartbeat_due(head=103, last_seen=100, window=window)
    assert compute_heartbeat_due(head=104, last_seen=100, window=window)
    assert compute_heartbeat_due(head=200, last_seen=100, window=window)
    assert not compute_heartbeat_due(head=100, last_seen=101, window=window)  # seen later
    assert compute_heartbeat_due(head=11, last_seen=10, window=1)  # never less than a block
    assert not compute_heartbeat_due(head=11, last_seen=10, window=0)  # window unknown
