"""Bench of issue 4's assignment targets (node/assignment); figures in docs/benchmarks.md.

    python bench/assign.py            # ~1 min: the three targets
    python bench/assign.py --quick    # fewer trials

1. Time: 10,000 nodes x 1,000 subsystems x 4 roles (target < 1 s).
2. Movement: one host of that topology leaves (or a capacity-8 node joins): moved
   slot-replicas vs the minimum (target <= 1.1x).
3. Balance: 1,000 nodes of equal capacity: max / mean load (target <= 1.2), and the price
   of the load bound that achieves it: movement when one of those nodes leaves.

Headline figures come last, one per line. ``bench/assignment.py`` measures the small topology
(proportionality, tight budgets).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.assignment import ROLES, Assignment, Node, compute_assignment  # noqa: E402
from node.assignment.metrics import (  # noqa: E402
    compute_load,
    compute_minimum_moves,
    compute_moved_replicas,
)

REPLICAS = {"fe_system": 3, "be_system": 3, "fe_subsystem": 2, "be_subsystem": 2}
LARGE_NODES = 10_000
LARGE_SUBSYSTEMS = 1_000
CAPACITIES = list(range(1, 9))
TIME_RUNS = 5
MOVEMENT_TRIALS = 8
EVENTS_PER_SEED = 8
BALANCE_NODES = 1_000
BALANCE_CAPACITY = 1_000  # equal and never binding: the balance comes from the function alone
BALANCE_SUBSYSTEMS = (1_000, 10_000)
BALANCE_EPOCHS = 6
BALANCE_MEMBERS = 3
TARGET_SECONDS = 1.0
TARGET_MOVED_RATIO = 1.1
TARGET_LOAD_RATIO = 1.2


def subsystem_names(count: int) -> list[str]:
    """Return ``count`` subsystem names."""
    return [f"sub-{i:05d}" for i in range(count)]


def make_large_node(rng: random.Random, subsystems: list[str]) -> Node:
    """Return a node offering every role, capacity 1..8, member of its home and 1-3 others."""
    home = rng.choice(subsystems)
    members = frozenset({home, *rng.sample(subsystems, rng.randint(1, 3))})
    return Node(
        "0x" + rng.randbytes(20).hex(), rng.choice(CAPACITIES), home, members, frozenset(ROLES)
    )


def make_balance_nodes(rng: random.Random, subsystems: list[str]) -> list[Node]:
    """Return ``BALANCE_NODES`` nodes of equal capacity; every subsystem has
    ``BALANCE_MEMBERS`` member nodes (consecutive ones), so one may leave."""
    members: list[set[str]] = [set() for _ in range(BALANCE_NODES)]
    for j, name in enumerate(subsystems):
        for k in range(BALANCE_MEMBERS):
            members[(j + k) % BALANCE_NODES].add(name)
    return [
        Node(
            "0x" + rng.randbytes(20).hex(),
            BALANCE_CAPACITY,
            subsystems[i % len(subsystems)],
            frozenset(members[i]),
            frozenset(ROLES),
        )
        for i in range(BALANCE_NODES)
    ]


def assign(nodes: list[Node], subsystems: list[str], seed: bytes, epoch: int = 1) -> Assignment:
    """Return the assignment with the bench's replicas."""
    return compute_assignment(seed, epoch, nodes, subsystems, REPLICAS)


def measure_time(rng: random.Random, nodes: list[Node], subsystems: list[str]) -> list[float]:
    """Return the seconds of ``TIME_RUNS`` assignments of the large topology (new seed each)."""
    times = []
    for epoch in range(TIME_RUNS):
        seed = rng.randbytes(32)
        start = time.perf_counter()
        assign(nodes, subsystems, seed, epoch)
        times.append(time.perf_counter() - start)
    return times


