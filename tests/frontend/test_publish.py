"""Publishing the front-end (``node.frontend.publish``, ``collegium frontend publish``) and
serving ``/`` from the build directory, then from the registry's CID."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import httpx
import pytest
from eth_account import Account

from node.chain.registry import Registry
from node.frontend import FrontendError, NotSystemAdmin, publish
from tests.frontend.conftest import BUILD_DIR
from tests.support.node import InProcessNode, node_process

SOURCE_HEADER: Final = "x-collegium-frontend"
SWITCH_TIMEOUT: Final = 30.0
FUNDING_WEI: Final = 10**18


def asset_names() -> list[str]:
    return sorted(p.name for p in (BUILD_DIR / "assets").iterdir())


def test_root_serves_the_committed_build_before_any_publish(node: InProcessNode) -> None:
    if node.node.registry.frontend_cid():
        pytest.skip("a front-end is already published on this module's node")
    index = httpx.get(node.url + "/")
    assert index.status_code == 200
    assert index.headers[SOURCE_HEADER] == "build-dir"
    assert index.headers["cache-control"] == "no-cache"
    assert index.content == (BUILD_DIR / "index.html").read_bytes()
    assert b'src="./assets/' in index.content  # relative paths: works under /ipfs/<cid>/
    name = asset_names()[0]
    asset = httpx.get(f"{node.url}/assets/{name}")
    assert asset.status_code == 200
    assert asset.content == (BUILD_DIR / "assets" / name).read_bytes()
    assert "immutable" in asset.headers["cache-control"]
    head = httpx.head(node.url + "/")
    assert head.status_code == 200 and head.content == b""
    missing = httpx.get(f"{node.url}/assets/no-such-file.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(node.url + "/explorer").status_code == 200  # the no-JS fallback stays


def test_publish_refuses_a_non_admin_and_a_missing_build(
    node: InProcessNode, tmp_path: Path
) -> None:
    registry = node.node.registry
    before = registry.frontend_cid()
    outsider = Account.create()
    node.node.chain.fund(outsider.address, FUNDING_WEI)
    as_outsider = Registry(node.node.chain.w3, registry.address, outsider)
    with pytest.raises(NotSystemAdmin):
        publish(node.node.store, as_outsider, BUILD_DIR)
    with pytest.raises(FrontendError, match="index.html"):
        publish(node.node.store, registry, tmp_path)
    assert registry.frontend_cid() == before


def _wait_served_from(url: str, cid: str) -> httpx.Response:
    deadline = time.monotonic() + SWITCH_TIMEOUT
    while True:
        response = httpx.get(url + "/", timeout=10)
        if response.headers.get(SOURCE_HEADER) == f"ipfs {cid}" or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_cli_publish_on_a_running_node_switches_root_to_the_cid(tmp_path: Path) -> None:
    proc = node_process(tmp_path)
    proc.start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "node.cli.main", "frontend", "publish",
             "--data-dir", str(proc.data_dir), "--build-dir", str(BUILD_DIR)],
            env=proc.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        cid = out.stdout.strip().splitlines()[-1]
        assert cid.startswith("bafy")
        index = (BUILD_DIR / "index.html").read_bytes()
        root = _wait_served_from(proc.url, cid)
        assert root.headers.get(SOURCE_HEADER) == f"ipfs {cid}"
        assert root.content == index
        assert root.headers["cache-control"] == "no-cache"
        assert httpx.get(f"{proc.url}/ipfs/{cid}/").content == index
        name = asset_names()[0]
        expected = (BUILD_DIR / "assets" / name).read_bytes()
        assert httpx.get(f"{proc.url}/ipfs/{cid}/assets/{name}").content == expected
        assert httpx.get(f"{proc.url}/assets/{name}").content == expected
        again = subprocess.run(
            [sys.executable, "-m", "node.cli.main", "frontend", "publish",
             "--data-dir", str(proc.data_dir), "--build-dir", str(BUILD_DIR)],
            env=proc.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert again.returncode == 0 and again.stdout.strip() == cid  # same files, same CID
    finally:
        proc.stop()
    pins = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "ipfs", "pin", "ls",
         "--data-dir", str(proc.data_dir)],
        env=proc.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cid in pins.stdout
