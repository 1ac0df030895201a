"""One real in-process node (embedded chain, real store and DB) shared by the auth tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.node import InProcessNode, in_process_node


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data_dir: Path = tmp_path_factory.mktemp("auth") / "node"
    with in_process_node(data_dir, epoch_service=False, sync=False) as node:
        yield node


@pytest.fixture(scope="module")
def rules(running: InProcessNode) -> dict[str, Any]:
    import httpx

    return dict(httpx.get(running.url + "/api/v1/auth/nonce", timeout=10).json())