def measure_movement(
    rng: random.Random, nodes: list[Node], subsystems: list[str], joining: bool, trials: int
) -> tuple[int, int]:
    """Return (moved, minimum) slot-replicas summed over ``trials`` seeds, each with
    ``EVENTS_PER_SEED`` events: a new node (capacity 8) joins, or one of the hosts leaves."""
    moved = minimum = 0
    for _ in range(trials):
        seed = rng.randbytes(32)
        base = assign(nodes, subsystems, seed)
        hosts = sorted(compute_load(base))
        for _ in range(EVENTS_PER_SEED):
            if joining:
                new = make_large_node(rng, subsystems)
                changed = Node(new.id, max(CAPACITIES), new.home, new.members_of, new.roles)
                before, after = base, assign([*nodes, changed], subsystems, seed)
            else:
                leaving = rng.choice(hosts)
                changed = next(n for n in nodes if n.id == leaving)
                before = base
                after = assign([n for n in nodes if n.id != leaving], subsystems, seed)
            moved += compute_moved_replicas(before, after)
            minimum += compute_minimum_moves(before, after, changed)
    return moved, minimum


def measure_balance(
    rng: random.Random, subsystem_count: int
) -> tuple[tuple[float, int, float], tuple[int, int]]:
    """Return the worst (max/mean, max, mean) load over ``BALANCE_EPOCHS`` epochs of the
    balance topology, and (moved, minimum) when one of its nodes leaves in each epoch."""
    subsystems = subsystem_names(subsystem_count)
    nodes = make_balance_nodes(rng, subsystems)
    worst = (0.0, 0, 0.0)
    moved = minimum = 0
    for epoch in range(BALANCE_EPOCHS):
        seed = rng.randbytes(32)
        before = assign(nodes, subsystems, seed, epoch)
        load = compute_load(before)
        counts = [load.get(node.id, 0) for node in nodes]
        mean = statistics.mean(counts)
        worst = max(worst, (max(counts) / mean, max(counts), mean))
        leaving = rng.choice(nodes)
        after = assign([n for n in nodes if n.id != leaving.id], subsystems, seed, epoch)
        moved += compute_moved_replicas(before, after)
        minimum += compute_minimum_moves(before, after, leaving)
    return worst, (moved, minimum)


def main() -> None:
    """Run the three measurements and print the headline figures last."""
    quick = "--quick" in sys.argv[1:]
    trials = 3 if quick else MOVEMENT_TRIALS
    rng = random.Random(4)
    started = time.perf_counter()
    subsystems = subsystem_names(LARGE_SUBSYSTEMS)
    build_start = time.perf_counter()
    nodes = [make_large_node(rng, subsystems) for _ in range(LARGE_NODES)]
    build = time.perf_counter() - build_start
    slots = 2 * LARGE_SUBSYSTEMS + 2
    print(
        f"topology: {LARGE_NODES} nodes (capacity 1..8), {LARGE_SUBSYSTEMS} subsystems, "
        f"{slots} slots, replicas {REPLICAS}; building the Node objects took {build:.2f} s"
    )
    times = measure_time(rng, nodes, subsystems)
    print("time per assignment: " + ", ".join(f"{t:.3f}" for t in times) + " s")

    movement = {}
    for joining in (False, True):
        moved, minimum = measure_movement(rng, nodes, subsystems, joining, trials)
        event = "join" if joining else "leave"
        movement[event] = (moved, minimum)
        print(
            f"one node {event}s: moved {moved} vs minimum {minimum} over "
            f"{trials * EVENTS_PER_SEED} events, "
            f"ratio {moved / minimum:.3f}"
        )

    balance = {}
    for count in BALANCE_SUBSYSTEMS:
        (ratio, peak, mean), (moved, minimum) = measure_balance(rng, count)
        balance[count] = ratio
        print(
            f"balance: {BALANCE_NODES} nodes, equal capacity {BALANCE_CAPACITY}, {count} "
            f"subsystems: max {peak} / mean {mean:.3f} = {ratio:.4f} (worst of {BALANCE_EPOCHS}); "
            f"one leaves: moved {moved} vs minimum {minimum}, ratio {moved / minimum:.3f}"
        )
    print(f"total bench time: {time.perf_counter() - started:.1f} s")
    median = statistics.median(times)
    print(f"assign_10k_nodes_1k_subsystems: {median:.3f} s (median; target < {TARGET_SECONDS} s)")
    for event, (moved, minimum) in movement.items():
        print(f"moved_ratio_{event}: {moved / minimum:.3f} x (target <= {TARGET_MOVED_RATIO})")
    for count, ratio in balance.items():
        print(
            f"max_over_mean_load_{BALANCE_NODES}n_{count}s: {ratio:.4f} "
            f"(target <= {TARGET_LOAD_RATIO})"
        )


if __name__ == "__main__":
    main()
