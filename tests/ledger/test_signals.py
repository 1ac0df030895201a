"""Wake-ups between intake, anchoring and waiting requests (node/ledger/signals.py)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from node.db.models import TransactionStatus
from node.ledger.signals import LedgerSignals


def test_a_waiter_reads_its_row_again_when_an_anchor_is_made() -> None:
    signals = LedgerSignals()
    row = SimpleNamespace(status=TransactionStatus.PENDING)
    reads = 0

    def get(tx_id: str) -> Any:
        nonlocal reads
        reads += 1
        return row

    def anchor() -> None:
        time.sleep(0.05)
        row.status = TransactionStatus.ANCHORED
        signals.note_anchor()

    threading.Thread(target=anchor).start()
    started = time.monotonic()
    assert signals.wait_anchored(get, "0x01", timeout=5.0) is row
    assert time.monotonic() - started < 0.45  # woken by the anchor, not by the poll
    assert reads == 2 and signals.anchor_generation == 1


def test_a_waiter_gives_up_after_its_timeout_and_new_leaves_set_the_event() -> None:
    signals = LedgerSignals()
    row = SimpleNamespace(status=TransactionStatus.PENDING)
    assert signals.wait_anchored(lambda tx_id: row, "0x01", timeout=0.05) is row
    assert signals.wait_anchored(lambda tx_id: None, "0x02", timeout=5.0) is None
    signals.note_leaves()
    assert signals.leaf_added.is_set() and signals.anchor_generation == 0
