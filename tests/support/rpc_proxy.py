"""A fault-injecting JSON-RPC proxy: a real HTTP server in front of a real chain (anvil).

It forwards every request to ``upstream`` and, as switched on in :class:`Faults`, does
what public providers do:

* ``eth_getLogs`` range cap (``max_logs_range``) and result cap (``max_logs_results``:
  "query returned more than N results"), as JSON-RPC errors;
* HTTP 429 with ``Retry-After`` every ``rate_limit_every``-th request;
* a timeout every ``timeout_every``-th request (holds the request ``timeout_seconds``,
  then closes the connection; the request is not forwarded);
* a dropped response every ``drop_every``-th request of ``drop_methods`` *after* the
  request was applied upstream (the connection is closed instead of the answer);
* a lagging backend every ``lag_every``-th request: ``latest`` is ``lag_blocks`` behind,
  blocks and receipts (``eth_getBlockReceipts`` too) above it are null and ``eth_getLogs``
  is clamped to it (a load balancer in front of a backend that has not caught up: it
  answers, it does not fail);
* ``down``: every request answers 503;
* ``refused_methods``: answered "method not available" (a provider that does not serve them);
* ``no_finality_tags``: ``safe``/``finalized`` blocks are refused (a pre-merge chain).

Counters (``counts``) say what was injected, so a test can check the faults happened.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


@dataclass
class Faults:
    """What the proxy does wrong (every field may be changed while it runs)."""

    max_logs_range: int | None = None
    max_logs_results: int | None = None
    rate_limit_every: int | None = None
    retry_after: str = "1"
    timeout_every: int | None = None
    timeout_seconds: float = 1.5
    drop_every: int | None = None
    drop_methods: frozenset[str] = frozenset({"eth_sendRawTransaction"})
    lag_every: int | None = None
    lag_blocks: int = 0
    down: bool = False
    #: answer "safe"/"finalized" block tags with an error (a pre-merge chain or old client)
    no_finality_tags: bool = False
    #: methods answered "does not exist/is not available" (-32601), as a provider that does not
    #: serve them (e.g. ``eth_getBlockReceipts``)
    refused_methods: frozenset[str] = frozenset()
    #: requests that are never faulted (test setup through the proxy)
    exempt_methods: frozenset[str] = frozenset()


@dataclass
class RpcProxy:
    """The running proxy; ``url`` is what a node is given."""

    upstream: str
    faults: Faults = field(default_factory=Faults)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = 0
        self._drop_seen = 0
        self._session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                proxy._handle(self)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that gave up (timeouts) reset their connections: expected

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._session.close()

    def __enter__(self) -> RpcProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- upstream ---------------------------------------------------------------------------

    def call(self, method: str, params: list[Any]) -> Any:
        """Return the upstream's result for one request (no fault; for the harness)."""
        answer = self._forward({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result")

    def _forward(self, request: Any) -> Any:
        response = self._session.post(self.upstream, json=request, timeout=30)
        return response.json()

    # -- one request ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        request = json.loads(handler.rfile.read(length) or b"null")
        method = request.get("method", "") if isinstance(request, dict) else ""
        faults = self.faults
        with self._lock:
            self.counts["requests"] += 1
            self.counts[f"method:{method}"] += 1
            exempt = method in faults.exempt_methods
            if not exempt:
                self._seen += 1
            n = self._seen
        if not exempt:
            if faults.down:
                self.counts["down"] += 1
                self._reply(handler, 503, b"service unavailable")
                return
            if faults.rate_limit_every and n % faults.rate_limit_every == 0:
                self.counts["429"] += 1
                self._reply(handler, 429, b"rate limited", {"Retry-After": faults.retry_after})
                return
            if faults.timeout_every and n % faults.timeout_every == 0:
                self.counts["timeout"] += 1
                time.sleep(faults.timeout_seconds)
                handler.close_connection = True
                return
        if not isinstance(request, dict):
            self._reply_json(handler, self._forward(request))
            return
        lagging = bool(
            not exempt and faults.lag_every and faults.lag_blocks and n % faults.lag_every == 0
        )
        answer = self._answer(request, method, lagging)
        if answer is None:
            return
        if not exempt and method in faults.drop_methods and faults.drop_every:
            with self._lock:
                self._drop_seen += 1
                drop = self._drop_seen % faults.drop_every == 0
            if drop:
                self.counts["dropped"] += 1
                handler.close_connection = True
                return
        self._reply_json(handler, answer)

    def _answer(self, request: dict[str, Any], method: str, lagging: bool) -> Any:
        faults = self.faults
        params = list(request.get("params") or [])
        lag_head: int | None = None
        if lagging:
            lag_head = max(0, int(self.call("eth_blockNumber", []), 16) - faults.lag_blocks)
            self.counts["lagged"] += 1
            if method == "eth_blockNumber":
                return _result(request, hex(lag_head))
            if method in ("eth_getBlockByNumber",) and params:
                tag = params[0]
                if tag in ("latest", "pending", "safe", "finalized"):
                    params[0] = hex(lag_head)
                elif isinstance(tag, str) and tag.startswith("0x") and int(tag, 16) > lag_head:
                    return _result(request, None)
            if method == "eth_getTransactionReceipt":
                answer = self._forward(request)
                receipt = answer.get("result")
                if receipt and int(receipt["blockNumber"], 16) > lag_head:
                    return _result(request, None)
                return answer
            if method == "eth_getBlockReceipts":
                answer = self._forward(request)
                receipts = answer.get("result")
                if receipts and int(receipts[0]["blockNumber"], 16) > lag_head:
                    return _result(request, None)
                return answer
        if method in faults.refused_methods:
            self.counts[f"refused:{method}"] += 1
            return _error(request, -32601, f"the method {method} does not exist/is not available")
        if (
            faults.no_finality_tags
            and method == "eth_getBlockByNumber"
            and params
            and params[0] in ("safe", "finalized")
        ):
            self.counts["tag_refused"] += 1
            return _error(request, -32602, f"unknown block tag {params[0]}")
        if method == "eth_getLogs" and params and isinstance(params[0], dict):
            query = dict(params[0])
            if "blockHash" not in query:
                head = lag_head
                if head is None:
                    head = int(self.call("eth_blockNumber", []), 16)
                first = _block_param(query.get("fromBlock", "latest"), head)
                last = min(_block_param(query.get("toBlock", "latest"), head), head)
                if faults.max_logs_range and last - first + 1 > faults.max_logs_range:
                    self.counts["logs_range_refused"] += 1
                    return _error(
                        request, -32005, f"block range too large: max {faults.max_logs_range}"
                    )
                if lag_head is not None:
                    if last < first:  # all of it above the lagging head: nothing (as geth)
                        return _result(request, [])
                    query["toBlock"] = hex(last)
                    query["fromBlock"] = hex(first)
                params[0] = query
        answer = self._forward({**request, "params": params})
        if method == "eth_getLogs" and faults.max_logs_results is not None:
            result = answer.get("result")
            if isinstance(result, list) and len(result) > faults.max_logs_results:
                self.counts["logs_results_refused"] += 1
                return _error(
                    request,
                    -32005,
                    f"query returned more than {faults.max_logs_results} results",
                )
        return answer

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _reply_json(self, handler: BaseHTTPRequestHandler, answer: Any) -> None:
        body = json.dumps(answer).encode()
        self._reply(handler, 200, body, {"Content-Type": "application/json"})


def _block_param(value: Any, head: int) -> int:
    if isinstance(value, int):
        return value
    if value in (None, "latest", "pending", "safe", "finalized"):
        return head
    if value == "earliest":
        return 0
    return int(str(value), 16)


def _result(request: dict[str, Any], result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}


def _error(request: dict[str, Any], code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request.get("id"), "error": {"code": code, "message": message}}
