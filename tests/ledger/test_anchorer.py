"""The anchorer's pacing (``node/ledger/anchorer.py``), over a fake ledger: a unit test of
the loop above ``LedgerService`` (the real anchoring is tested in test_service.py and
tests/api)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from node.ledger.anchorer import Anchorer


class Ledger:
    """Answers ``anchor_pending`` with anchors of the given sizes, then None; notes when."""

    batch_max = 256

    def __init__(self, counts: list[int]) -> None:
        self.counts = list(counts)
        self.calls: list[float] = []
        self.leaf_added = threading.Event()
        self.done = threading.Event()

    def anchor_pending(self) -> Any:
        self.calls.append(time.monotonic())
        if not self.counts:
            self.done.set()
            return None
        return SimpleNamespace(count=self.counts.pop(0))


def run(counts: list[int], pace: float) -> list[float]:
    """Return the gaps between the anchorer's calls for anchors of ``counts`` leaves."""
    ledger = Ledger(counts)
    anchorer = Anchorer(ledger, pace=pace, busy_batch=32)  # type: ignore[arg-type]
    anchorer.start()
    try:
        assert ledger.done.wait(60)
    finally:
        anchorer.stop()
    return [b - a for a, b in zip(ledger.calls, ledger.calls[1:], strict=False)]


def test_busy_anchors_are_paced() -> None:
    gaps = run([32, 100, 255], pace=0.3)
    assert len(gaps) == 3 and min(gaps) >= 0.3


def test_small_and_full_batches_are_not_paced() -> None:
    # a quiet node (batches under busy_batch) and a backlog (full batches) go on at once
    started = time.monotonic()
    run([1, 31, 256, 256, 5], pace=30.0)
    assert time.monotonic() - started < 30.0
