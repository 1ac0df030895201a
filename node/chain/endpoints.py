"""Node endpoints from the registry: which ones this node may send requests to.

Anyone may register a node, so an endpoint read from the chain is a stranger's word. The
registry refuses malformed ones (``MalformedEndpoint``: scheme, ``@ ? # \\``, whitespace,
length); a node checks the same syntax again (registries deployed before that check exist)
and, outside dev mode, refuses hosts in loopback, private, link-local, unspecified and other
non-public ranges (literal IPs; of host names, ``localhost`` and ``*.localhost``), so a
registered endpoint cannot point a node's requests at its own or its network's internals.
Host names are not resolved here (docker-compose's service names are host names).

Requests then go only to ``<endpoint><fixed path>`` (the endpoint has no path, query or
fragment), follow no redirects, and have time and size limits (each client's module).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from node.errors import ValidationError

log = logging.getLogger(__name__)

#: The registry's ``MAX_ENDPOINT_LENGTH`` (bytes).
MAX_ENDPOINT_BYTES: Final = 256
SCHEMES: Final = ("http://", "https://")
#: Bytes the registry refuses after the scheme (besides whitespace, controls and non-ASCII).
FORBIDDEN_CHARS: Final = frozenset("@?#\\")
LOCALHOST: Final = "localhost"


class UnsafeEndpoint(ValidationError):
    """A node endpoint this node will not send requests to (malformed or non-public)."""


def check_endpoint_syntax(endpoint: str) -> str:
    """Return ``endpoint`` without a trailing ``/`` if it is ``http(s)://host[:port]``.

    The registry's syntax (``_checkEndpoint``) plus: a host, a valid port, no path. Raises
    :class:`UnsafeEndpoint` otherwise.
    """
    raw = endpoint.encode("utf-8", "surrogatepass")
    if not 0 < len(raw) <= MAX_ENDPOINT_BYTES:
        raise UnsafeEndpoint(f"endpoint must be 1..{MAX_ENDPOINT_BYTES} bytes, got {len(raw)}")
    scheme = next((s for s in SCHEMES if endpoint.startswith(s)), None)
    if scheme is None:
        raise UnsafeEndpoint(f"endpoint {endpoint!r} is not http:// or https://")
    for ch in endpoint[len(scheme) :]:
        if ch in FORBIDDEN_CHARS or not "\x20" < ch < "\x7f":
            raise UnsafeEndpoint(f"endpoint {endpoint!r} holds {ch!r} (credentials, query, ...)")
    parts = urlsplit(endpoint)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise UnsafeEndpoint(f"endpoint {endpoint!r} has a bad port: {exc}") from exc
    if not parts.hostname:
        raise UnsafeEndpoint(f"endpoint {endpoint!r} names no host")
    if parts.path not in ("", "/"):
        raise UnsafeEndpoint(f"endpoint {endpoint!r} has a path ({parts.path!r})")
    return endpoint.rstrip("/")


def is_public_host(host: str) -> bool:
    """Return whether ``host`` may be a peer outside dev mode: a literal IP must be globally
    routable; a host name must not be ``localhost`` or under ``.localhost``."""
    name = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name != LOCALHOST and not name.endswith("." + LOCALHOST)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class PeerPolicy:
    """Which registered endpoints this node sends requests to.

    ``allow_private``: dev mode (loopback and private ranges allowed; syntax still checked).
    ``allowed_hosts``: hosts allowed even when non-public (an operator's private network).
    """

    allow_private: bool = False
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    def check(self, endpoint: str) -> str:
        """Return the normalised ``endpoint`` if requests may go there; raise
        :class:`UnsafeEndpoint` otherwise."""
        normal = check_endpoint_syntax(endpoint)
        host = (urlsplit(normal).hostname or "").lower()
        if self.allow_private or host in self.allowed_hosts or is_public_host(host):
            return normal
        raise UnsafeEndpoint(
            f"endpoint {endpoint!r} is not a public address (set allow_private_peers or "
            "peer_allowed_hosts to use it)"
        )

    def admits(self, endpoint: str) -> bool:
        """Return whether requests may go to ``endpoint``."""
        try:
            self.check(endpoint)
        except UnsafeEndpoint:
            return False
        return True

    def filter(self, peers: Mapping[str, str]) -> dict[str, str]:
        """Return ``peers`` (address -> endpoint) keeping admitted endpoints, normalised."""
        kept: dict[str, str] = {}
        for address, endpoint in peers.items():
            try:
                kept[address] = self.check(endpoint)
            except UnsafeEndpoint as exc:
                log.debug("peer %s ignored: %s", address, exc)
        return kept


def compute_peer_policy(
    allow_private: bool | None,
    allowed_hosts: Iterable[str],
    *,
    chain_kind: str,
    chain_url: str | None,
) -> PeerPolicy:
    """Return the node's policy; ``allow_private`` None means dev mode exactly when the chain
    is the embedded one or a JSON-RPC endpoint on a loopback host (a local devnet)."""
    if allow_private is None:
        host = (urlsplit(chain_url or "").hostname or "").lower()
        allow_private = chain_kind == "embedded" or host == LOCALHOST or _is_loopback(host)
    hosts = frozenset(h.strip().lower().strip("[]") for h in allowed_hosts if h.strip())
    return PeerPolicy(allow_private=allow_private, allowed_hosts=hosts)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
