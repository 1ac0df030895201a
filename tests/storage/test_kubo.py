"""KuboStore against a kubo-RPC-compatible server backed by the embedded store (real HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.errors import InvalidCID, NotFoundInStore
from node.storage import BlockMismatch, EmbeddedStore, IsADirectory, open_store
from node.storage.base import BlockStore
from node.storage.kubo import KuboStore, compute_multiaddr
from tests.storage.kubo_rpc import serve_kubo_rpc

VECTORS = json.loads((Path(__file__).parent / "vectors" / "unixfs.json").read_text())


@pytest.fixture(scope="module")
def backing(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    return EmbeddedStore(tmp_path_factory.mktemp("kubo-backing"))


@pytest.fixture(scope="module")
def kubo(backing: EmbeddedStore) -> Iterator[KuboStore]:
    with serve_kubo_rpc(backing) as url:
        store = open_store(Path("/nonexistent"), url)
        assert isinstance(store, KuboStore) and store.backend == "kubo"
        yield store
        store.close()


def test_compute_multiaddr() -> None:
    assert compute_multiaddr("http://127.0.0.1:5001") == ("/ip4/127.0.0.1/tcp/5001/http", "api/v0")
    assert compute_multiaddr("http://kubo:5001/") == ("/dns/kubo/tcp/5001/http", "api/v0")


def test_add_bytes_gives_kubo_cids(kubo: KuboStore) -> None:
    for case in VECTORS["kubo_files"]:
        if "raw_leaves" in case or case.get("compare_as_v1"):
            continue
        got = kubo.add_bytes(case["input"]["utf8"].encode(), cid_version=case["cid_version"])
        assert got == case["cid"], case["name"]


def test_the_whole_block_store_protocol(kubo: KuboStore, backing: EmbeddedStore) -> None:
    assert isinstance(kubo, BlockStore) and isinstance(backing, BlockStore)
    tree = {"planets": {"mars.txt": b"Hello Mars!\n", "venus.txt": b"Hello Venus!\n"}}
    cid = kubo.add_tree(tree)
    assert cid == backing.add_tree(tree, only_hash=True)  # the CID the embedded store gives
    assert kubo.cat(cid, "planets/venus.txt") == b"Hello Venus!\n"
    leaf = kubo.add_bytes(b"pinned together", pin=False)
    kubo.pin_many([cid, leaf])
    assert {cid, leaf} <= set(kubo.pins())
    assert kubo.usage() == {}


def test_add_directory_and_read_back(kubo: KuboStore, tmp_path: Path) -> None:
    root = tmp_path / "planets"
    root.mkdir()
    (root / "mars.txt").write_text("Hello Mars!\n")
    (root / "venus.txt").write_text("Hello Venus!\n")
    (root / ".dot").write_text("not sent, as kubo's CLI")
    assert kubo.add_path(root, cid_version=0) == "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"
    cid = kubo.add_path(root)
    assert cid == "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi"
    assert kubo.cat(cid, "venus.txt") == b"Hello Venus!\n"
    assert b"".join(kubo.iter_cat(cid, "venus.txt", offset=6, length=5)) == b"Venus"
    stat = kubo.stat(cid)
    assert stat.kind == "dir" and [e.name for e in stat.entries] == ["mars.txt", "venus.txt"]
    assert kubo.stat(cid, "mars.txt").kind == "raw"
    assert cid in kubo.pins()
    with pytest.raises(IsADirectory):
        kubo.cat(cid)
    with pytest.raises(NotFoundInStore):
        kubo.cat(cid, "pluto.txt")


def test_blocks_pins_and_errors(kubo: KuboStore, tmp_path: Path) -> None:
    source = EmbeddedStore(tmp_path / "source")
    cid = source.add_bytes(b"a block from elsewhere", cid_version=0, pin=False)
    assert not kubo.has(cid)
    with pytest.raises(BlockMismatch):
        kubo.put_block(cid, b"forged")
    kubo.put_block(cid, source.get_block(cid))
    assert kubo.has(cid) and kubo.get_block(cid) == source.get_block(cid)
    kubo.pin(cid)
    assert cid in kubo.pins()
    only = kubo.add_bytes(b"never stored", only_hash=True)
    assert not kubo.has(only)
    with pytest.raises(InvalidCID):
        kubo.cat("not-a-cid")
    with pytest.raises(NotFoundInStore):
        kubo.get_block(only)


def test_put_blocks_checks_every_block_before_storing_any(kubo: KuboStore, tmp_path: Path) -> None:
    source = EmbeddedStore(tmp_path / "source")
    cids = [source.add_bytes(f"block {i}".encode(), pin=False) for i in range(3)]
    blocks = [(cid, source.get_block(cid)) for cid in cids]
    with pytest.raises(BlockMismatch):
        kubo.put_blocks([*blocks[:2], (cids[2], b"forged")])
    assert not any(kubo.has(cid) for cid in cids)
    kubo.put_blocks(blocks)
    assert all(kubo.get_block(cid) == data for cid, data in blocks)
