"""The zone map of signed timestamps (``transaction_time_zones``, migration 0008).

Zone ``z`` is the rows ``seq`` in ``[z << ZONE_BITS, (z + 1) << ZONE_BITS)``; its row keeps
the smallest and largest signed timestamp ever written there (a block-range summary, like
PostgreSQL's BRIN indexes or a column store's zone maps). ``node.ledger.queries`` walks only
the zones whose bounds meet a time range.

Every write of ``transactions`` widens the zones it touches in the same SQL transaction:
the ORM's unit of work through the ``after_flush`` hook that ``track`` installs on every
session factory (``node.db.session.make_session_factory``), the bulk insert
(``node.ledger.bulk.insert_leaves``) by calling ``widen`` (on SQLite the same statement,
``upsert_sqlite``, through ``node.db.zonemap.upsert_zones`` on its DBAPI cursor, also in the
writer process). Timestamps are signed, so never updated; deleted rows
leave their zone's bounds as they were: wider than needed, never wrong.
(A database trigger would keep it whatever the writer, but any row trigger makes SQLite's
insert of an index row about 3 times slower: measured in docs/benchmarks.md.)
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import case, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import BusinessTransaction, TimeZone
from node.db.zonemap import ZONE_BITS, bounds, upsert_zones

__all__ = ["ZONE_BITS", "bounds", "track", "upsert_sqlite", "upsert_zones", "widen"]


def widen(session: Session, pairs: Iterable[tuple[int, int]]) -> None:
    """Widen the zones of the rows ``(seq, timestamp)`` just written, in ``session``'s
    transaction: one ``INSERT … ON CONFLICT DO UPDATE`` row for every zone they touch."""
    zones = bounds(pairs)
    if zones:
        session.connection().execute(
            _upsert(session.get_bind().dialect.name),
            [
                {"zone": zone, "min_timestamp": low, "max_timestamp": high}
                for zone, (low, high) in sorted(zones.items())
            ],
        )


@cache
def upsert_sqlite() -> str:
    """The SQL of ``_upsert("sqlite")``, parameters ``(zone, min_timestamp, max_timestamp)``."""
    compiled = _upsert("sqlite").compile(dialect=sqlite.dialect())
    assert compiled.positiontup == ["zone", "min_timestamp", "max_timestamp"], compiled
    return str(compiled)


@cache
def _upsert(dialect: str) -> Any:
    """The upsert statement of ``widen`` for ``dialect`` (built once: compiled once)."""
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(TimeZone)
    new, old = statement.excluded, TimeZone.__table__.c
    return statement.on_conflict_do_update(
        index_elements=[old.zone],
        set_={
            "min_timestamp": case(
                (new.min_timestamp < old.min_timestamp, new.min_timestamp),
                else_=old.min_timestamp,
            ),
            "max_timestamp": case(
                (new.max_timestamp > old.max_timestamp, new.max_timestamp),
                else_=old.max_timestamp,
            ),
        },
        where=(new.min_timestamp < old.min_timestamp) | (new.max_timestamp > old.max_timestamp),
    )


def _after_flush(session: Session, _context: Any) -> None:
    pairs = [
        (int(row.seq), int(row.timestamp))
        for row in session.new
        if isinstance(row, BusinessTransaction)
    ]
    if pairs:
        widen(session, pairs)


def track(factory: sessionmaker[Session]) -> None:
    """Keep the zone map of every ``BusinessTransaction`` the sessions of ``factory`` add."""
    event.listen(factory, "after_flush", _after_flush)
