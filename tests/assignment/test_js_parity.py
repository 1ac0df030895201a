"""The JS twin (frontend/assignment) passes the same vectors, under node's test runner.

CI: ``cd frontend/assignment && npm ci`` before pytest (installs the pinned @noble/hashes).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parents[2] / "frontend" / "assignment"


def test_js_twin_passes_the_vectors() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the JS twin needs node >= 20")
    if not (JS_DIR / "node_modules" / "@noble" / "hashes").is_dir():
        pytest.skip(
            "frontend/assignment/node_modules is missing: run `npm ci` in frontend/assignment"
        )
    result = subprocess.run(
        [node, "--test", "assignment.test.mjs"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
