"""Each subsystem's private database is its own SQLite file, opened only by its back-end.

``SubsystemDatabases`` is the one way to reach ``<data>/subsystems/<name>.sqlite``. It
takes the :class:`RoleContext` the router granted the request and refuses unless the
context is ``be_subsystem`` of exactly that subsystem: the ``be_system`` code path (and
``be_subsystem`` of another subsystem) cannot open it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

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
    select,
)

from node.assignment import ROLE_BE_SUBSYSTEM
from node.auth.errors import Forbidden
from node.db.session import create_db_engine

SUBSYSTEMS_DIR: Final = "subsystems"
DB_SUFFIX: Final = ".sqlite"
SAFE_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RECORD_KEY_LEN: Final = 128

#: Schema of a subsystem database (its own file; created on first open).
subsystem_metadata = MetaData()
records_table = Table(
    "records",
    subsystem_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(RECORD_KEY_LEN), nullable=False, index=True),
    Column("value", Text, nullable=False),
    Column("author", String(42), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class AccessDenied(Forbidden):
    """A code path tried to open a subsystem database it has no right to (403)."""


@dataclass(frozen=True)
class RoleContext:
    """The role (and subsystem) the router decided this node serves for one request."""

    role: str
    subsystem: str | None


def compute_db_filename(name: str) -> str:
    """Return the file name of subsystem ``name``'s database (hex-escaped if not plain)."""
    stem = name if SAFE_NAME.match(name) else "x-" + name.encode("utf-8").hex()
    return stem + DB_SUFFIX


class SubsystemDatabase:
    """An opened subsystem database: append and read private records."""

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine

    def add_record(self, *, key: str, value: str, author: str) -> dict[str, Any]:
        """Store one record and return it."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(records_table).values(key=key, value=value, author=author, created_at=now)
            )
            (record_id,) = result.inserted_primary_key or (None,)
        return {"id": record_id, "key": key, "value": value, "author": author, "created_at": now}

    def records(self, *, limit: int) -> list[dict[str, Any]]:
        """Return the newest ``limit`` records, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(records_table).order_by(records_table.c.id.desc()).limit(limit)
            ).mappings()
            return [dict(row) for row in rows]


class SubsystemDatabases:
    """The registry of subsystem databases under ``<data_dir>/subsystems``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / SUBSYSTEMS_DIR
        self._open: dict[str, SubsystemDatabase] = {}
        self._lock = threading.Lock()

    def path_of(self, name: str) -> Path:
        """Return where subsystem ``name``'s database lives."""
        return self.root / compute_db_filename(name)

    def open(self, context: RoleContext, name: str) -> SubsystemDatabase:
        """Return subsystem ``name``'s database for a request served as ``context``.

        Raises :class:`AccessDenied` unless ``context`` is ``be_subsystem`` of ``name``.
        """
        if context.role != ROLE_BE_SUBSYSTEM:
            raise AccessDenied(f"role {context.role} may not open subsystem databases")
        if context.subsystem != name:
            raise AccessDenied(
                f"be_subsystem of {context.subsystem!r} may not open the database of {name!r}"
            )
        with self._lock:
            db = self._open.get(name)
            if db is None:
                self.root.mkdir(parents=True, exist_ok=True)
                engine = create_db_engine(f"sqlite:///{self.path_of(name)}")
                subsystem_metadata.create_all(engine)
                db = self._open[name] = SubsystemDatabase(name, engine)
            return db

    def close(self) -> None:
        """Dispose every opened engine."""
        with self._lock:
            for db in self._open.values():
                db.engine.dispose()
            self._open.clear()
