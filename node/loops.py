"""The background loop the node's workers share: one daemon thread running ``_run`` until
:meth:`BackgroundLoop.stop` (the anchorer, the chain follower, the epoch service)."""

from __future__ import annotations

import threading


class BackgroundLoop:
    """Start and stop one daemon thread named ``thread_name`` that runs :meth:`_run`.

    ``_run`` loops while ``self._stop`` is not set and waits on it between rounds
    (``self._stop.wait(seconds)``), so :meth:`stop` ends it after its current round.
    """

    thread_name = "loop"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after its current round and wait for it."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def _wake(self) -> None:
        """Wake a loop that waits on something else than ``self._stop`` (nothing here)."""

    def _run(self) -> None:
        raise NotImplementedError
