"""Rate limits (``node.api.ratelimit``): token buckets on a fake clock, and the middleware."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from node.api.ratelimit import RateLimitMiddleware, TokenBuckets


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_grants_burst_then_waits_for_refill() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == 0.5  # 1 token at 2 tokens/s
    assert buckets.take("b") == 0.0  # buckets are per key
    clock.now += 0.25  # half a token
    assert buckets.take("a") == 0.25
    clock.now += 0.25
    assert buckets.take("a") == 0.0
    clock.now += 60  # refill stops at the burst
    assert [buckets.take("a") for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


def app_with_limit(buckets: TokenBuckets, limited: list[int]) -> TestClient:
    def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/x", ok), Route("/health", ok)])
    app = RateLimitMiddleware(inner, buckets, on_limited=lambda: limited.append(1))
    return TestClient(app)


def test_middleware_answers_429_with_retry_after_and_exempts_health() -> None:
    clock = FakeClock()
    limited: list[int] = []
    client = app_with_limit(TokenBuckets(rate=0.5, burst=1, clock=clock), limited)
    assert client.get("/x").status_code == 200
    refused = client.get("/x")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"  # 1 token at 0.5/s
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert limited == [1]
    assert client.get("/health").status_code == 200  # exempt, even when out of tokens
    clock.now += 2
    assert client.get("/x").status_code == 200
