"""Generate the assignment test vectors (``python tests/vectors/assignment/generate.py``).

Seeded (``random.Random(1234)``) so the files are reproducible; ``--check`` exits 1 if a
committed file differs from what the reference implementation (``node.assignment``) gives now.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from node.assignment import ROLES, compute_assignment_from_json, encode_assignment, encode_error
from node.errors import AssignmentError, ValidationError

HERE = Path(__file__).resolve().parent
ALL_ROLES = list(ROLES)
DEFAULT_REPLICAS = {"fe_system": 3, "be_system": 3, "fe_subsystem": 2, "be_subsystem": 2}


def make_address(rng: random.Random) -> str:
    """Return a random lowercase address."""
    return "0x" + rng.randbytes(20).hex()


def make_seed(rng: random.Random) -> str:
    """Return a random 0x seed."""
    return "0x" + rng.randbytes(32).hex()


def make_random_topology(
    rng: random.Random,
    node_count: int,
    subsystem_count: int,
    max_capacity: int = 8,
    replicas: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Return a random topology in which every subsystem has at least two member nodes."""
    subsystems = [f"sub-{i:02d}" for i in range(subsystem_count)]
    nodes = []
    for i in range(node_count):
        members = set(rng.sample(subsystems, rng.randint(1, min(3, subsystem_count))))
        members.add(subsystems[i % subsystem_count])
        members.add(subsystems[(i + 1) % subsystem_count])
        roles = [role for role in ALL_ROLES if rng.random() < 0.85] or ["fe_system"]
        if i < 4:
            roles = list(ALL_ROLES)
        nodes.append(
            {
                "id": make_address(rng),
                "capacity": rng.randint(1, max_capacity),
                "home": rng.choice(subsystems),
                "members_of": sorted(members),
                "roles": roles,
            }
        )
    return {
        "seed": make_seed(rng),
        "epoch": rng.randint(0, 10_000),
        "nodes": nodes,
        "subsystems": subsystems,
        "replicas": dict(replicas or DEFAULT_REPLICAS),
    }


