"""The JSON interface of ``collegium assign``: parse a topology, encode an assignment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.assignment.compute import compute_assignment
from node.assignment.constants import MAX_EPOCH
from node.assignment.containers import Assignment, Node
from node.assignment.errors import InvalidTopologyError
from node.assignment.validation import (
    parse_seed,
    parse_string_list,
    parse_subsystem_name,
    parse_uint,
)

TOPOLOGY_KEYS = frozenset({"seed", "epoch", "nodes", "subsystems", "replicas"})
NODE_KEYS = frozenset({"id", "capacity", "home", "members_of", "roles"})


@dataclass(frozen=True)
class Topology:
    """The parsed input of the assignment."""

    seed: bytes
    epoch: int
    nodes: tuple[Node, ...]
    subsystems: tuple[str, ...]
    replicas: Mapping[str, int]


def parse_object(value: object, path: str, keys: frozenset[str]) -> Mapping[str, Any]:
    """Return ``value`` if it is a JSON object with exactly ``keys``."""
    if not isinstance(value, Mapping):
        raise InvalidTopologyError(path, f"expected an object, got {type(value).__name__}")
    for key in sorted(keys - value.keys()):
        raise InvalidTopologyError(f"{path}.{key}", "missing")
    for key in sorted(value.keys() - keys, key=str):
        raise InvalidTopologyError(f"{path}.{key}", "unknown field")
    return value


def parse_node(value: object, path: str) -> Node:
    """Return the ``Node`` described by a JSON object (``Node`` validates the fields)."""
    obj = parse_object(value, path, NODE_KEYS)
    return Node(
        id=obj["id"],
        capacity=obj["capacity"],
        home=obj["home"],
        members_of=obj["members_of"],
        roles=obj["roles"],
        path=path,
    )


def parse_topology(value: object) -> Topology:
    """Return the topology described by the JSON input of ``collegium assign``."""
    obj = parse_object(value, "input", TOPOLOGY_KEYS)
    nodes = parse_string_list(obj["nodes"], "nodes")
    subsystems = parse_string_list(obj["subsystems"], "subsystems")
    if not isinstance(obj["replicas"], Mapping):
        raise InvalidTopologyError("replicas", f"expected an object, got {obj['replicas']!r}")
    return Topology(
        seed=parse_seed(obj["seed"], "seed"),
        epoch=parse_uint(obj["epoch"], "epoch", 0, MAX_EPOCH),
        nodes=tuple(parse_node(node, f"nodes[{i}]") for i, node in enumerate(nodes)),
        subsystems=tuple(
            parse_subsystem_name(s, f"subsystems[{i}]") for i, s in enumerate(subsystems)
        ),
        replicas=dict(obj["replicas"]),
    )


def compute_assignment_from_json(value: object) -> Assignment:
    """Return the assignment of the JSON input ``value`` (see ``parse_topology``)."""
    topology = parse_topology(value)
    return compute_assignment(
        topology.seed, topology.epoch, topology.nodes, topology.subsystems, topology.replicas
    )


def encode_assignment(assignment: Assignment) -> dict[str, Any]:
    """Return the JSON object of an assignment, as printed by ``collegium assign``."""
    return {
        "epoch": assignment.epoch,
        "seed": "0x" + assignment.seed.hex(),
        "slots": [
            {"role": slot.role, "subsystem": slot.subsystem, "hosts": list(slot.hosts)}
            for slot in assignment.slots
        ],
        "adjustments": [
            {
                "reason": a.reason,
                "role": a.role,
                "subsystem": a.subsystem,
                "from": a.before,
                "to": a.to,
            }
            for a in assignment.adjustments
        ],
        "root": "0x" + assignment.root.hex(),
    }


def encode_error(error: Exception) -> dict[str, Any]:
    """Return the JSON object of an assignment error: its kind and the slot it names, if any."""
    encoded: dict[str, Any] = {"kind": getattr(error, "kind", type(error).__name__)}
    for field in ("path", "role", "subsystem", "required", "eligible", "placed", "available"):
        if hasattr(error, field):
            encoded[field] = getattr(error, field)
    return encoded
