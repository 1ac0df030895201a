"""node.auth.databases: injective file names and the adoption of legacy-named files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.auth.databases import (
    RoleContext,
    SubsystemDatabases,
    compute_db_filename,
    compute_legacy_filename,
    decode_legacy_filename,
)

VICTIM = "acme.corp"
COLLIDER = "x-61636d652e636f7270"


def be(name: str) -> RoleContext:
    return RoleContext("be_subsystem", name)


def test_file_names_are_distinct_where_the_legacy_ones_collided() -> None:
    assert compute_legacy_filename(VICTIM) == compute_legacy_filename(COLLIDER)
    assert compute_db_filename(VICTIM) != compute_db_filename(COLLIDER)
    assert decode_legacy_filename(compute_legacy_filename(VICTIM)) == VICTIM
    assert decode_legacy_filename(compute_legacy_filename("main")) == "main"
    assert decode_legacy_filename("x-zz.sqlite") == "x-zz"  # not hex: a plain name
    assert decode_legacy_filename("x-6d61696e.sqlite") == "x-6d61696e"  # hex of a plain name


def _legacy_db(root: Path, name: str) -> None:
    (root / "subsystems").mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(root / "subsystems" / compute_legacy_filename(name)) as conn:
        conn.execute("CREATE TABLE marker (owner TEXT)")
        conn.execute("INSERT INTO marker VALUES (?)", (name,))


def _marker(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT owner FROM marker")]


def test_a_legacy_file_is_adopted_by_its_own_subsystem_only(tmp_path: Path) -> None:
    _legacy_db(tmp_path, VICTIM)
    _legacy_db(tmp_path, "main")
    databases = SubsystemDatabases(tmp_path)
    try:
        databases.open(be(COLLIDER), COLLIDER)  # the collider never takes the victim's file
        assert not databases.path_of(COLLIDER).read_bytes().count(VICTIM.encode())
        databases.open(be(VICTIM), VICTIM)
        databases.open(be("main"), "main")
    finally:
        databases.close()
    assert _marker(databases.path_of(VICTIM)) == [VICTIM]
    assert _marker(databases.path_of("main")) == ["main"]
    assert not (tmp_path / "subsystems" / compute_legacy_filename(VICTIM)).exists()
