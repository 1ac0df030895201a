"""Nothing an outsider sends can crash a node's parsers: deep JSON on every JSON route.

A real ``collegium up`` process (embedded chain and store) is sent ``[`` × 100,000 on every
POST/PUT/PATCH route its OpenAPI lists, plus ``/rpc``; a crash (SIGSEGV) would show as a dead
process. Each must answer a 400 problem+json naming the limit, and the node must still serve.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.node import NodeProcess, node_process

DEEP = b"[" * 100_000  # 100 KB; killed the node with SIGSEGV before json_max_depth
JSON = {"content-type": "application/json"}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    running = node_process(tmp_path_factory.mktemp("parsing"))
    running.env.update(COLLEGIUM_EPOCH_SERVICE="false", COLLEGIUM_SYNC="false")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def json_routes(url: str) -> list[str]:
    """Return every path taking a body (POST/PUT/PATCH) in the node's OpenAPI, plus /rpc,
    except those whose body is declared binary only (a subsystem front-end's archive)."""
    spec = httpx.get(url + "/openapi.json", timeout=10).json()

    def takes_json(operation: dict[str, Any]) -> bool:
        media = operation.get("requestBody", {}).get("content", {"application/json": {}})
        return "application/json" in media

    paths = {
        re.sub(r"\{[^}]+\}", "main", path)
        for path, operations in spec["paths"].items()
        if any(takes_json(operations[m]) for m in ("post", "put", "patch") if m in operations)
    }
    return sorted(paths | {"/rpc"})


def assert_alive(node: NodeProcess) -> None:
    assert node.proc is not None and node.proc.poll() is None, "the node process died"
    health = httpx.get(node.url + "/health", timeout=10)
    assert health.status_code == 200, health.text


def assert_too_deep(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == 400
    assert "nested too deeply" in problem["title"]
    assert "json_max_depth" in problem["detail"] and "limit is 64" in problem["detail"]


def test_deep_json_is_refused_on_every_json_route(node: NodeProcess) -> None:
    routes = json_routes(node.url)
    assert {"/api/v1/auth/login", "/api/v1/transactions/batch", "/rpc"} <= set(routes)
    for path in routes:
        response = httpx.post(node.url + path, content=DEEP, headers=JSON, timeout=30)
        assert_alive(node)
        if response.status_code == 413:  # POST /api/v1/transactions: max_tx_bytes (16 KiB)
            assert response.headers["content-type"].startswith(PROBLEM)
        else:
            assert_too_deep(response)
        # under every size limit, so the depth limit must answer
        assert_too_deep(httpx.post(node.url + path, content=DEEP[:10_000], headers=JSON))


def test_deep_json_is_refused_whatever_the_content_type_or_framing(node: NodeProcess) -> None:
    # /rpc parses its body whatever the Content-Type says; chunked bodies have no length
    for headers in ({"content-type": "text/plain"}, {}):
        assert_too_deep(httpx.post(node.url + "/rpc", content=DEEP, headers=headers, timeout=30))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(DEEP), 4096):
            yield DEEP[start : start + 4096]

    chunked = httpx.post(node.url + "/api/v1/auth/login", content=chunks(), headers=JSON)
    assert_too_deep(chunked)
    # brackets hidden in a string do not count; escaped quotes do not end the string
    hidden = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[],"x":"\\"' + DEEP + b'"}'
    answer = httpx.post(node.url + "/rpc", content=hidden, headers=JSON, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "0x539"
    # ... but a string closed early leaves the brackets outside it
    early = b'{"x":"\\\\"' + DEEP + b'"}'
    assert_too_deep(httpx.post(node.url + "/rpc", content=early, headers=JSON, timeout=30))
    assert_alive(node)


def test_json_within_the_depth_limit_is_parsed(node: NodeProcess) -> None:
    nested = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[],"x":'
    nested += b"[" * 60 + b"]" * 60 + b"}"
    answer = httpx.post(node.url + "/rpc", content=nested, headers=JSON, timeout=30)
    assert answer.status_code == 200 and answer.json()["result"] == "0x539"


def test_json_not_in_utf8_is_refused(node: NodeProcess) -> None:
    # UTF-16 code units can carry a '"' byte inside a character; RFC 8259 JSON is UTF-8
    body = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}'.encode("utf-16-le")
    response = httpx.post(node.url + "/rpc", content=body, headers=JSON, timeout=30)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "UTF-8" in response.json()["detail"]
    assert_alive(node)


def test_oversized_body_is_refused_before_parsing(node: NodeProcess) -> None:
    body = b'{"x":"' + b"a" * (1024 * 1024) + b'"}'
    response = httpx.post(node.url + "/api/v1/auth/login", content=body, headers=JSON, timeout=30)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert_alive(node)
