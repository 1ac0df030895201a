"""Embedded store: round trips, paths, ranges, integrity, atomic writes, pins and gc."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
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
from node.storage.cids import parse_cid
from node.storage.errors import InvalidPath, StoreError
from node.storage.reader import get_child_cids

HELLO_V0 = "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    opened = open_store(tmp_path / "data")
    assert isinstance(opened, EmbeddedStore) and opened.backend == "embedded"
    assert opened.root == tmp_path / "data" / "ipfs"
    return opened


def _blocks(store: EmbeddedStore) -> list[tuple[str, int]]:
    """Return (key, size) of every stored block, packed or in a file."""
    return store.block_keys()


def _block_files(store: EmbeddedStore) -> list[Path]:
    return sorted((store.root / "blocks").rglob("*.data"))


def _packed(store: EmbeddedStore) -> sqlite3.Connection:
    """Open the packed-block database directly (as an intruder or a disk fault would)."""
    return sqlite3.connect(store.root / "blocks.sqlite", isolation_level=None)


def _rewrite(store: EmbeddedStore, key: str, data: bytes | None) -> None:
    """Overwrite (or with None delete) block ``key`` behind the store's back."""
    with contextlib.closing(_packed(store)) as db:
        if data is None:
            db.execute("DELETE FROM blocks WHERE key = ?", (key,))
        else:
            db.execute("UPDATE blocks SET data = ? WHERE key = ?", (data, key))
    path = store.root / "blocks" / key[-3:-1] / f"{key}.data"
    if path.exists():
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data)


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
    ((key, _),) = _blocks(store)
    with contextlib.closing(_packed(store)) as db:
        (stored,) = db.execute("SELECT data FROM blocks WHERE key = ?", (key,)).fetchone()
    _rewrite(store, key, stored.replace(b"Hello", b"Jello"))
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
    for _key, size in _blocks(store):  # every visible block is complete and valid
        assert size == 262144
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
    (leaf,) = _block_files(store)  # the full 256 KiB chunk; the 1-byte one and the root are packed
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


def test_small_blocks_are_packed_and_large_ones_get_a_file(store: EmbeddedStore) -> None:
    cid = store.add_bytes(os.urandom(262144 + 300))
    files = _block_files(store)
    assert [f.stat().st_size for f in files] == [262144]
    with contextlib.closing(_packed(store)) as db:
        sizes = sorted(n for (n,) in db.execute("SELECT length(data) FROM blocks"))
        (pins,) = db.execute("SELECT count(*) FROM pins").fetchone()
    assert 300 in sizes and len(sizes) == 2  # the small raw leaf and the root node
    assert pins == 1 and store.pins() == [cid]
    assert not (store.root / "pins.json").exists()


