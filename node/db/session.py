"""Engine and sessions of the index database; schema upgrades through Alembic."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from node.db import zones
from node.db.writer import apply_pragmas
from node.resources import migrations_dir


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    apply_pragmas(dbapi_conn)  # the same settings as the writer process's connection


def create_db_engine(url: str) -> Engine:
    """Return an engine for ``url``; SQLite gets WAL, full sync and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


#: Alembic's ``context`` and ``op`` are module-level proxies: one migration run at a time.
ALEMBIC_LOCK: Final = threading.RLock()


def alembic_config(url: str, script_location: Path | None = None) -> Config:
    """Return an Alembic configuration pointing at ``script_location`` (default: the index
    database's ``migrations/``) and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location or migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(url: str) -> None:
    """Bring the index database at ``url`` to the newest Alembic revision."""
    with ALEMBIC_LOCK:
        command.upgrade(alembic_config(url), "head")


def begin_snapshot(session: Session) -> None:
    """Make the reads that follow in ``session``'s transaction see one snapshot of the
    database: on SQLite an explicit deferred ``BEGIN`` (pysqlite issues none before a
    ``SELECT``, so each statement would read the newest commit on its own); on PostgreSQL
    ``REPEATABLE READ`` for this transaction. Call it before the session's first statement;
    the transaction ends with the session (rolled back: nothing was written)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


@contextmanager
def sqlite_cursor(session: Session) -> Iterator[sqlite3.Cursor]:
    """Yield a DBAPI cursor on ``session``'s own SQLite connection (the session's transaction
    begun on it), closed afterwards: for bulk writes below the ORM (``node.sqlrows``)."""
    driver = session.connection().connection.driver_connection
    cursor = cast(sqlite3.Connection, driver).cursor()
    try:
        yield cursor
    finally:
        cursor.close()


@contextmanager
def sqlite_transaction(engine: Engine) -> Iterator[sqlite3.Cursor]:
    """Yield a cursor on a pooled DBAPI connection of the SQLite ``engine``, for one write
    transaction in plain SQL without a ``Session`` (whose connection, transaction and
    close bookkeeping cost more Python than a small group commit's statements): the caller
    commits with :func:`commit_sqlite`; whatever it leaves uncommitted (an exception) is
    rolled back, and the connection goes back to the pool."""
    raw = engine.raw_connection()
    try:
        driver = cast(sqlite3.Connection, raw.driver_connection)
        cursor = driver.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            if driver.in_transaction:
                driver.rollback()
    finally:
        raw.close()


def commit_sqlite(cursor: sqlite3.Cursor) -> None:
    """Commit the transaction of ``cursor``'s connection (durable on return: the engine sets
    ``synchronous=FULL``); a failure is raised as SQLAlchemy raises it (``DBAPIError``)."""
    try:
        cursor.connection.commit()
    except sqlite3.Error as exc:
        raise DBAPIError.instance("COMMIT", None, exc, sqlite3.Error) from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` (objects stay usable after commit) whose
    sessions keep the timestamp zone map of the transactions they add (``node.db.zones``)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    zones.track(factory)
    return factory
