"""Bodies of an anchor batch into the embedded store (``node/ledger/bodies.py``): the ones
the store holds pinned already (stored by the body writer at acceptance) are not imported
again; every body ends stored and pinned under its recorded CID."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from node.ledger.bodies import DIRECTORY_IMPORT_MIN, store_bodies
from node.ledger.verifier import compute_leaf_cid
from node.storage import open_store


@dataclass
class Row:
    tx_id: str
    cid: str
    body: bytes


def rows_of(count: int) -> list[Row]:
    bodies = [os.urandom(200) for _ in range(count)]
    return [Row(f"0x{i:064x}", compute_leaf_cid(b), b) for i, b in enumerate(bodies)]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    return open_store(tmp_path / "store")


def imported(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the leaf names each directory import of ``store`` gets."""
    names: list[str] = []
    add_tree = store.add_tree

    def spy(tree: dict[str, dict[str, bytes]], **kwargs: Any) -> str:
        names.extend(name for files in tree.values() for name in files)
        return add_tree(tree, **kwargs)

    monkeypatch.setattr(store, "add_tree", spy)
    return names


def test_the_store_tells_which_cids_it_holds_pinned(store: Any) -> None:
    rows = rows_of(3)
    store.add_many([rows[0].body])
    store.add_bytes(rows[1].body, pin=False)
    assert store.pinned([r.cid for r in rows]) == {rows[0].cid}
    assert store.pinned([]) == set()


def test_bodies_already_pinned_are_not_imported_again(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rows_of(3 * DIRECTORY_IMPORT_MIN)
    early = rows[:DIRECTORY_IMPORT_MIN] + rows[-2:]  # accepted one by one: stored already
    store.add_many([r.body for r in early])
    names = imported(store, monkeypatch)
    store_bodies(store, rows, first=1000)
    late = rows[DIRECTORY_IMPORT_MIN:-2]
    assert names == [str(1000 + rows.index(r)) for r in late]  # their leaf indexes, only
    assert store.pinned([r.cid for r in rows]) == {r.cid for r in early}
    for row in rows:
        assert store.cat(row.cid) == row.body


def test_with_every_body_pinned_nothing_is_imported(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rows_of(2 * DIRECTORY_IMPORT_MIN)
    store.add_many([r.body for r in rows])
    names = imported(store, monkeypatch)
    store_bodies(store, rows, first=0)
    assert names == []
