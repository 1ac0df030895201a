"""subsystem database: sealed records and key envelopes

The schema ``create_all`` made before the subsystem migrations existed; such a file is
stamped s0001 or s0002 by the tables it holds (``node/db/subsystem.py``).

Revision ID: s0001
Revises:
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sealed_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cid", sa.String(length=128), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=42), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sealed_records_cid", "sealed_records", ["cid"])
    op.create_table(
        "key_envelopes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("envelope_cid", sa.String(length=128), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("envelope_cid"),
    )


def downgrade() -> None:
    op.drop_table("key_envelopes")
    op.drop_index("ix_sealed_records_cid", table_name="sealed_records")
    op.drop_table("sealed_records")
