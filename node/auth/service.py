"""Sign-In with Ethereum (EIP-4361) login and the sessions it opens.

``AuthService.login`` checks, in order: the message parses; its nonce was issued here,
is not expired and not used; ``siwe`` verifies it **with scheme, domain and nonce passed
explicitly** (the library skips a check whose argument is ``None``) and the message's
expiry / not-before; the chain id is this node's; the signature is the address's (an EOA
signature, or ERC-1271 ``isValidSignature`` on the address when it is a contract and a
chain is at hand). Only then is the nonce consumed, atomically, and a session opened.
Every rejection raises :class:`LoginRejected` whose ``reason`` names the failed check.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address
from siwe import (
    DomainMismatch,
    ExpiredMessage,
    InvalidSignature,
    NonceMismatch,
    NotYetValidMessage,
    SiweMessage,
    VerificationError,
)
from siwe.siwe import SchemeMismatch, check_contract_wallet_signature, datetime_from_iso8601_string
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from node.auth.delegation import (
    DID_KEY_PREFIX,
    compute_granted_abilities,
    compute_public_key,
    decode_delegation_header,
)
from node.auth.errors import LoginRejected, NotAuthenticated
from node.db.models import LoginNonce, LoginSession

NONCE_BYTES: Final = 16
TOKEN_BYTES: Final = 32
DEFAULT_NONCE_TTL: Final = 300.0
DEFAULT_SESSION_TTL: Final = 24 * 3600.0
DEFAULT_SCHEME: Final = "https"  # EIP-4361: a message without a scheme means https
DEFAULT_CLOCK_SKEW: Final = 60.0
DEFAULT_DELEGATION_MAX_TTL: Final = 24 * 3600.0
MAX_DELEGATIONS_CACHED: Final = 10_000

# Reasons named in 401 responses (stable tokens; tests and clients match on them).
REASON_MALFORMED: Final = "malformed-message"
REASON_UNKNOWN_NONCE: Final = "unknown-nonce"
REASON_REPLAYED: Final = "replayed-nonce"
REASON_NONCE_EXPIRED: Final = "nonce-expired"
REASON_WRONG_DOMAIN: Final = "wrong-domain"
REASON_WRONG_SCHEME: Final = "wrong-scheme"
REASON_WRONG_CHAIN: Final = "wrong-chain-id"
REASON_EXPIRED: Final = "expired"
REASON_NOT_YET_VALID: Final = "not-yet-valid"
REASON_BAD_SIGNATURE: Final = "bad-signature"
REASON_NO_SESSION: Final = "no-session"
REASON_SESSION_EXPIRED: Final = "session-expired"
REASON_WRONG_URI: Final = "wrong-uri"
REASON_ISSUED_AHEAD: Final = "issued-in-the-future"
REASON_BAD_DELEGATION: Final = "bad-delegation"


@dataclass(frozen=True)
class SiweRules:
    """What a login message must say: accepted domains (host[:port]), scheme and chain id."""

    domains: tuple[str, ...]
    scheme: str
    chain_id: int
    nonce_ttl: float = DEFAULT_NONCE_TTL
    session_ttl: float = DEFAULT_SESSION_TTL
    system_uri: str = ""  # the ReCap resource naming this system (collegium://chain/registry)
    clock_skew: float = DEFAULT_CLOCK_SKEW
    delegation_max_ttl: float = DEFAULT_DELEGATION_MAX_TTL

    def origins(self) -> tuple[str, ...]:
        """Return this node's origins (``scheme://host[:port]``), which a login ``URI`` names."""
        return tuple(f"{self.scheme}://{domain}" for domain in self.domains)


@dataclass(frozen=True)
class Delegation:
    """A wallet's verified delegation to a session key (``key_id`` is its ``did:key``)."""

    address: str
    key_id: str
    public_key: Any = field(repr=False)
    abilities: frozenset[str]
    expires_at: datetime


@dataclass(frozen=True)
class LoginResult:
    """An opened session: the bearer ``token`` (shown once), its address and expiry."""

    token: str
    address: str
    expires_at: datetime


