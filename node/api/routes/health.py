"""``GET /health``: is the node up, and on which chain, registry, epoch and store.

``GET /livez`` is the cheap probe (Kubernetes' name for it): it answers as soon as the process
serves HTTP and touches neither the chain nor the index, so peers' routers can probe it often.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from node.api.deps import NodeDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(node: NodeDep) -> dict[str, Any]:
    """Return the node's health: chain id, block, epoch, node and registry address, store."""
    return node.health()


@router.get("/livez")
def livez() -> dict[str, str]:
    """Return ``{"status": "ok"}`` while the process serves HTTP (no chain, index or store)."""
    return {"status": "ok"}
