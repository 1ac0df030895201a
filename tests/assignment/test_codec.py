"""Tests of input validation and JSON encoding."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from node.assignment import (
    InvalidTopologyError,
    Node,
    compute_assignment_from_json,
    encode_assignment,
    parse_topology,
)
from node.errors import ValidationError

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "assignment" / "random-2.json"
BASE: dict[str, Any] = json.loads(VECTOR.read_text())["input"]


def broken(change: Any) -> dict[str, Any]:
    topology = copy.deepcopy(BASE)
    change(topology)
    return topology


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda t: t.update(seed="0x" + "ab" * 31), "seed", "64 hex digits"),
        (lambda t: t.update(seed="ab" * 32), "seed", "64 hex digits"),
        (lambda t: t.update(epoch=-1), "epoch", "0 <= value"),
        (lambda t: t.update(epoch=2**64), "epoch", "0 <= value"),
        (lambda t: t.update(epoch=1.0), "epoch", "expected an integer"),
        (lambda t: t.update(epoch=True), "epoch", "expected an integer"),
        (lambda t: t["nodes"][0].update(id="0x1234"), "nodes[0].id", "20-byte hex address"),
        (lambda t: t["nodes"][0].update(id="0x" + "g" * 40), "nodes[0].id", "20-byte hex"),
        (lambda t: t["nodes"][1].update(capacity=0), "nodes[1].capacity", "1 <= value"),
        (lambda t: t["nodes"][1].update(capacity=-3), "nodes[1].capacity", "1 <= value"),
        (lambda t: t["nodes"][1].update(capacity="3"), "nodes[1].capacity", "integer"),
        (
            lambda t: t["nodes"][2].update(roles=["fe_system", "dns"]),
            "nodes[2].roles[1]",
            "unknown role 'dns'",
        ),
        (lambda t: t["nodes"][2].update(roles="fe_system"), "nodes[2].roles", "expected a list"),
        (lambda t: t["nodes"][2].update(home=""), "nodes[2].home", "non-empty"),
        (lambda t: t["nodes"][2].update(extra=1), "nodes[2].extra", "unknown field"),
        (lambda t: t["nodes"][2].pop("home"), "nodes[2].home", "missing"),
        (lambda t: t["subsystems"].append("\ud800"), "subsystems[3]", "not valid Unicode"),
        (lambda t: t["subsystems"].append(t["subsystems"][0]), "subsystems", "duplicate subsystem"),
        (lambda t: t["nodes"].append(dict(t["nodes"][0])), "nodes", "duplicate node id"),
        (lambda t: t["replicas"].update(fe_system=0), "replicas.fe_system", "1 <= value"),
        (lambda t: t["replicas"].update(db=1), "replicas.db", "unknown role"),
        (lambda t: t["replicas"].pop("be_subsystem"), "replicas.be_subsystem", "missing"),
        (lambda t: t.update(nodes={}), "nodes", "expected a list"),
        (lambda t: t.update(replicas=[]), "replicas", "expected an object"),
    ],
)
def test_malformed_input_is_rejected_with_its_path(change: Any, path: str, message: str) -> None:
    with pytest.raises(InvalidTopologyError) as info:
        compute_assignment_from_json(broken(change))
    assert info.value.path == path
    assert message in str(info.value)
    assert isinstance(info.value, ValidationError)


def test_not_an_object() -> None:
    with pytest.raises(InvalidTopologyError, match="expected an object"):
        parse_topology([])


def test_checksummed_and_upper_case_ids_are_normalized() -> None:
    checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert Node(checksummed, 1, "a", frozenset(), frozenset()).id == checksummed.lower()
    upper = "0x" + checksummed[2:].upper()
    assert Node(upper, 1, "a", frozenset(), frozenset()).id == checksummed.lower()
    with pytest.raises(InvalidTopologyError, match="EIP-55"):
        Node("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 1, "a", frozenset(), frozenset())


def test_node_validates_on_construction() -> None:
    with pytest.raises(InvalidTopologyError, match="capacity"):
        Node("0x" + "00" * 20, 0, "a", frozenset(), frozenset())
    with pytest.raises(InvalidTopologyError, match="unknown role"):
        Node("0x" + "00" * 20, 1, "a", frozenset(), frozenset({"admin"}))


def test_encoding_matches_the_json_interface() -> None:
    out = encode_assignment(compute_assignment_from_json(BASE))
    assert list(out) == ["epoch", "seed", "slots", "adjustments", "root"]
    assert out["adjustments"] == []
    assert out["seed"] == BASE["seed"].lower()
    assert out["root"].startswith("0x") and len(out["root"]) == 66
    system = [s for s in out["slots"] if s["subsystem"] is None]
    assert {s["role"] for s in system} == {"fe_system", "be_system"}
    assert all(set(s) == {"role", "subsystem", "hosts"} for s in out["slots"])
    json.dumps(out)  # plain JSON types only
