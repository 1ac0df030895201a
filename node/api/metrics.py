"""Prometheus metrics of one node's API, served as text at ``GET /metrics``.

One ``CollectorRegistry`` per app (several nodes may run in one test process).
Counts requests by method and status, a latency histogram, proxied requests and
failovers by role (the router reports them), the epoch in force and the chain head.
"""

from __future__ import annotations

import contextlib
import time
from http import HTTPStatus
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.health import HEALTH_REASONS

METRICS_PATH: Final = "/metrics"
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Label values are bounded: any other method (a client may send any token) counts as ``other``,
#: and so does a status outside the registered HTTP codes (a relayed peer answer may carry any).
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)
KNOWN_STATUSES: Final = frozenset(str(int(s)) for s in HTTPStatus)
OTHER: Final = "other"

router = APIRouter(tags=["metrics"])


class Metrics:
    """The node's collectors; also the router's ``RouterObserver``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "collegium_http_requests", "HTTP requests served", ["method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "collegium_http_request_duration_seconds", "Time to answer a request",
            ["method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.proxied = Counter(
            "collegium_proxied_requests", "Requests proxied to a role's host", ["role"],
            registry=self.registry,
        )  # fmt: skip
        self.failovers = Counter(
            "collegium_proxy_failovers", "Proxy attempts moved to the next host", ["role"],
            registry=self.registry,
        )  # fmt: skip
        self.epoch = Gauge("collegium_epoch", "Epoch in force", registry=self.registry)
        self.block = Gauge(
            "collegium_chain_block", "Chain head seen by the node (sync state)",
            registry=self.registry,
        )  # fmt: skip
        self.degraded = Gauge(
            "collegium_health_degraded", "1 if /health says degraded", registry=self.registry
        )
        self.health_reason = Gauge(
            "collegium_health_reason", "1 while /health lists this reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self.clock_lead = Gauge(
            "collegium_chain_clock_lead_seconds",
            "Newest embedded block's timestamp minus the wall clock", registry=self.registry,
        )  # fmt: skip
        self.rate_limited = Counter(
            "collegium_rate_limited", "Requests refused with 429", registry=self.registry
        )

    def on_proxied(self, role: str) -> None:
        """Count one proxied request of ``role``."""
        self.proxied.labels(role=role).inc()

    def on_failover(self, role: str) -> None:
        """Count one failover of ``role``."""
        self.failovers.labels(role=role).inc()

    def on_epoch(self, epoch: int) -> None:
        """Record the epoch in force."""
        self.epoch.set(epoch)

    def render(self) -> bytes:
        """Return the Prometheus text exposition of every collector."""
        return bytes(generate_latest(self.registry))


def compute_method_label(method: str) -> str:
    """Return the ``method`` label of a request: the method if standard, else ``other``."""
    return method if method in KNOWN_METHODS else OTHER


class MetricsMiddleware:
    """Count every HTTP request and time it (outermost middleware)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # the labelled children, looked up once (``labels()`` takes a lock and builds a key
        # per call); the label values are bounded (methods and statuses), so is this cache
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            method = compute_method_label(str(scope["method"]))
            code = str(status) if str(status) in KNOWN_STATUSES else OTHER
            counted = self._counted.get((method, code))
            if counted is None:
                counted = self._counted[method, code] = self.metrics.requests.labels(
                    method=method, status=code
                )
            counted.inc()
            timed = self._timed.get(method)
            if timed is None:
                timed = self._timed[method] = self.metrics.latency.labels(method=method)
            timed.observe(time.perf_counter() - start)


def record_health(metrics: Metrics, health: dict[str, Any]) -> None:
    """Set the health gauges from a ``/health`` body: degraded, each reason, the clock lead."""
    listed = {str(r.get("code")) for r in health.get("reasons") or []}
    metrics.degraded.set(0 if health.get("status") == "ok" else 1)
    for code in HEALTH_REASONS:
        metrics.health_reason.labels(reason=code).set(1 if code in listed else 0)
    lead = (health.get("chain") or {}).get("clock_lead_seconds")
    if lead is not None:
        metrics.clock_lead.set(float(lead))


@router.get(METRICS_PATH, include_in_schema=False)
def metrics(request: Request) -> Response:
    """Return the node's metrics in Prometheus text format."""
    collected: Metrics = request.app.state.metrics
    node = getattr(request.app.state, "node", None)
    if node is not None:
        # read through /health's body: it probes the chain once (the node's own provider
        # retries for up to a minute) and a chain that does not answer hides no other metric
        with contextlib.suppress(Exception):
            health = node.health()
            record_health(collected, health)
            block = (health.get("chain") or {}).get("block_number")
            if block is not None:
                collected.block.set(int(block))
            if health.get("epoch") is not None:
                collected.epoch.set(int(health["epoch"]))
    return Response(collected.render(), media_type=CONTENT_TYPE_LATEST)
