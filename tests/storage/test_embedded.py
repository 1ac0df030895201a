"""Embedded store: round trips, paths, ranges, integrity, atomic writes, pins and gc."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from node.errors import InvalidCID, NotFoundInStore
from node.storage import (
    BlockCorrupted,
    BlockMismatch,
    EmbeddedStore,
    IsADirectory,
    NotADirectory,
    open_store,
)
from node.storage.errors import InvalidPath

HELLO_V0 = "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    opened = open_store(tmp_path / "data")
    assert isinstance(opened, EmbeddedStore) and opened.backend == "embedded"
    assert opened.root == tmp_path / "data" / "ipfs"
    return opened


def _blocks(store: EmbeddedStore) -> list[Path]:
    return sorted((store.root / "blocks").rglob("*.data"))


def test_multi_chunk_round_trip_and_ranges(store: EmbeddedStore) -> None:
    data = os.urandom(3 * 262144 + 17)
    cid = store.add_bytes(data)
    assert store.cat(cid) == data
    for offset, length in [(0, 10), (262140, 10), (262144, 262144), (len(data) - 5, 100), (5, 0)]:
        got = b"".join(store.iter_cat(cid, offset=offset, length=length))
        assert got == data[offset : offset + length]
    assert store.stat(cid).size == len(data) and store.stat(cid).kind == "file"
    assert len(_blocks(store)) == 5  # 4 raw leaves + 1 root


def test_directory_paths_and_stat(store: EmbeddedStore, tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "a").mkdir(parents=True)
    (root / "a" / "b.txt").write_text("bee\n")
    (root / "top.txt").write_text("top\n")
    (root / ".hidden").write_text("skipped like kubo without --hidden\n")
    cid = store.add_path(root)
    assert store.cat(cid, "a/b.txt") == b"bee\n"
    stat = store.stat(cid)
    assert stat.kind == "dir"
    assert [(e.name, e.kind, e.size) for e in stat.entries] == [
        ("a", "dir", 57),
        ("top.txt", "raw", 4),
    ]
    with pytest.raises(IsADirectory):
        store.cat(cid, "a")
    with pytest.raises(NotFoundInStore):
        store.cat(cid, "nope.txt")
    with pytest.raises(NotADirectory):
        store.cat(cid, "top.txt/x")
    with pytest.raises(InvalidPath):
        store.cat(cid, "a/../top.txt")


def test_only_hash_stores_nothing(store: EmbeddedStore) -> None:
    cid = store.add_bytes(b"Hello Worlds!\n", cid_version=0, only_hash=True)
    assert cid == HELLO_V0
    assert not store.has(cid) and _blocks(store) == [] and store.pins() == []


def test_invalid_and_unknown_cids(store: EmbeddedStore) -> None:
    with pytest.raises(InvalidCID):
        store.cat("not-a-cid")
    with pytest.raises(NotFoundInStore):
        store.cat(HELLO_V0)
    assert not store.has(HELLO_V0)


def test_tampered_block_is_detected(store: EmbeddedStore) -> None:
    cid = store.add_bytes(b"Hello Worlds!\n", cid_version=0)
    (block,) = _blocks(store)
    block.write_bytes(block.read_bytes().replace(b"Hello", b"Jello"))
    for read in (store.get_block, store.cat, store.has):
        with pytest.raises(BlockCorrupted) as caught:
            read(cid)
        assert HELLO_V0 in str(caught.value)
    store.add_bytes(b"Hello Worlds!\n", cid_version=0)  # re-adding repairs the copy
    assert store.cat(cid) == b"Hello Worlds!\n"


def test_put_block_checks_the_hash(store: EmbeddedStore, tmp_path: Path) -> None:
    source = EmbeddedStore(tmp_path / "source")
    cid = source.add_bytes(b"payload")
    with pytest.raises(BlockMismatch):
        store.put_block(cid, b"other bytes")
    assert not store.has(cid)
    store.put_block(cid, source.get_block(cid))
    assert store.has(cid) and store.cat(cid) == b"payload"


def test_crash_mid_import_leaves_no_partial_block(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls = {"n": 0}

    def crash_on_third(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_third)
    data = os.urandom(5 * 262144)
    with pytest.raises(KeyboardInterrupt):
        store.add_bytes(data)
    monkeypatch.setattr(os, "replace", real_replace)
    assert store.pins() == []
    assert len(_blocks(store)) == 2
    for block in _blocks(store):  # every visible block is complete and valid
        assert block.stat().st_size == 262144
    assert list((store.root / "tmp").iterdir()) == []
    cid = store.add_bytes(data)
    assert store.cat(cid) == data


def test_leftover_temp_files_are_removed_on_open(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    (store.root / "tmp" / "half-written.tmp").write_bytes(b"partial")
    EmbeddedStore(tmp_path)
    assert list((store.root / "tmp").iterdir()) == []


def test_gc_keeps_pinned_content_only(store: EmbeddedStore) -> None:
    kept = store.add_bytes(os.urandom(2 * 262144 + 1))
    dropped = store.add_bytes(b"temporary", pin=False)
    assert store.pins() == [kept]
    report = store.gc()
    assert report.removed_blocks == 1 and report.kept_blocks == 4
    assert not store.has(dropped)
    assert store.cat(kept)
    store.unpin(kept)
    assert store.gc().removed_blocks == 4 and _blocks(store) == []


def test_pin_requires_the_whole_dag(store: EmbeddedStore) -> None:
    cid = store.add_bytes(os.urandom(262145), pin=False)
    leaf = _blocks(store)[0]
    leaf.unlink()
    with pytest.raises(NotFoundInStore):
        store.pin(cid)
    store.add_bytes(b"x", pin=False)
    assert store.pins() == []


def test_large_file_is_streamed(store: EmbeddedStore, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as stream:
        stream.truncate(48 * 1024 * 1024)  # sparse: zeros
    tracemalloc.start()
    try:
        cid = store.add_path(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak
    assert cid == store.add_bytes(bytes(48 * 1024 * 1024), only_hash=True)
