"""How the ledger's threads tell each other that the log moved.

Intake sets ``leaf_added`` and notifies ``changed`` for every committed group of leaves; the
anchorer thread waits on ``leaf_added``. Anchoring counts its anchors in
``anchor_generation`` and notifies ``changed``; a request waiting for its leaf's anchor
(:meth:`LedgerSignals.wait_anchored`) reads its row again only then, not on every new leaf.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from node.db.models import BusinessTransaction, TransactionStatus

#: a waiting request reads its row at least this often (anchors adopted otherwise)
ANCHOR_POLL_SECONDS = 0.5


class LedgerSignals:
    """The condition and event the ledger's threads share (see the module doc)."""

    def __init__(self) -> None:
        self.changed = threading.Condition()  # notified on every new leaf and every anchor
        self.leaf_added = threading.Event()  # set by intake, cleared by the anchorer
        self.anchor_generation = 0  # anchors made by this service (under ``changed``)

    def note_leaves(self) -> None:
        """Tell the anchorer and the waiters that leaves were committed."""
        self.leaf_added.set()
        with self.changed:
            self.changed.notify_all()

    def note_anchor(self) -> None:
        """Tell the waiters that an anchor was made."""
        with self.changed:
            self.anchor_generation += 1
            self.changed.notify_all()

    def wait_anchored(
        self, get: Callable[[str], BusinessTransaction | None], tx_id: str, timeout: float
    ) -> BusinessTransaction | None:
        """Return the row of ``tx_id`` (read by ``get``) once anchored, or as it is after
        ``timeout`` s; the row is read again after each anchor and every
        ``ANCHOR_POLL_SECONDS``."""
        deadline = time.monotonic() + timeout
        while True:
            with self.changed:
                generation = self.anchor_generation
            row = get(tx_id)
            remaining = deadline - time.monotonic()
            if row is None or row.status == TransactionStatus.ANCHORED or remaining <= 0:
                return row
            until = time.monotonic() + min(remaining, ANCHOR_POLL_SECONDS)
            self._wait_next_anchor(generation, until)

    def _wait_next_anchor(self, generation: int, until: float) -> None:
        """Wait until an anchor past ``generation`` is made or ``until`` (monotonic) passes."""
        with self.changed:
            while self.anchor_generation == generation:
                left = until - time.monotonic()
                if left <= 0:
                    return
                self.changed.wait(left)
