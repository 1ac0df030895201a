"""The committed artifacts in contracts/build are exactly what the pinned solc-js builds."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from node.chain.contracts import ARTIFACTS_DIR, load_artifact

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
SOLC_PACKAGE = CONTRACTS_DIR / "node_modules" / "solc" / "package.json"
PINNED_SOLC = "0.8.28"
BUILD_TIMEOUT_SECONDS = 300


def test_artifacts_dir_is_the_committed_build() -> None:
    assert ARTIFACTS_DIR == CONTRACTS_DIR / "build"
    assert sorted(p.name for p in ARTIFACTS_DIR.glob("*.json")) == ["Registry.json"]


def test_solc_is_pinned_exactly() -> None:
    package = json.loads((CONTRACTS_DIR / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["solc"] == PINNED_SOLC
    lock = json.loads((CONTRACTS_DIR / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/solc"]["version"] == PINNED_SOLC


def test_artifact_records_its_source_and_compiler() -> None:
    artifact = load_artifact("Registry")
    source = (CONTRACTS_DIR / "src" / "Registry.sol").read_bytes()
    assert artifact.source_hash == "0x" + hashlib.sha256(source).hexdigest()
    assert artifact.compiler_version.startswith(PINNED_SOLC + "+commit.")
    raw = json.loads((ARTIFACTS_DIR / "Registry.json").read_text(encoding="utf-8"))
    assert raw["compiler"]["settings"]["evmVersion"] == "cancun"
    assert raw["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert artifact.bytecode.startswith("0x60") and artifact.deployed_bytecode.startswith("0x60")
    errors = {item["name"] for item in artifact.abi if item["type"] == "error"}
    assert {"NotRegisteredNode", "NotSystemAdmin", "AlreadyAttested"} <= errors


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot rebuild the contracts")
    if not SOLC_PACKAGE.exists():
        pytest.skip("contracts/node_modules is absent: run `npm ci` in contracts/")
    subprocess.run(
        [node, str(CONTRACTS_DIR / "compile.js"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    built = sorted(p.name for p in tmp_path.glob("*.json"))
    committed = sorted(p.name for p in ARTIFACTS_DIR.glob("*.json"))
    assert built == committed
    for name in built:
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (ARTIFACTS_DIR / name).read_bytes(), (
            f"contracts/build/{name} is stale: run `npm run build` in contracts/ and commit it"
        )