def make_cases(rng: random.Random) -> list[tuple[str, str, dict[str, Any]]]:
    """Return the cases as (name, description, input), in a fixed order."""
    ones = {role: 1 for role in ALL_ROLES}
    cases: list[tuple[str, str, dict[str, Any]]] = []

    one = {
        "seed": make_seed(rng),
        "epoch": 0,
        "nodes": [
            {
                "id": make_address(rng),
                "capacity": 4,
                "home": "solo",
                "members_of": ["solo"],
                "roles": ALL_ROLES,
            }
        ],
        "subsystems": ["solo"],
        "replicas": ones,
    }
    cases.append(("one-node", "a single node hosts every slot", one))

    caps = make_random_topology(rng, 8, 3, replicas={**ones, "fe_system": 2})
    for i, node in enumerate(caps["nodes"]):
        node["capacity"] = i + 1
        node["roles"] = ALL_ROLES
        node["members_of"] = caps["subsystems"]
    cases.append(("capacities-1-to-8", "eight nodes with capacities 1..8", caps))

    for i, (n, s) in enumerate([(5, 2), (12, 3), (20, 5), (30, 8), (50, 10), (64, 16)]):
        cases.append(
            (
                f"random-{i + 1}",
                f"random topology, {n} nodes, {s} subsystems",
                make_random_topology(rng, n, s),
            )
        )

    many = make_random_topology(rng, 40, 30, max_capacity=8)
    cases.append(("many-subsystems", "40 nodes, 30 subsystems", many))

    spread = make_random_topology(
        rng, 16, 4, replicas={**DEFAULT_REPLICAS, "fe_system": 4, "be_system": 6}
    )
    for i, node in enumerate(spread["nodes"]):
        node["home"] = spread["subsystems"][i % 4]
        node["capacity"] = 8
        node["roles"] = ALL_ROLES
    cases.append(("home-spread", "4 homes: system roles use all 4 before reusing one", spread))

    unicode = make_random_topology(rng, 10, 4, replicas=ones)
    names = ["zeta", "équipe", "日本", "\U0001f680 rocket"]  # UTF-8 order != UTF-16 order
    rename = dict(zip(unicode["subsystems"], names, strict=True))
    unicode["subsystems"] = names
    for node in unicode["nodes"]:
        node["home"] = rename[node["home"]]
        node["members_of"] = [rename[m] for m in node["members_of"]]
    cases.append(("unicode-subsystems", "subsystems sort by UTF-8 bytes, not UTF-16", unicode))

    checksummed = make_random_topology(rng, 6, 2, replicas=ones)
    for node in checksummed["nodes"]:
        node["id"] = to_checksum_address(node["id"])
    cases.append(("checksummed-ids", "EIP-55 ids in, lowercase ids out", checksummed))

    big_epoch = make_random_topology(rng, 6, 2, replicas=ones)
    big_epoch["epoch"] = 2**53 - 1
    cases.append(("large-epoch", "epoch 2**53 - 1, the largest JSON-safe integer", big_epoch))

    exact = {
        "seed": make_seed(rng),
        "epoch": 3,
        "nodes": [
            {
                "id": make_address(rng),
                "capacity": 3,
                "home": f"h{i}",
                "members_of": ["a", "b"],
                "roles": ALL_ROLES,
            }
            for i in range(2)
        ],
        "subsystems": ["a"],
        "replicas": {**ones, "fe_system": 2, "be_system": 2},
    }
    cases.append(("exact-capacity", "total capacity equals total replicas", exact))

    no_member = make_random_topology(rng, 6, 2, replicas=ones)
    no_member["subsystems"].append("orphan")
    cases.append(
        (
            "shortage-no-member-node",
            "a subsystem without member: its be_subsystem slot is unserved",
            no_member,
        )
    )

    few = make_random_topology(rng, 3, 1, replicas={**ones, "fe_system": 5})
    cases.append(("shortage-too-few-nodes", "5 fe_system replicas, 3 nodes: clipped to 3", few))

    small = make_random_topology(rng, 4, 3, replicas=ones)
    for node in small["nodes"]:
        node["capacity"] = 1
        node["members_of"] = small["subsystems"]
        node["roles"] = ALL_ROLES
    cases.append(
        ("shortage-insufficient-capacity", "8 slots, total capacity 4: 4 slots unserved", small)
    )

    exhausted = {
        "seed": make_seed(rng),
        "epoch": 1,
        "nodes": [
            {
                "id": make_address(rng),
                "capacity": 1,
                "home": "a",
                "members_of": ["a"],
                "roles": ALL_ROLES,
            },
            {
                "id": make_address(rng),
                "capacity": 5,
                "home": "a",
                "members_of": [],
                "roles": ["fe_system", "fe_subsystem", "be_system"],
            },
        ],
        "subsystems": ["a"],
        "replicas": ones,
    }
    exhausted["nodes"][0]["roles"] = ["be_subsystem", "fe_system"]
    exhausted["nodes"][1]["roles"] = ["be_system", "fe_subsystem"]
    cases.append(
        (
            "shortage-capacity-exhausted",
            "the only fe_system node is full: fe_system unserved",
            exhausted,
        )
    )

    base = make_random_topology(rng, 4, 2, replicas=ones)

    def variant(change: Any) -> dict[str, Any]:
        topology = json.loads(json.dumps(base))
        change(topology)
        return topology

    cases.append(
        ("error-bad-seed", "seed of 31 bytes", variant(lambda t: t.update(seed=t["seed"][:-2])))
    )
    cases.append(
        (
            "error-bad-address",
            "id with 39 hex digits",
            variant(lambda t: t["nodes"][1].update(id=t["nodes"][1]["id"][:-1])),
        )
    )
    cases.append(
        (
            "error-bad-checksum",
            "mixed-case id with a wrong EIP-55 checksum",
            variant(
                lambda t: t["nodes"][2].update(
                    id=to_checksum_address(t["nodes"][2]["id"]).swapcase().replace("0X", "0x")
                )
            ),
        )
    )
    cases.append(
        ("error-zero-capacity", "capacity 0", variant(lambda t: t["nodes"][0].update(capacity=0)))
    )
    cases.append(
        ("error-unknown-role", "role 'db'", variant(lambda t: t["nodes"][3]["roles"].append("db")))
    )
    cases.append(
        (
            "error-duplicate-node",
            "the same id twice",
            variant(lambda t: t["nodes"].append(dict(t["nodes"][0]))),
        )
    )
    cases.append(
        (
            "error-missing-replicas",
            "no replica count for be_system",
            variant(lambda t: t["replicas"].pop("be_system")),
        )
    )
    bound_rng = random.Random(5678)  # its own generator: the cases above stay as they were
    bound = make_random_topology(bound_rng, 12, 12)
    for i, node in enumerate(bound["nodes"]):
        node["capacity"] = 50  # equal and ample: only the load bound limits a node
        node["home"] = f"home-{i}"
        node["roles"] = ALL_ROLES
    cases.append(
        ("load-bound", "54 replicas on 12 equal nodes: loads stay within the bound 5", bound)
    )
    cases.extend(make_shortage_cases(random.Random(9012)))  # own generator, as load-bound
    return cases


