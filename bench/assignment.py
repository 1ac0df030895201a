"""Bench of the assignment (node/assignment): speed, movement on join/leave, proportionality.

    python bench/assignment.py          # < 60 s: 100 nodes, 20 subsystems

Side by side in one run: movement with ample capacity (budgets rarely bind) and with tight
capacity (about 75 % of total capacity used), and capacity proportionality of our straw2
score against the naive ``hash / capacity`` score. Headline figures come last, one per line.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.assignment import ROLES, Assignment, Node, compute_assignment  # noqa: E402
from node.assignment.hashing import (  # noqa: E402
    compute_node_hash,
    compute_node_score,
    compute_role_seed,
    compute_slot_hash,
    mix64,
)
from node.assignment.metrics import (  # noqa: E402
    compute_load,
    compute_minimum_moves,
    compute_moved_replicas,
)

NODES = 100
SUBSYSTEMS = [f"sub-{i:02d}" for i in range(20)]
REPLICAS = {"fe_system": 3, "be_system": 3, "fe_subsystem": 2, "be_subsystem": 2}
TRIALS = 200
EPOCHS = 40
PROPORTIONALITY_EPOCHS = 1000


def make_node(rng: random.Random, capacity: int) -> Node:
    """Return a random node offering every role, member of its home and 1-3 other subsystems."""
    home = rng.choice(SUBSYSTEMS)
    members = frozenset({home, *rng.sample(SUBSYSTEMS, rng.randint(1, 3))})
    return Node("0x" + rng.randbytes(20).hex(), capacity, home, members, frozenset(ROLES))


def make_nodes(rng: random.Random, capacities: list[int]) -> list[Node]:
    """Return ``NODES`` nodes with capacities drawn from ``capacities``."""
    return [make_node(rng, rng.choice(capacities)) for _ in range(NODES)]


def assign(nodes: list[Node], seed: bytes, epoch: int = 1) -> Assignment:
    """Return the assignment of ``nodes`` with the bench's subsystems and replicas."""
    return compute_assignment(seed, epoch, nodes, SUBSYSTEMS, REPLICAS)


def measure_time(rng: random.Random) -> float:
    """Return the mean seconds per assignment over ``EPOCHS`` epochs."""
    nodes = make_nodes(rng, list(range(1, 9)))
    seed = rng.randbytes(32)
    start = time.perf_counter()
    for epoch in range(EPOCHS):
        assign(nodes, seed, epoch)
    return (time.perf_counter() - start) / EPOCHS


def measure_movement(rng: random.Random, capacities: list[int], joining: bool) -> tuple[int, int]:
    """Return (moved, minimum) slot-replicas summed over ``TRIALS`` joins or leaves."""
    moved = minimum = 0
    for _ in range(TRIALS):
        nodes = make_nodes(rng, capacities)
        seed = rng.randbytes(32)
        changed = make_node(rng, rng.choice(capacities)) if joining else rng.choice(nodes)
        with_node = [*nodes, changed] if joining else nodes
        without = [n for n in with_node if n.id != changed.id]
        before = assign(without if joining else with_node, seed)
        after = assign(with_node if joining else without, seed)
        moved += compute_moved_replicas(before, after)
        minimum += compute_minimum_moves(before, after, changed)
    return moved, minimum


