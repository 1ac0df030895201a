"""FastAPI dependencies: the node's parts, taken from ``app.state``."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Request

from node.auth.errors import NotAuthenticated
from node.auth.requests import REASON_UNSIGNED_RELAY, RequestVerifier, SignedRequest, is_signed
from node.auth.service import AuthService
from node.auth.tokens import compute_request_token
from node.ledger.service import LedgerService
from node.runtime import NodeContext


def get_node(request: Request) -> NodeContext:
    """Return the running node's context."""
    node: NodeContext = request.app.state.node
    return node


def get_ledger(request: Request) -> LedgerService:
    """Return the ledger service."""
    return get_node(request).ledger


def get_auth(request: Request) -> AuthService:
    """Return the login service (node/api/edge.py puts it on ``app.state``)."""
    auth: AuthService = request.app.state.auth
    return auth


async def get_current_user(request: Request) -> str:
    """Return the user who made this request.

    A request signed with a session key (``docs/security.md``) is checked here, by the node
    that serves it, whoever relayed it. Otherwise a session of this node (cookie or bearer)
    counts, but only for a request that reached this node directly: a relaying node never
    speaks for a user. Raises ``NotAuthenticated`` (401), ``Misdirected`` (421) or
    ``ReplayedRequest`` (409).
    """
    headers = {k.lower(): v for k, v in request.headers.items()}
    if is_signed(headers):
        verifier: RequestVerifier = request.app.state.request_verifier
        body = await request.body()
        signed = SignedRequest(
            method=request.method,
            path=request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
        )
        return await anyio.to_thread.run_sync(verifier.verify, signed)
    if request.scope.get("state", {}).get("collegium_relayed"):
        raise NotAuthenticated(
            REASON_UNSIGNED_RELAY,
            "this request was relayed by another node: sign it with a session key "
            "(docs/security.md); a node's session is never relayed",
        )
    token = compute_request_token(request.headers)
    return await anyio.to_thread.run_sync(get_auth(request).address_for, token)


NodeDep = Annotated[NodeContext, Depends(get_node)]
LedgerDep = Annotated[LedgerService, Depends(get_ledger)]
AuthDep = Annotated[AuthService, Depends(get_auth)]
CurrentUser = Annotated[str, Depends(get_current_user)]
