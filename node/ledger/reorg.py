"""Rollback of anchors a chain reorganisation dropped.

The chain follower (``node.ledger.follower``) finds the fork point: the newest indexed
block still on the chain. Every anchor mined above it is gone from the chain, so the index
forgets it:

* this node's own anchors: their leaves become ``pending`` again (leaf index and anchor
  cleared) and the anchorer integrates them again, in the same order (``seq``). The
  dropped anchors are the newest, so the log keeps its prefix; its tree nodes past the
  remaining size are deleted.
* other nodes' anchors: their leaves (rows and parties) and tree nodes are deleted; the
  follower indexes them again if the new chain has them.

The functions write in the caller's session; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from node.db.models import Anchor, BusinessTransaction, TransactionParty, TransactionStatus
from node.ledger import tree
from node.ledger.rows import OWN_LOG


def get_own_anchors_above(session: Session, node_address: str, block_number: int) -> list[int]:
    """Return the indexes of this node's anchors mined above ``block_number``."""
    return list(
        session.scalars(
            select(Anchor.index).where(
                Anchor.node == node_address, Anchor.block_number > block_number
            )
        ).all()
    )


def return_leaves_to_pending(session: Session, indexes: Sequence[int]) -> int:
    """Make the leaves of this node's anchors ``indexes`` pending again, delete those anchors
    and truncate the log's tree to the leaves left; return how many leaves."""
    result = session.execute(
        update(BusinessTransaction)
        .where(BusinessTransaction.anchor_index.in_(indexes))
        .values(status=TransactionStatus.PENDING, leaf_index=None, anchor_index=None)
    )
    session.execute(delete(Anchor).where(Anchor.index.in_(indexes)))
    tree.truncate(session, OWN_LOG, tree.log_size(session, OWN_LOG))
    return int(getattr(result, "rowcount", 0) or 0)


def drop_other_leaves_above(session: Session, own_node: str, fork: int) -> None:
    """Delete other nodes' leaves of anchors mined above ``fork`` and their tree nodes
    (``own_node``: this node's checksum address, or "")."""
    gone = session.execute(
        select(Anchor.index, Anchor.node).where(Anchor.block_number > fork, Anchor.node != own_node)
    ).all()
    if not gone:
        return
    indexes = [int(i) for i, _ in gone]
    doomed = select(BusinessTransaction.seq).where(
        BusinessTransaction.anchor_index.in_(indexes), BusinessTransaction.origin != OWN_LOG
    )
    session.execute(delete(TransactionParty).where(TransactionParty.tx_seq.in_(doomed)))
    session.execute(
        delete(BusinessTransaction).where(
            BusinessTransaction.anchor_index.in_(indexes),
            BusinessTransaction.origin != OWN_LOG,
        )
    )
    for origin in {str(node) for _, node in gone}:
        tree.truncate(session, origin, tree.log_size(session, origin))
