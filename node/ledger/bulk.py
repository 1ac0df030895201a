"""Bulk insert of accepted leaves: multi-row ``INSERT``s on SQLite (``node.sqlrows``).

SQLAlchemy's ORM bulk ``INSERT … RETURNING`` (insertmanyvalues) spends ~3x SQLite's own
time per row in Python; on SQLite the rows go in through the DBAPI cursor of the session's
own connection instead (same transaction, same column values: SQLAlchemy's bind processors
are applied, so e.g. ``received_at`` is stored exactly as the ORM stores it), or through the
cursor the group commit writes with (:func:`insert_leaves_sqlite`, no ``Session`` at all).
Other databases keep the ORM statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Dialect, Table, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from node.db import zones
from node.db.models import BusinessTransaction, TransactionParty, TransactionStatus
from node.db.session import sqlite_cursor
from node.ledger.groupwrite import LeafInsert, insert_leaf_rows

_TRANSACTIONS = cast(Table, BusinessTransaction.__table__)
_PARTIES = cast(Table, TransactionParty.__table__)

Processors = tuple[tuple[int, Callable[[Any], Any]], ...]
_UNSET = object()  # no value converted yet


#: per dialect and column list: the (position, bind processor) pairs of the columns that
#: have one (on SQLite ``private`` and ``received_at``), looked up once, not per insert
_PROCESSORS: WeakKeyDictionary[Dialect, dict[tuple[str, ...], Processors]] = WeakKeyDictionary()


def _processors(dialect: Dialect, columns: tuple[str, ...]) -> Processors:
    """Return the (position, bind processor) pairs of ``columns`` of ``transactions``."""
    known = _PROCESSORS.setdefault(dialect, {})
    found = known.get(columns)
    if found is None:
        processors = (
            _TRANSACTIONS.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in columns
        )
        found = known[columns] = tuple((i, p) for i, p in enumerate(processors) if p is not None)
    return found


def insert_leaves(
    session: Session, rows: Sequence[dict[str, Any]], parties: Sequence[Sequence[str]]
) -> list[int]:
    """Insert ``rows`` (column values of ``transactions``) and each row's ``parties`` in the
    session's transaction (not committed), and widen their timestamp zones; return the
    ``seq`` of each row, in order.

    Raises ``IntegrityError`` on a duplicate (the caller rolls back).
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        with sqlite_cursor(session) as cursor:
            return insert_leaves_sqlite(cursor, dialect, rows, parties)
    seqs = _insert_orm(session, rows, parties)
    zones.widen(session, zip(seqs, (row["timestamp"] for row in rows), strict=True))
    return seqs


def insert_leaves_sqlite(
    cursor: sqlite3.Cursor,
    dialect: Dialect,
    rows: Sequence[dict[str, Any]],
    parties: Sequence[Sequence[str]],
) -> list[int]:
    """:func:`insert_leaves` on the DBAPI ``cursor`` of a SQLite connection (``dialect``: its
    engine's, for the bind processors), in its transaction (not committed)."""
    if not rows:
        return []
    insert, values = sqlite_insert(dialect, rows)
    stamps = [row["timestamp"] for row in rows]
    try:
        return insert_leaf_rows(cursor, insert, values, parties, stamps)  # seq is the rowid
    except sqlite3.IntegrityError as exc:  # as SQLAlchemy reports it, for the caller
        raise IntegrityError(insert.head, None, exc) from exc


def _insert_orm(
    session: Session, rows: Sequence[dict[str, Any]], parties: Sequence[Sequence[str]]
) -> list[int]:
    seqs = list(
        session.scalars(
            insert(BusinessTransaction).returning(
                BusinessTransaction.seq, sort_by_parameter_order=True
            ),
            list(rows),
        ).all()
    )
    links = [
        {"tx_seq": seq, "position": i, "address": address}
        for seq, addresses in zip(seqs, parties, strict=True)
        for i, address in enumerate(addresses)
    ]
    if links:
        session.execute(insert(TransactionParty), links)
    return seqs


def _bound_values(
    dialect: Dialect, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """Return each row's values in ``columns`` order as SQLAlchemy binds them: its bind
    processors applied (a value the same object as the previous row's, e.g. the group's
    one ``received_at``, is converted once)."""
    pick = itemgetter(*columns)
    values = [list(pick(row)) for row in rows] if len(columns) > 1 else [[pick(r)] for r in rows]
    for i, process in _processors(dialect, columns):
        before: Any = _UNSET
        after: Any = None
        for line in values:
            value = line[i]
            if value is not before:
                before, after = value, process(value)
            line[i] = after
    return values


def sqlite_insert(
    dialect: Dialect, rows: Sequence[dict[str, Any]]
) -> tuple[LeafInsert, list[list[Any]]]:
    """Return the statements that insert ``rows`` (column values, each with the same columns)
    on SQLite and each row's values as SQLAlchemy binds them (``dialect``: the engine's)."""
    columns = tuple(rows[0])
    insert = LeafInsert(
        head=f"INSERT INTO {_TRANSACTIONS.name} ({', '.join(columns)})",
        width=len(columns),
        parties_head=f"INSERT INTO {_PARTIES.name} (tx_seq, position, address)",
        zones_upsert=zones.upsert_sqlite(),
    )
    return insert, _bound_values(dialect, columns, rows)


def mark_anchored(session: Session, seqs: Sequence[int], first: int, anchor_index: int) -> None:
    """Set the rows ``seqs`` (in leaf order) anchored by ``anchor_index`` at leaf indexes
    ``first``, ``first + 1``, … in the session's transaction (not committed).

    Contiguous ``seqs`` (the usual case) take one ranged ``UPDATE``; others one
    ``executemany``.
    """
    if not seqs:
        return
    if all(b == a + 1 for a, b in zip(seqs, seqs[1:], strict=False)):
        session.execute(
            update(_TRANSACTIONS)
            .where(_TRANSACTIONS.c.seq.between(seqs[0], seqs[-1]))
            .values(
                leaf_index=_TRANSACTIONS.c.seq + (first - seqs[0]),
                anchor_index=anchor_index,
                status=TransactionStatus.ANCHORED,
            )
        )
        return
    session.execute(
        update(_TRANSACTIONS)
        .where(_TRANSACTIONS.c.seq == bindparam("b_seq"))
        .values(
            leaf_index=bindparam("b_leaf"),
            anchor_index=anchor_index,
            status=TransactionStatus.ANCHORED,
        ),
        [{"b_seq": seq, "b_leaf": first + offset} for offset, seq in enumerate(seqs)],
    )
