"""Time caps for read-only calls on the embedded chain: stop a py-evm computation that has
held the chain too long (:func:`interrupt_after` raises :class:`CallTimeout` in its thread).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CallTimeout(Exception):  # noqa: N818 -- it is what the caller sees: the call timed out
    """A read-only call ran past its time cap and was stopped (raised by interrupt_after)."""


@contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Raise CallTimeout in this thread if the block still runs after ``seconds``.

    py-evm (and py_ecc behind its pairing precompiles) is pure Python and has no way to
    stop a computation from outside; CPython can raise an exception in another thread at its
    next bytecode boundary (``PyThreadState_SetAsyncExc``), which unwinds py-evm's frames
    like any error. The caller catches CallTimeout around this block: the exception can
    land anywhere inside it, or in its exit, never after (a pending one is withdrawn under
    the same lock that guards raising it). Use it only around code that writes nothing.
    """
    thread_id = ctypes.c_ulong(threading.get_ident())
    guard = threading.Lock()
    armed = True

    def fire() -> None:
        with guard:
            if armed:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(thread_id, ctypes.py_object(CallTimeout))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with guard:
            armed = False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(thread_id, None)  # withdraw, if pending
        timer.cancel()
