"""The full audit behind ``collegium verify``: every stored leaf against store and chain.

For each transaction in the index it checks that

* the stored body decodes as a canonical leaf whose signature recovers to the signer
  and whose EIP-712 digest is the transaction id;
* the indexed columns equal the signed fields;
* the content store holds the body under the recorded CID, and the CID is the one the
  body hashes to;
* every on-chain anchor of this node has the root recomputed from the leaves
  (recomputed from the stored bodies, not from the indexed hashes), its batch document
  in the store lists exactly the leaves of its range, and the index agrees with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from node.db.models import Anchor, BusinessTransaction, TransactionStatus
from node.errors import CollegiumError
from node.ledger.batch import decode_batch
from node.ledger.hasher import hash_leaf
from node.ledger.proof import CompactRange
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


def audit_transaction(row: BusinessTransaction, store: Any) -> list[Finding]:
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
    if row.status == TransactionStatus.ANCHORED and (
        row.anchor_index is None or row.leaf_index is None
    ):
        bad("anchored transaction has a leaf index and an anchor", "both", None)
    return found


def audit_anchors(
    node: str, leaves: dict[int, tuple[str, bytes, str]], store: Any, registry: Any,
    indexed: dict[int, Any],
) -> list[Finding]:  # fmt: skip
    """Return the findings for every on-chain anchor of ``node``.

    ``leaves`` maps leaf index to (tx id, leaf hash recomputed from the body, CID);
    ``indexed`` maps anchor index to the index's ``Anchor`` row.
    """
    found: list[Finding] = []
    frontier = CompactRange()
    for index in range(registry.anchor_count()):
        onchain = registry.get_anchor(index)
        if str(onchain.node).lower() != node.lower():
            continue
        name = f"anchor {index}"
        root = "0x" + bytes(onchain.root).hex()
        first = int(onchain.tree_size) - int(onchain.count)
        if first != frontier.size:
            found.append(Finding(name, "anchor extends the log", str(frontier.size), str(first)))
            return found
        for leaf_index in range(first, int(onchain.tree_size)):
            if leaf_index not in leaves:
                found.append(Finding(name, f"leaf {leaf_index} is in the index", "row", "none"))
                return found
            frontier.append(leaves[leaf_index][1])
        if "0x" + frontier.root().hex() != root:
            found.append(Finding(name, "root recomputed from the stored leaves", root,
                                 "0x" + frontier.root().hex()))  # fmt: skip
        try:
            batch = decode_batch(store.cat(str(onchain.batch_cid)))
            expected = tuple(leaves[i][2] for i in range(first, int(onchain.tree_size)))
            if batch.first != first or batch.leaf_cids != expected:
                found.append(Finding(name, "batch document lists the anchored leaves",
                                     f"{first}:{list(expected)}",
                                     f"{batch.first}:{list(batch.leaf_cids)}"))  # fmt: skip
        except CollegiumError as exc:
            found.append(Finding(name, "batch document in the store", str(onchain.batch_cid),
                                 str(exc)))  # fmt: skip
        row = indexed.get(index)
        if row is None or row.root != root or row.tree_size != int(onchain.tree_size):
            found.append(Finding(name, "index agrees with the chain", root,
                                 "missing" if row is None else row.root))  # fmt: skip
    for leaf_index in sorted(leaves):
        if leaf_index >= frontier.size:
            found.append(Finding(leaves[leaf_index][0], "anchored leaf is covered by an anchor",
                                 f"< {frontier.size}", str(leaf_index)))  # fmt: skip
    return found


def audit(sessions: sessionmaker[Session], store: Any, registry: Any, node: str) -> AuditReport:
    """Return the audit report over every transaction in the index and every anchor
    ``node`` made on-chain."""
    report = AuditReport()
    leaves: dict[int, tuple[str, bytes, str]] = {}
    for row in _rows(sessions):
        report.checked += 1
        if row.status == TransactionStatus.ANCHORED:
            report.anchored += 1
        else:
            report.pending += 1
        report.findings.extend(audit_transaction(row, store))
        if row.leaf_index is not None and row.origin == "":  # this node's own log
            leaves[row.leaf_index] = (row.tx_id, hash_leaf(row.body), row.cid)
    with sessions() as session:
        indexed = {a.index: a for a in session.scalars(select(Anchor))}
    try:
        report.findings.extend(audit_anchors(node, leaves, store, registry, indexed))
    except CollegiumError as exc:
        report.findings.append(Finding("chain", "anchors readable", "registry", str(exc)))
    return report
