"""The block fetcher's pure helpers: back-off and the order peers are asked in.

The fetcher itself runs against real peers in tests/replication/test_sync.py.
"""

from __future__ import annotations

from node.storage.fetch import PeerState, compute_backoff, compute_peer_order


def test_backoff_doubles_and_is_capped() -> None:
    assert [compute_backoff(n) for n in range(5)] == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert compute_backoff(1000) == 300.0


def test_peer_order_prefers_honest_then_reliable_and_skips_backing_off() -> None:
    honest = PeerState("http://a")
    flaky = PeerState("http://b", failures=2)
    liar = PeerState("http://c", bad_blocks=1)
    resting = PeerState("http://d", retry_at=10.0)
    assert compute_peer_order([liar, flaky, resting, honest], now=5.0) == [honest, flaky, liar]
