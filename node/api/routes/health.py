"""``GET /health``: is the node up, and on which chain, registry, epoch and store."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from node.api.deps import NodeDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(node: NodeDep) -> dict[str, Any]:
    """Return the node's health: chain id, block, epoch, node and registry address, store."""
    return node.health()