def make_shortage_cases(rng: random.Random) -> list[tuple[str, str, dict[str, Any]]]:
    """Return the capacity-shortage cases of the reduction rule (docs/assignment.md)."""
    cases: list[tuple[str, str, dict[str, Any]]] = []
    for count in (2, 5):
        names = [f"s{i}" for i in range(count)]
        lone = {
            "seed": make_seed(rng),
            "epoch": 3,
            "nodes": [
                {
                    "id": make_address(rng),
                    "capacity": 4,
                    "home": "s0",
                    "members_of": names,
                    "roles": ALL_ROLES,
                }
            ],
            "subsystems": names,
            "replicas": dict(DEFAULT_REPLICAS),
        }
        cases.append(
            (
                f"shortage-one-node-{count}-subsystems",
                f"one node of capacity 4, {count} subsystems, default replicas",
                lone,
            )
        )
    squeezed = make_random_topology(rng, 6, 4, replicas=dict(DEFAULT_REPLICAS))
    for node in squeezed["nodes"]:
        node["capacity"] = 3
    cases.append(
        ("shortage-replicas", "6 nodes of capacity 3, 4 subsystems: replicas reduced", squeezed)
    )
    tight = make_random_topology(rng, 5, 6, replicas=dict(DEFAULT_REPLICAS))
    for node in tight["nodes"]:
        node["capacity"] = rng.randint(1, 2)
    cases.append(("shortage-mixed", "5 small nodes, 6 subsystems: fewer replicas and slots", tight))
    nobody = make_random_topology(rng, 2, 1, replicas=dict(DEFAULT_REPLICAS))
    for node in nobody["nodes"]:
        node["roles"] = []
    cases.append(("error-no-eligible-node", "no node offers any role: no slot served", nobody))
    return cases


def compute_vector(name: str, description: str, topology: dict[str, Any]) -> dict[str, Any]:
    """Return the vector of one case: its input and the expected output or error."""
    vector: dict[str, Any] = {"name": name, "description": description, "input": topology}
    try:
        vector["output"] = encode_assignment(compute_assignment_from_json(topology))
    except (AssignmentError, ValidationError) as exc:
        vector["error"] = encode_error(exc)
    return vector


def render(vector: dict[str, Any]) -> str:
    """Return the file text of a vector."""
    return json.dumps(vector, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Write (or with ``--check``, compare) every vector file."""
    check = "--check" in argv
    stale = []
    for name, description, topology in make_cases(random.Random(1234)):
        path = HERE / f"{name}.json"
        text = render(compute_vector(name, description, topology))
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale vectors:", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
