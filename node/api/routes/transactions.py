"""Business transactions: submit one signed with EIP-712, fetch one, list them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from node.api.deps import LedgerDep, NodeDep
from node.api.schemas import (
    BusinessTxCreate,
    BusinessTxPage,
    BusinessTxPublic,
    InclusionProofPublic,
    Problem,
)
from node.db.models import TransactionStatus
from node.ledger.transaction import typed_data_schema

router = APIRouter(prefix="/transactions", tags=["transactions"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "malformed or wrongly signed transaction"},
    401: {"model": Problem, "description": "signature does not match the signer"},
    409: {"model": Problem, "description": "replayed (signer nonce already used)"},
    413: {"model": Problem, "description": "request body too large"},
    422: {"model": Problem, "description": "schema error or unknown subsystem"},
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
    signature = bytes.fromhex(body.signature[2:])
    row = ledger.submit(body.transaction.to_domain(), signature, body.signer)
    if wait:
        row = ledger.wait_anchored(row.tx_id, node.settings.anchor_wait) or row
    if row.status != TransactionStatus.ANCHORED:
        response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/api/v1/transactions/{row.tx_id}"
    return BusinessTxPublic.from_row(row)


@router.get("", response_model=BusinessTxPage)
def list_transactions(
    ledger: LedgerDep,
    subsystem: str | None = None,
    kind: str | None = None,
    signer: str | None = None,
    party: str | None = None,
    before: int | None = Query(default=None, description="cursor: list rows older than this"),
    limit: int = Query(default=50, ge=1, le=500),
) -> BusinessTxPage:
    """Return transactions, newest first, filtered; page with ``before=next_cursor``."""
    from eth_utils import is_hex_address, to_checksum_address

    def addr(value: str | None, name: str) -> str | None:
        if value is None:
            return None
        if not is_hex_address(value):
            raise HTTPException(400, f"{name} is not an address: {value!r}")
        return str(to_checksum_address(value))

    page = ledger.list(
        subsystem=subsystem,
        kind=kind,
        signer=addr(signer, "signer"),
        party=addr(party, "party"),
        before=before,
        limit=limit,
    )
    return BusinessTxPage(
        items=[BusinessTxPublic.from_row(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/typed-data", summary="EIP-712 domain and types to sign")
def eip712_types(node: NodeDep) -> dict[str, Any]:
    """Return the EIP-712 ``domain``, ``types`` and ``primaryType`` wallets must sign."""
    return typed_data_schema(node.ledger.domain)


@router.get("/{tx_id}", responses={404: {"model": Problem}})
def get_transaction(tx_id: str, ledger: LedgerDep) -> BusinessTxPublic:
    """Return one transaction: body, signer, CID, status and on-chain anchor."""
    row = ledger.get(tx_id)
    if row is None:
        raise HTTPException(404, f"no transaction {tx_id}")
    return BusinessTxPublic.from_row(row)


@router.get("/{tx_id}/proof", responses={404: {"model": Problem}, 409: {"model": Problem}})
def get_inclusion_proof(tx_id: str, node: NodeDep) -> InclusionProofPublic:
    """Return the proof bundle of one transaction: leaf, path, tree head and anchor.

    With only a chain RPC URL and an IPFS gateway anyone can check it
    (``collegium verify-tx``). 409 while the transaction is not anchored yet.
    """
    row = node.ledger.get(tx_id)
    if row is None:
        raise HTTPException(404, f"no transaction {tx_id}")
    bundle = node.ledger.inclusion(tx_id)
    if bundle is None:
        raise HTTPException(409, f"transaction {tx_id} is not anchored yet")
    return InclusionProofPublic.from_bundle(
        bundle, chain_id=node.chain.chain_id, registry=str(node.record.registry)
    )
