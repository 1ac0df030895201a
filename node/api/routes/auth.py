"""Wallet login (Sign-In with Ethereum): nonce, login, logout, who am I."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from node.api.deps import AuthDep, CurrentUser, NodeDep, get_key_directory
from node.api.schemas import Problem
from node.auth.tokens import SESSION_COOKIE, compute_request_token
from node.errors import CollegiumError

router = APIRouter(prefix="/auth", tags=["auth"])
log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS: Final = 4096
MAX_SIGNATURE_CHARS: Final = 4096
SIGNATURE_PATTERN: Final = r"^0x[0-9a-fA-F]*$"
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "rejected; the detail starts with the reason"}
}


class NoncePublic(BaseModel):
    """A single-use login nonce and what the SIWE message must say besides it."""

    nonce: str
    expires_at: datetime
    domain: str
    scheme: str
    chain_id: int
    system: str  # the ReCap resource a session-key delegation names (docs/security.md)


class LoginCreate(BaseModel):
    """An EIP-4361 message and its EIP-191 signature (65 bytes, or ERC-1271 bytes)."""

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    signature: str = Field(pattern=SIGNATURE_PATTERN, max_length=MAX_SIGNATURE_CHARS)


class SessionPublic(BaseModel):
    """An opened session; ``token`` is also set as an HttpOnly cookie."""

    address: str
    token: str
    token_type: str = "bearer"
    expires_at: datetime


class LogoutPublic(BaseModel):
    """Whether a live session was closed."""

    logged_out: bool


class MePublic(BaseModel):
    """The logged-in address and the subsystems it belongs to (from the registry)."""

    address: str
    subsystems: list[str]
    admin_of: list[str]
    system_admin: bool


@router.get("/nonce")
def get_nonce(auth: AuthDep) -> NoncePublic:
    """Return a fresh single-use nonce for a SIWE message (it expires)."""
    row = auth.issue_nonce()
    rules = auth.rules
    return NoncePublic(
        nonce=row.nonce,
        expires_at=row.expires_at,
        domain=rules.domains[0],
        scheme=rules.scheme,
        chain_id=rules.chain_id,
        system=rules.system_uri,
    )


@router.post("/login", responses=UNAUTHORIZED)
def login(body: LoginCreate, auth: AuthDep, request: Request, response: Response) -> SessionPublic:
    """Verify a signed SIWE message and open a session (cookie + bearer token).

    401 names the reason: malformed-message, unknown-nonce, replayed-nonce, nonce-expired,
    wrong-domain, wrong-scheme, wrong-chain-id, expired, not-yet-valid, bad-signature.
    """
    result = auth.login(body.message, body.signature)
    _record_public_key(request, body.message, body.signature)
    max_age = max(0, int((result.expires_at - auth.clock()).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=auth.rules.scheme == "https",
        path="/",
    )
    return SessionPublic(address=result.address, token=result.token, expires_at=result.expires_at)


def _record_public_key(request: Request, message: str, signature: str) -> None:
    """Keep the key the verified login signature recovers (subsystem data is wrapped for it)."""
    try:
        get_key_directory(request).record_login(message, signature)
    except CollegiumError as exc:  # the login stands; the key can be announced later
        log.warning("no public key kept from a login: %s", exc)


@router.post("/logout")
def logout(auth: AuthDep, request: Request, response: Response) -> LogoutPublic:
    """Close the request's session (cookie or bearer) and clear the cookie."""
    closed = auth.logout(compute_request_token(request.headers))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return LogoutPublic(logged_out=closed)


@router.get("/me", responses=UNAUTHORIZED)
def me(user: CurrentUser, node: NodeDep) -> MePublic:
    """Return the logged-in address and its subsystems (participant / admin)."""
    registry = node.registry
    member: list[str] = []
    admin: list[str] = []
    for name in registry.subsystems():
        if registry.is_participant(name, user):
            member.append(name)
        if registry.is_subsystem_admin(name, user):
            admin.append(name)
    return MePublic(
        address=user,
        subsystems=member,
        admin_of=admin,
        system_admin=bool(registry.is_system_admin(user)),
    )
