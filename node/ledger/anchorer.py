"""The anchorer: a background thread that turns pending leaves into on-chain anchors.

Group commit: it anchors as soon as leaves are pending and no anchor is in flight, so a
batch is whatever arrived while the previous anchor transaction was being mined (up to
``batch_max``): one chain transaction per batch under load, low latency when idle.
On a chain or store failure it backs off exponentially (capped) and retries.

Under load it paces itself: after an anchor of at least ``BUSY_BATCH`` leaves that did not
fill ``batch_max``, the next one starts ``pace`` seconds after it started, not at once. An
anchor costs about the same whatever its size (a contract call and a transaction; on the
embedded chain both run in py-evm in this process, holding the GIL the request threads
need), so fewer, larger anchors leave more of the node to intake. A full batch (a backlog)
goes on at once; a quiet node (smaller batches) anchors each leaf as soon as it can.
"""

from __future__ import annotations

import logging
import time

from node.errors import CollegiumError
from node.ledger.service import LedgerService
from node.loops import BackgroundLoop

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
# leaves in one anchor from which the next one is paced: leaves kept coming while one was
# made. (It was 32: once an anchor on the embedded chain took ~30 ms instead of ~55, 600 tx/s
# made batches of ~18 and 5-8 unpaced anchors a second, each holding the GIL in py-evm.)
BUSY_BATCH = 8


class Anchorer(BackgroundLoop):
    """Run :meth:`LedgerService.anchor_pending` whenever leaves are pending."""

    thread_name = "anchorer"

    def __init__(
        self, ledger: LedgerService, *, pace: float = 0.0, busy_batch: int = BUSY_BATCH
    ) -> None:
        super().__init__()
        self.ledger = ledger
        self.pace = pace
        self.busy_batch = busy_batch
        self.anchors_made = 0
        self.failures = 0
        self.consecutive_failures = 0  # since the last successful attempt (/health)
        self.last_error: str | None = None

    def _wake(self) -> None:
        """Wake the loop from its wait for a leaf (``stop``: it finishes its current anchor)."""
        self.ledger.leaf_added.set()

    def _run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while not self._stop.is_set():
            self.ledger.leaf_added.clear()
            started = time.monotonic()
            try:
                anchor = self.ledger.anchor_pending()
            except CollegiumError as exc:
                self.failures += 1
                self.consecutive_failures += 1
                self.last_error = str(exc)
                log.warning("anchoring failed, retrying in %.1fs: %s", delay, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            except Exception as exc:  # never let the thread die silently
                self.failures += 1
                self.consecutive_failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("anchoring crashed, retrying in %.1fs", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            delay = RETRY_FIRST_SECONDS
            self.consecutive_failures = 0
            if anchor is not None:
                self.anchors_made += 1
                left = started + self.pace - time.monotonic()
                if left > 0 and self.busy_batch <= anchor.count < self.ledger.batch_max:
                    self._stop.wait(left)
                continue
            self.ledger.leaf_added.wait(IDLE_POLL_SECONDS)
