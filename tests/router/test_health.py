"""node.router.health: probes of real local HTTP servers are bounded in size and time and
follow no redirect."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from node.router.health import PROBE_TIMEOUT, PeerHealth


class Peer:
    """Answers ``/livez`` as told: ``ok``, ``huge`` (an endless body), ``drip`` (slow bytes)
    or ``redirect`` (to ``/target``, which counts its hits)."""

    def __init__(self, mode: str) -> None:
        self.target_hits = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/target":
                    peer.target_hits += 1
                if mode == "redirect" and self.path == "/livez":
                    self.send_response(307)
                    self.send_header("Location", "/target")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.end_headers()
                try:
                    if mode == "huge":
                        for _ in range(10_000):
                            self.wfile.write(b"x" * 1024)
                    elif mode == "drip":
                        for _ in range(50):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            time.sleep(0.1)
                    else:
                        self.wfile.write(b'{"status":"ok"}')
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    running = Peer(request.param)
    try:
        yield running
    finally:
        running.close()


async def _probe(url: str) -> tuple[bool, float]:
    async with httpx.AsyncClient() as client:
        start = time.monotonic()
        up = await PeerHealth(client).probe(url)
        return up, time.monotonic() - start


@pytest.mark.parametrize(("peer", "up"), [("ok", True), ("huge", False), ("drip", False),
                                          ("redirect", False)], indirect=["peer"])  # fmt: skip
def test_probe_is_bounded(peer: Peer, up: bool) -> None:
    result, took = asyncio.run(_probe(peer.url))
    assert result is up
    assert took < PROBE_TIMEOUT + 1.0
    assert peer.target_hits == 0
