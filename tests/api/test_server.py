"""The node's HTTP protocol (``node/api/server.py``): the writes of one loop turn reach the
transport as one write, in order; a large answer still goes out as it is written (flow
control); ``close`` sends what is held, ``abort`` drops it. Then over real HTTP: a node
served through it answers keep-alive and streamed requests whole."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from node.api.server import FLUSH_BYTES, CoalescingTransport
from tests.support.node import InProcessNode, in_process_node


class Recording(asyncio.Transport):
    """A transport that records what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else default


def test_one_turns_writes_reach_the_transport_as_one() -> None:
    async def run() -> Recording:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
        transport.write(memoryview(b'{"id":'))
        transport.write(bytearray(b"1}"))
        assert real.writes == [] and transport.get_write_buffer_size() == 33
        await asyncio.sleep(0)  # the turn ends
        transport.write(b"next")
        await asyncio.sleep(0)
        assert transport.get_extra_info("sockname") == ("127.0.0.1", 8000)  # the rest is its
        return real

    assert asyncio.run(run()).writes == [b'HTTP/1.1 202 Accepted\r\n\r\n{"id":1}', b"next"]


def test_a_large_answer_goes_out_as_written() -> None:
    async def run() -> Recording:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"head")
        transport.write(b"x" * FLUSH_BYTES)  # past the bound: sent now, not at the turn's end
        assert real.writes == [b"head" + b"x" * FLUSH_BYTES]
        transport.write(b"tail")
        await asyncio.sleep(0)
        return real

    assert asyncio.run(run()).writes[1:] == [b"tail"]


def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    async def run() -> tuple[Recording, Recording]:
        loop = asyncio.get_running_loop()
        closed, aborted = Recording(), Recording()
        a, b = CoalescingTransport(closed, loop), CoalescingTransport(aborted, loop)
        a.write(b"last words")
        a.close()
        b.write(b"never sent")
        b.abort()
        await asyncio.sleep(0)  # the scheduled flushes find nothing (or a closed transport)
        return closed, aborted

    closed, aborted = asyncio.run(run())
    assert closed.writes == [b"last words"] and closed.closed
    assert aborted.writes == [] and aborted.aborted


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    with in_process_node(tmp_path_factory.mktemp("server") / "data") as running:
        yield running


def test_pipelined_keep_alive_requests_get_whole_answers(node: InProcessNode) -> None:
    host, port = node.url.removeprefix("http://").split(":")
    request = f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request * 3)  # three requests in one segment, one connection
        data = b""
        while data.count(b"HTTP/1.1 200 OK") < 3 or not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    answers = data.split(b"HTTP/1.1 200 OK")[1:]
    assert len(answers) == 3
    for answer in answers:
        head, body = answer.split(b"\r\n\r\n", 1)
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(
            b"content-length")).split(b":")[1])  # fmt: skip
        assert len(body) == length and body.startswith(b"{")


def test_a_large_streamed_answer_arrives_whole(node: InProcessNode) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: many chunks, past the flush bound
    cid = node.node.store.add_bytes(data)
    with httpx.Client(base_url=node.url, timeout=60) as client:
        got = client.get(f"/ipfs/{cid}")
    assert got.status_code == 200 and got.content == data
