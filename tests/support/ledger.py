"""Index reads the ledger tests check against, independent of the code under test."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import BusinessTransaction


def count_log_rows(sessions: sessionmaker[Session], origin: str) -> int:
    """Return how many rows of log ``origin`` ("" = the node's own) the index holds."""
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(BusinessTransaction)
                .where(BusinessTransaction.origin == origin)
            )
            or 0
        )
