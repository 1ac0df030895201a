"""The embedded importer reproduces published kubo / go-ipfs CIDs (see vectors/README.md)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from node.storage.cids import format_cid, parse_cid
from node.storage.embedded import EmbeddedStore
from node.storage.importer import ImportParams, import_bytes, import_chunks, iter_chunks

VECTORS = json.loads((Path(__file__).parent / "vectors" / "unixfs.json").read_text())
CONVERGENCE_DIR = os.environ.get("COLLEGIUM_CONVERGENCE_DIR")


def _cases(*groups: str) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for group in groups for case in VECTORS[group]]


def _params(case: dict[str, Any]) -> ImportParams:
    return ImportParams(cid_version=case["cid_version"], raw_leaves=case.get("raw_leaves"))


def _expect(case: dict[str, Any], got: bytes) -> None:
    cid = parse_cid(got)
    if case.get("compare_as_v1"):
        cid = cid.set(version=1, base="base32")
    assert format_cid(cid) == case["cid"]


def _make_tree(root: Path, case: dict[str, Any]) -> Path:
    root.mkdir()
    for rel, text in case["input"]["files"].items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for rel in case["input"]["empty_dirs"]:
        (root / rel).mkdir(parents=True, exist_ok=True)
    return root


@pytest.mark.parametrize(
    "case", _cases("kubo_files", "go_ipfs_convergence_small", "solidity_zeros")
)
def test_file_vectors(case: dict[str, Any]) -> None:
    spec = case["input"]
    data = spec["utf8"].encode() if spec["kind"] == "bytes" else bytes(spec["size"])
    _expect(case, import_bytes(data, _params(case), lambda cid, block: None).cid)


@pytest.mark.parametrize("case", _cases("kubo_dirs"))
def test_directory_vectors(case: dict[str, Any], tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    root = _make_tree(tmp_path / "input", case)
    got = store.add_path(root, cid_version=case["cid_version"], raw_leaves=case.get("raw_leaves"))
    assert got == case["cid"]


def test_empty_directory_v0_and_v1_share_the_block() -> None:
    v0, v1 = (c["cid"] for c in VECTORS["kubo_dirs"] if c["name"].startswith("empty-dir"))
    assert bytes(parse_cid(v0).digest) == bytes(parse_cid(v1).digest)


def test_public_add_api_matches_kubo_defaults(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    assert store.add_bytes(b"Hello Worlds!\n", cid_version=0) == (
        "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"
    )
    assert store.add_bytes(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.mark.skipif(not CONVERGENCE_DIR, reason="COLLEGIUM_CONVERGENCE_DIR not set")
@pytest.mark.parametrize("case", _cases("go_ipfs_convergence_files"))
def test_go_ipfs_convergence_files(case: dict[str, Any]) -> None:
    path = Path(str(CONVERGENCE_DIR)) / case["input"]["file"]
    if not path.exists():
        pytest.skip(f"{path} missing")
    with open(path, "rb") as stream:
        digest = hashlib.sha256()
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    assert digest.hexdigest() == case["input"]["sha256"], "not the file the vector was made from"
    with open(path, "rb") as stream:
        _expect(case, import_chunks(iter_chunks(stream), _params(case), lambda c, b: None).cid)
