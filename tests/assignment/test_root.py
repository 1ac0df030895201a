"""Tests of the assignment root against an independent re-implementation of the encoding."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from eth_utils import keccak

from node.assignment import Slot, compute_assignment_from_json, compute_assignment_root

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "assignment" / "home-spread.json"
ROLE_DOMAIN = {"fe_system": 1, "fe_subsystem": 2, "be_system": 3, "be_subsystem": 4}


def reference_root(output: dict) -> bytes:  # type: ignore[type-arg]
    """The documented encoding, written again from docs/assignment.md with eth_utils.keccak."""
    commitments = b""
    for slot in output["slots"]:
        key = bytes(32) if slot["subsystem"] is None else keccak(text=slot["subsystem"])
        body = bytes([5, 0, 0, 0]) + bytes([ROLE_DOMAIN[slot["role"]], 0, 0, 0]) + key
        body += len(slot["hosts"]).to_bytes(4, "big")
        body += b"".join(bytes.fromhex(h[2:]) for h in slot["hosts"])
        commitments += keccak(body)
    head = (
        bytes([6, 0, 0, 0]) + output["epoch"].to_bytes(8, "big") + bytes.fromhex(output["seed"][2:])
    )
    return keccak(head + len(output["slots"]).to_bytes(4, "big") + commitments)


def test_root_matches_reference_encoding() -> None:
    vector = json.loads(VECTOR.read_text())
    assert "0x" + reference_root(vector["output"]).hex() == vector["output"]["root"]
    assignment = compute_assignment_from_json(vector["input"])
    assert assignment.root == reference_root(vector["output"])


def test_root_commits_to_every_detail() -> None:
    a = compute_assignment_from_json(json.loads(VECTOR.read_text())["input"])
    slots = list(a.slots)
    first = slots[0]
    variants = [
        [replace(first, hosts=tuple(reversed(first.hosts))), *slots[1:]],  # rank order
        [replace(first, hosts=first.hosts[:-1]), *slots[1:]],  # one replica fewer
        [replace(first, role="fe_subsystem"), *slots[1:]],  # role
        [replace(first, subsystem="other"), *slots[1:]],  # subsystem
        slots[1:],  # a slot missing
        [slots[1], slots[0], *slots[2:]],  # slot order
    ]
    roots = {compute_assignment_root(a.epoch, a.seed, v) for v in variants}
    roots |= {compute_assignment_root(a.epoch + 1, a.seed, slots)}
    roots |= {compute_assignment_root(a.epoch, bytes(32), slots)}
    assert a.root not in roots and len(roots) == len(variants) + 2
    assert (
        compute_assignment_root(
            a.epoch, a.seed, [Slot(s.role, s.subsystem, s.hosts) for s in slots]
        )
        == a.root
    )
