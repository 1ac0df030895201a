"""``GET /health``: is the node up, and on which chain, registry, epoch and store.

``GET /livez`` is the cheap probe (Kubernetes' name for it): it answers as soon as the process
serves HTTP and touches neither the chain nor the index, so peers' routers can probe it often.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from node.api.deps import NodeDep
from node.errors import CollegiumError
from node.replication.replica import get_subsystem_log

router = APIRouter(tags=["health"])


@router.get("/health")
def health(node: NodeDep) -> dict[str, Any]:
    """Return the node's health: ``status`` (``ok`` or ``degraded``) and ``reasons`` (each a
    ``code`` and a ``message``: docs/operations.md, "Health: ok or degraded"); chain id, block,
    epoch, node and registry address, store, and ``replicas``: per subsystem with a private
    log, how many of its entries' sealed objects are here and whether this node is caught up
    for it (``node.replication.replica``). The head block is read afresh, other chain reads are
    reused at the same head for at most a second; ``/livez`` is the cheap probe."""
    summary = node.health()
    try:
        summary["replicas"] = [s.as_dict() for s in get_subsystem_log(node).statuses()]
    except (CollegiumError, SQLAlchemyError) as exc:  # /health itself must still answer
        summary["replicas"] = {"error": str(exc)}
    return summary


@router.get("/livez")
def livez() -> dict[str, str]:
    """Return ``{"status": "ok"}`` while the process serves HTTP (no chain, index or store)."""
    return {"status": "ok"}
