"""The proofs a node serves: a leaf's inclusion proof, a log's consistency proof.

In Certificate Transparency terms (RFC 6962 §2.1), an **inclusion proof** (audit path)
shows that a leaf is in the tree of a given tree head, and a **consistency proof** that a
smaller tree head's tree is a prefix of a larger one's. Here a tree head is an anchor
(size, root, on-chain). Both are O(log n) reads of the tree nodes ``node.ledger.tree``
keeps in SQL, for any log in the index (this node's own, or another node's indexed one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import BusinessTransaction
from node.errors import ValidationError
from node.ledger import tree
from node.ledger.rows import OWN_LOG, compute_hex

log = logging.getLogger(__name__)

TREE_CATCH_UP_LAG = 1024  # a proof persists the tree first when this many leaves are not


@dataclass(frozen=True)
class InclusionBundle:
    """Everything a third party needs to check one transaction against the chain."""

    tx_id: str
    leaf: bytes
    cid: str
    leaf_index: int
    tree_size: int
    root: str
    path: list[str]
    anchor_index: int
    block_number: int
    chain_tx_hash: str
    node: str


def get_inclusion_bundle(
    sessions: sessionmaker[Session], row: BusinessTransaction | None
) -> InclusionBundle | None:
    """Return the inclusion proof of the leaf ``row`` in the tree head of its anchor, or
    None if there is no row or it is not anchored yet."""
    if row is None or row.anchor is None or row.leaf_index is None:
        return None
    head = row.anchor
    with sessions() as session:
        catch_up_tree(session, row.origin, head.tree_size)
        path = tree.inclusion_path(session, row.origin, row.leaf_index, head.tree_size)
    return InclusionBundle(
        tx_id=row.tx_id,
        leaf=row.body,
        cid=row.cid,
        leaf_index=row.leaf_index,
        tree_size=head.tree_size,
        root=head.root,
        path=[compute_hex(p) for p in path],
        anchor_index=head.index,
        block_number=head.block_number,
        chain_tx_hash=head.chain_tx_hash,
        node=head.node,
    )


def get_consistency_proof(sessions: sessionmaker[Session], size1: int, size2: int) -> list[str]:
    """Return the consistency proof between two anchored sizes of this node's log.

    Raises ``ValidationError`` unless 0 < size1 <= size2 <= anchored size.
    """
    with sessions() as session:
        size = tree.log_size(session, OWN_LOG)
        if not 0 < size1 <= size2 <= size:
            raise ValidationError(f"need 0 < first <= second <= {size}, got {size1}, {size2}")
        catch_up_tree(session, OWN_LOG, size2)
        return [compute_hex(p) for p in tree.consistency_path(session, OWN_LOG, size1, size2)]


def catch_up_tree(session: Session, origin: str, size: int) -> None:
    """Persist the tree nodes of ``origin`` first if more than ``TREE_CATCH_UP_LAG`` leaves
    are not (normally the chain follower keeps them current); proofs are right either way."""
    if size - tree.persisted_size(session, origin) > TREE_CATCH_UP_LAG:
        try:
            tree.catch_up(session, origin, size)
            session.commit()
        except OperationalError as exc:  # a concurrent writer (SQLite): next time
            session.rollback()
            log.debug("tree catch-up of %r postponed: %s", origin, exc)
