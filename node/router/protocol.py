"""What routing puts on the wire and in the request state: header names, state keys, limits,
the observer of routing events, and the small helpers on an ASGI scope that the middleware
(``proxy.py``), the choice of a target (``targets.py``) and forwarding (``forward.py``)
share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from starlette.types import Scope, Send

from node.asgi import send_problem
from node.auth.peer import PEER_HEADER

HOPS_HEADER: Final = "x-collegium-hops"
SERVED_BY_HEADER: Final = "x-collegium-served-by"
EPOCH_HEADER: Final = "x-collegium-epoch"
MAX_HOPS: Final = 2
CONNECT_TIMEOUT: Final = 1.0
READ_TIMEOUT: Final = 15.0
STATE_SLOT: Final = "collegium_slot"
STATE_PEER: Final = "collegium_peer"  # the registered node that signed this request, if any
STATE_RELAYED: Final = "collegium_relayed"
# Headers of the old node-signed identity forwarding: never trusted, dropped on entry.
RETIRED_HEADERS: Final = ("x-collegium-user", "x-collegium-user-ts", "x-collegium-user-proof")
STATE_EPOCH: Final = "collegium_epoch"
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
# Never sent to peers: the session token stays with the node that issued it, and a relay
# adds its own peer signature.
PRIVATE_HEADERS: Final = frozenset({"authorization", "cookie", PEER_HEADER})
STATUS_LOOP_DETECTED: Final = 508
#: a host not caught up for a subsystem answers 503 with this Retry-After (seconds)
CATCHING_UP_RETRY_SECONDS: Final = 5
MAX_PROXY_BODY: Final = 1024 * 1024


class RouterObserver(Protocol):
    """Receives routing events (the API's metrics implement it)."""

    def on_proxied(self, role: str) -> None:
        """Count one request proxied for ``role``."""
        ...

    def on_failover(self, role: str) -> None:
        """Count one failover to the next host of ``role``."""
        ...

    def on_epoch(self, epoch: int) -> None:
        """Record the epoch in force."""
        ...


def parse_hops(headers: Mapping[str, str]) -> int:
    """Return the request's hop count; one past the limit if it is not a number."""
    try:
        return int(headers.get(HOPS_HEADER, "0"))
    except ValueError:
        return MAX_HOPS + 1


def request_target(scope: Scope) -> str:
    """Return the request target as sent: raw path plus ``?query`` if any."""
    target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    return target


def strip_headers(scope: Scope, names: tuple[str, ...]) -> None:
    drop = {name.encode() for name in names}
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() not in drop]


async def problem(
    send: Send, status: int, title: str, detail: str, extra: list[tuple[bytes, bytes]]
) -> None:
    await send_problem(send, status, title, detail, extra)
