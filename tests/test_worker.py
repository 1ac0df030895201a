"""node.worker: child processes driven from an asyncio loop (``LoopWorker``): answers in
order, a function's exception comes back as itself, a child killed mid-request fails what
it had not answered, and closing leaks no file descriptor (uvloop and plain asyncio)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import uvloop

from node.worker import LoopWorker, WorkerGone

T = TypeVar("T")


def _square_after(_: None, job: tuple[int, float]) -> tuple[int, int]:
    value, pause = job
    time.sleep(pause)
    return os.getpid(), value * value


def _refuse(_: None, value: int) -> None:
    raise ValueError(f"refusing {value}")


def _run(loop_kind: str, scenario: Callable[[], Awaitable[T]]) -> T:
    if loop_kind == "uvloop":
        return uvloop.run(scenario())
    return asyncio.run(scenario())


LOOPS = ["uvloop", "asyncio"]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_answers_come_back_in_order_and_errors_as_themselves(loop_kind: str) -> None:
    async def scenario() -> list[Any]:
        worker = LoopWorker(asyncio.get_running_loop())
        try:
            futures = [worker.run(_square_after, (n, 0.0)) for n in range(50)]
            refused = worker.run(_refuse, 7)
            answers = await asyncio.gather(*futures)
            with pytest.raises(ValueError, match="refusing 7"):
                await refused
            assert worker.load == 0 and worker.alive
            return answers
        finally:
            worker.close()

    answers = _run(loop_kind, scenario)
    assert [square for _, square in answers] == [n * n for n in range(50)]
    assert {pid for pid, _ in answers} - {os.getpid()} == {answers[0][0]}  # one child


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_killed_child_fails_what_it_had_not_answered(loop_kind: str) -> None:
    async def scenario() -> None:
        worker = LoopWorker(asyncio.get_running_loop())
        try:
            first = await worker.run(_square_after, (2, 0.0))
            slow = worker.run(_square_after, (3, 30.0))
            await asyncio.sleep(0.5)
            os.kill(first[0], signal.SIGKILL)
            with pytest.raises(WorkerGone) as gone:
                await asyncio.wait_for(slow, 20)
            assert gone.value.sent and not worker.alive
            late = worker.run(_square_after, (4, 0.0))  # refused at once, never sent
            with pytest.raises(WorkerGone) as refused:
                await late
            assert not refused.value.sent
        finally:
            worker.close()

    _run(loop_kind, scenario)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_closing_workers_leaks_no_file_descriptor(loop_kind: str) -> None:
    async def scenario() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        warm = LoopWorker(loop)  # the loop's own descriptors exist before counting
        await warm.run(_square_after, (1, 0.0))
        warm.close()
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(5):
            worker = LoopWorker(loop)
            pending = worker.run(_square_after, (5, 0.2))  # closed with a request in flight
            await asyncio.sleep(0.05)
            worker.close()
            with pytest.raises(WorkerGone):
                await pending
        await asyncio.sleep(0.1)
        return before, len(os.listdir("/proc/self/fd"))

    before, after = _run(loop_kind, scenario)
    assert after == before
