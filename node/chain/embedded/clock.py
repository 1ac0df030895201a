"""The embedded chain's block clock: one empty block per second of wall time."""

from __future__ import annotations

import threading
from typing import Final

from node.chain.embedded.facade import EmbeddedChain
from node.errors import ChainError, ConfigError

DEFAULT_BLOCK_SECONDS: Final = 1.0
"""How often a node's block clock (:class:`BlockClock`) looks for a block to produce."""

DEFAULT_MAX_LEAD: Final = 5
"""Seconds a node's newest block may be stamped ahead of the wall clock (docs/operations.md):
a transaction that would make a block further ahead waits (at most this lead in a burst of
more than one transaction per second)."""


class BlockClock:
    """A thread that produces the embedded chain's blocks on the wall clock.

    Every ``interval`` seconds it mines one empty block stamped now, unless a block already
    carries this second or a later one (:meth:`EmbeddedChain.tick`). With transactions mined
    as they come, the chain has a block for every second the node runs: an epoch of ``N``
    blocks lasts about ``N`` seconds, confirmations count seconds, and a restart resumes with
    one block stamped now (no burst). Stop it before closing the chain.
    """

    def __init__(self, chain: EmbeddedChain, interval: float = DEFAULT_BLOCK_SECONDS) -> None:
        if interval <= 0:
            raise ConfigError(f"block interval must be positive, got {interval}")
        self.chain = chain
        self.interval = interval
        self.blocks_mined = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="block-clock", daemon=True)

    def start(self) -> None:
        """Start producing blocks."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.chain.tick():
                    self.blocks_mined += 1
            except ChainError:
                return  # closed under us
            except Exception:  # noqa: BLE001 -- a failed tick is retried on the next one
                import logging

                logging.getLogger(__name__).exception("block clock tick failed")
            self._stop.wait(self.interval)
