"""Anchors: the tree heads of this node's log recorded on-chain, and consistency proofs."""

from __future__ import annotations

from fastapi import APIRouter, Query

from node.api.deps import LedgerDep
from node.api.params import MAX_INDEX_INT
from node.api.schemas import AnchorListItem, ConsistencyProofPublic, Problem
from node.ledger.service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/anchors", tags=["anchors"])


@router.get("")
def list_anchors(
    ledger: LedgerDep,
    before: int | None = Query(
        default=None, ge=0, le=MAX_INDEX_INT, description="cursor: anchors older than this"
    ),
    limit: int = Query(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
) -> list[AnchorListItem]:
    """Return anchors, newest first."""
    return [AnchorListItem.from_row(a) for a in ledger.anchors(before=before, limit=limit)]


@router.get("/consistency", responses={400: {"model": Problem}})
def get_consistency(
    ledger: LedgerDep,
    first: int = Query(ge=1, le=MAX_INDEX_INT, description="older tree size"),
    second: int = Query(ge=1, le=MAX_INDEX_INT, description="newer tree size"),
) -> ConsistencyProofPublic:
    """Return the RFC 9162 consistency proof between two anchored sizes of the log."""
    return ConsistencyProofPublic(
        first=first, second=second, path=ledger.consistency(first, second)
    )
