"""FastAPI dependencies: the node's parts, taken from ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

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


def get_current_user(request: Request) -> str:
    """Return the logged-in address: a session (cookie/bearer) or a peer-verified forward.

    Raises ``NotAuthenticated`` (401) without a live session.
    """
    forwarded = getattr(request.state, "collegium_user", None)
    if forwarded:
        return str(forwarded)
    return get_auth(request).address_for(compute_request_token(request.headers))


NodeDep = Annotated[NodeContext, Depends(get_node)]
LedgerDep = Annotated[LedgerService, Depends(get_ledger)]
AuthDep = Annotated[AuthService, Depends(get_auth)]
CurrentUser = Annotated[str, Depends(get_current_user)]
