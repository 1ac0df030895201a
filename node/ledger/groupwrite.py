"""A group commit's SQL as one function of plain values, for the SQLite writer process.

:func:`write_leaves` is what ``Intake`` runs in :class:`node.db.writer.SqliteWriter`'s
child for a group of single submissions: in one ``BEGIN IMMEDIATE`` transaction (so that no
other writer commits between the replay probe and the inserts) it finds the rows whose
transaction id or ``(signer, nonce)`` the index holds already, inserts the others and
their parties, widens their timestamp zones and commits (durable on return).
:func:`insert_leaf_rows` is that insert, shared with the in-process bulk insert
(``node.ledger.bulk.insert_leaves_sqlite``). Every statement comes ready from the caller
(``LeafInsert``, ``LeafWrite``: built from SQLAlchemy's tables in the node's process, values
bound as the ORM binds them), so this module imports nothing heavier than ``sqlite3``: the
child starts in a fraction of a second.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from node.db.zonemap import upsert_zones
from node.sqlrows import insert_rows, insert_rows_rowids


@dataclass(frozen=True)
class LeafInsert:
    """The statements that insert leaves on SQLite (built from SQLAlchemy's tables by
    ``node.ledger.bulk.sqlite_insert``)."""

    head: str  # INSERT INTO transactions (…)
    width: int  # columns per row
    parties_head: str  # INSERT INTO transaction_parties (tx_seq, position, address)
    zones_upsert: str  # node.db.zones.upsert_sqlite()


@dataclass(frozen=True)
class LeafWrite:
    """The rows of one group commit, as the writer process inserts them."""

    used_keys_sql: str  # the replay probe: rows (tx_id, signer, nonce) of keys in the index
    used_keys_params: list[Any]
    tx_ids: list[str]  # per row
    nonce_keys: list[tuple[str, int]]  # per row: (signer, nonce)
    insert: LeafInsert
    rows: list[list[Any]]  # the bound column values per row
    timestamps: list[int]  # the signed timestamp per row (the zone map)
    parties: list[Sequence[str]]  # per row


def party_rows(seqs: Sequence[int], parties: Sequence[Sequence[str]]) -> list[tuple[int, int, str]]:
    """Return the ``transaction_parties`` rows ``(tx_seq, position, address)`` of the
    transactions ``seqs`` with ``parties``."""
    return [
        (seq, i, address)
        for seq, addresses in zip(seqs, parties, strict=True)
        for i, address in enumerate(addresses)
    ]


def insert_leaf_rows(
    cursor: sqlite3.Cursor,
    insert: LeafInsert,
    rows: Sequence[Sequence[Any]],
    parties: Sequence[Sequence[str]],
    timestamps: Sequence[int],
) -> list[int]:
    """Insert ``rows`` (bound column values) with ``insert``'s statements, the
    ``transaction_parties`` rows of their ``parties``, and widen the zones of their signed
    ``timestamps``, in ``cursor``'s transaction; return each row's ``seq``, in order."""
    seqs = insert_rows_rowids(cursor, insert.head, rows, insert.width) if rows else []
    pairs = party_rows(seqs, parties)
    if pairs:
        insert_rows(cursor, insert.parties_head, pairs, 3)
    upsert_zones(cursor, insert.zones_upsert, zip(seqs, timestamps, strict=True))
    return seqs


def write_leaves(connection: sqlite3.Connection, write: LeafWrite) -> tuple[list[int], list[int]]:
    """Commit the rows of ``write`` that are not replays; return the positions of the
    replays (rows not written) and the ``seq`` of each written row, in order.

    ``connection`` is in autocommit mode (``isolation_level=None``); raises
    ``sqlite3.IntegrityError`` (nothing written) if a unique key repeats.
    """
    cursor = connection.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    try:
        found = cursor.execute(write.used_keys_sql, write.used_keys_params).fetchall()
        ids = {tx_id for tx_id, _, _ in found}
        nonces = {(signer, int(nonce)) for _, signer, nonce in found}
        keep = [
            i
            for i, (tx_id, nonce_key) in enumerate(zip(write.tx_ids, write.nonce_keys, strict=True))
            if tx_id not in ids and nonce_key not in nonces
        ]
        replays = sorted(set(range(len(write.rows))) - set(keep))
        seqs = insert_leaf_rows(
            cursor,
            write.insert,
            [write.rows[i] for i in keep],
            [write.parties[i] for i in keep],
            [write.timestamps[i] for i in keep],
        )
        cursor.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            cursor.execute("ROLLBACK")
        raise
    finally:
        cursor.close()
    return replays, seqs
