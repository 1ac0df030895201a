"""The zones of the zone map (``node.db.zones``) as plain arithmetic: no SQLAlchemy, so that
the SQLite writer process (``node.db.writer``) can compute them too."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Final

#: a zone holds 2**ZONE_BITS consecutive seqs; migration 0008 uses the same number
ZONE_BITS: Final = 10


def bounds(pairs: Iterable[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Return ``{zone: (min timestamp, max timestamp)}`` of ``(seq, timestamp)`` pairs."""
    zones: dict[int, list[int]] = {}
    for seq, stamp in pairs:
        zone = zones.get(seq >> ZONE_BITS)
        if zone is None:
            zones[seq >> ZONE_BITS] = [stamp, stamp]
        elif stamp < zone[0]:
            zone[0] = stamp
        elif stamp > zone[1]:
            zone[1] = stamp
    return {zone: (low, high) for zone, (low, high) in zones.items()}


def upsert_zones(cursor: sqlite3.Cursor, upsert: str, pairs: Iterable[tuple[int, int]]) -> None:
    """Widen the zones of the rows ``(seq, timestamp)`` with ``upsert`` (the statement of
    ``node.db.zones.upsert_sqlite``, parameters ``(zone, min_timestamp, max_timestamp)``) on
    the DBAPI ``cursor`` of a SQLite connection, in its transaction."""
    rows = [(zone, low, high) for zone, (low, high) in sorted(bounds(pairs).items())]
    if len(rows) == 1:
        cursor.execute(upsert, rows[0])
    elif rows:
        cursor.executemany(upsert, rows)
