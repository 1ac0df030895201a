"""Who sent a request: a user's signed request, checked by the node that serves it.

:class:`RequestVerifier` applies ``docs/security.md`` "The signed request" in order: the
signature headers parse and are this profile; ``created`` is not ahead of the clock by more
than the skew nor before this node started; the signature has not expired and lived at most
``max_age``; the destination is this node (else :class:`Misdirected`, 421); the body matches
``Content-Digest``; the delegation holds and grants the method's ability to ``keyid``; the
P-256 signature verifies; the nonce is new here (else :class:`ReplayedRequest`, 409).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from node.auth.delegation import compute_ability
from node.auth.errors import Misdirected, NotAuthenticated, ReplayedRequest
from node.auth.service import AuthService
from node.auth.signatures import (
    DELEGATION_HEADER,
    DESTINATION_HEADER,
    DIGEST_HEADER,
    REASON_BAD_SIGNATURE,
    SIGNATURE_HEADER,
    SIGNATURE_INPUT_HEADER,
    compute_content_digest,
    compute_signature_base,
    decode_signature_input,
    verify_signature,
)

DEFAULT_SIGNATURE_MAX_AGE: Final = 300.0
DEFAULT_CLOCK_SKEW: Final = 60.0
MAX_NONCES: Final = 200_000
REASON_STALE: Final = "stale-request-signature"
REASON_SCOPE: Final = "delegation-scope"
REASON_UNSIGNED_RELAY: Final = "unsigned-relayed-request"


@dataclass(frozen=True)
class SignedRequest:
    """What a request signature covers: method, raw path and query, headers and body."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


def is_signed(headers: Mapping[str, str]) -> bool:
    """Return whether ``headers`` (lower-case names) carry a request signature."""
    return SIGNATURE_HEADER in headers or SIGNATURE_INPUT_HEADER in headers


class NonceCache:
    """Nonces seen, each kept until its signature expires (bounded: refuses when full)."""

    def __init__(self, limit: int = MAX_NONCES) -> None:
        self.limit = limit
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, key: str, until: float, now: float) -> bool:
        """Record ``key`` until ``until``; return False if it was already recorded."""
        with self._lock:
            if key in self._seen and self._seen[key] >= now:
                return False
            if len(self._seen) >= self.limit:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
                if len(self._seen) >= self.limit:
                    raise NotAuthenticated(REASON_STALE, "too many live signatures; retry soon")
            self._seen[key] = until
            return True


class RequestVerifier:
    """Check users' signed requests for the node ``my_address`` (see the module docstring)."""

    def __init__(
        self,
        auth: AuthService,
        my_address: str,
        *,
        max_age: float = DEFAULT_SIGNATURE_MAX_AGE,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        clock: Callable[[], float] = time.time,
        started_at: float | None = None,
    ) -> None:
        self.auth = auth
        self.me = my_address.lower()
        self.max_age = max_age
        self.clock_skew = clock_skew
        self.clock = clock
        self.started_at = int(clock() if started_at is None else started_at)
        self.nonces = NonceCache()

    def verify(self, request: SignedRequest) -> str:
        """Return the checksummed address of the user who signed ``request``.

        Raises :class:`NotAuthenticated` (401), :class:`Misdirected` (421) or
        :class:`ReplayedRequest` (409).
        """
        headers = request.headers
        signature_input = decode_signature_input(headers.get(SIGNATURE_INPUT_HEADER, ""))
        now = self.clock()
        if signature_input.created > now + self.clock_skew:
            raise NotAuthenticated(REASON_STALE, "the signature was created in the future")
        if signature_input.created < self.started_at:
            raise NotAuthenticated(REASON_STALE, "the signature predates this node's start")
        if signature_input.expires <= now:
            raise NotAuthenticated(REASON_STALE, "the signature has expired")
        if signature_input.expires - signature_input.created > self.max_age:
            raise NotAuthenticated(REASON_STALE, f"a signature may live at most {self.max_age:g}s")
        destination = headers.get(DESTINATION_HEADER, "").strip().lower()
        if destination != self.me:
            raise Misdirected(
                "misdirected",
                f"signed for {destination or 'no destination'}, this node is {self.me}; "
                "ask GET /api/v1/route for the current host",
            )
        digest = compute_content_digest(request.body)
        if not hmac.compare_digest(headers.get(DIGEST_HEADER, "").strip(), digest):
            raise NotAuthenticated(REASON_BAD_SIGNATURE, "Content-Digest does not match the body")
        delegation_header = headers.get(DELEGATION_HEADER, "").strip()
        delegation = self.auth.verify_delegation(delegation_header)
        if delegation.key_id != signature_input.keyid:
            raise NotAuthenticated(REASON_BAD_SIGNATURE, "keyid is not the delegated session key")
        ability = compute_ability(request.method)
        if ability not in delegation.abilities:
            raise NotAuthenticated(REASON_SCOPE, f"the delegation does not grant {ability}")
        base = compute_signature_base(
            request.method, request.path, request.query, headers, signature_input.params
        )
        verify_signature(headers.get(SIGNATURE_HEADER, ""), base, delegation.public_key)
        if not self.nonces.add(
            f"{signature_input.keyid} {signature_input.nonce}", signature_input.expires, now
        ):
            raise ReplayedRequest("replayed", "this request signature was already used here")
        return delegation.address
