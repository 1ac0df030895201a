"""Per-client rate limits: a token bucket per client address; 429 problem+json beyond it."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from node.asgi import send_problem

EXEMPT_PATHS: Final = frozenset({"/health", "/livez", "/metrics"})
MAX_BUCKETS: Final = 100_000
HOPS_HEADER: Final = b"x-collegium-hops"


@dataclass
class Bucket:
    """Tokens left and when they were last counted."""

    tokens: float
    at: float


class TokenBuckets:
    """Token buckets of ``rate`` tokens/s holding at most ``burst``, one per key."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        assert rate > 0 and burst >= 1
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token for ``key``; return 0 if granted, else seconds until one is due."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._buckets.clear()  # bounded memory; a reset only forgives
                bucket = self._buckets[key] = Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


class RateLimitMiddleware:
    """Refuse a client's requests beyond its bucket with 429 and ``Retry-After``.

    A request relayed by a peer node (``X-Collegium-Hops`` > 0 from an address that
    ``is_peer_host`` accepts) is not counted again: the entry node already limited it.
    """

    def __init__(
        self,
        app: ASGIApp,
        buckets: TokenBuckets,
        on_limited: Callable[[], None] | None = None,
        is_peer_host: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.on_limited = on_limited
        self.is_peer_host = is_peer_host

    def _is_relayed(self, scope: Scope, host: str) -> bool:
        if self.is_peer_host is None:
            return False
        for name, value in scope.get("headers", []):
            if name == HOPS_HEADER and value not in (b"", b"0"):
                return self.is_peer_host(host)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = str(client[0]) if client else "unknown"
        if self._is_relayed(scope, key):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(key)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        if self.on_limited is not None:
            self.on_limited()
        await send_problem(
            send,
            429,
            "too many requests",
            f"rate limit of {self.buckets.rate:g}/s exceeded; retry in {wait:.2f}s",
            [(b"retry-after", str(max(1, math.ceil(wait))).encode())],
        )
