"""The explorer's list query returns exactly the rows a brute-force filter returns, newest
first, whichever time-range plan it picks (``node.ledger.queries``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from node.db.models import BusinessTransaction, TransactionParty
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.ledger import queries
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


@pytest.mark.parametrize("range_max", [queries.RANGE_WITH_FILTERS_MAX, 100])
def test_every_page_equals_brute_force_whichever_plan(
    index: tuple[sessionmaker[Session], list[Row]],
    range_max: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries, "RANGE_WITH_FILTERS_MAX", range_max)
    sessions, rows = index
    plans = compare_with_brute_force(sessions, rows, 150)
    # both plans were exercised (and SQLite's own choice for wide ranges with filters), and
    # the (subsystem, kind, timestamp, seq) index for subsystem + kind + a time range
    expected = {"range", "scan", "subsystem+kind"}
    assert plans == (expected | {""} if range_max < N else expected)


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
                plans.add(queries.choose_time_plan(session, where, None))
        got: list[int] = []
        before = None
        limit = rng.choice([1, 7, 50])
        for _ in range(N):  # every page, through the cursor
            page = service.page(where, before=before, limit=limit)
            got.extend(item.seq for item in page.items)
            if page.next_cursor is None:
                break
            before = page.next_cursor
        assert got == expected, where
    return plans


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
