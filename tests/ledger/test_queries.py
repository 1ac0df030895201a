"""The explorer's list query returns exactly the rows a brute-force filter returns, newest
first, whichever time-range plan it picks (``node.ledger.queries``)."""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import BusinessTransaction, TimeZone, TransactionParty
from node.db.session import (
    alembic_config,
    create_db_engine,
    make_session_factory,
    upgrade_database,
)
from node.db.zones import ZONE_BITS, widen
from node.ledger import queries
from node.ledger.bulk import insert_leaves
from node.ledger.reindex import _advance_seq
from node.ledger.service import LedgerService, TxFilter

N = 3000
PARTIES = [f"0x{i:040x}" for i in range(1, 30)]
T0 = 1_700_000_000


@dataclass
class Row:
    seq: int
    subsystem: str
    kind: str
    signer: str
    timestamp: int
    parties: list[str]
    anchor: int | None


def fill(sessions: sessionmaker[Session]) -> list[Row]:
    """Write N rows (with parties and anchors) into a migrated, empty index; return them."""
    rng = random.Random(5)
    rows = []
    now = datetime.now(UTC)
    with sessions() as session:
        session.execute(
            insert(BusinessTransaction.__table__.metadata.tables["anchors"]),
            [{"index": a, "root": "0x", "tree_size": 1, "count": 1, "batch_cid": "",
              "subsystem": "", "node": "0x1", "block_number": a, "chain_tx_hash": "0x"}
             for a in range(10)],
        )  # fmt: skip
        values, links = [], []
        for seq in range(1, N + 1):
            # mostly in acceptance order, some far off (back- and forward-dated signatures)
            skew = rng.choice([0] * 8 + [rng.randrange(-(10**6), 10**6)])
            row = Row(
                seq=seq,
                subsystem=rng.choice(["a", "b", "c"]),
                kind=rng.choice(["invoice", "payment", "refund"]),
                signer=rng.choice(PARTIES[:5]),
                timestamp=T0 + seq * 30 + rng.randrange(-600, 600) + skew,
                parties=[rng.choice(PARTIES) for _ in range(rng.choice([0, 1, 2, 3]))],
                anchor=rng.choice([None, *range(10)]),
            )
            rows.append(row)
            values.append({
                "seq": seq, "tx_id": f"0x{seq:064x}", "signer": row.signer, "nonce": seq,
                "subsystem": row.subsystem, "kind": row.kind, "amount": "1", "currency": "EUR",
                "memo": "", "payload": "", "timestamp": row.timestamp, "signature": "0x",
                "body": b"", "leaf_hash": "0x", "cid": "c", "status": "anchored",
                "received_at": now, "anchor_index": row.anchor, "leaf_index": seq - 1,
            })  # fmt: skip
            links.extend(
                {"tx_seq": seq, "position": i, "address": p} for i, p in enumerate(row.parties)
            )
        session.execute(insert(BusinessTransaction), values)
        session.execute(insert(TransactionParty), links)
        widen(session, ((v["seq"], v["timestamp"]) for v in values))  # as insert_leaves does
        session.commit()
    return rows


