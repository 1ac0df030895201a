"""Fixtures for the browser tests: a real node, Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.node import InProcessNode, in_process_node

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_MS: Final = 30_000
BUILD_DIR: Final = Path(__file__).resolve().parents[2] / "frontend" / "dist"
SCREENSHOTS_ENV: Final = "COLLEGIUM_SCREENSHOTS"


def _require_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/install.sh installs it)")
    if not (BUILD_DIR / "index.html").exists():
        pytest.fail("frontend/dist is missing: run `npm run build` in frontend/")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    """Yield a real node on 127.0.0.1 (embedded chain and store)."""
    with in_process_node(tmp_path_factory.mktemp("fe") / "node") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Yield a headless chromium (the system binary; never ``playwright install``)."""
    _require_browser()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """Yield a fresh browser context (no wallet) with downloads allowed."""
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    ctx.set_default_timeout(PAGE_TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return where screenshots go: ``$COLLEGIUM_SCREENSHOTS`` (``docs/screenshots`` to refresh
    the README's pictures), else a temporary directory."""
    target = os.environ.get(SCREENSHOTS_ENV)
    if not target:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path
