"""Per-client rate limits: a token bucket per client address; 429 problem+json beyond it."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from node.asgi import send_problem
from node.auth.peer import PEER_HEADER, PeerVerifier

EXEMPT_PATHS: Final = frozenset({"/health", "/livez", "/metrics"})
MAX_BUCKETS: Final = 100_000
HOPS_HEADER: Final = b"x-collegium-hops"
PEER_HEADER_BYTES: Final = PEER_HEADER.encode()
STATE_PEER: Final = "collegium_peer"  # read by the router (node/router/proxy.py)


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

    The bucket is the client's IP address (X-Forwarded-For counts only from proxies the
    operator trusts: the server's ``proxy_headers``). A request whose ``Collegium-Peer``
    signature recovers to a registered node (``peer_verifier``) is counted in that node's own,
    larger bucket (``peer_buckets``; ``None``: not limited), since it carries many clients'
    requests; a self-declared ``X-Collegium-Hops`` counts for nothing here.
    """

    def __init__(
        self,
        app: ASGIApp,
        buckets: TokenBuckets,
        on_limited: Callable[[], None] | None = None,
        peer_verifier: PeerVerifier | None = None,
        peer_buckets: TokenBuckets | None = None,
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.on_limited = on_limited
        self.peer_verifier = peer_verifier
        self.peer_buckets = peer_buckets

    async def _peer(self, scope: Scope) -> str | None:
        verifier = self.peer_verifier
        state = scope.setdefault("state", {})
        value, hops = "", 0
        for name, raw in scope.get("headers", []):
            if name == PEER_HEADER_BYTES:
                value = raw.decode("latin-1")
            elif name == HOPS_HEADER:
                try:
                    hops = int(raw)
                except ValueError:
                    hops = -1
        if verifier is None or not value:
            return None
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        method = scope["method"]
        peer = await anyio.to_thread.run_sync(lambda: verifier.verify(method, target, hops, value))
        state[STATE_PEER] = peer
        return peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        peer = await self._peer(scope)
        if peer is not None:
            if self.peer_buckets is None:
                await self.app(scope, receive, send)
                return
            buckets, key = self.peer_buckets, "peer:" + peer
        else:
            client = scope.get("client")
            buckets, key = self.buckets, str(client[0]) if client else "unknown"
        wait = buckets.take(key)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        if self.on_limited is not None:
            self.on_limited()
        await send_problem(
            send,
            429,
            "too many requests",
            f"rate limit of {buckets.rate:g}/s exceeded; retry in {wait:.2f}s",
            [(b"retry-after", str(max(1, math.ceil(wait))).encode())],
        )
