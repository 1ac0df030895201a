"""The client side of session keys, for Python programs (SDK, CLI, tests).

``open_session(url, wallet)`` creates a P-256 session key held only in this process, has the
wallet sign the delegation (EIP-4361 + EIP-5573) and returns :class:`SessionAuth`, an httpx
authentication that signs every request (RFC 9421) for the node that should serve it: it asks
``GET /api/v1/route`` for the destination first, and once more after a 421.

    auth = open_session("http://127.0.0.1:8000", wallet)
    httpx.get(url + "/api/v1/auth/me", auth=auth)
"""

from __future__ import annotations

import secrets
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from Crypto.PublicKey import ECC
from eth_account.messages import encode_defunct
from siwe import SiweMessage

from node.auth.delegation import (
    ABILITY_READ,
    ABILITY_WRITE,
    compute_delegation_statement,
    compute_did_key,
    compute_recap_resource,
    encode_delegation_header,
)
from node.auth.signatures import (
    DELEGATION_HEADER,
    DESTINATION_HEADER,
    DIGEST_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_INPUT_HEADER,
    SIGNATURE_LABEL,
    compute_content_digest,
    compute_nonce,
    compute_signature_base,
    compute_signature_params,
    sign_base,
)

DEFAULT_SESSION_TTL: Final = timedelta(hours=8)
DEFAULT_SIGNATURE_TTL: Final = 60
ROUTE_PATH: Final = "/api/v1/route"
MISDIRECTED: Final = 421


def compute_delegation_message(
    *,
    domain: str,
    scheme: str,
    address: str,
    key_id: str,
    chain_id: int,
    system_uri: str,
    nonce: str,
    issued_at: datetime,
    expires_at: datetime,
    abilities: tuple[str, ...] = (ABILITY_READ, ABILITY_WRITE),
) -> str:
    """Return the SIWE message delegating ``abilities`` on ``system_uri`` to ``key_id``."""
    message = SiweMessage(
        scheme=scheme if scheme != "https" else None,
        domain=domain,
        address=address,
        statement=compute_delegation_statement(system_uri, abilities),
        uri=key_id,
        version="1",
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        expiration_time=expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        resources=[compute_recap_resource({system_uri: {a: [{}] for a in abilities}})],
    )
    return str(message.prepare_message())


class SessionAuth(httpx.Auth):
    """Sign each request with the session key for the node that should serve it."""

    requires_request_body = True
    requires_response_body = True

    def __init__(
        self,
        key: ECC.EccKey,
        delegation: str,
        *,
        destination: str | None = None,
        signature_ttl: int = DEFAULT_SIGNATURE_TTL,
    ) -> None:
        self.key = key
        self.key_id = compute_did_key(key.public_key())
        self.delegation = delegation
        self.destination = destination
        self.signature_ttl = signature_ttl

    def sign(self, request: httpx.Request, destination: str, *, created: int | None = None) -> None:
        """Add the signature headers to ``request`` for ``destination`` (a node address)."""
        created = int(datetime.now(UTC).timestamp()) if created is None else created
        request.headers[DIGEST_HEADER] = compute_content_digest(request.content)
        request.headers[DESTINATION_HEADER] = destination
        request.headers[DELEGATION_HEADER] = self.delegation
        params = compute_signature_params(
            created, created + self.signature_ttl, compute_nonce(), self.key_id
        )
        request.headers[SIGNATURE_INPUT_HEADER] = f"{SIGNATURE_LABEL}={params}"
        headers = {k.lower(): v for k, v in request.headers.items()}
        base = compute_signature_base(
            request.method,
            request.url.raw_path.decode("ascii").split("?", 1)[0],
            request.url.query.decode("ascii"),
            headers,
            params,
        )
        request.headers[SIGNATURE_HEADER] = sign_base(self.key, base)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Route (unless a destination is fixed), sign, send; re-route once after a 421."""
        for attempt in range(2):
            destination = self.destination
            if destination is None or attempt > 0:
                route = yield self._route_request(request)
                if route.status_code != httpx.codes.OK:
                    yield request  # unsigned: the node's answer says what is wrong
                    return
                destination = str(route.json()["node"])
            self.sign(request, destination)
            response = yield request
            if response.status_code != MISDIRECTED:
                return

    @staticmethod
    def _route_request(request: httpx.Request) -> httpx.Request:
        path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        url = request.url.copy_with(raw_path=ROUTE_PATH.encode())
        return httpx.Request("GET", url, params={"path": path})


def open_session(
    url: str,
    wallet: Any,
    *,
    client: httpx.Client | None = None,
    ttl: timedelta = DEFAULT_SESSION_TTL,
    login: bool = True,
) -> SessionAuth:
    """Return a :class:`SessionAuth` for ``wallet`` (an eth-account account) at node ``url``.

    Reads the domain, chain id and system from ``GET /api/v1/auth/nonce``; with ``login``
    the delegation is also presented at ``POST /api/v1/auth/login`` (which checks it at once
    and teaches that node the wallet's public key).
    """
    http = client or httpx.Client(timeout=30.0)
    try:
        info = http.get(url.rstrip("/") + "/api/v1/auth/nonce")
        info.raise_for_status()
        nonce = info.json()
        key = ECC.generate(curve="P-256")
        now = datetime.now(UTC).replace(microsecond=0)
        message = compute_delegation_message(
            domain=nonce["domain"],
            scheme=nonce.get("scheme") or urlsplit(url).scheme,
            address=wallet.address,
            key_id=compute_did_key(key.public_key()),
            chain_id=int(nonce["chain_id"]),
            system_uri=nonce["system"],
            nonce=nonce["nonce"] if login else secrets.token_hex(8),
            issued_at=now,
            expires_at=now + ttl,
        )
        signature = "0x" + bytes(wallet.sign_message(encode_defunct(text=message)).signature).hex()
        if login:
            answer = http.post(
                url.rstrip("/") + "/api/v1/auth/login",
                json={"message": message, "signature": signature},
            )
            answer.raise_for_status()
        return SessionAuth(key, encode_delegation_header(message, signature))
    finally:
        if client is None:
            http.close()
