"""Where a request carries its session: the ``collegium_session`` cookie or a bearer token."""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Final

SESSION_COOKIE: Final = "collegium_session"
BEARER_PREFIX: Final = "bearer "


def compute_request_token(headers: Mapping[str, str]) -> str | None:
    """Return the session token in ``headers`` (Authorization: Bearer first, then cookie)."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith(BEARER_PREFIX):
        token = authorization[len(BEARER_PREFIX) :].strip()
        return token or None
    raw = headers.get("cookie")
    if raw:
        try:
            cookie = SimpleCookie(raw)
        except CookieError:
            return None
        morsel = cookie.get(SESSION_COOKIE)
        if morsel is not None and morsel.value:
            return morsel.value
    return None
