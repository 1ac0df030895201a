"""The front-end's session-key code (frontend/src/protocol) passes its node tests.

``frontend/test/session.test.mjs`` checks the did:key encoding against the did:key spec's P-256
vectors, the delegation message against docs/security.md, and rebuilds the signature base of
every request-signature vector (tests/vectors/request-signatures). CI: ``cd frontend && npm ci``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def test_session_code_passes_its_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the front-end's tests need node >= 20.19")
    if not (FRONTEND / "node_modules" / "vite").is_dir():
        pytest.skip("frontend/node_modules is missing: run `npm ci` in frontend")
    result = subprocess.run(
        [node, "--test", "test/"],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
