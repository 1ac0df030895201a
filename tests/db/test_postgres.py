"""The Alembic revisions on a real PostgreSQL: the same schema as the models, and back."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from node.db.models import Base
from node.db.session import alembic_config, create_db_engine, upgrade_database
from tests.db.postgres import postgres_server, postgres_url  # noqa: F401


def test_upgrade_head_matches_models_on_postgres(postgres_url: str) -> None:  # noqa: F811
    upgrade_database(postgres_url)
    engine = create_db_engine(postgres_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == []
    assert {"transactions", "anchors", "registry_events", "participants"} <= tables
    command.downgrade(alembic_config(postgres_url), "base")
    engine = create_db_engine(postgres_url)
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_tree_proofs_and_list_queries_on_postgres(  # noqa: F811
    postgres_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SQL tree and the explorer's list query (both time-range plans, the zone map kept
    by the PL/pgSQL trigger) give the reference answers on PostgreSQL."""
    import random

    from node.db.session import make_session_factory
    from node.ledger import queries, tree
    from node.ledger.reindex import _advance_seq
    from tests.ledger.test_queries import (
        check_write_paths,
        compare_with_brute_force,
        fill,
        recomputed_zone_map,
        zone_map,
    )
    from tests.ledger.test_tree import add_leaves, check_all, leaf_hashes

    upgrade_database(postgres_url)
    engine = create_db_engine(postgres_url)
    try:
        sessions = make_session_factory(engine)
        rows = fill(sessions)  # the list query's data (origin "" leaf indexes 0..N-1)
        with sessions() as session:
            assert zone_map(session) == recomputed_zone_map(session)
        check_write_paths(sessions)  # the bulk insert and the ORM's flush hook, on PostgreSQL
        assert "range" in compare_with_brute_force(sessions, rows, 40)
        monkeypatch.setattr(queries, "RANGE_MAX", 0)
        assert "zones" in compare_with_brute_force(sessions, rows, 40)
        with sessions() as session:  # ``fill`` wrote explicit seqs: move the sequence on
            _advance_seq(session)
            session.commit()
        other = "0x00000000000000000000000000000000000000b2"
        hashes = leaf_hashes(1000, "pg")
        with sessions() as session:
            add_leaves(session, other, hashes)
            check_all(session, other, hashes, random.Random(1))
            tree.catch_up(session, other, 600)
            check_all(session, other, hashes, random.Random(2))
            session.commit()
    finally:
        engine.dispose()
