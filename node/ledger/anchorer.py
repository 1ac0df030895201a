"""The anchorer: a background thread that turns pending leaves into on-chain anchors.

Group commit: it anchors as soon as leaves are pending and no anchor is in flight, so a
batch is whatever arrived while the previous anchor transaction was being mined (up to
``batch_max``): one chain transaction per batch under load, low latency when idle.
On a chain or store failure it backs off exponentially (capped) and retries.
"""

from __future__ import annotations

import logging

from node.errors import CollegiumError
from node.ledger.service import LedgerService
from node.loops import BackgroundLoop

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


class Anchorer(BackgroundLoop):
    """Run :meth:`LedgerService.anchor_pending` whenever leaves are pending."""

    thread_name = "anchorer"

    def __init__(self, ledger: LedgerService, *, min_interval: float = 0.0) -> None:
        super().__init__()
        self.ledger = ledger
        self.min_interval = min_interval
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
                if self.min_interval:
                    self._stop.wait(self.min_interval)
                continue
            self.ledger.leaf_added.wait(IDLE_POLL_SECONDS)
