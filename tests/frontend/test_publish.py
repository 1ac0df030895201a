"""Publishing the front-end (``node.frontend.publish``, ``collegium frontend publish``) and
serving ``/`` from the build directory, then from the registry's CID."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from eth_account import Account

from node.chain.registry import Registry
from node.frontend import (
    FrontendError,
    NotSubsystemAdmin,
    NotSystemAdmin,
    publish,
    publish_subsystem,
)
from node.storage import open_store
from tests.frontend.conftest import BUILD_DIR
from tests.support.node import InProcessNode, in_process_node, node_process

SOURCE_HEADER: Final = "x-collegium-frontend"
SWITCH_TIMEOUT: Final = 30.0
FUNDING_WEI: Final = 10**18


def asset_names() -> list[str]:
    return sorted(p.name for p in (BUILD_DIR / "assets").iterdir())


def tiny_bundle(parent: Path, title: str) -> Path:
    """Return a directory holding a two-file subsystem UI bundle titled ``title``."""
    bundle = parent / f"bundle-{title}"
    (bundle / "js").mkdir(parents=True)
    (bundle / "index.html").write_text(
        f'<!doctype html><title>{title}</title><h1>{title}</h1><script src="./js/app.js"></script>'
    )
    (bundle / "js" / "app.js").write_text(f"document.title = {title!r};\n")
    return bundle


def system_index(url: str) -> bytes:
    """Return the system front-end's ``index.html`` as the node serves it at ``/``."""
    return httpx.get(url + "/", timeout=10).content


@pytest.fixture
def unpublished_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessNode]:
    """Yield a node of its own whose registry has no front-end: the deploying node's own
    publish of the bundled build is turned off, so no earlier test or start-up can publish."""
    monkeypatch.setattr("node.runtime.wiring.publish_frontend_if_missing", lambda *_args: None)
    with in_process_node(tmp_path / "node") as running:
        yield running


def test_root_serves_the_committed_build_before_any_publish(
    unpublished_node: InProcessNode,
) -> None:
    node = unpublished_node
    assert not node.node.registry.frontend_cid()
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


