"""``begin_snapshot``: the reads that follow see one snapshot of the index, whatever another
connection commits meanwhile (SQLite WAL, and PostgreSQL when a server is here); without it
each SQLite statement reads the newest commit (what made ``/health``'s counts count an
anchor committed between two reads twice)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from node.db.session import begin_snapshot, create_db_engine, make_session_factory
from tests.db.postgres import postgres_server, postgres_url  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'index.sqlite'}"


@pytest.mark.parametrize("snapshot", [True, False], ids=["snapshot", "statement-by-statement"])
def test_reads_after_begin_snapshot_see_one_snapshot(url: str, snapshot: bool) -> None:
    engine = create_db_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as writer:
        writer.execute(text("DROP TABLE IF EXISTS snap"))
        writer.execute(text("CREATE TABLE snap (n INTEGER)"))
        writer.execute(text("INSERT INTO snap VALUES (1)"))
        writer.commit()
    count = text("SELECT count(*) FROM snap")
    with sessions() as reader:
        if snapshot:
            begin_snapshot(reader)
        before = reader.scalar(count)
        with sessions() as writer:  # another connection commits meanwhile
            writer.execute(text("INSERT INTO snap VALUES (2)"))
            writer.commit()
        after = reader.scalar(count)
    assert before == 1
    if snapshot:
        assert after == 1
    elif url.startswith("sqlite"):
        assert after == 2  # each statement its own snapshot: why begin_snapshot exists
    engine.dispose()
