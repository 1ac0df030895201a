"""Business transactions submitted: one (``POST /transactions``) or a batch
(``POST /transactions/batch``), each signed with EIP-712, verified and durably stored.

Its router is included before :mod:`node.api.routes.transactions`' (the reads): both share
the ``/transactions`` prefix and the OpenAPI document lists the submissions first.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response, status

from node.api.batchitems import Rejected, check_batch, submission_of
from node.api.deps import NodeDep
from node.api.problems import PROBLEM_TYPE_BASE, status_of
from node.api.schemas import (
    COMPACT_JSON,
    BatchCreate,
    BatchItemResult,
    BatchResult,
    BusinessTxCreate,
    BusinessTxPublic,
    Problem,
)
from node.db.models import TransactionStatus
from node.errors import ValidationError
from node.ledger.service import Submission
from node.ledger.verifier import VerifiedTx

router = APIRouter(prefix="/transactions", tags=["transactions"])


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "malformed or wrongly signed transaction"},
    401: {"model": Problem, "description": "signature does not match the signer"},
    409: {"model": Problem, "description": "replayed (signer nonce already used)"},
    413: {"model": Problem, "description": "request body too large"},
    403: {"model": Problem, "description": "the signer is not a participant of the subsystem"},
    422: {"model": Problem, "description": "schema error or unknown subsystem"},
    429: {"model": Problem, "description": "rate limit of this client exceeded (Retry-After)"},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        202: {"model": BusinessTxPublic, "description": "stored, anchoring pending"},
        **ERRORS,
    },
)
def submit_transaction(
    body: BusinessTxCreate,
    node: NodeDep,
    response: Response,
    wait: bool = Query(default=False, description="wait until anchored on-chain (201)"),
) -> BusinessTxPublic:
    """Verify and durably store one EIP-712-signed business transaction.

    Returns 202 with ``status: pending`` once it is committed (it then survives a crash
    and is anchored by the next batch), or with ``wait=true`` 201 once anchored
    on-chain (202 if that takes longer than the node's anchor wait).
    """
    ledger = node.ledger
    item = submission_of(body)
    accepted = ledger.submit_one(item)  # group commit: durable when it returns
    response.headers["Location"] = f"/api/v1/transactions/{accepted.tx_id}"
    if wait:
        row = ledger.wait_anchored(accepted.tx_id, node.settings.anchor_wait)
        if row is not None:
            if row.status != TransactionStatus.ANCHORED:
                response.status_code = status.HTTP_202_ACCEPTED
            return BusinessTxPublic.from_row(row)
    response.status_code = status.HTTP_202_ACCEPTED
    return BusinessTxPublic.from_accepted(accepted)


@router.post(
    "/batch",
    response_model=BatchResult,
    responses={200: {"model": BatchResult}, 413: {"model": Problem}, 422: {"model": Problem}},
)
def submit_batch(body: BatchCreate, node: NodeDep) -> Response:
    """Verify and durably store a batch of signed transactions, each on its own.

    Each item gets 202 (committed, anchoring pending) or the 4xx problem a single
    submission would get; a bad item writes nothing and does not affect the others.
    All accepted items are committed together before the response is sent.
    """
    ledger = node.ledger
    checks = check_batch(ledger.domain, node.settings.max_tx_bytes, body.items, ledger.verifier)
    results: list[dict[str, Any]] = [{}] * len(checks)
    positions: list[int] = []
    checked: list[tuple[Submission, VerifiedTx | ValidationError]] = []
    for i, check in enumerate(checks):
        if isinstance(check, Rejected):
            results[i] = _item_problem(i, check.status, check.title, check.detail)
        else:
            positions.append(i)
            checked.append(check)
    accepted = 0
    for i, outcome in zip(positions, ledger.submit_checked(checked), strict=True):
        if isinstance(outcome, ValidationError):
            code, kind = status_of(outcome)
            results[i] = _item_problem(i, code, kind.replace("-", " "), str(outcome), kind)
        else:
            results[i] = {"index": i, "status": 202, "id": outcome.tx_id, "problem": None}
            accepted += 1
    return _json_response(
        {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
    )


def _json_response(content: dict[str, Any]) -> Response:
    """Return ``content`` (a :class:`BatchResult` as JSON values) as FastAPI would send the
    model, without building, re-validating and dumping a model per item (a thousand of
    them per request)."""
    return Response(COMPACT_JSON.encode(content).encode(), media_type="application/json")


def _item_problem(index: int, code: int, title: str, detail: str, kind: str = "") -> dict[str, Any]:
    """Return the JSON of the :class:`BatchItemResult` of a refused item."""
    problem = Problem(
        type=PROBLEM_TYPE_BASE + kind if kind else "about:blank",
        title=title,
        status=code,
        detail=detail,
    )
    return BatchItemResult(index=index, status=code, problem=problem).model_dump(mode="json")
