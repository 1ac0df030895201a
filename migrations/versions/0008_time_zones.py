"""ledger: a zone map of the signed timestamps (``transaction_time_zones``) for explorer
time ranges

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

Rows ``seq`` in ``[zone * 1024, (zone + 1) * 1024)`` form zone ``zone``; the table keeps the
smallest and largest signed timestamp of each zone (a block-range summary, like PostgreSQL's
BRIN indexes or a column store's zone maps). A time-range query walks only the zones whose
bounds meet the range, newest first (``node.ledger.queries``). The node widens the zones of
every row it writes, in the same SQL transaction (``node.db.zones``); the rows already there
are summarised here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ZONE_BITS = 10  # node.db.zones.ZONE_BITS (tests/ledger/test_queries.py checks both)


def upgrade() -> None:
    op.create_table(
        "transaction_time_zones",
        sa.Column("zone", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("min_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("max_timestamp", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO transaction_time_zones (zone, min_timestamp, max_timestamp) "
        f'SELECT seq >> {ZONE_BITS}, min("timestamp"), max("timestamp") FROM transactions '
        f"GROUP BY seq >> {ZONE_BITS}"
    )


def downgrade() -> None:
    op.drop_table("transaction_time_zones")
