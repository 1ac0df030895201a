"""The HTTP protocol the node's uvicorn runs: uvicorn's httptools protocol whose writes made
in one turn of the event loop reach the socket together.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and its body when it sends ``http.response.body``: two ``send``
system calls, two TCP segments, for an answer that is complete within one turn of the loop
(a single submission's 202 is ~700 bytes). On the node's busiest path those two writes were
a quarter of the event loop's time. :class:`CoalescingTransport` holds the writes of one turn
and hands them to the real transport as one at the end of the turn (``call_soon``): the
client gets the same bytes in the same order, in one segment, no later than the loop would
have sent them. A turn's writes beyond ``FLUSH_BYTES`` go at once, so a large streamed answer
still meets the transport's flow control (``pause_writing``) as before; ``close`` sends what
is held first, ``abort`` drops it as the transport would.

Used by ``collegium up`` (``http=CoalescingHttpProtocol``) and by the test harness's nodes.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_BYTES: Final = 64 * 1024


class CoalescingTransport:
    """A transport whose writes of one loop turn reach ``transport`` as one write (see the
    module doc); everything else is ``transport``'s."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold ``data`` until the end of this turn (or send the turn's writes now, past
        ``FLUSH_BYTES``)."""
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what is held, in one write (nothing if the transport is closing)."""
        if not self._held:
            return
        held, self._held, self._size = self._held, [], 0
        if not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held, self._size = [], 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        wrapped = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)  # type: ignore[arg-type]
