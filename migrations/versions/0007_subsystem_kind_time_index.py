"""ledger: the (subsystem, kind, timestamp, seq) index for explorer lists with both filters
and a time range

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

No other index orders a page filtered by subsystem, kind and a time range: the seqs of the
matching rows are read from this index alone (a range of it), then sorted
(``node.ledger.queries``).
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_transactions_subsystem_kind_time",
        "transactions",
        ["subsystem", "kind", "timestamp", "seq"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_subsystem_kind_time", table_name="transactions")
