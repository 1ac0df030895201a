"""Each subsystem's private database is its own SQLite file, opened only by its back-end.

It holds no plaintext business data: records are sealed under the subsystem's content key
before they reach the content store (:mod:`node.keys.private`); a row keeps the CID and
the salted commitment, and ``key_envelopes`` the host's key envelopes (public CIDs).

``SubsystemDatabases`` is the one way to reach ``<data>/subsystems/<sha256(name)>.sqlite``. It
takes the :class:`RoleContext` the router granted the request and refuses unless the
context is ``be_subsystem`` of exactly that subsystem: the ``be_system`` code path (and
``be_subsystem`` of another subsystem) cannot open it. Opening brings the file to the newest
revision of its schema (:mod:`node.db.subsystem`, ``migrations/subsystem``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, insert, select

from node.assignment import ROLE_BE_SUBSYSTEM
from node.auth.errors import Forbidden
from node.db.session import create_db_engine
from node.db.subsystem import (
    envelopes_table,
    log_table,
    records_table,
    upgrade_subsystem_database,
)

log = logging.getLogger(__name__)

SUBSYSTEMS_DIR: Final = "subsystems"
DB_SUFFIX: Final = ".sqlite"
SAFE_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class EnvelopeRow:
    """A key envelope this host made for its subsystem: version, CID and recipients."""

    key_version: int
    envelope_cid: str
    recipients: tuple[str, ...]


class AccessDenied(Forbidden):
    """A code path tried to open a subsystem database it has no right to (403)."""


@dataclass(frozen=True)
class RoleContext:
    """The role (and subsystem) the router decided this node serves for one request."""

    role: str
    subsystem: str | None


def compute_db_filename(name: str) -> str:
    """Return the file name of subsystem ``name``'s database: the hex SHA-256 of its UTF-8
    name (injective for any two names, whatever their characters)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest() + DB_SUFFIX


def compute_legacy_filename(name: str) -> str:
    """Return the file name releases before the SHA-256 names gave ``name``'s database: the
    name itself if plain, else ``x-`` + hex (so ``acme.corp`` and ``x-61636d652e636f7270``
    shared one)."""
    stem = name if SAFE_NAME.fullmatch(name) else "x-" + name.encode("utf-8").hex()
    return stem + DB_SUFFIX


def decode_legacy_filename(filename: str) -> str | None:
    """Return the subsystem whose legacy database file is ``filename``, or None.

    ``x-<hex>`` decodes to the non-plain name it escapes: the legacy scheme wrote that file for
    it (a plain name spelled ``x-<hex>`` is the collision this module's SHA-256 names close, and
    never adopts such a file). Any other plain stem is its own name.
    """
    stem = filename.removesuffix(DB_SUFFIX)
    if stem.startswith("x-"):
        try:
            decoded = bytes.fromhex(stem[2:]).decode("utf-8")
        except ValueError:
            decoded = ""
        if decoded and not SAFE_NAME.fullmatch(decoded):
            return decoded
    return stem if SAFE_NAME.fullmatch(stem) else None


class SubsystemDatabase:
    """An opened subsystem database: sealed-record rows and this host's key envelopes."""

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine

    def add_record(
        self, *, cid: str, commitment: str, key_version: int, author: str
    ) -> dict[str, Any]:
        """Store the row of one sealed record (its CID and salted commitment); return it."""
        now = datetime.now(UTC)
        values = {"cid": cid, "commitment": commitment, "key_version": key_version,
                  "author": author, "created_at": now}  # fmt: skip
        with self.engine.begin() as conn:
            result = conn.execute(insert(records_table).values(**values))
            (record_id,) = result.inserted_primary_key or (None,)
        return {"id": record_id, **values}

    def records(self, *, limit: int) -> list[dict[str, Any]]:
        """Return the newest ``limit`` record rows, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(records_table).order_by(records_table.c.id.desc()).limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

    def replace_log(self, rows: list[tuple[Any, Any]]) -> None:
        """Replace S's indexed log with ``rows`` of ``(LogEntry, EntryObjects)`` in log order
        (one SQL transaction: a reader sees the old index or the new one)."""
        values = [
            {"position": i, "tx_id": e.tx_id, "kind": e.kind, "author": e.author,
             "timestamp": e.timestamp, "cid": e.cid, "payload_hash": e.payload_hash,
             "anchored": int(e.anchored), "envelope": o.envelope, "key_version": o.key_version,
             "commitment": o.commitment, "missing": int(o.missing)}
            for i, (e, o) in enumerate(rows)
        ]  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(log_table.delete())
            if values:
                conn.execute(insert(log_table), values)

    def log(self, *, kind: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Return S's indexed log entries (of ``kind`` if given), newest first."""
        query = select(log_table).order_by(log_table.c.position.desc())
        if kind is not None:
            query = query.where(log_table.c.kind == kind)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def current_envelope(self) -> EnvelopeRow | None:
        """Return the newest key envelope this host made for the subsystem, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(envelopes_table).order_by(envelopes_table.c.id.desc()).limit(1)
            ).first()
        if row is None:
            return None
        return EnvelopeRow(int(row.key_version), str(row.envelope_cid),
                           tuple(json.loads(row.recipients)))  # fmt: skip

    def add_envelope(self, envelope: EnvelopeRow) -> None:
        """Record ``envelope`` as the subsystem's current key envelope."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(envelopes_table).values(
                    key_version=envelope.key_version,
                    envelope_cid=envelope.envelope_cid,
                    recipients=json.dumps(list(envelope.recipients)),
                    created_at=datetime.now(UTC),
                )
            )


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
                f"{ROLE_BE_SUBSYSTEM} of {context.subsystem!r} "
                f"may not open the database of {name!r}"
            )
        with self._lock:
            db = self._open.get(name)
            if db is None:
                self.root.mkdir(parents=True, exist_ok=True)
                self._migrate_legacy(name)
                engine = create_db_engine(f"sqlite:///{self.path_of(name)}")
                try:
                    upgrade_subsystem_database(engine)
                except Exception:
                    engine.dispose()
                    raise
                db = self._open[name] = SubsystemDatabase(name, engine)
            return db

    def _migrate_legacy(self, name: str) -> None:
        """Rename ``name``'s database from its legacy file name to the SHA-256 one, if only the
        legacy file exists and that file name belongs to ``name`` alone."""
        path = self.path_of(name)
        legacy = self.root / compute_legacy_filename(name)
        if path.exists() or not legacy.exists():
            return
        owner = decode_legacy_filename(legacy.name)
        if owner != name:
            log.warning(
                "%s is the legacy database of %r: not adopted by %r (rename it by hand to %s)",
                legacy, owner, name, path.name,
            )  # fmt: skip
            return
        for suffix in ("", "-wal", "-shm", "-journal"):  # SQLite's side files move with it
            side = legacy.with_name(legacy.name + suffix)
            if side.exists():
                side.replace(path.with_name(path.name + suffix))
        log.info("subsystem %r: database %s renamed to %s", name, legacy.name, path.name)

    def close(self) -> None:
        """Dispose every opened engine."""
        with self._lock:
            for db in self._open.values():
                db.engine.dispose()
            self._open.clear()
