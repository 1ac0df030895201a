"""subsystem database: S's log as this host indexed it (log_entries)

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_entries",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_id", sa.String(length=66), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("author", sa.String(length=42), nullable=False),
        sa.Column("timestamp", sa.Integer(), nullable=False),
        sa.Column("cid", sa.String(length=128), nullable=False),
        sa.Column("payload_hash", sa.String(length=66), nullable=False),
        sa.Column("anchored", sa.Integer(), nullable=False),
        sa.Column("envelope", sa.String(length=128), nullable=True),
        sa.Column("key_version", sa.Integer(), nullable=True),
        sa.Column("commitment", sa.String(length=64), nullable=True),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("tx_id"),
    )


def downgrade() -> None:
    op.drop_table("log_entries")
