"""Errors of wallet login and access control (401 and 403 in the API)."""

from __future__ import annotations

from node.errors import CollegiumError


class AuthError(CollegiumError):
    """Authentication failed; ``reason`` is a short stable token naming why (401)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class LoginRejected(AuthError):
    """A Sign-In with Ethereum message or its signature was rejected (401)."""


class NotAuthenticated(AuthError):
    """The request carries no valid session (401)."""


class Forbidden(CollegiumError):
    """The authenticated user may not do this (403)."""


class Misdirected(AuthError):
    """A signed request names another node as its destination (421)."""


class ReplayedRequest(AuthError):
    """A signed request's nonce was already used at this node (409)."""
