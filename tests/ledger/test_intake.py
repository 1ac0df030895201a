"""The group commit on SQLite (``Intake.commit_verified`` without a ``Session``): it stores
exactly what the ORM stores (rows, parties, zone map), marks replays, and falls back to one
by one when a concurrent writer wins a nonce between its replay check and its insert."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

import node.ledger.intake as intake_module
from node.db import zones
from node.db.session import (
    create_db_engine,
    make_session_factory,
    sqlite_transaction,
    upgrade_database,
)
from node.ledger.checks import AdmissionPolicy
from node.ledger.intake import AcceptedTx, Intake, Submission
from node.ledger.participants import ParticipantCache
from node.ledger.rows import new_row
from node.ledger.signals import LedgerSignals
from node.ledger.transaction import BusinessTx, Domain, compute_payload_hash, sign_tx
from node.ledger.verifier import compute_leaf_cid, verify_many

DOMAIN = Domain(31337, "0x" + "11" * 20)
PAYLOAD_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
TABLES = ("transactions", "transaction_parties", "transaction_time_zones")


class _Everyone:
    """A registry where subsystem ``main`` exists and everyone participates."""

    def subsystem_exists(self, name: str) -> bool:
        return name == "main"

    def is_participant(self, name: str, account: str) -> bool:
        return True


class _Store:
    def add_bytes(self, data: bytes, **_: Any) -> str:
        return compute_leaf_cid(data)


def _sessions(path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{path}"
    upgrade_database(url)
    return make_session_factory(create_db_engine(url))


def _intake(sessions: sessionmaker[Session], separate_writer: bool = False) -> Intake:
    return Intake(
        sessions=sessions,
        store=_Store(),
        domain=DOMAIN,
        policy=AdmissionPolicy(ParticipantCache(_Everyone())),
        signals=LedgerSignals(),
        write_lock=threading.Lock(),
        separate_writer=separate_writer,
    )


def _dump(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with sessions() as session:
        return {
            table: [tuple(r) for r in session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
            for table in TABLES
        }


def _group(wallet: Any, txs: list[BusinessTx]) -> list[tuple[Submission, Any]]:
    pairs = [(tx, sign_tx(DOMAIN, tx, wallet.key)) for tx in txs]
    return [
        (Submission(tx, sig, wallet.address), verified)
        for (tx, sig), verified in zip(pairs, verify_many(DOMAIN, pairs), strict=True)
    ]


def _txs() -> list[BusinessTx]:
    parties = (Account.create().address, Account.create().address)
    secret = compute_payload_hash(b"s", b"p")
    return [
        BusinessTx("main", "invoice", parties, "12.5", "EUR", "memo ü", "", 0, 1_700_000_500),
        BusinessTx("main", "note", (), "1", "EUR", "", "", 1, 1_700_000_001),
        BusinessTx("main", "note", (), "2", "EUR", "", "", 1, 1_700_000_002),  # nonce 1 again
        BusinessTx("main", "payment", (), "", "", "", PAYLOAD_CID, 2, 1_700_009_000, True, secret),
        BusinessTx("main", "note", parties[:1], "3", "EUR", "", "", 7, 1_600_000_000),
    ]


@pytest.mark.parametrize("separate_writer", [False, True], ids=["here", "writer-process"])
def test_a_group_commit_stores_what_the_orm_stores(tmp_path: Path, separate_writer: bool) -> None:
    wallet = Account.create()
    fast, orm = _sessions(tmp_path / "fast.sqlite"), _sessions(tmp_path / "orm.sqlite")
    txs = _txs()
    earlier = _group(wallet, [txs[4]])[0][1]  # already in both indexes: a replay
    then = datetime.now(UTC)
    for sessions in fast, orm:
        with sessions() as session:
            session.add(new_row(earlier.signed, earlier.body, earlier.cid, then))
            session.commit()
    intake = _intake(fast, separate_writer)
    results = intake.commit_verified(_group(wallet, txs))
    if separate_writer:  # the rows went in through the writer process
        assert intake.writer is not None and intake.writer.pid not in (None, os.getpid())
        intake.close()
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "AcceptedTx", "AcceptedTx", "ReplayedTransaction", "AcceptedTx", "ReplayedTransaction"
    ]  # fmt: skip
    accepted = [r for r in results if isinstance(r, AcceptedTx)]
    assert [r.seq for r in accepted] == [2, 3, 4]
    with orm() as session:
        for r in accepted:
            assert r.tx is not None and r.received_at is not None
            signed = _group(wallet, [r.tx])[0][1].signed
            session.add(new_row(signed, r.body, r.cid, r.received_at))
        session.commit()
    assert _dump(fast) == _dump(orm)
    assert len(_dump(fast)["transaction_parties"]) == 2 + 1  # the invoice's two, the note's one


def test_the_sqlite_zone_upsert_widens_as_the_orm_statement_does(tmp_path: Path) -> None:
    pairs = [(1, 50), (5, 20), (1030, 10), (1031, 70), (3000, 5)]
    before = [(0, 30, 40), (1, 20, 60)]  # zone 0 widens both ways, zone 1 to 10 and 70
    dumps = []
    for name in ("orm", "fast"):
        sessions = _sessions(tmp_path / f"{name}.sqlite")
        with sessions() as session:
            session.execute(
                text("INSERT INTO transaction_time_zones VALUES (:z, :lo, :hi)"),
                [{"z": z, "lo": lo, "hi": hi} for z, lo, hi in before],
            )
            session.commit()
            if name == "orm":
                zones.widen(session, pairs)
                session.commit()
        if name == "fast":
            with sqlite_transaction(sessions.kw["bind"]) as cursor:
                zones.upsert_zones(cursor, zones.upsert_sqlite(), pairs)
                cursor.connection.commit()
        dumps.append(_dump(sessions)["transaction_time_zones"])
    assert dumps[0] == dumps[1] == [(0, 20, 50), (1, 10, 70), (2, 5, 5)]


def test_a_nonce_won_by_a_concurrent_writer_falls_back_to_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = _sessions(tmp_path / "db.sqlite")
    intake = _intake(sessions)
    wallet = Account.create()
    txs = _txs()
    group = _group(wallet, [txs[0], txs[1], txs[3]])
    rival = _group(wallet, [BusinessTx("main", "note", (), "9", "EUR", "", "", 1, 1_700_000_009)])
    rival_item = rival[0][0]
    real = intake_module.get_used_keys_sqlite

    def check_then_lose_the_race(cursor: Any, signed: Any) -> Any:
        used = real(cursor, signed)  # nonce 1 is free here …
        intake.submit(rival_item.tx, rival_item.signature)  # … then a rival commits it
        return used

    monkeypatch.setattr(intake_module, "get_used_keys_sqlite", check_then_lose_the_race)
    results = intake.commit_verified(group)
    assert [type(r).__name__ for r in results] == [
        "AcceptedTx", "ReplayedTransaction", "AcceptedTx"
    ]  # fmt: skip
    rows = _dump(sessions)["transactions"]
    assert len(rows) == 3  # the rival and the two others; nothing of the failed group insert
    accepted = [r for r in results if isinstance(r, AcceptedTx)]
    assert {r.seq for r in accepted} == {2, 3}
    for r, (_, verified) in zip(accepted, (group[0], group[2]), strict=True):  # all fields set
        assert (r.tx, r.leaf_hash, r.cid) == (verified.signed.tx, verified.leaf_hash, verified.cid)
        assert r.signature == "0x" + verified.signed.signature.hex()
        assert r.received_at is not None and r.status == "pending"


def _write_then_die(connection: Any, write: Any) -> Any:
    """In the writer process: commit ``write``, then die before answering."""
    intake_module.write_leaves(connection, write)
    os._exit(1)


def _die_first(connection: Any, write: Any) -> Any:
    """In the writer process: die before writing anything."""
    os._exit(1)


@pytest.mark.parametrize("dies", [_write_then_die, _die_first], ids=["after-commit", "before"])
def test_a_writer_process_that_dies_during_a_group_loses_and_repeats_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies: Any
) -> None:
    sessions = _sessions(tmp_path / "db.sqlite")
    intake = _intake(sessions, separate_writer=True)
    wallet = Account.create()
    txs = _txs()
    earlier = _group(wallet, [txs[4]])
    intake.commit_verified(earlier)  # through the writer: seq 1, a replay below
    monkeypatch.setattr(intake_module, "write_leaves", dies)
    try:
        results = intake.commit_verified(_group(wallet, [txs[0], txs[4], txs[3]]))
    finally:
        intake.close()
    assert [type(r).__name__ for r in results] == [
        "AcceptedTx", "ReplayedTransaction", "AcceptedTx"
    ]  # fmt: skip
    with sessions() as session:
        rows = session.execute(text("SELECT seq, tx_id FROM transactions ORDER BY seq")).all()
    accepted = [r for r in results if isinstance(r, AcceptedTx)]
    # once each (the group was not written twice), with the seqs its answers give
    assert [tuple(row) for row in rows[1:]] == [(r.seq, r.tx_id) for r in accepted]
    assert [row.seq for row in rows] == [1, 2, 3]
    assert intake.writer is not None and intake.writer.started == 1  # no new child was needed
