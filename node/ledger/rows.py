"""The index row of a leaf: what a verified transaction becomes in ``transactions``.

A leaf is the canonical RLP encoding of a signed transaction (``node.ledger.transaction``);
its row keeps the signed fields, the body, the leaf hash (RFC 6962, ``node.ledger.hasher``)
and the body's CID, and starts ``pending``: it gets a leaf index and an anchor when the
anchorer integrates it into the log. Every log in the index is told apart by
``transactions.origin``: ``OWN_LOG`` for this node's own, the node address for another's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from node.db.models import BusinessTransaction, TransactionParty, TransactionStatus
from node.ledger.hasher import hash_leaf
from node.ledger.transaction import SignedBusinessTx

OWN_LOG = ""  # ``transactions.origin`` of this node's own log (other logs: the node address)


def compute_hex(data: bytes) -> str:
    """Return ``data`` as 0x-prefixed lowercase hex (how the index stores hashes)."""
    return "0x" + bytes(data).hex()


def row_values(
    signed: SignedBusinessTx,
    body: bytes,
    cid: str,
    received_at: datetime,
    leaf_hash: str | None = None,
) -> dict[str, Any]:
    """Return the column values of the (pending) index row of a verified transaction
    (for bulk inserts; parties go to ``transaction_parties``); ``leaf_hash`` (0x-hex) is
    computed from ``body`` unless given."""
    tx = signed.tx
    return {
        "tx_id": signed.tx_id,
        "signer": signed.signer,
        "nonce": tx.nonce,
        "subsystem": tx.subsystem,
        "kind": tx.kind,
        "amount": tx.amount,
        "currency": tx.currency,
        "memo": tx.memo,
        "payload": tx.payload,
        "payload_hash": tx.payload_hash,
        "private": tx.private,
        "timestamp": tx.timestamp,
        "signature": compute_hex(signed.signature),
        "body": body,
        "leaf_hash": leaf_hash or compute_hex(hash_leaf(body)),
        "cid": cid,
        "status": TransactionStatus.PENDING,
        "received_at": received_at,
    }


def new_row(
    signed: SignedBusinessTx, body: bytes, cid: str, received_at: datetime
) -> BusinessTransaction:
    """Return the (pending) index row of a verified transaction whose leaf is ``body``."""
    tx = signed.tx
    return BusinessTransaction(
        tx_id=signed.tx_id,
        signer=signed.signer,
        nonce=tx.nonce,
        subsystem=tx.subsystem,
        kind=tx.kind,
        amount=tx.amount,
        currency=tx.currency,
        memo=tx.memo,
        payload=tx.payload,
        payload_hash=tx.payload_hash,
        private=tx.private,
        timestamp=tx.timestamp,
        signature=compute_hex(signed.signature),
        body=body,
        leaf_hash=compute_hex(hash_leaf(body)),
        cid=cid,
        status=TransactionStatus.PENDING,
        received_at=received_at,
        parties=[TransactionParty(position=i, address=p) for i, p in enumerate(tx.parties)],
    )
