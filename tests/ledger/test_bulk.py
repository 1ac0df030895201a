"""Bulk insert of accepted leaves (node/ledger/bulk.py): the DBAPI fast path on SQLite stores
exactly what the ORM stores, and a duplicate fails the whole insert as an IntegrityError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import Anchor
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.ledger.bulk import insert_leaves, mark_anchored
from node.ledger.service import compute_leaf_cid, new_row, row_values
from node.ledger.transaction import (
    BusinessTx,
    Domain,
    SignedBusinessTx,
    compute_payload_hash,
    sign_tx,
    verify_signed_tx,
)

DOMAIN = Domain(31337, "0x" + "11" * 20)
PAYLOAD_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def _sessions(path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{path}"
    upgrade_database(url)
    return make_session_factory(create_db_engine(url))


def _signed() -> list[SignedBusinessTx]:
    wallet = Account.create()
    parties = (Account.create().address, Account.create().address)
    secret = compute_payload_hash(b"s", b"p")
    txs = [
        BusinessTx("main", "invoice", parties, "12.5", "EUR", "memo ü", "", 0, 1_700_000_000),
        BusinessTx("main", "note", (), "1", "EUR", "", "", 1, 1_700_000_001),
        BusinessTx("main", "payment", (), "", "", "", PAYLOAD_CID, 2, 1_700_000_002, True, secret),
    ]
    return [verify_signed_tx(DOMAIN, tx, sign_tx(DOMAIN, tx, wallet.key)) for tx in txs]


def _dump(sessions: sessionmaker[Session]) -> tuple[list[Any], list[Any]]:
    with sessions() as session:
        rows = session.execute(text("SELECT * FROM transactions ORDER BY seq")).all()
        parties = session.execute(
            text("SELECT * FROM transaction_parties ORDER BY tx_seq, position")
        ).all()
    return [tuple(r) for r in rows], [tuple(p) for p in parties]


def test_the_fast_path_stores_what_the_orm_stores(tmp_path: Path) -> None:
    signed = _signed()
    now = datetime.now(UTC)
    orm, fast = _sessions(tmp_path / "orm.sqlite"), _sessions(tmp_path / "fast.sqlite")
    with orm() as session:
        for s in signed:
            body = s.encode()
            session.add(new_row(s, body, compute_leaf_cid(body), now))
        session.commit()
    with fast() as session:
        values = [row_values(s, s.encode(), compute_leaf_cid(s.encode()), now) for s in signed]
        seqs = insert_leaves(session, values, [s.tx.parties for s in signed])
        session.commit()
    assert seqs == [1, 2, 3]
    assert _dump(fast) == _dump(orm)
    assert len(_dump(fast)[1]) == 2


def test_seqs_follow_rows_written_in_between(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path / "db.sqlite")
    first, second, third = _signed()
    now = datetime.now(UTC)
    with sessions() as session:
        insert_leaves(session, [row_values(first, first.encode(), "c1", now)], [()])
        session.commit()
    with sessions() as session:
        seqs = insert_leaves(
            session,
            [row_values(s, s.encode(), f"c{i}", now) for i, s in enumerate((second, third), 2)],
            [(), ()],
        )
        session.commit()
        got = dict(session.execute(text("SELECT tx_id, seq FROM transactions")).all())
    assert seqs == [got[second.tx_id], got[third.tx_id]] == [2, 3]


def test_a_duplicate_fails_the_whole_insert(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path / "db.sqlite")
    first, second, _ = _signed()
    now = datetime.now(UTC)
    with sessions() as session:
        insert_leaves(session, [row_values(first, first.encode(), "c1", now)], [()])
        session.commit()
    with sessions() as session:
        with pytest.raises(IntegrityError):
            insert_leaves(
                session,
                [row_values(s, s.encode(), "c", now) for s in (second, first)],
                [(), ()],
            )
        session.rollback()
    rows, _ = _dump(sessions)
    assert len(rows) == 1


@pytest.mark.parametrize("chosen", [(0, 1, 2), (0, 2)])
def test_mark_anchored_sets_leaf_indexes_in_order(tmp_path: Path, chosen: tuple[int, ...]) -> None:
    sessions = _sessions(tmp_path / "db.sqlite")
    signed = _signed()
    now = datetime.now(UTC)
    with sessions() as session:
        seqs = insert_leaves(
            session, [row_values(s, s.encode(), f"c{i}", now) for i, s in enumerate(signed)],
            [s.tx.parties for s in signed],
        )  # fmt: skip
        session.add(
            Anchor(
                index=7, root="0x", tree_size=3, count=3, batch_cid="b", subsystem="",
                node="n", block_number=1, chain_tx_hash="0x",
            )
        )  # fmt: skip
        session.flush()
        mark_anchored(session, [seqs[i] for i in chosen], 10, 7)
        session.commit()
        got = session.execute(
            text("SELECT seq, leaf_index, anchor_index, status FROM transactions ORDER BY seq")
        ).all()
    expected = {seqs[i]: 10 + k for k, i in enumerate(chosen)}
    for seq, leaf_index, anchor_index, status in got:
        if seq in expected:
            assert (leaf_index, anchor_index, status) == (expected[seq], 7, "anchored")
        else:
            assert (leaf_index, anchor_index, status) == (None, None, "pending")
