"""The shared vectors: fresh with respect to the generator, and passed by node.assignment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.assignment import (
    compute_assignment_from_json,
    compute_slot_score,
    encode_assignment,
    encode_error,
)
from node.errors import AssignmentError, ValidationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "assignment"
FILES = sorted(VECTORS.glob("*.json"))
HAND_FILES = sorted(VECTORS.glob("hand-*.json"))
"""Vectors derived by hand from docs/assignment.md (docs/assignment-vectors.md), not generated."""


def test_enough_vectors_of_each_outcome() -> None:
    kinds = [json.loads(f.read_text()).get("error", {}).get("kind", "ok") for f in FILES]
    assert len(FILES) >= 20
    assert {"ok", "invalid_topology", "not_enough_eligible_nodes"} <= set(kinds)
    reasons = {
        a["reason"]
        for f in FILES
        for a in json.loads(f.read_text()).get("output", {}).get("adjustments", [])
    }
    assert reasons == {"eligible_nodes", "capacity", "no_eligible_node", "capacity_unserved"}


def test_vectors_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--check"],
        cwd=VECTORS.parents[2],
        env={**os.environ, "PYTHONPATH": str(VECTORS.parents[2])},  # this checkout's node
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    assert vector["name"] == path.stem
    if "error" in vector:
        with pytest.raises((AssignmentError, ValidationError)) as info:
            compute_assignment_from_json(vector["input"])
        assert encode_error(info.value) == vector["error"]
    else:
        assert encode_assignment(compute_assignment_from_json(vector["input"])) == vector["output"]


def test_hand_vectors_are_hand_made() -> None:
    assert len(HAND_FILES) >= 3
    generated = (VECTORS / "generate.py").read_text(encoding="utf-8")
    for path in HAND_FILES:
        vector = json.loads(path.read_text(encoding="utf-8"))
        assert vector["derivation"] and vector["scores"] and "output" in vector
        assert f'"{path.stem}"' not in generated  # the generator never rewrites them


@pytest.mark.parametrize("path", HAND_FILES, ids=[f.stem for f in HAND_FILES])
def test_hand_vector_scores(path: Path) -> None:
    """The scores the derivation compares are those of compute_slot_score."""
    vector = json.loads(path.read_text(encoding="utf-8"))
    seed = bytes.fromhex(vector["input"]["seed"][2:])
    for entry in vector["scores"]:
        score = compute_slot_score(
            seed,
            vector["input"]["epoch"],
            entry["role"],
            entry["subsystem"],
            bytes.fromhex(entry["id"][2:]),
            entry["capacity"],
        )
        assert score == int(entry["score"]), entry
