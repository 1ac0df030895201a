"""The schema of a subsystem's own database, and its upgrade through Alembic.

A subsystem's database is its own SQLite file (``node.auth.databases.SubsystemDatabases``
opens it). Nothing in it is plaintext business data: a record is sealed (``node.crypto``) and
stored in the content store; its row keeps the sealed object's CID and its salted commitment
(``docs/encryption.md``); ``key_envelopes`` holds the host's key envelopes (public CIDs) and
``log_entries`` S's log as this host indexed it (``node.replication.replica``).

The schema has its own Alembic environment, ``migrations/subsystem`` (revisions ``s0001``…),
apart from the index database's ``migrations/``; these tables must match its newest revision
(``tests/db/test_subsystem_migrations.py`` compares them). Files made before it existed (by
``create_all``, no ``alembic_version``) are stamped with the revision their tables show, then
upgraded.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from alembic import command
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Text, inspect

from node.db.session import ALEMBIC_LOCK, alembic_config
from node.resources import subsystem_migrations_dir

CID_LEN: Final = 128
COMMITMENT_LEN: Final = 64
#: the revision that created ``sealed_records`` and ``key_envelopes``, and the one that added
#: ``log_entries``: what a file made by ``create_all`` before Alembic is stamped with
REVISION_SEALED: Final = "s0001"
REVISION_LOG: Final = "s0002"
VERSION_TABLE: Final = "alembic_version"

metadata = MetaData()
records_table = Table(
    "sealed_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cid", String(CID_LEN), nullable=False, index=True),
    Column("commitment", String(COMMITMENT_LEN), nullable=False),
    Column("key_version", Integer, nullable=False),
    Column("author", String(42), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
envelopes_table = Table(
    "key_envelopes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_version", Integer, nullable=False),
    Column("envelope_cid", String(CID_LEN), nullable=False, unique=True),
    Column("recipients", Text, nullable=False),  # JSON list of checksummed addresses
    Column("created_at", DateTime(timezone=True), nullable=False),
)
#: one row per private transaction of S, rebuilt from the ledger index and the content store
log_table = Table(
    "log_entries",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("tx_id", String(66), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("author", String(42), nullable=False),
    Column("timestamp", Integer, nullable=False),
    Column("cid", String(CID_LEN), nullable=False),
    Column("payload_hash", String(66), nullable=False),
    Column("anchored", Integer, nullable=False),
    Column("envelope", String(CID_LEN), nullable=True),
    Column("key_version", Integer, nullable=True),
    Column("commitment", String(COMMITMENT_LEN), nullable=True),
    Column("missing", Integer, nullable=False),
)


def compute_baseline(tables: Collection[str]) -> str | None:
    """Return the revision a subsystem database holding ``tables`` and no ``alembic_version``
    (made by ``create_all`` before the migrations) is at, or None for an empty one."""
    if log_table.name in tables:
        return REVISION_LOG
    if records_table.name in tables:
        return REVISION_SEALED
    return None


def upgrade_subsystem_database(engine: Engine) -> None:
    """Bring the subsystem database of ``engine`` to the newest revision of
    ``migrations/subsystem``, stamping a pre-Alembic file with its revision first."""
    cfg = alembic_config(str(engine.url), subsystem_migrations_dir())
    with ALEMBIC_LOCK, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        tables = set(inspect(conn).get_table_names())
        if VERSION_TABLE not in tables:
            baseline = compute_baseline(tables)
            if baseline is not None:
                command.stamp(cfg, baseline)
        command.upgrade(cfg, "head")
