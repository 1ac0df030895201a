"""Wallet login (Sign-In with Ethereum, EIP-4361): nonces, sessions, forwarded identity."""

from node.auth.errors import AuthError, Forbidden, LoginRejected, NotAuthenticated
from node.auth.service import AuthService, LoginResult, SiweRules

__all__ = [
    "AuthError",
    "AuthService",
    "Forbidden",
    "LoginRejected",
    "LoginResult",
    "NotAuthenticated",
    "SiweRules",
]
