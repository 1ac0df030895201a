"""The shared vectors: fresh with respect to the generator, and passed by node.assignment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.assignment import compute_assignment_from_json, encode_assignment, encode_error
from node.errors import AssignmentError, ValidationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "assignment"
FILES = sorted(VECTORS.glob("*.json"))


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
