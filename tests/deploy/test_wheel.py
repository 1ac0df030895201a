"""The wheel carries everything a node needs, and runs from any folder with no source tree.

Built with ``pip wheel`` from a copy of the checkout's committed files (as a clean clone would
be), then:
- its ``node/_bundle`` equals the sources byte for byte (contract artifacts, migrations, built
  front-end);
- installed (``--no-deps``) into a fresh venv that sees this interpreter's site-packages for the
  dependencies only (a full dependency install takes minutes; the Docker image build in
  test_compose_up.py installs the wheel with all its dependencies from the index into a clean
  image), ``collegium up`` runs from an empty folder: ``node`` is imported from the venv, ``/``
  is served from the front-end CID that ``/health`` names, ``/ipfs/<cid>/`` answers, and
  ``/docs`` loads in chromium with no request leaving 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.devnet import free_port
from node.resources import SOURCES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _committed_copy(target: Path) -> Path:
    """Copy the files git tracks (what a clean clone has) to ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        relative = Path(raw.decode())
        source = ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = _committed_copy(work / "clone")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(work / "dist"),
         str(source)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (built,) = (work / "dist").glob("collegium-*.whl")
    return built


def test_the_wheel_carries_the_sources_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for bundled_name, source in SOURCES.items():
            source_dir = ROOT / source
            expected = {
                p.relative_to(source_dir).as_posix(): p
                for p in source_dir.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            }
            prefix = f"node/_bundle/{bundled_name}/"
            carried = {n.removeprefix(prefix) for n in names if n.startswith(prefix)}
            assert carried == set(expected), f"{bundled_name}: {carried ^ set(expected)}"
            for relative, path in expected.items():
                assert archive.read(prefix + relative) == path.read_bytes(), relative
        assert "node/py.typed" in names
        metadata = archive.read(
            next(n for n in names if n.endswith(".dist-info/METADATA"))
        ).decode()
    for declared in ("eth-utils", "eth-keys", "eth-abi", "eth-hash", "eth-typing", "hexbytes",
                     "fastapi-offline"):  # fmt: skip
        assert f"Requires-Dist: {declared}" in metadata, declared


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-deps", "--quiet", str(wheel)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return venv


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLEGIUM_")}
    env.pop("PYTHONPATH", None)
    env["COLLEGIUM_PASSWORD"] = secrets.token_hex(8)
    return env


def test_version_and_package_come_from_the_venv(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(installed / "bin" / "collegium"), "--version"], cwd=tmp_path, env=_clean_env(),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.startswith("collegium ")
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import node, node.resources as r; print(node.__file__); print(r.source_checkout())"],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    assert where[0].startswith(str(installed)), where
    assert where[1] == "None", "the installed package found a source checkout"


@pytest.fixture(scope="module")
def running(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("anywhere")
    port = free_port()
    log = (folder / "up.log").open("wb")
    proc = subprocess.Popen(
        [str(installed / "bin" / "collegium"), "up", "--data-dir", str(folder / "data"),
         "--port", str(port)],
        cwd=folder, env=_clean_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError((folder / "up.log").read_text()[-4000:])
            try:
                if httpx.get(url + "/livez", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (folder / "up.log").read_text()[-4000:]
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_up_serves_the_front_end_from_ipfs(running: str) -> None:
    health: dict[str, Any] = httpx.get(running + "/health", timeout=10).json()
    frontend = health["frontend"]
    assert frontend["cid"] and frontend["cid"] == frontend["bundled"], frontend
    assert frontend["up_to_date"] is True
    page = httpx.get(running + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["x-collegium-frontend"] == f"ipfs {frontend['cid']}"
    assert httpx.get(f"{running}/ipfs/{frontend['cid']}/", timeout=10).status_code == 200
    assert httpx.get(f"{running}/ipfs/{frontend['cid']}/index.html", timeout=10).text == page.text


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_offline_in_chromium(running: str, path: str) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/install.sh installs it)")
    from playwright.sync_api import sync_playwright

    html = httpx.get(running + path, timeout=10).text
    assert "cdn." not in html and "https://" not in html.split("<body")[0], html[:600]
    requested: list[str] = []
    blocked: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            # the page's Content-Security-Policy stops the browser before it sends these
            page.on(
                "requestfailed",
                lambda request: (
                    blocked.append(request.url)
                    if "csp" in (request.failure or "").lower()
                    else None
                ),
            )
            page.goto(running + path, wait_until="networkidle", timeout=30_000)
            if path == "/docs":
                page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
                assert "Collegium node" in page.inner_text(".swagger-ui .title")
            else:
                page.wait_for_selector("redoc .api-content, .api-content", timeout=30_000)
        finally:
            browser.close()
    outside = [
        u
        for u in requested
        if not u.startswith(("http://127.0.0.1", "data:", "blob:")) and u not in blocked
    ]
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert any("/openapi.json" in u for u in requested)
