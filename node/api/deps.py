"""FastAPI dependencies: the node's parts, taken from ``app.state`` (the key directory and the
sealing service of subsystems' private data made there on first use), the user, and the role
the router granted the request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request

from node.auth.databases import RoleContext, SubsystemDatabases
from node.auth.errors import NotAuthenticated
from node.auth.requests import REASON_UNSIGNED_RELAY, RequestVerifier, SignedRequest, is_signed
from node.auth.service import AuthService
from node.auth.tokens import compute_request_token
from node.crypto.keys import compute_public_key
from node.keys.directory import SOURCE_SELF, KeyDirectory
from node.keys.private import PrivateData
from node.ledger.service import LedgerService
from node.replication.replica import get_subsystem_log
from node.router.directory import PeerDirectory
from node.router.proxy import STATE_SLOT
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


def get_databases(request: Request) -> SubsystemDatabases:
    """Return the node's subsystem database registry."""
    databases: SubsystemDatabases = request.app.state.subsystem_databases
    return databases


DatabasesDep = Annotated[SubsystemDatabases, Depends(get_databases)]
_STATE_LOCK = threading.Lock()
T = TypeVar("T")


def _made_once(request: Request, name: str, make: Callable[[NodeContext], T]) -> T:
    """Return ``app.state.<name>``, made by ``make(node)`` on first use (once: under a lock)."""
    state = request.app.state
    with _STATE_LOCK:
        made: T | None = getattr(state, name, None)
        if made is None:
            made = make(state.node)
            setattr(state, name, made)
    return made


def get_key_directory(request: Request) -> KeyDirectory:
    """Return the node's directory of participants' public keys (made on first use)."""

    def make(node: NodeContext) -> KeyDirectory:
        directory = KeyDirectory(
            node.sessions,
            peers=PeerDirectory(node.registry, policy=getattr(node, "peer_policy", None)),
            self_address=node.address,
        )
        # this node's own key first: other hosts of its subsystems wrap keys for it
        directory.record(node.address, compute_public_key(bytes(node.account.key)), SOURCE_SELF)
        return directory

    return _made_once(request, "key_directory", make)


def get_private_data(request: Request) -> PrivateData:
    """Return the sealing service of this node's ``be_subsystem`` slots (made on first use)."""
    directory = get_key_directory(request)

    def make(node: NodeContext) -> PrivateData:
        return PrivateData(
            get_databases(request),
            node.store,
            node.registry,
            directory,
            node.account,
            log=get_subsystem_log(node),
        )

    return _made_once(request, "private_data", make)


KeysDep = Annotated[KeyDirectory, Depends(get_key_directory)]
PrivateDep = Annotated[PrivateData, Depends(get_private_data)]


def get_role_context(request: Request) -> RoleContext | None:
    """Return the role the router decided this node serves the request as, if any."""
    slot = getattr(request.state, STATE_SLOT, None)
    return RoleContext(slot[0], slot[1]) if slot is not None else None


RoleDep = Annotated[RoleContext | None, Depends(get_role_context)]
