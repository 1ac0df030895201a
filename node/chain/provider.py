"""A JSON-RPC provider over several URLs: failover, backoff, ``Retry-After``.

Public and consortium providers rate-limit (HTTP 429 with ``Retry-After``), time out, drop
connections and go down. :class:`FailoverProvider` sends each request to its current
endpoint and, on a transport failure (connection refused or reset, timeout, HTTP 429, 5xx,
a body that is not JSON-RPC), puts that endpoint in a cooldown -- the ``Retry-After`` it
sent (capped at :data:`RETRY_AFTER_MAX_SECONDS`) or an exponential backoff -- and tries the
next endpoint that is not cooling down; when every endpoint is cooling down it sleeps until
the first one is ready again. It stays on the endpoint that last answered (no flapping
between load-balanced backends whose ``latest`` differ), and asks again for a block that came
back null although an endpoint already reported a head at or above it (a lagging backend).
Only a request sent after the endpoint's last counted failure counts as a new one: requests
that were in flight together fail together, and one outage is not counted once per thread
(eight threads would otherwise reach the longest backoff at once). An answer to a request sent
after that failure ends the cooldown for every thread (before, the other threads sat out the
whole backoff of an endpoint that answered again); so does :meth:`FailoverProvider.note_answered`,
by which a separate probe of the same URLs tells that an endpoint answers.
After :data:`MAX_ATTEMPTS` attempts or :data:`REQUEST_BUDGET_SECONDS` it raises
:class:`ChainUnavailable`. The first ``eth_chainId`` answer is kept: web3 asks for the chain
id before every ``eth_call`` and transaction (twice per call, measured: 40,002 of a
recovery's 60,003 requests), and a provider's chain does not change under a running node.

A JSON-RPC *error answer* is an answer: it is returned as is (the caller decides; a
range-limited ``eth_getLogs`` is paged by :mod:`node.chain.logpager`). Every JSON-RPC method the
node uses may be repeated: reads are idempotent, and a repeated ``eth_sendRawTransaction``
carries the same signed bytes (the nonce manager, :mod:`node.chain.nonces`, tells "already
known" from a new transaction by its hash).
"""

from __future__ import annotations

import email.utils
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import requests
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from node.errors import ChainError

log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 8
"""Attempts of one request over all endpoints before :class:`ChainUnavailable`."""

REQUEST_BUDGET_SECONDS: Final = 60.0
"""Wall-clock budget of one request, waits included."""

BACKOFF_BASE_SECONDS: Final = 0.25
BACKOFF_MAX_SECONDS: Final = 8.0
"""Cooldown of an endpoint after its n-th consecutive failure: base * 2**(n-1), capped."""

RETRY_AFTER_MAX_SECONDS: Final = 30.0
"""The longest ``Retry-After`` honoured (a longer one is cut to this)."""

DEFAULT_TIMEOUT_SECONDS: Final = 10.0

LAGGING_RETRIES: Final = 3
"""Times a null ``eth_getBlockByNumber`` at or below the highest head seen is asked again
(a load-balanced backend that lags answers null for blocks it has not got yet)."""


class ChainUnavailable(ChainError):
    """No endpoint answered a JSON-RPC request within the attempts and time budget."""


