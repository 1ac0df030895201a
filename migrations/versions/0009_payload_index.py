"""ledger: an index on ``transactions.payload`` for the lookup by CID

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

``GET /transactions/by-cid/{cid}`` is public: it finds the transaction whose leaf CID, else
whose (encrypted) payload CID, is the one asked for. Without this index a CID that is no leaf
made every such request scan the whole table, which anyone could repeat at will.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_transactions_payload", "transactions", ["payload"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_transactions_payload", table_name="transactions")