@pytest.fixture(scope="module")
def index(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[sessionmaker[Session], list[Row]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('q') / 'index.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    sessions = make_session_factory(engine)
    yield sessions, fill(sessions)
    engine.dispose()


def matches(row: Row, f: TxFilter) -> bool:
    return (
        (f.subsystem is None or row.subsystem == f.subsystem)
        and (f.kind is None or row.kind == f.kind)
        and (f.signer is None or row.signer == f.signer)
        and (f.party is None or f.party in row.parties)
        and (f.since is None or row.timestamp >= f.since)
        and (f.until is None or row.timestamp < f.until)
        and (f.anchor is None or row.anchor == f.anchor)
    )


def random_filter(rng: random.Random) -> TxFilter:
    span = N * 30
    since = T0 + rng.randrange(-span // 10, span) if rng.random() < 0.6 else None
    width = rng.choice([3600, 86_400, 10 * 86_400, span])
    until = (since or T0 + rng.randrange(span)) + width if rng.random() < 0.6 else None
    return TxFilter(
        subsystem=rng.choice([None, None, "a", "c"]),
        kind=rng.choice([None, None, "refund"]),
        signer=rng.choice([None, None, None, PARTIES[1]]),
        party=rng.choice([None, None, PARTIES[0], PARTIES[7]]),
        since=since,
        until=until,
        anchor=rng.choice([None] * 5 + [3]),
    )


@pytest.mark.parametrize(("range_max", "expected"), [
    (0, {"zones", "subsystem+kind"}),  # every range walked by zones
    (10**9, {"range", "subsystem+kind"}),  # every range read by timestamp
    (300, {"range", "zones", "subsystem+kind"}),  # chosen by the range's size
])  # fmt: skip
def test_every_page_equals_brute_force_whichever_plan(
    index: tuple[sessionmaker[Session], list[Row]],
    range_max: int,
    expected: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries, "RANGE_MAX", range_max)
    monkeypatch.setattr(queries, "ZONE_BATCH", 2)  # runs split across zone reads too
    sessions, rows = index
    assert compare_with_brute_force(sessions, rows, 150) == expected


def compare_with_brute_force(
    sessions: sessionmaker[Session], rows: list[Row], count: int
) -> set[str]:
    """Check ``count`` random filters page by page against brute force; return the plans."""
    service = LedgerService.__new__(LedgerService)
    service._sessions = sessions  # only the read path is used
    rng = random.Random(11)
    plans: set[str] = set()
    for _ in range(count):
        where = random_filter(rng)
        expected = [r.seq for r in reversed(rows) if matches(r, where)]
        if where.since is not None or where.until is not None:
            with sessions() as session:
                plans.add(queries.choose_time_plan(session, where))
        got: list[int] = []
        before = None
        # pages of 1 row only for short lists: a long one would take thousands of queries
        limit = rng.choice([1, 7, 50] if len(expected) <= 300 else [7, 50])
        for _ in range(N):  # every page, through the cursor
            page = service.page(where, before=before, limit=limit)
            got.extend(item.seq for item in page.items)
            if page.next_cursor is None:
                break
            before = page.next_cursor
        assert got == expected, where
    return plans


def zone_map(session: Session) -> dict[int, tuple[int, int]]:
    return {z.zone: (z.min_timestamp, z.max_timestamp) for z in session.scalars(select(TimeZone))}


def recomputed_zone_map(session: Session) -> dict[int, tuple[int, int]]:
    zone = BusinessTransaction.seq.op(">>")(ZONE_BITS)
    stamp = BusinessTransaction.timestamp
    rows = session.execute(select(zone, func.min(stamp), func.max(stamp)).group_by(zone))
    return {int(z): (int(low), int(high)) for z, low, high in rows}


def test_fill_kept_the_zone_map(index: tuple[sessionmaker[Session], list[Row]]) -> None:
    sessions, _ = index
    with sessions() as session:
        zones = zone_map(session)
        assert zones == recomputed_zone_map(session)
        assert len(zones) == N // 2**ZONE_BITS + 1


def check_write_paths(sessions: sessionmaker[Session]) -> None:
    """Both ways rows are written keep the zone map in their own transaction: the bulk
    insert (``insert_leaves``) and the ORM's unit of work (the factory's flush hook); a
    rollback takes the zones' change back with the rows; deleted rows leave bounds as
    they were."""
    now = datetime.now(UTC)
    base = 10 * 2**ZONE_BITS  # zones of their own, past any other rows

    def values(seq: int, stamp: int) -> dict[str, object]:
        return {"tx_id": f"0x{seq:064x}", "signer": "0x9", "nonce": seq, "subsystem": "w",
                "kind": "k", "amount": "1", "currency": "EUR", "memo": "", "payload": "",
                "timestamp": stamp, "signature": "0x", "body": b"", "leaf_hash": "0x",
                "cid": "c", "status": "pending", "received_at": now, "origin": "w"}  # fmt: skip

    with sessions() as session:
        session.execute(insert(BusinessTransaction), [{"seq": base - 1, **values(base - 1, T0)}])
        _advance_seq(session)  # PostgreSQL's sequence past it (SQLite's rowid follows)
        widen(session, [(base - 1, T0)])
        session.commit()
        before = zone_map(session)
    with sessions() as session:  # rolled back: the zones are as before
        insert_leaves(session, [values(base + i, T0 + i) for i in range(5)], [[]] * 5)
        session.add(BusinessTransaction(**values(base + 50, T0 - 9)))
        session.flush()
        assert zone_map(session) != before
        session.rollback()
        assert zone_map(session) == before == recomputed_zone_map(session)
    with sessions() as session:
        seqs = insert_leaves(
            session, [values(base + i, T0 + 7 * i) for i in range(2000)], [["0x1"]] * 2000
        )
        assert len(set(seq >> ZONE_BITS for seq in seqs)) >= 2  # crosses a zone boundary
        session.add_all(BusinessTransaction(**values(base + 3000 + i, T0 - i)) for i in range(3))
        session.commit()
        assert zone_map(session) == recomputed_zone_map(session)
        zones = zone_map(session)
        last = max(seqs)
        session.execute(delete(TransactionParty).where(TransactionParty.tx_seq == last))
        session.execute(delete(BusinessTransaction).where(BusinessTransaction.seq == last))
        session.commit()
        assert zone_map(session) == zones  # bounds kept (wider than the rows left: fine)
        session.execute(delete(TransactionParty).where(TransactionParty.tx_seq.in_(seqs)))
        session.execute(delete(BusinessTransaction).where(BusinessTransaction.origin == "w"))
        session.commit()


def test_every_write_path_keeps_the_zone_map(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    try:
        check_write_paths(make_session_factory(engine))
    finally:
        engine.dispose()


def test_zone_bits_are_the_migrations() -> None:
    path = Path(__file__).parents[2] / "migrations" / "versions" / "0008_time_zones.py"
    spec = importlib.util.spec_from_file_location("migration_0008", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.ZONE_BITS == ZONE_BITS


def test_zones_in_acceptance_order_skip_what_cannot_match(tmp_path: Path) -> None:
    """Timestamps in acceptance order (±10 minutes): a one-hour range, in the middle of 20
    zones, walks only the zones at its edges, and the zone map migrated from existing rows
    (0007 → 0008) equals the trigger's."""
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    command.upgrade(alembic_config(url), "0007")
    engine = create_db_engine(url)
    sessions = make_session_factory(engine)
    count = 20 * 2**ZONE_BITS
    rng = random.Random(3)
    stamps = [T0 + seq * 30 + rng.randrange(-600, 600) for seq in range(1, count + 1)]
    now = datetime.now(UTC)
    with sessions() as session:
        session.execute(
            insert(BusinessTransaction),
            [{"seq": seq, "tx_id": f"0x{seq:064x}", "signer": "0x1", "nonce": seq,
              "subsystem": "a", "kind": "k", "amount": "1", "currency": "EUR", "memo": "",
              "payload": "", "timestamp": stamp, "signature": "0x", "body": b"",
              "leaf_hash": "0x", "cid": "c", "status": "pending", "received_at": now}
             for seq, stamp in enumerate(stamps, start=1)],
        )  # fmt: skip
        session.commit()  # no zone map yet (0007)
    upgrade_database(url)  # 0008 summarises the rows already there
    with sessions() as session:
        assert zone_map(session) == recomputed_zone_map(session)
        since = T0 + 10_000 * 30
        where = TxFilter(since=since, until=since + 3600)
        assert queries.choose_time_plan(session, where) == "range"  # 120 rows
        intervals = list(queries.zone_intervals(session, where, None))
        assert len(intervals) == 1
        low, high = intervals[0]
        assert high - low <= 2 * 2**ZONE_BITS  # the range's zone, or two
        seqs = queries.newest_in_zones(session, where, None, 10**6)
        expected = [s for s in range(count, 0, -1) if since <= stamps[s - 1] < since + 3600]
        assert seqs == expected and len(expected) > 100
        assert queries.newest_in_zones(session, where, expected[5], 3) == expected[6:9]
    engine.dispose()


def test_a_party_named_twice_is_listed_once(
    index: tuple[sessionmaker[Session], list[Row]],
) -> None:
    sessions, rows = index
    twice = [r for r in rows if len(r.parties) != len(set(r.parties))]
    assert twice  # the data has such rows
    service = LedgerService.__new__(LedgerService)
    service._sessions = sessions
    party = twice[-1].parties[0]
    listed = [item.seq for item in service.page(TxFilter(party=party), limit=500).items]
    assert len(listed) == len(set(listed))


def test_a_lookup_by_cid_probes_indexes_and_never_scans(
    index: tuple[sessionmaker[Session], list[Row]],
) -> None:
    """``find_by_cid`` is public (``/transactions/by-cid``): a CID that matches nothing must
    cost index probes, not a scan of the table, on the leaf column and the payload column."""
    sessions, _ = index
    with sessions() as session:
        for column in (BusinessTransaction.cid, BusinessTransaction.payload):
            query = (
                select(BusinessTransaction.tx_id)
                .where(column.in_(["bafyunknown", "Qmunknown"]))
                .order_by(BusinessTransaction.origin, BusinessTransaction.seq)
                .limit(1)
            )
            sql = str(query.compile(compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            assert f"USING INDEX ix_transactions_{column.key}" in plan, plan
    assert queries.find_by_cid(sessions, ["bafyunknown"]) is None
