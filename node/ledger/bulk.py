"""Bulk insert of accepted leaves: multi-row ``INSERT``s on SQLite (``node.sqlrows``).

SQLAlchemy's ORM bulk ``INSERT … RETURNING`` (insertmanyvalues) spends ~3x SQLite's own
time per row in Python; on SQLite the rows go in through the DBAPI cursor of the session's
own connection instead (same transaction, same column values: SQLAlchemy's bind processors
are applied, so e.g. ``received_at`` is stored exactly as the ORM stores it). Other
databases keep the ORM statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from node.db import zones
from node.db.models import BusinessTransaction, TransactionParty, TransactionStatus
from node.db.session import sqlite_cursor
from node.sqlrows import insert_rows

_TRANSACTIONS = cast(Table, BusinessTransaction.__table__)
_PARTIES = cast(Table, TransactionParty.__table__)


def _processors(session: Session, columns: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    dialect = session.get_bind().dialect
    return [
        _TRANSACTIONS.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]


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
    insert_all = _insert_sqlite if session.get_bind().dialect.name == "sqlite" else _insert_orm
    seqs = insert_all(session, rows, parties)
    zones.widen(session, zip(seqs, (row["timestamp"] for row in rows), strict=True))
    return seqs


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


def _insert_sqlite(
    session: Session, rows: Sequence[dict[str, Any]], parties: Sequence[Sequence[str]]
) -> list[int]:
    columns = list(rows[0])
    processors = _processors(session, columns)
    converting = [(i, p) for i, p in enumerate(processors) if p is not None]
    values: list[list[Any]] = []
    for row in rows:
        line = [row[name] for name in columns]
        for i, process in converting:
            line[i] = process(line[i])
        values.append(line)
    statement = ""
    with sqlite_cursor(session) as cursor:
        try:
            (before,) = cursor.execute(
                f"SELECT coalesce(max(seq), 0) FROM {_TRANSACTIONS.name}"
            ).fetchone()
            statement = f"INSERT INTO {_TRANSACTIONS.name} ({', '.join(columns)})"
            insert_rows(cursor, statement, values, len(columns))
            # rows of a concurrent writer may interleave: map ours by their unique tx_id
            seq_of = dict(
                cursor.execute(
                    f"SELECT tx_id, seq FROM {_TRANSACTIONS.name} WHERE seq > ?", (before,)
                ).fetchall()
            )
            seqs = [int(seq_of[row["tx_id"]]) for row in rows]
            pairs = [
                (seq, i, address)
                for seq, addresses in zip(seqs, parties, strict=True)
                for i, address in enumerate(addresses)
            ]
            if pairs:
                statement = f"INSERT INTO {_PARTIES.name} (tx_seq, position, address)"
                insert_rows(cursor, statement, pairs, 3)
        except sqlite3.IntegrityError as exc:  # as SQLAlchemy reports it, for the caller
            raise IntegrityError(statement, None, exc) from exc
    return seqs


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
