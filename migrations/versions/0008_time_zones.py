"""ledger: a zone map of the signed timestamps (``transaction_time_zones``) for explorer
time ranges

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

Rows ``seq`` in ``[zone * 1024, (zone + 1) * 1024)`` form zone ``zone``; the table keeps the
smallest and largest signed timestamp of each zone (a block-range summary, like PostgreSQL's
BRIN indexes or a column store's zone maps). A time-range query walks only the zones whose
bounds meet the range, newest first (``node.ledger.queries``).

A trigger keeps it in the same SQL transaction as every insert (and every change of a
timestamp), whichever code path writes the row; deleted rows leave their zone's bounds as
they were, wider than needed but never wrong. The existing rows are summarised here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ZONE_BITS = 10  # node.ledger.queries.ZONE_BITS (tests/ledger/test_queries.py checks both)

SQLITE_TRIGGER = """
CREATE TRIGGER transactions_time_zone_{event} AFTER {event_sql} ON transactions
BEGIN
    INSERT INTO transaction_time_zones (zone, min_timestamp, max_timestamp)
    VALUES (NEW.seq >> {bits}, NEW.timestamp, NEW.timestamp)
    ON CONFLICT (zone) DO UPDATE SET
        min_timestamp = min(min_timestamp, excluded.min_timestamp),
        max_timestamp = max(max_timestamp, excluded.max_timestamp)
    WHERE excluded.min_timestamp < min_timestamp OR excluded.max_timestamp > max_timestamp;
END
"""

POSTGRES_FUNCTION = f"""
CREATE FUNCTION transactions_time_zone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transaction_time_zones AS z (zone, min_timestamp, max_timestamp)
    VALUES (NEW.seq >> {ZONE_BITS}, NEW."timestamp", NEW."timestamp")
    ON CONFLICT (zone) DO UPDATE SET
        min_timestamp = LEAST(z.min_timestamp, EXCLUDED.min_timestamp),
        max_timestamp = GREATEST(z.max_timestamp, EXCLUDED.max_timestamp)
    WHERE EXCLUDED.min_timestamp < z.min_timestamp OR EXCLUDED.max_timestamp > z.max_timestamp;
    RETURN NULL;
END
$$
"""


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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(
            'CREATE TRIGGER transactions_time_zone AFTER INSERT OR UPDATE OF "timestamp" '
            "ON transactions FOR EACH ROW EXECUTE FUNCTION transactions_time_zone()"
        )
    else:
        for event, event_sql in (("insert", "INSERT"), ("update", "UPDATE OF timestamp")):
            op.execute(SQLITE_TRIGGER.format(event=event, event_sql=event_sql, bits=ZONE_BITS))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER transactions_time_zone ON transactions")
        op.execute("DROP FUNCTION transactions_time_zone()")
    else:
        op.execute("DROP TRIGGER transactions_time_zone_insert")
        op.execute("DROP TRIGGER transactions_time_zone_update")
    op.drop_table("transaction_time_zones")