def test_concurrent_small_adds_and_add_many_give_add_bytes_cids_pinned_durably(
    tmp_path: Path,
) -> None:
    """Small add_bytes from many threads share commits; add_many is one commit; each caller
    gets its own CID (kubo's), pinned as asked, and all survive reopening the store."""
    from concurrent.futures import ThreadPoolExecutor

    store = EmbeddedStore(tmp_path / "s")
    payloads = [os.urandom(300 + i) for i in range(64)]
    expected = [store.add_bytes(p, only_hash=True) for p in payloads]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: store.add_bytes(payloads[i], pin=i % 2 == 0), range(64)))
    assert got == expected
    assert store.add_many([b"Hello Worlds!\n", b""], cid_version=0)[0] == (
        "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"
    )
    assert store.add_many([b""]) == ["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]
    with pytest.raises(StoreError):  # a bad call fails alone, not a neighbour's add
        store.add_bytes(b"x", cid_version=3)
    store.close()
    reopened = EmbeddedStore(tmp_path / "s")
    assert [reopened.cat(c) for c in expected] == payloads
    pins = set(reopened.pins())
    assert {c for i, c in enumerate(expected) if i % 2 == 0} <= pins
    assert not {c for i, c in enumerate(expected) if i % 2} & pins


def test_add_tree_gives_the_cids_of_add_path(store: EmbeddedStore, tmp_path: Path) -> None:
    tree = {
        "0": {str(i): f"leaf {i}".encode() * (i + 1) for i in range(40)},
        "1": {"40": b"", "41": os.urandom(262144 + 5)},
        "top": b"x",
    }
    disk = tmp_path / "tree"
    for name, item in tree.items():
        if isinstance(item, bytes):
            (disk / name).parent.mkdir(parents=True, exist_ok=True)
            (disk / name).write_bytes(item)
            continue
        for leaf, data in item.items():
            (disk / name).mkdir(parents=True, exist_ok=True)
            (disk / name / leaf).write_bytes(data)
    expected = store.add_path(disk, only_hash=True)
    cid = store.add_tree(tree)
    assert cid == expected and store.pins() == [cid]
    assert store.cat(cid, "0/7") == b"leaf 7" * 8
    assert store.cat(cid, "1/41") == tree["1"]["41"]  # type: ignore[index]


def test_a_data_dir_with_one_file_per_block_is_read_and_its_pins_moved(tmp_path: Path) -> None:
    """Blocks and pins written by the older layout (every block a file, pins.json) are read
    as they are; pins.json moves into the database; gc treats both kinds alike."""
    data = b"written by an older version\n"
    source = EmbeddedStore(tmp_path / "source")
    pinned = source.add_tree({"a": data, "b": os.urandom(70_000)})
    loose = source.add_bytes(b"not pinned", pin=False)
    old = tmp_path / "old"
    for key, _size in source.block_keys():  # lay every block out as a flatfs file
        with contextlib.closing(_packed(source)) as db:
            row = db.execute("SELECT data FROM blocks WHERE key = ?", (key,)).fetchone()
        file = source.root / "blocks" / key[-3:-1] / f"{key}.data"
        block = row[0] if row else file.read_bytes()
        path = old / "blocks" / key[-3:-1] / f"{key}.data"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(block)
    (old / "pins.json").write_text(json.dumps({"version": 1, "recursive": [pinned]}))
    store = EmbeddedStore(old)
    assert not (old / "pins.json").exists()
    assert store.pins() == [pinned]
    assert store.cat(pinned, "a") == data and store.cat(loose) == b"not pinned"
    with contextlib.closing(_packed(store)) as db:
        assert db.execute("SELECT count(*) FROM blocks").fetchone() == (0,)
    report = store.gc()
    assert report.removed_blocks == 1 and not store.has(loose)
    assert store.cat(pinned, "b") and EmbeddedStore(old).pins() == [pinned]


def test_a_corrupted_packed_block_is_repaired_by_put_block(store: EmbeddedStore) -> None:
    cid = store.add_bytes(b"leaf body")
    ((key, _),) = _blocks(store)
    _rewrite(store, key, b"leaf b0dy")
    with pytest.raises(BlockCorrupted):
        store.get_block(cid)
    with pytest.raises(BlockMismatch):
        store.put_block(cid, b"leaf b0dy")
    store.put_block(cid, b"leaf body")
    assert store.cat(cid) == b"leaf body"
    _rewrite(store, key, None)
    assert not store.has(cid)
    with pytest.raises(NotFoundInStore):
        store.pin(cid)


CRASH_CHILD = """
import os, signal, sys
from pathlib import Path
from node.storage import EmbeddedStore
store = EmbeddedStore(Path(sys.argv[1]))
cid = store.add_tree({str(i): b"leaf %d" % i for i in range(500)})
print(cid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_acknowledged_import_survives_kill_9(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRASH_CHILD, str(tmp_path / "ipfs")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    cid = done.stdout.strip()
    store = EmbeddedStore(tmp_path / "ipfs")
    assert store.pins() == [cid]
    assert store.cat(cid, "499") == b"leaf 499"
    assert store.gc().removed_blocks == 0


def test_pin_many_pins_all_or_none(store: EmbeddedStore) -> None:
    first = store.add_bytes(b"one", pin=False)
    second = store.add_bytes(os.urandom(262145), pin=False)
    absent = EmbeddedStore(store.root.parent / "other").add_bytes(b"elsewhere")
    with pytest.raises(NotFoundInStore):
        store.pin_many([first, absent])
    assert store.pins() == []
    store.pin_many([first, second])
    assert store.pins() == sorted([first, second])
    assert store.gc().removed_blocks == 0


def test_put_blocks_stores_a_batch_in_one_write_and_refuses_a_forged_one(tmp_path: Path) -> None:
    source = EmbeddedStore(tmp_path / "source")
    big = source.add_bytes(os.urandom(3 * 256 * 1024 + 10), pin=False)  # 3 full leaves + 10 B
    small = source.add_bytes(b"a packed block", pin=False)
    leaves = [str(c) for c in get_child_cids(parse_cid(big), source.get_block(big))]
    blocks = [(c, source.get_block(c)) for c in [big, small, *leaves]]
    sink = EmbeddedStore(tmp_path / "sink")

    with pytest.raises(BlockMismatch):
        sink.put_blocks([*blocks[:-1], (blocks[-1][0], b"forged")])
    assert not any(sink.has(c) for c, _ in blocks)  # none stored
    assert list((sink.root / "tmp").iterdir()) == []

    sink.put_blocks(blocks)
    assert sink.cat(big) == source.cat(big) and sink.cat(small) == b"a packed block"
    files = _block_files(sink)
    assert len(files) == 3  # the 256 KiB leaves; the root, the 10-byte leaf and small packed

    _rewrite(sink, files[0].name.removesuffix(".data"), b"rotten")
    sink.put_blocks(blocks)  # a stored copy that no longer hashes is replaced
    assert sink.cat(big) == source.cat(big)