def test_subsystem_bundle_at_s_name_with_the_system_ui_as_fallback(
    node: InProcessNode, tmp_path: Path
) -> None:
    registry = node.node.registry
    for name in ("shop", "plain", "gone"):
        registry.create_subsystem(name)
    bundle = tiny_bundle(tmp_path, "shop")
    cid = publish_subsystem(node.node.store, registry, "shop", bundle)
    assert registry.subsystem_frontend("shop") == cid
    assert cid in node.node.store.pins()
    assert publish_subsystem(node.node.store, registry, "shop", bundle) == cid  # idempotent

    index = httpx.get(node.url + "/s/shop/", timeout=10)
    assert index.status_code == 200
    assert index.content == (bundle / "index.html").read_bytes()
    assert index.headers[SOURCE_HEADER] == f"ipfs {cid} subsystem shop"
    assert index.headers["cache-control"] == "no-cache"
    script = httpx.get(node.url + "/s/shop/js/app.js", timeout=10)
    assert script.content == (bundle / "js" / "app.js").read_bytes()
    assert "immutable" in script.headers["cache-control"]
    assert httpx.get(node.url + "/s/shop/no-such.js", timeout=10).status_code == 404
    bare = httpx.get(node.url + "/s/shop?x=1", timeout=10)
    assert bare.status_code == 308 and bare.headers["location"].endswith("/s/shop/?x=1")

    # no bundle published: the system front-end, whose assets resolve under /s/<name>/ too
    plain = httpx.get(node.url + "/s/plain/", timeout=10)
    assert plain.status_code == 200
    assert plain.content == system_index(node.url)
    assert plain.headers[SOURCE_HEADER].startswith("system fallback (none published)")
    name = asset_names()[0]
    asset = httpx.get(f"{node.url}/s/plain/assets/{name}", timeout=10)
    assert asset.content == (BUILD_DIR / "assets" / name).read_bytes()

    # a bundle recorded on-chain whose blocks this node lacks: the system front-end too
    elsewhere = open_store(tmp_path / "elsewhere", None)
    missing = elsewhere.add_path(tiny_bundle(tmp_path, "gone"), cid_version=1, pin=True)
    registry.set_subsystem_frontend("gone", missing)
    gone = httpx.get(node.url + "/s/gone/", timeout=10)
    assert gone.status_code == 200 and gone.content == system_index(node.url)
    assert gone.headers[SOURCE_HEADER].startswith("system fallback (missing)")

    unknown = httpx.get(node.url + "/s/no-such-subsystem/", timeout=10)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # a browser: a page
    page = httpx.get(node.url + "/s/<b>nope/", headers=browser, timeout=10)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "No subsystem “&lt;b&gt;nope”" in page.text and "<b>" not in page.text

    outsider = Account.create()
    node.node.chain.fund(outsider.address, FUNDING_WEI)
    as_outsider = Registry(node.node.chain.w3, registry.address, outsider)
    with pytest.raises(NotSubsystemAdmin):
        publish_subsystem(node.node.store, as_outsider, "plain", bundle)
    with pytest.raises(FrontendError, match="no subsystem"):
        publish_subsystem(node.node.store, registry, "no-such-subsystem", bundle)
    assert registry.subsystem_frontend("plain") == ""


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
        bundle = tiny_bundle(tmp_path, "main")
        sub = subprocess.run(
            [sys.executable, "-m", "node.cli.main", "frontend", "publish", "--subsystem", "main",
             "--data-dir", str(proc.data_dir), "--build-dir", str(bundle)],
            env=proc.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sub.returncode == 0, sub.stderr
        sub_cid = sub.stdout.strip().splitlines()[-1]
        assert sub_cid.startswith("bafy") and sub_cid != cid
        served = httpx.get(f"{proc.url}/s/main/", timeout=10)
        assert served.content == (bundle / "index.html").read_bytes()
        assert served.headers[SOURCE_HEADER] == f"ipfs {sub_cid} subsystem main"
    finally:
        proc.stop()
    pins = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "ipfs", "pin", "ls",
         "--data-dir", str(proc.data_dir)],
        env=proc.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cid in pins.stdout


def test_cli_publish_with_a_subsystem_admins_own_key(node: InProcessNode, tmp_path: Path) -> None:
    """`frontend publish --subsystem S --key-env K`: the admin's wallet (no ether) signs, the
    node relays; a wallet that is not an admin of S is refused with exit 5 and nothing set."""
    from typer.testing import CliRunner

    from node.cli.main import app
    from node.cli.status import ExitStatus
    from node.client import Client

    owner, stranger = Account.create(), Account.create()
    Client(node.url, owner).create_subsystem("studio")
    bundle = tiny_bundle(tmp_path, "studio")
    args = ["frontend", "publish", "--subsystem", "studio", "--build-dir", str(bundle),
            "--data-dir", str(node.node.settings.data_dir), "--key-env", "ADMIN_KEY",
            "--url", node.url]  # fmt: skip
    refused = CliRunner().invoke(app, args, env={"ADMIN_KEY": stranger.key.hex()})
    assert refused.exit_code == ExitStatus.NOT_ADMIN, refused.output
    assert node.node.registry.subsystem_frontend("studio") == ""
    done = CliRunner().invoke(app, args, env={"ADMIN_KEY": owner.key.hex()})
    assert done.exit_code == 0, done.output
    cid = done.stdout.strip()
    assert node.node.registry.subsystem_frontend("studio") == cid
    index = httpx.get(node.url + "/s/studio/", timeout=10)
    assert index.content == (bundle / "index.html").read_bytes()
    assert node.node.chain.w3.eth.get_balance(owner.address) == 0
