"""The block fetcher's pure helpers: back-off and the order peers are asked in; and the
order it asks peers for a run of leaves.

The fetcher itself runs against real peers in tests/replication/test_sync.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from node.ledger.verifier import compute_leaf_cid
from node.storage import open_store
from node.storage.fetch import BlockFetcher, PeerState, compute_backoff, compute_peer_order


def test_backoff_doubles_and_is_capped() -> None:
    assert [compute_backoff(n) for n in range(5)] == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert compute_backoff(1000) == 300.0


def test_peer_order_prefers_honest_then_reliable_and_skips_backing_off() -> None:
    honest = PeerState("http://a")
    flaky = PeerState("http://b", failures=2)
    liar = PeerState("http://c", bad_blocks=1)
    resting = PeerState("http://d", retry_at=10.0)
    assert compute_peer_order([liar, flaky, resting, honest], now=5.0) == [honest, flaky, liar]


def test_the_peer_that_served_last_is_asked_first_among_equals() -> None:
    a, b, c = PeerState("http://a"), PeerState("http://b"), PeerState("http://c")
    assert compute_peer_order([a, b, c], now=0.0, last_served="http://c") == [c, a, b]
    b.failures = 1  # a worse peer stays behind, whoever served last
    assert compute_peer_order([a, b], now=0.0, last_served="http://b") == [a, b]


def test_a_batchs_leaves_are_asked_of_the_peer_that_had_the_last_one(tmp_path: Path) -> None:
    # the fetcher's order over HTTP answers (a unit test of the code above the transport:
    # the fetcher against real peers is tests/replication/test_sync.py)
    leaves = [os.urandom(300) for _ in range(5)]
    by_cid = {compute_leaf_cid(leaf): leaf for leaf in leaves}
    asked: list[str] = []

    def peer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        cid = request.url.path.rsplit("/", 1)[1]
        if request.url.host == "c" and cid in by_cid:
            return httpx.Response(200, content=by_cid[cid])
        return httpx.Response(404)

    http = httpx.Client(transport=httpx.MockTransport(peer))
    fetcher = BlockFetcher(open_store(tmp_path / "store"), http=http, use_car=False)
    fetcher.set_peers(["http://a", "http://b", "http://c"])
    try:
        for cid in by_cid:
            assert fetcher.sync_dag(cid)
    finally:
        fetcher.close()
        http.close()
    assert asked == ["a", "b", "c"] + ["c"] * (len(leaves) - 1)
