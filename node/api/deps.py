"""FastAPI dependencies: the node's parts, taken from ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from node.ledger.service import LedgerService
from node.runtime import NodeContext


def get_node(request: Request) -> NodeContext:
    """Return the running node's context."""
    node: NodeContext = request.app.state.node
    return node


def get_ledger(request: Request) -> LedgerService:
    """Return the ledger service."""
    return get_node(request).ledger


NodeDep = Annotated[NodeContext, Depends(get_node)]
LedgerDep = Annotated[LedgerService, Depends(get_ledger)]
