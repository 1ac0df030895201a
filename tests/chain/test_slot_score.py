"""The registry's ``slotScore`` view equals Python's ``compute_slot_score`` (docs/assignment.md).

Checked on eth-tester and anvil (the ``chain`` fixture) for the slots of every valid vector in
``tests/vectors/assignment``, for extreme inputs, and as a full ranking of some slots.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from node.assignment import (
    ROLES,
    InvalidTopologyError,
    Node,
    compute_slot_score,
    parse_topology,
)
from node.assignment.compute import compute_ranked_nodes, compute_slot_keys
from node.chain.registry import Registry, RegistryRejected
from tests.chain.conftest import Deployment

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors" / "assignment"
OTHER_NODES_PER_SLOT = 2
"""Besides a slot's hosts, how many other nodes of the vector are checked per slot."""
RANDOM_CASES = 40
MAX_CAPACITY = 2**32 - 1
MAX_EPOCH = 2**64 - 1


def _valid_vectors() -> list[tuple[str, object]]:
    cases = []
    for path in sorted(VECTORS_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        try:
            parse_topology(data["input"])
        except InvalidTopologyError:
            continue
        cases.append((path.stem, data["input"]))
    return cases


VECTORS = _valid_vectors()


def _address_bytes(node: Node) -> bytes:
    return bytes.fromhex(node.id[2:])


def _assert_same(registry: Registry, seed: bytes, epoch: int, role: str,
                 subsystem: str | None, node: Node) -> None:  # fmt: skip
    expected = compute_slot_score(seed, epoch, role, subsystem, _address_bytes(node), node.capacity)
    actual = registry.slot_score(seed, epoch, role, subsystem, node.id, node.capacity)
    assert actual == expected, (role, subsystem, node.id, node.capacity)


def test_vectors_cover_every_role_and_both_slot_kinds() -> None:
    assert len(VECTORS) >= 10
    topology = parse_topology(VECTORS[0][1])
    assert {role for role, _ in compute_slot_keys(topology.subsystems)} == set(ROLES)


@pytest.mark.parametrize(("name", "raw"), VECTORS, ids=[name for name, _ in VECTORS])
def test_slot_score_equals_python_on_vector(deployment: Deployment, name: str, raw: object) -> None:
    topology = parse_topology(raw)
    nodes = sorted(topology.nodes, key=lambda n: n.id)
    rng = random.Random(name)
    for role, subsystem in compute_slot_keys(sorted(topology.subsystems)):
        for node in rng.sample(nodes, min(len(nodes), OTHER_NODES_PER_SLOT + 1)):
            _assert_same(deployment.registry, topology.seed, topology.epoch, role, subsystem, node)


def test_on_chain_scores_reproduce_a_slot_ranking(deployment: Deployment) -> None:
    name, raw = next((n, r) for n, r in VECTORS if n == "random-3")
    topology = parse_topology(raw)
    for role, subsystem in compute_slot_keys(sorted(topology.subsystems))[:3]:
        ranked = compute_ranked_nodes(topology.seed, topology.epoch, role, subsystem,
                                      topology.nodes)  # fmt: skip
        on_chain = sorted(
            ranked,
            key=lambda n: (
                deployment.registry.slot_score(
                    topology.seed, topology.epoch, role, subsystem, n.id, n.capacity
                ),
                n.id,
            ),
        )
        assert [n.id for n in on_chain] == [n.id for n in ranked], (name, role, subsystem)


@pytest.mark.parametrize("path", sorted(VECTORS_DIR.glob("hand-*.json")), ids=lambda p: p.stem)
def test_slot_score_equals_hand_vector_scores(deployment: Deployment, path: Path) -> None:
    """The scores the hand-computed vectors' derivations compare (docs/assignment-vectors.md)."""
    vector = json.loads(path.read_text(encoding="utf-8"))
    seed = bytes.fromhex(vector["input"]["seed"][2:])
    for entry in vector["scores"]:
        score = deployment.registry.slot_score(
            seed, vector["input"]["epoch"], entry["role"], entry["subsystem"], entry["id"],
            entry["capacity"],
        )  # fmt: skip
        assert score == int(entry["score"]), entry


def test_slot_score_known_value(deployment: Deployment) -> None:
    address = "0x" + "00" * 19 + "01"
    score = deployment.registry.slot_score(bytes(32), 7, "fe_system", None, address, 3)
    assert score == 13029331929748821


def test_slot_score_equals_python_on_extremes(deployment: Deployment) -> None:
    rng = random.Random(1234)
    for i in range(RANDOM_CASES):
        seed = rng.randbytes(32)
        epoch = rng.choice([0, 1, MAX_EPOCH, rng.getrandbits(64)])
        capacity = rng.choice([1, 2, MAX_CAPACITY, rng.randrange(1, MAX_CAPACITY)])
        role = ROLES[i % len(ROLES)]
        subsystem = None if role.endswith("_system") else rng.choice(["main", "ü-ß", "x" * 64])
        node = Node(
            id="0x" + rng.randbytes(20).hex(),
            capacity=capacity,
            home="main",
            members_of=frozenset(),
            roles=frozenset(),
        )
        _assert_same(deployment.registry, seed, epoch, role, subsystem, node)


def test_slot_score_rejects_unknown_role_and_zero_capacity(deployment: Deployment) -> None:
    address = "0x" + "11" * 20
    with pytest.raises(RegistryRejected, match="UnknownRole"):
        deployment.registry.slot_score(bytes(32), 1, "fe_sys", None, address, 1)
    with pytest.raises(RegistryRejected, match="InvalidCapacity"):
        deployment.registry.slot_score(bytes(32), 1, "fe_system", None, address, 0)
