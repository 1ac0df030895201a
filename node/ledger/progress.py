"""How far the chain follower has indexed, towards which block, and how fast.

:class:`ProgressMeter` keeps, for a catch-up in progress, the (time, last indexed block) of
the ranges indexed in the last ``RATE_WINDOW_SECONDS``: the rate is measured over those ranges
however long one of them takes (a dense range of thousands of anchors can take half a minute).
While catching up it logs how far it got every ``PROGRESS_LOG_SECONDS``, and once when caught
up. ``/health`` → ``index`` shows :class:`IndexProgress`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROGRESS_LOG_SECONDS = 10.0
"""While catching up, the follower logs how far it got at most this often."""
RATE_WINDOW_SECONDS = 30.0
"""The indexing rate is measured over the ranges indexed in this many seconds."""

# the follower's logger: operators' filters see the progress lines where they always were
log = logging.getLogger("node.ledger.follower")


@dataclass(frozen=True)
class IndexProgress:
    """How far the follower has indexed, and how fast (``/health`` → ``index``)."""

    block: int  # the last indexed block
    target: int | None  # the block it indexes up to (head - confirmations); None: no pass yet
    blocks_per_second: float | None  # over the last RATE_WINDOW_SECONDS; None: caught up
    eta_seconds: float | None  # to reach ``target`` at that rate; None: unknown or there
    failures: int = 0  # passes failed in a row (0: the last one succeeded)
    last_error: str | None = None  # why the last pass failed, while ``failures`` > 0

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as JSON values (rate and ETA rounded)."""
        rate = self.blocks_per_second
        return {
            "block": self.block,
            "target": self.target,
            "blocks_per_second": None if rate is None else round(rate, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "failures": self.failures,
            "last_error": self.last_error,
        }


class ProgressMeter:
    """The follower's progress: its target, its rate over the last ranges, its log lines."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.target: int | None = None
        self._rate: deque[tuple[float, int]] = deque()  # (time, last indexed) per range
        self._catch_up: tuple[float, int] | None = None  # (start time, start block) if any
        self._logged_at = 0.0

    def progress(self, block: int) -> IndexProgress:
        """Return the progress with ``block`` last indexed: the rate over the last
        ``RATE_WINDOW_SECONDS`` and the time left at that rate."""
        rate: float | None = None
        samples = list(self._rate)
        if len(samples) >= 2 and self._catch_up is not None:  # None: caught up, idle
            (t0, b0), (t1, b1) = samples[0], samples[-1]
            if t1 > t0:
                rate = (b1 - b0) / (t1 - t0)
        eta = None
        if rate and self.target is not None and self.target > block:
            eta = (self.target - block) / rate
        return IndexProgress(block, self.target, rate, eta)

    def note(self, before: int, indexed: int, target: int) -> None:
        """Record that blocks up to ``indexed`` (from ``before``) are indexed towards
        ``target``; log the progress of a long catch-up every ``PROGRESS_LOG_SECONDS``."""
        now = self._clock()
        if self._catch_up is None:  # idle until now: the rate starts over from this range
            self._catch_up = (now, before)
            self._logged_at = now
            self._rate.clear()
            self._rate.append((now, before))
        self._rate.append((now, indexed))
        # the window: the ranges of the last RATE_WINDOW_SECONDS, at least the last one
        while len(self._rate) > 2 and now - self._rate[1][0] >= RATE_WINDOW_SECONDS:
            self._rate.popleft()
        started, start_block = self._catch_up
        if indexed >= target:
            if now - started >= PROGRESS_LOG_SECONDS:
                log.info(
                    "chain follower: caught up at block %d (%d blocks in %.0fs)",
                    indexed,
                    indexed - start_block,
                    now - started,
                )
            self._catch_up = None
        elif now - self._logged_at >= PROGRESS_LOG_SECONDS:
            self._logged_at = now
            rate = self.progress(indexed).blocks_per_second or 0.0
            log.info(
                "chain follower: indexed to block %d of %d (%d to go, %.0f blocks/s)",
                indexed,
                target,
                target - indexed,
                rate,
            )
