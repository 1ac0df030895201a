"""Peers for multi-node tests: real nodes sharing one anvil chain and one registry, and a
gateway that tampers with the blocks it relays."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.node import InProcessNode, in_process_node

#: Long enough that, after its first round at start-up, a node's sync loop waits for the test to
#: drive rounds with ``syncer.run_once()``.
IDLE_SYNC_INTERVAL = 3600.0


@contextlib.contextmanager
def peer_node(
    data_dir: Path, chain_url: str, registry: str | None = None, **settings: Any
) -> Iterator[InProcessNode]:
    """Yield a running node on ``chain_url``; it deploys a registry unless ``registry`` is given."""
    settings.setdefault("sync_interval", IDLE_SYNC_INTERVAL)
    with in_process_node(
        data_dir, init={"registry": registry}, chain_url=chain_url, **settings
    ) as running:
        yield running


class TamperingGateway:
    """A real HTTP server posing as a peer: it relays ``/ipfs/...`` from ``upstream`` and flips
    the last byte of every answer, so each block it serves has the wrong hash."""

    def __init__(self) -> None:
        self.upstream = ""
        self.requests = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                gateway.requests += 1
                if not gateway.upstream:
                    self.send_error(503)
                    return
                answer = httpx.get(
                    gateway.upstream + self.path, headers=dict(self.headers), timeout=10
                )
                body = bytearray(answer.content)
                if answer.status_code == 200 and body:
                    body[-1] ^= 0xFF
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(bytes(body))

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TamperingGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
