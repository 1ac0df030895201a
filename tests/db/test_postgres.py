"""The Alembic revisions on a real PostgreSQL: the same schema as the models, and back."""

from __future__ import annotations

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
