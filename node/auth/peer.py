"""A node's own requests to its peers, signed with its node key.

``Collegium-Peer: 0x<address>;<unix s>;0x<signature>`` where the signature is EIP-191 over
``collegium/peer/v1\\n<METHOD> <target>\\n<hops>\\n<unix s>``. A receiving node trusts
``X-Collegium-Hops`` and gives the sender its own rate-limit bucket only when the signature
recovers to the claimed address, that address is a registered node, and it is fresh. It proves
that a *node* sent the request, nothing more: being a peer never implies a user's rights.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any, Final

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

PEER_HEADER: Final = "collegium-peer"
HOPS_HEADER: Final = "x-collegium-hops"
PEER_MESSAGE_TAG: Final = "collegium/peer/v1"
DEFAULT_PEER_MAX_AGE: Final = 60.0
MAX_PEER_HEADER: Final = 256
MAX_CACHED: Final = 10_000


def compute_peer_message(method: str, target: str, hops: int, timestamp: int) -> str:
    """Return the text a node signs for its request ``method target`` at hop ``hops``."""
    return f"{PEER_MESSAGE_TAG}\n{method.upper()} {target}\n{hops}\n{timestamp}"


def sign_peer_request(account: Any, method: str, target: str, hops: int, timestamp: int) -> str:
    """Return the ``Collegium-Peer`` header value ``account`` gives its request."""
    message = encode_defunct(text=compute_peer_message(method, target, hops, timestamp))
    signature = "0x" + bytes(account.sign_message(message).signature).hex()
    return f"{account.address.lower()};{timestamp};{signature}"


class PeerVerifier:
    """Return the registered node that signed a request's ``Collegium-Peer``, or ``None``.

    ``peers`` returns the registered nodes (address -> endpoint); it may read the chain, so
    call :meth:`verify` off the event loop. Good signatures are cached by header value.
    """

    def __init__(
        self,
        peers: Callable[[], Mapping[str, str]],
        *,
        max_age: float = DEFAULT_PEER_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.peers = peers
        self.max_age = max_age
        self.clock = clock
        self._good: dict[tuple[str, str, int, str], str] = {}
        self._lock = threading.Lock()

    def verify(self, method: str, target: str, hops: int, value: str) -> str | None:
        """Return the lower-case address of the node that signed this request, or ``None``."""
        if not value or len(value) > MAX_PEER_HEADER:
            return None
        try:
            address, ts_text, signature = value.split(";")
            timestamp = int(ts_text)
        except ValueError:
            return None
        if abs(self.clock() - timestamp) > self.max_age:
            return None
        key = (method.upper(), target, hops, value)
        with self._lock:
            cached = self._good.get(key)
        if cached is None:
            try:
                message = encode_defunct(text=compute_peer_message(method, target, hops, timestamp))
                signer = str(Account.recover_message(message, signature=signature)).lower()
            except Exception:  # any undecodable signature means "not a peer", never a crash
                return None
            if signer != address.lower():
                return None
            cached = signer
            with self._lock:
                if len(self._good) >= MAX_CACHED:
                    self._good.clear()
                self._good[key] = cached
        return cached if cached in {a.lower() for a in self.peers()} else None


class PeerAuth(httpx.Auth):
    """httpx authentication that signs a node's outgoing peer requests (sync, keys, probes)."""

    def __init__(self, account: Any, clock: Callable[[], float] = time.time) -> None:
        self.account = account
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add ``Collegium-Peer`` for the request's method, target and hop count."""
        try:
            hops = int(request.headers.get(HOPS_HEADER, "0"))
        except ValueError:
            hops = 0
        target = request.url.raw_path.decode("ascii")
        request.headers[PEER_HEADER] = sign_peer_request(
            self.account, request.method, target, hops, int(self.clock())
        )
        yield request
