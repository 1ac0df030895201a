"""What a node wants: the roots the chain references, in sync order.

The want list follows batches, leaves, payloads and envelopes against real peers in
tests/replication/test_sync.py.
"""

from __future__ import annotations

from node.replication.wants import compute_roots


def test_roots_put_leaves_after_their_batch_and_drop_duplicates() -> None:
    roots = compute_roots(["b1", "b2", "b1"], ["", "fe", "b2"], {"b1": ("l1", "l2"), "b2": ("l1",)})
    assert roots == ["b1", "l1", "l2", "b2", "fe"]