def compute_token_hash(token: str) -> str:
    """Return the stored form of a session token: "0x" + sha256 hex."""
    return "0x" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class AuthService:
    """Nonces, SIWE verification and sessions over the index database.

    ``w3`` (optional) is used for ERC-1271 checks of contract wallets; ``clock``
    returns the current UTC time (tests pass their own).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rules: SiweRules,
        *,
        w3: Any = None,
        clock: Callable[[], datetime] = _now,
        peer_domains: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.rules = rules
        self.w3 = w3
        self.clock = clock
        self.peer_domains = peer_domains
        self._delegations: dict[str, Delegation] = {}

    # ------------------------------------------------------------------ nonces

    def issue_nonce(self) -> LoginNonce:
        """Return a fresh random nonce, stored single-use until ``rules.nonce_ttl`` passes."""
        now = self.clock()
        row = LoginNonce(
            nonce=secrets.token_hex(NONCE_BYTES),
            created_at=now,
            expires_at=now + timedelta(seconds=self.rules.nonce_ttl),
            used_at=None,
        )
        with self.sessions.begin() as db:
            db.execute(delete(LoginNonce).where(LoginNonce.expires_at < now))
            db.add(row)
        return row

    # ------------------------------------------------------------------ login

    def login(self, message: str, signature: str) -> LoginResult:
        """Return a new session for the signer of a valid SIWE ``message``.

        Raises :class:`LoginRejected` naming the reason (see ``REASON_*``).
        """
        try:
            parsed = SiweMessage.from_message(message)
        except Exception as exc:  # the parser raises several types, all mean "malformed"
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise LoginRejected(REASON_MALFORMED, first_line[:200]) from exc
        now = self.clock()
        self._check_nonce_usable(parsed.nonce, now)
        self._verify_message(parsed, signature, now, domains=self.rules.domains)
        if str(parsed.uri).startswith(DID_KEY_PREFIX):
            self._read_delegation(parsed)
        else:
            self._check_origin_uri(str(parsed.uri))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires_at = now + timedelta(seconds=self.rules.session_ttl)
        if parsed.expiration_time is not None:
            expires_at = min(expires_at, _utc(datetime_from_iso8601_string(parsed.expiration_time)))
        address = to_checksum_address(parsed.address)
        with self.sessions.begin() as db:
            consumed = db.execute(
                update(LoginNonce)
                .where(LoginNonce.nonce == parsed.nonce, LoginNonce.used_at.is_(None))
                .values(used_at=now)
            )
            if getattr(consumed, "rowcount", 0) != 1:
                raise LoginRejected(REASON_REPLAYED, "the nonce was used by another login")
            db.add(
                LoginSession(
                    token_hash=compute_token_hash(token),
                    address=address,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
        return LoginResult(token=token, address=address, expires_at=expires_at)

    def _check_nonce_usable(self, nonce: str, now: datetime) -> None:
        with self.sessions() as db:
            row = db.get(LoginNonce, nonce)
        if row is None:
            raise LoginRejected(REASON_UNKNOWN_NONCE, "this node never issued the nonce")
        if row.used_at is not None:
            raise LoginRejected(REASON_REPLAYED, "the nonce was already used")
        if _utc(row.expires_at) <= now:
            raise LoginRejected(REASON_NONCE_EXPIRED, "request a new nonce")

    def _check_origin_uri(self, uri: str) -> None:
        """Refuse a login ``URI`` that is not this node's origin (or a path under it)."""
        for origin in self.rules.origins():
            if uri == origin or uri.startswith(origin + "/"):
                return
        raise LoginRejected(
            REASON_WRONG_URI, f"expected this node's origin {list(self.rules.origins())}, got {uri}"
        )

    def _verify_message(
        self, parsed: SiweMessage, signature: str, now: datetime, *, domains: Iterable[str]
    ) -> None:
        """Check domain, scheme, clock (expiry, not-before, issued-at), chain and signature."""
        rules = self.rules
        accepted = tuple(domains)
        if parsed.domain not in accepted:
            raise LoginRejected(
                REASON_WRONG_DOMAIN, f"expected one of {list(accepted)}, got {parsed.domain}"
            )
        if parsed.chain_id != rules.chain_id:
            raise LoginRejected(
                REASON_WRONG_CHAIN, f"expected {rules.chain_id}, got {parsed.chain_id}"
            )
        issued_at = _utc(datetime_from_iso8601_string(parsed.issued_at))
        if issued_at > now + timedelta(seconds=rules.clock_skew):
            raise LoginRejected(
                REASON_ISSUED_AHEAD,
                f"Issued At {parsed.issued_at} is more than {rules.clock_skew:g}s ahead",
            )
        # A message without a scheme means https (EIP-4361); otherwise siwe checks it.
        if parsed.scheme is None and rules.scheme != DEFAULT_SCHEME:
            raise LoginRejected(REASON_WRONG_SCHEME, f"expected {rules.scheme}, got none")
        scheme = rules.scheme if parsed.scheme is not None else None
        try:
            parsed.verify(
                signature, scheme=scheme, domain=parsed.domain, nonce=parsed.nonce, timestamp=now
            )
        except DomainMismatch as exc:  # pragma: no cover - the allow-list check is first
            raise LoginRejected(REASON_WRONG_DOMAIN) from exc
        except SchemeMismatch as exc:
            raise LoginRejected(
                REASON_WRONG_SCHEME, f"expected {rules.scheme}, got {parsed.scheme}"
            ) from exc
        except NonceMismatch as exc:  # pragma: no cover - nonce comes from the message
            raise LoginRejected(REASON_UNKNOWN_NONCE) from exc
        except ExpiredMessage as exc:
            raise LoginRejected(REASON_EXPIRED, "the message's expiration time has passed") from exc
        except NotYetValidMessage as exc:
            raise LoginRejected(REASON_NOT_YET_VALID, "the message's not-before is ahead") from exc
        except InvalidSignature as exc:
            if not self._is_contract_signature(parsed, signature):
                raise LoginRejected(
                    REASON_BAD_SIGNATURE, f"not signed by {parsed.address}"
                ) from exc
        except (VerificationError, ValueError) as exc:
            raise LoginRejected(REASON_BAD_SIGNATURE, str(exc)[:200]) from exc

    def _is_contract_signature(self, parsed: SiweMessage, signature: str) -> bool:
        """Return whether ERC-1271 ``isValidSignature`` on the address accepts ``signature``."""
        if self.w3 is None:
            return False
        address = to_checksum_address(parsed.address)
        try:
            if not self.w3.eth.get_code(address):
                return False
            message = encode_defunct(text=parsed.prepare_message())
            return bool(check_contract_wallet_signature(address, message, signature, self.w3))
        except Exception:  # an unreachable chain means "not verified", never "verified"
            return False

    # ------------------------------------------------------------------ delegations

    def verify_delegation(self, header: str) -> Delegation:
        """Return the delegation in a ``Collegium-Delegation`` header value, verified.

        Any node accepts a delegation without a login: the wallet's signature, the chain id,
        the domain (this node's or a registered node's), the clock rules and the ReCap are
        checked; the nonce is not (it was single-use at the node that issued it, if any).
        Verified delegations are cached until they expire. Raises :class:`NotAuthenticated`.
        """
        now = self.clock()
        cached = self._delegations.get(header)
        if cached is not None:
            if cached.expires_at <= now:
                raise NotAuthenticated(REASON_BAD_DELEGATION, "the delegation has expired")
            return cached
        parts = decode_delegation_header(header)
        try:
            parsed = SiweMessage.from_message(parts.message)
        except Exception as exc:  # the parser raises several types, all mean "malformed"
            raise NotAuthenticated(REASON_BAD_DELEGATION, "the SIWE message is malformed") from exc
        domains = (*self.rules.domains, *(self.peer_domains() if self.peer_domains else ()))
        try:
            self._verify_message(parsed, parts.signature, now, domains=domains)
        except LoginRejected as exc:
            raise NotAuthenticated(REASON_BAD_DELEGATION, str(exc)) from exc
        delegation = self._read_delegation(parsed)
        if len(self._delegations) >= MAX_DELEGATIONS_CACHED:
            self._delegations.clear()  # bounded memory; a miss only costs a re-check
        self._delegations[header] = delegation
        return delegation

    def _read_delegation(self, parsed: SiweMessage) -> Delegation:
        """Return the delegation a (verified) SIWE message makes, checking its shape."""
        uri = str(parsed.uri)
        if not uri.startswith(DID_KEY_PREFIX):
            raise NotAuthenticated(REASON_BAD_DELEGATION, "the URI is not a session key did:key")
        if parsed.expiration_time is None:
            raise NotAuthenticated(REASON_BAD_DELEGATION, "a delegation needs an Expiration Time")
        issued_at = _utc(datetime_from_iso8601_string(parsed.issued_at))
        expires_at = _utc(datetime_from_iso8601_string(parsed.expiration_time))
        if (expires_at - issued_at).total_seconds() > self.rules.delegation_max_ttl:
            raise NotAuthenticated(
                REASON_BAD_DELEGATION,
                f"a delegation may last at most {self.rules.delegation_max_ttl:g}s",
            )
        abilities = compute_granted_abilities(
            parsed.resources, self.rules.system_uri, parsed.statement
        )
        return Delegation(
            address=to_checksum_address(parsed.address),
            key_id=uri,
            public_key=compute_public_key(uri),
            abilities=abilities,
            expires_at=expires_at,
        )

    # ------------------------------------------------------------------ sessions

    def address_for(self, token: str | None) -> str:
        """Return the address of the live session ``token``.

        Raises :class:`NotAuthenticated` if absent, unknown, revoked or expired.
        """
        if not token:
            raise NotAuthenticated(REASON_NO_SESSION, "log in first")
        with self.sessions() as db:
            row = db.get(LoginSession, compute_token_hash(token))
        if row is None or row.revoked_at is not None:
            raise NotAuthenticated(REASON_NO_SESSION, "unknown or logged-out session")
        if _utc(row.expires_at) <= self.clock():
            raise NotAuthenticated(REASON_SESSION_EXPIRED, "log in again")
        return row.address

    def logout(self, token: str | None) -> bool:
        """Revoke session ``token``; return whether a live session was revoked."""
        if not token:
            return False
        with self.sessions.begin() as db:
            result = db.execute(
                update(LoginSession)
                .where(
                    LoginSession.token_hash == compute_token_hash(token),
                    LoginSession.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock())
            )
            return bool(getattr(result, "rowcount", 0))

    def sessions_of(self, address: str) -> int:
        """Return how many live sessions ``address`` has."""
        now = self.clock()
        with self.sessions() as db:
            rows = db.scalars(
                select(LoginSession).where(
                    LoginSession.address == to_checksum_address(address),
                    LoginSession.revoked_at.is_(None),
                )
            ).all()
        return sum(1 for row in rows if _utc(row.expires_at) > now)
