"""A subsystem's own database has migrations too (``migrations/subsystem``): a fresh file gets
exactly the schema of ``node.db.subsystem``, and a file made by ``create_all`` before them is
stamped with the revision its tables show and upgraded when the node opens it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
)

from node.auth.databases import RoleContext, SubsystemDatabases
from node.db.session import alembic_config, create_db_engine
from node.db.subsystem import (
    REVISION_LOG,
    REVISION_SEALED,
    compute_baseline,
    metadata,
    upgrade_subsystem_database,
)
from node.resources import subsystem_migrations_dir

NAME = "acme"
HEAD = REVISION_LOG


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _sealed_era_file(path: Path) -> None:
    """Write the file ``create_all`` made before ``log_entries`` existed (revision s0001's
    shape, no ``alembic_version``), holding one record and one envelope."""
    old = MetaData()
    records = Table(
        "sealed_records", old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("cid", String(128), nullable=False, index=True),
        Column("commitment", String(64), nullable=False),
        Column("key_version", Integer, nullable=False),
        Column("author", String(42), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )  # fmt: skip
    envelopes = Table(
        "key_envelopes", old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("key_version", Integer, nullable=False),
        Column("envelope_cid", String(128), nullable=False, unique=True),
        Column("recipients", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )  # fmt: skip
    engine = create_db_engine(f"sqlite:///{path}")
    old.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(records).values(cid="bafy-old", commitment="00" * 32, key_version=1,
                                            author="0x" + "11" * 20, created_at=now))  # fmt: skip
        conn.execute(insert(envelopes).values(key_version=1, envelope_cid="bafy-env",
                                              recipients="[]", created_at=now))  # fmt: skip
    engine.dispose()


def test_fresh_file_gets_exactly_the_models_schema(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    upgrade_subsystem_database(engine)
    upgrade_subsystem_database(engine)  # idempotent
    assert _schema_diff(engine) == []
    assert _revision(engine) == HEAD
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}
    engine.dispose()


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    engine = create_db_engine(url)
    upgrade_subsystem_database(engine)
    command.downgrade(alembic_config(url, subsystem_migrations_dir()), "base")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    upgrade_subsystem_database(engine)
    assert _schema_diff(engine) == []
    engine.dispose()


def test_a_create_all_file_is_stamped_and_upgraded_when_opened(tmp_path: Path) -> None:
    databases = SubsystemDatabases(tmp_path)
    path = databases.path_of(NAME)
    path.parent.mkdir(parents=True)
    _sealed_era_file(path)

    database = databases.open(RoleContext("be_subsystem", NAME), NAME)
    try:
        assert _revision(database.engine) == HEAD
        assert _schema_diff(database.engine) == []
        assert [r["cid"] for r in database.records(limit=10)] == ["bafy-old"]  # data kept
        envelope = database.current_envelope()
        assert envelope is not None and envelope.envelope_cid == "bafy-env"
        assert database.log() == []  # log_entries, added by s0002, is there and usable
    finally:
        databases.close()


def test_baseline_follows_the_tables_a_pre_alembic_file_holds() -> None:
    assert compute_baseline(set()) is None
    assert compute_baseline({"marker"}) is None
    assert compute_baseline({"sealed_records", "key_envelopes"}) == REVISION_SEALED
    assert compute_baseline({"sealed_records", "key_envelopes", "log_entries"}) == REVISION_LOG