def measure_proportionality(
    rng: random.Random, constrained: bool
) -> tuple[float, dict[int, float]]:
    """Return the max relative error of load per capacity unit, per capacity class 1..8.

    Unconstrained: one home, every node a member of every subsystem, so only the score acts.
    Constrained: the bench's random homes and memberships, which also shape the load.
    """
    capacities = list(range(1, 9))
    nodes = make_nodes(rng, [c * 100 for c in capacities])  # x100: budgets never bind here
    if not constrained:
        everything = frozenset(SUBSYSTEMS)
        nodes = [Node(n.id, n.capacity, SUBSYSTEMS[0], everything, n.roles) for n in nodes]
    capacity_of = {node.id: node.capacity // 100 for node in nodes}
    units = Counter(capacity_of.values())
    load: Counter[int] = Counter()
    for epoch in range(PROPORTIONALITY_EPOCHS):
        for node_id, count in compute_load(assign(nodes, rng.randbytes(32), epoch)).items():
            load[capacity_of[node_id]] += count
    per_unit = sum(load.values()) / sum(c * units[c] for c in units)
    errors = {c: load[c] / (c * units[c] * per_unit) - 1 for c in capacities if units[c]}
    return max(abs(e) for e in errors.values()), errors


def measure_two_node_share(rng: random.Random, draws: int = 20000) -> tuple[float, float]:
    """Return the share of single-winner draws won by a capacity-4 node against a capacity-2
    node (proportional: 2/3), with our straw2 score and with the naive ``hash / capacity``."""
    light, heavy = rng.randbytes(20), rng.randbytes(20)
    straw2 = naive = 0
    for draw in range(draws):
        slot_hash = compute_slot_hash(compute_role_seed(bytes(32), draw, "fe_system"), bytes(32))
        h_light, h_heavy = (compute_node_hash(bytes(32), draw, a) for a in (light, heavy))
        straw2 += compute_node_score(slot_hash, h_heavy, 4) < compute_node_score(
            slot_hash, h_light, 2
        )
        u_light, u_heavy = (mix64(slot_hash ^ h) for h in (h_light, h_heavy))
        naive += u_heavy * 2 < u_light * 4  # u/4 < u/2 by cross-multiplication
    return straw2 / draws, naive / draws


def main() -> None:
    """Run every measurement and print the headline figures last."""
    rng = random.Random(1234)
    started = time.perf_counter()
    per_assignment = measure_time(rng)
    print(f"topology: {NODES} nodes, {len(SUBSYSTEMS)} subsystems, replicas {REPLICAS}")
    print(f"time per assignment: {per_assignment * 1000:.1f} ms over {EPOCHS} epochs")

    results = {}
    for label, capacities in (("ample", list(range(1, 9))), ("tight", [1, 1, 2])):
        demand = 3 + 3 + len(SUBSYSTEMS) * 4
        used = demand / (NODES * statistics.mean(capacities))
        for joining in (False, True):
            moved, minimum = measure_movement(rng, capacities, joining)
            event = "join" if joining else "leave"
            results[(label, event)] = moved / minimum
            print(
                f"movement {label:5} (capacity used ~{used:.0%}) one {event:5}: moved {moved} "
                f"vs minimum {minimum} over {TRIALS} trials, ratio {moved / minimum:.3f}"
            )

    proportionality = {}
    for constrained in (False, True):
        worst, errors = measure_proportionality(rng, constrained)
        proportionality[constrained] = worst
        shares = ", ".join(f"{c}: {e:+.1%}" for c, e in errors.items())
        label = "random homes/memberships" if constrained else "one home, all members"
        print(f"load per capacity unit vs mean, by capacity ({label}): {shares}")
    straw2_share, naive_share = measure_two_node_share(rng)
    print(
        f"capacity 4 vs capacity 2, share of draws won by the 4 (proportional 0.667): "
        f"straw2 {straw2_share:.3f}, hash/capacity {naive_share:.3f} (theory 0.750)"
    )
    print(f"total bench time: {time.perf_counter() - started:.1f} s")
    print(f"assign_100n_20s: {per_assignment * 1000:.1f} ms")
    print(f"moved_ratio_leave: {results[('ample', 'leave')]:.3f} x")
    print(f"moved_ratio_join: {results[('ample', 'join')]:.3f} x")
    print(f"moved_ratio_leave_tight: {results[('tight', 'leave')]:.3f} x")
    print(f"moved_ratio_join_tight: {results[('tight', 'join')]:.3f} x")
    print(f"proportionality_error: {proportionality[False] * 100:.1f} %")
    print(f"proportionality_error_constrained: {proportionality[True] * 100:.1f} %")
    print(f"share_cap4_vs_cap2_straw2: {straw2_share:.3f} (proportional 0.667)")
    print(f"share_cap4_vs_cap2_hash_over_capacity: {naive_share:.3f} (proportional 0.667)")


if __name__ == "__main__":
    main()