@dataclass
class EndpointState:
    """One URL and its health."""

    url: str
    shown: str  # without credentials
    failures: int = 0
    ready_at: float = 0.0  # monotonic time before which it is not asked
    failed_at: float = float("-inf")  # monotonic time of the last counted failure
    requests: int = 0
    errors: int = 0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class FailoverProvider(JSONBaseProvider):
    """A web3 provider over several JSON-RPC URLs (see the module docstring)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        budget: float = REQUEST_BUDGET_SECONDS,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        retry_after_max: float = RETRY_AFTER_MAX_SECONDS,
        shown: Sequence[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        if not urls:
            raise ChainError("no chain RPC URL given")
        names = list(shown) if shown is not None else list(urls)
        self.endpoints = [EndpointState(u, s) for u, s in zip(urls, names, strict=True)]
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.budget = budget
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self._sleep = sleep
        self._current = 0
        self._lock = threading.Lock()
        self._local = threading.local()  # one requests.Session per thread
        self._sessions: list[requests.Session] = []
        self._ids = itertools.count(1)
        self.failovers = 0
        self.highest_head = -1  # the highest eth_blockNumber any endpoint answered
        self.lagging_retries = 0
        self.waited_seconds = 0.0
        self.last_answered: str | None = None  # the URL of the endpoint that answered last
        self._chain_id: RPCResponse | None = None  # the first eth_chainId result

    # -- web3 provider interface ------------------------------------------------------------

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_chainId" and self._chain_id is not None:
            return self._chain_id
        body = self.encode_rpc_request(method, params)
        response = self.decode_rpc_response(self.request_bytes(method, body))
        if method == "eth_chainId" and isinstance(response.get("result"), str):
            self._chain_id = response
        elif method == "eth_blockNumber" and isinstance(response.get("result"), str):
            self.highest_head = max(self.highest_head, int(response["result"], 16))
        elif method == "eth_getBlockByNumber" and self._below_head(params):
            # a null block we know exists: a lagging backend behind a load balancer answered
            for _ in range(LAGGING_RETRIES):
                if response.get("result") is not None or "error" in response:
                    break
                self.lagging_retries += 1
                response = self.decode_rpc_response(self.request_bytes(method, body))
        return response

    def _below_head(self, params: Any) -> bool:
        number = params[0] if isinstance(params, list | tuple) and params else None
        return (
            isinstance(number, str)
            and number.startswith("0x")
            and (int(number, 16) <= self.highest_head)
        )

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            response = self.make_request(RPCEndpoint("web3_clientVersion"), [])
        except ChainError:
            if show_traceback:
                raise
            return False
        return "error" not in response

    # -- transport --------------------------------------------------------------------------

    def request_bytes(self, method: str, body: bytes) -> bytes:
        """Return the body of the first JSON-RPC answer to ``body`` from any endpoint."""
        start = time.monotonic()
        errors: list[str] = []
        for _attempt in range(self.max_attempts):
            endpoint, wait = self._pick()
            if wait > 0:
                if time.monotonic() + wait - start > self.budget:
                    break
                self.waited_seconds += wait
                self._sleep(wait)
            endpoint.requests += 1
            sent_at = time.monotonic()
            try:
                response = self._session().post(
                    endpoint.url,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                self._failed(endpoint, sent_at, None, f"{type(exc).__name__}")
                errors.append(f"{endpoint.shown}: {type(exc).__name__}")
                continue
            status = response.status_code
            if status == 200 and _looks_like_jsonrpc(response.content):
                self._succeeded(endpoint, sent_at)
                return bytes(response.content)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            self._failed(endpoint, sent_at, retry_after, f"HTTP {status}")
            errors.append(f"{endpoint.shown}: HTTP {status}")
            if time.monotonic() - start > self.budget:
                break
        raise ChainUnavailable(
            f"{method}: no chain RPC endpoint answered ({'; '.join(errors[-4:]) or 'budget spent'})"
        )

    def _pick(self) -> tuple[EndpointState, float]:
        """Return the endpoint to ask and how long to wait before asking it."""
        with self._lock:
            now = time.monotonic()
            count = len(self.endpoints)
            for offset in range(count):
                index = (self._current + offset) % count
                if self.endpoints[index].ready_at <= now:
                    if index != self._current:
                        self.failovers += 1
                        log.info("chain RPC: failing over to %s", self.endpoints[index].shown)
                        self._current = index
                    return self.endpoints[index], 0.0
            index = min(range(count), key=lambda i: self.endpoints[i].ready_at)
            self._current = index
            return self.endpoints[index], self.endpoints[index].ready_at - now

    def _failed(
        self, endpoint: EndpointState, sent_at: float, retry_after: float | None, why: str
    ) -> None:
        """Count a failure of a request sent at ``sent_at``: the endpoint cools down for its
        ``Retry-After`` or the next backoff step, unless the request was sent before the
        endpoint's last counted failure (it was in flight with it: the same outage)."""
        with self._lock:
            endpoint.errors += 1
            now = time.monotonic()
            if retry_after is not None:  # the server's own word: always honoured
                pause = min(retry_after, self.retry_after_max)
            elif sent_at < endpoint.failed_at:
                log.info("chain RPC %s: %s (already cooling down)", endpoint.shown, why)
                return
            else:
                endpoint.failures += 1
                pause = min(self.backoff_base * 2 ** (endpoint.failures - 1), self.backoff_max)
            endpoint.failed_at = now
            endpoint.ready_at = max(endpoint.ready_at, now + pause)
        log.warning("chain RPC %s: %s; not asked again for %.2fs", endpoint.shown, why, pause)

    def _succeeded(self, endpoint: EndpointState, sent_at: float) -> None:
        """An answer to a request sent at ``sent_at``: if sent after the last counted failure,
        the endpoint is back (its backoff restarts from the base, its cooldown ends)."""
        with self._lock:
            if sent_at >= endpoint.failed_at:
                endpoint.failures = 0
                endpoint.ready_at = min(endpoint.ready_at, time.monotonic())
            self.last_answered = endpoint.url

    def note_answered(self, url: str, sent_at: float) -> None:
        """Note that ``url`` answered a request sent at ``sent_at`` by another client (the
        ``/health`` probe of the same URLs): as if this provider's own request had."""
        for endpoint in self.endpoints:
            if endpoint.url == url:
                self._succeeded(endpoint, sent_at)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every HTTP session (idempotent)."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()


def _looks_like_jsonrpc(content: bytes) -> bool:
    head = content.lstrip()[:1]
    return head in (b"{", b"[")
