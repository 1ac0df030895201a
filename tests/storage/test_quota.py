"""The space a node donates to its embedded store: counted, reported, and never exceeded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.storage import EmbeddedStore
from node.storage.errors import StoreFull


def test_writes_past_the_quota_are_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "blocks", quota_bytes=600_000)
    kept = os.urandom(300_000)  # two chunks (256 KiB) and a root: file blocks and a packed one
    cid = store.add_bytes(kept)
    used = store.used_bytes()
    assert 300_000 <= used < 310_000
    usage = store.usage()
    assert usage["quota_bytes"] == 600_000 and usage["full"] is False
    assert usage["path"] == str(tmp_path / "blocks")

    with pytest.raises(StoreFull, match="quota of 600000 bytes"):
        store.add_bytes(os.urandom(400_000))
    assert store.cat(cid) == kept, "what was stored before is intact"
    assert store.pins() == [cid], "the refused import left no pin"
    store.gc()
    assert store.used_bytes() == used, "gc removes whatever the refused import left"
    assert store.has(cid)
    # a reopened store counts the same bytes and keeps refusing
    reopened = EmbeddedStore(tmp_path / "blocks", quota_bytes=600_000)
    assert reopened.used_bytes() == used
    with pytest.raises(StoreFull):
        reopened.add_bytes(os.urandom(400_000))
    assert reopened.add_bytes(b"small enough") is not None


def test_a_block_from_a_peer_past_the_quota_is_refused(tmp_path: Path) -> None:
    block = os.urandom(200_000)  # one raw leaf: its CID hashes these bytes
    cid = EmbeddedStore(tmp_path / "scratch").add_bytes(block, cid_version=1, pin=False)
    store = EmbeddedStore(tmp_path / "blocks", quota_bytes=100_000)
    with pytest.raises(StoreFull):
        store.put_block(cid, block)
    assert not store.has(cid) and store.used_bytes() == 0
    roomy = EmbeddedStore(tmp_path / "roomy", quota_bytes=300_000)
    roomy.put_block(cid, block)
    assert roomy.used_bytes() == 200_000


def test_a_full_store_says_so(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "blocks", quota_bytes=1000)
    store.add_bytes(os.urandom(1000), pin=True)
    assert store.usage()["full"] is True
    with pytest.raises(StoreFull):
        store.add_bytes(b"x")


def test_no_quota_means_no_limit_and_bad_quotas_are_refused(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "blocks")
    store.add_bytes(os.urandom(10_000))
    assert store.usage()["quota_bytes"] is None and store.usage()["full"] is False
    with pytest.raises(ValueError, match="positive"):
        EmbeddedStore(tmp_path / "other", quota_bytes=0)
