"""The full audit behind ``collegium verify``: every stored leaf against store and chain.

For each transaction in the index it checks that

* the stored body decodes as a canonical leaf whose signature recovers to the signer
  and whose EIP-712 digest is the transaction id;
* the indexed columns equal the signed fields;
* the content store holds the body under the recorded CID, and the CID is the one the
  body hashes to;
* an anchored leaf's on-chain anchor has the recorded root (the leaf hash for
  per-transaction anchors) and batch CID.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from node.db.models import BusinessTransaction, TransactionStatus
from node.errors import CollegiumError
from node.ledger.hasher import hash_leaf
from node.ledger.transaction import decode_leaf

AUDIT_BATCH = 500


@dataclass(frozen=True)
class Finding:
    """One mismatch: which transaction, what was checked, expected vs. actual."""

    tx_id: str
    check: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.tx_id}: {self.check}: expected {self.expected}, got {self.actual}"


@dataclass
class AuditReport:
    """The result of an audit: counts and findings (empty when all is well)."""

    checked: int = 0
    anchored: int = 0
    pending: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when no mismatch was found."""
        return not self.findings


def _rows(sessions: sessionmaker[Session]) -> Iterator[BusinessTransaction]:
    last = 0
    while True:
        with sessions() as session:
            batch = session.scalars(
                select(BusinessTransaction)
                .options(
                    selectinload(BusinessTransaction.parties),
                    selectinload(BusinessTransaction.anchor),
                )
                .where(BusinessTransaction.seq > last)
                .order_by(BusinessTransaction.seq)
                .limit(AUDIT_BATCH)
            ).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].seq


def audit_transaction(row: BusinessTransaction, store: Any, registry: Any) -> list[Finding]:
    """Return the findings for one indexed transaction (empty if it checks out)."""
    found: list[Finding] = []

    def bad(check: str, expected: object, actual: object) -> None:
        found.append(Finding(row.tx_id, check, str(expected), str(actual)))

    try:
        leaf = decode_leaf(row.body)
    except CollegiumError as exc:
        bad("leaf decodes and its signature verifies", "valid leaf", exc)
        return found
    if leaf.tx_id != row.tx_id:
        bad("transaction id = EIP-712 digest of the body", leaf.tx_id, row.tx_id)
    if leaf.signer != row.signer:
        bad("signer recovered from the body", leaf.signer, row.signer)
    signed = leaf.tx
    columns = {
        "subsystem": row.subsystem,
        "kind": row.kind,
        "amount": row.amount,
        "currency": row.currency,
        "memo": row.memo,
        "payload": row.payload,
        "nonce": row.nonce,
        "timestamp": row.timestamp,
        "parties": tuple(p.address for p in row.parties),
    }
    for name, value in columns.items():
        if getattr(signed, name) != value:
            bad(f"index column {name} = signed field", getattr(signed, name), value)
    leaf_hash = "0x" + hash_leaf(row.body).hex()
    if leaf_hash != row.leaf_hash:
        bad("leaf hash", leaf_hash, row.leaf_hash)
    try:
        cid = store.add_bytes(row.body, only_hash=True)
        if cid != row.cid:
            bad("CID of the body", cid, row.cid)
        stored = store.cat(row.cid)
        if stored != row.body:
            bad(
                "content store bytes under the CID",
                f"{len(row.body)} bytes",
                f"{len(stored)} different bytes",
            )
    except CollegiumError as exc:
        bad("content store holds the body", row.cid, exc)
    if row.status == TransactionStatus.ANCHORED:
        if row.anchor_index is None:
            bad("anchored transaction has an anchor", "anchor index", None)
            return found
        try:
            onchain = registry.get_anchor(row.anchor_index)
        except CollegiumError as exc:
            bad("anchor exists on-chain", row.anchor_index, exc)
            return found
        root = "0x" + bytes(onchain.root).hex()
        if root != leaf_hash:
            bad(f"on-chain root of anchor {row.anchor_index}", leaf_hash, root)
        if str(onchain.batch_cid) != row.cid:
            bad(f"on-chain batch CID of anchor {row.anchor_index}", row.cid, onchain.batch_cid)
    return found


def audit(sessions: sessionmaker[Session], store: Any, registry: Any) -> AuditReport:
    """Return the audit report over every transaction in the index."""
    report = AuditReport()
    for row in _rows(sessions):
        report.checked += 1
        if row.status == TransactionStatus.ANCHORED:
            report.anchored += 1
        else:
            report.pending += 1
        report.findings.extend(audit_transaction(row, store, registry))
    return report
