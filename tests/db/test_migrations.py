"""The Alembic revisions create exactly the schema the models describe: every table of the
index database is a model in ``node.db.models`` (login, key directory included), so
``alembic revision --autogenerate`` on a migrated database finds nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from node.db.models import Base
from node.db.session import alembic_config, create_db_engine, upgrade_database

ROOT = Path(__file__).resolve().parents[2]


def test_upgrade_head_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == []
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert {"transactions", "auth_nonces", "auth_sessions", "participant_keys"} <= tables


def test_every_index_model_lives_in_node_db() -> None:
    # the tables are all on Base.metadata once node.db.models is imported, with no other
    # package imported for its side effect (migrations/env.py imports node.db.models only)
    code = (
        "import sys; from node.db.models import Base; "
        "assert not any(m.startswith(('node.auth', 'node.keys')) for m in sys.modules); "
        "print(' '.join(sorted(Base.metadata.tables)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    tables = set(run.stdout.split())
    assert {"auth_nonces", "auth_sessions", "participant_keys", "transactions"} <= tables


def test_upgrade_is_idempotent_and_downgrade_works(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    upgrade_database(url)
    command.downgrade(alembic_config(url), "base")
    engine = create_db_engine(url)
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_sqlite_is_durable_and_wal(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()
