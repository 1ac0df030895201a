"""Schemathesis against a running node's OpenAPI: no 5xx, nothing stored from bad input.

Bounded: ``EXAMPLES_PER_OPERATION`` generated cases per operation (about 1,000 in all),
over real HTTP on 127.0.0.1, in well under a minute on this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.node import InProcessNode, in_process_node

EXAMPLES_PER_OPERATION = 40
CALL_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "node"
    with in_process_node(data_dir, rate_limit=0) as node:
        yield node


@pytest.fixture(scope="module")
def api_schema(running: InProcessNode) -> Any:
    return schemathesis.openapi.from_url(running.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")
CASES: list[int] = []


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: Any) -> None:
    response = case.call(timeout=CALL_TIMEOUT)
    CASES.append(response.status_code)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )


def test_nothing_was_stored_from_invalid_input(running: InProcessNode) -> None:
    assert len(CASES) >= 500, f"only {len(CASES)} cases ran"
    count = running.node.ledger.count()
    assert (sum(count.values()) if isinstance(count, dict) else count) == 0, count
    print(f"schemathesis: {len(CASES)} cases, {sum(s >= 500 for s in CASES)} server errors")
    subsystems = running.node.settings.data_dir / "subsystems"
    assert not subsystems.exists() or not any(subsystems.iterdir())
    health = httpx.get(running.url + "/health", timeout=10)
    assert health.status_code == 200
