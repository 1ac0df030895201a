"""/metrics in Prometheus text, per-client rate limits (429) and CORS, on a real node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from node.api.metrics import Metrics
from node.api.ratelimit import TokenBuckets
from node.auth.peer import PEER_HEADER, sign_peer_request
from tests.support.node import InProcessNode, in_process_node

RATE = 0.05  # one token per 20 s: the burst runs out during the test
BURST = 5
FRONTEND_ORIGIN = "http://localhost:5173"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data_dir: Path = tmp_path_factory.mktemp("metrics") / "node"
    with in_process_node(
        data_dir, epoch_service=False, sync=False, rate_limit=RATE, rate_burst=BURST,
        cors_origins=[FRONTEND_ORIGIN],
    ) as node:  # fmt: skip
        yield node


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_metrics_count_requests_latency_epoch_and_limits(running: InProcessNode) -> None:
    # exempt from the limit: /health and /metrics
    for _ in range(BURST + 3):
        assert httpx.get(running.url + "/health", timeout=10).status_code == 200
    statuses = [httpx.get(running.url + "/api/v1/subsystems", timeout=10).status_code
                for _ in range(BURST + 2)]  # fmt: skip
    assert statuses[:BURST] == [200] * BURST
    assert statuses[-1] == 429
    limited = httpx.get(running.url + "/api/v1/subsystems", timeout=10)
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert int(limited.headers["retry-after"]) >= 1
    # a self-declared hop count is no way around the limit (issue 16)...
    claimed = httpx.get(running.url + "/api/v1/subsystems", headers={"x-collegium-hops": "1"})
    assert claimed.status_code == 429
    # ...a request a registered node signed (here: this node itself) counts in its own bucket
    peer = sign_peer_request(running.node.account, "GET", "/api/v1/subsystems", 1, int(time.time()))
    relayed = httpx.get(
        running.url + "/api/v1/subsystems", headers={"x-collegium-hops": "1", PEER_HEADER: peer}
    )
    assert relayed.status_code == 200

    response = httpx.get(running.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert values["collegium_http_requests_total{method=GET,status=200}"] >= BURST + BURST + 3
    assert values["collegium_http_requests_total{method=GET,status=429}"] >= 2
    assert values["collegium_http_request_duration_seconds_count{method=GET}"] >= BURST + 5
    assert values["collegium_rate_limited_total{}"] >= 2
    assert values["collegium_epoch{}"] == running.node.registry.current_epoch()
    assert values["collegium_chain_block{}"] >= 1


def test_cors_allows_the_frontend_origin_only(running: InProcessNode) -> None:
    preflight = {"Origin": FRONTEND_ORIGIN, "Access-Control-Request-Method": "POST"}
    ok = httpx.options(running.url + "/api/v1/auth/login", headers=preflight, timeout=10)
    assert ok.headers.get("access-control-allow-origin") == FRONTEND_ORIGIN
    assert ok.headers.get("access-control-allow-credentials") == "true"
    evil = {**preflight, "Origin": "https://evil.example"}
    refused = httpx.options(running.url + "/api/v1/auth/login", headers=evil, timeout=10)
    assert "access-control-allow-origin" not in refused.headers


def test_router_events_are_exported() -> None:
    metrics = Metrics()
    metrics.on_proxied("be_subsystem")
    metrics.on_proxied("be_subsystem")
    metrics.on_failover("be_subsystem")
    metrics.on_epoch(12)
    values = samples(metrics.render().decode())
    assert values["collegium_proxied_requests_total{role=be_subsystem}"] == 2
    assert values["collegium_proxy_failovers_total{role=be_subsystem}"] == 1
    assert values["collegium_epoch{}"] == 12


def test_health_reasons_are_exported() -> None:
    from node.api.metrics import record_health

    metrics = Metrics()
    degraded = {
        "status": "degraded",
        "reasons": [{"code": "slot_unserved", "message": "fe_system"}],
        "chain": {"clock_lead_seconds": -0.4},
    }
    record_health(metrics, degraded)
    values = samples(metrics.render().decode())
    assert values["collegium_health_degraded{}"] == 1
    assert values["collegium_health_reason{reason=slot_unserved}"] == 1
    assert values["collegium_health_reason{reason=clock_ahead}"] == 0
    assert values["collegium_chain_clock_lead_seconds{}"] == -0.4
    record_health(metrics, {"status": "ok", "reasons": [], "chain": {}})
    values = samples(metrics.render().decode())
    assert values["collegium_health_degraded{}"] == 0
    assert values["collegium_health_reason{reason=slot_unserved}"] == 0


def test_token_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=2, clock=lambda: now[0])
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0  # per client
    now[0] += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0
