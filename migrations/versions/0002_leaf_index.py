"""leaf index: position of a transaction in the node's append-only log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("leaf_index", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint("uq_transactions_leaf_index", ["leaf_index"])
    # Anchors made before batching covered exactly one leaf each, in acceptance order.
    op.execute(
        "UPDATE transactions SET leaf_index = "
        "(SELECT count(*) FROM transactions AS t2 WHERE t2.seq < transactions.seq "
        "AND t2.status = 'anchored') WHERE status = 'anchored'"
    )


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_transactions_leaf_index", type_="unique")
        batch_op.drop_column("leaf_index")
