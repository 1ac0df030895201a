"""deploy/chain/entrypoint.sh, the compose chain's entrypoint, run here with the npm anvil.

anvil alone rewrites its state file in place (truncate, then write): a ``docker kill`` inside
that window left a cut file that anvil refuses to load, so the chain never started again (the
compose test's kill-and-restart failed so in CI). The script makes each save whole or absent.
These tests run it on this machine, no engine needed: a cut save, clean stops, ``kill -9`` at
random moments, and a state file it cannot load.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.engine import ANVIL, ROOT

ENTRYPOINT = ROOT / "deploy" / "chain" / "entrypoint.sh"
KILL_ROUNDS = 8

pytestmark = pytest.mark.skipif(not ANVIL.exists(), reason=f"no anvil at {ANVIL}")


class Chain:
    """One run of the entrypoint in ``state`` (its own session, so a kill takes every process)."""

    def __init__(self, state: Path, interval: int) -> None:
        self.state = state
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = dict(os.environ, CHAIN_STATE_DIR=str(state), CHAIN_STATE_INTERVAL=str(interval))
        env["PATH"] = f"{ANVIL.parent}:{env['PATH']}"
        self.log = state / "entrypoint.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["/bin/sh", str(ENTRYPOINT), "--port", str(self.port), "--block-time", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def block(self) -> int | None:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}",
            data=body.encode(),
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return int(json.load(response)["result"], 16)
        except OSError:
            return None

    def wait_block(self, at_least: int = 0, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the chain exited: {self.log.read_text()[-2000:]}"
            number = self.block()
            if number is not None and number >= at_least:
                return number
            time.sleep(0.1)
        tail = self.log.read_text()[-2000:]
        raise AssertionError(f"no block >= {at_least} in {timeout}s: {tail}")

    def wait_saved(self, at_least: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            number = saved_block(self.state)
            if number is not None and number >= at_least:
                return number
            time.sleep(0.1)
        raise AssertionError(f"no save of block >= {at_least} in {timeout}s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


Starter = Callable[[int], Chain]


def saved_block(state: Path) -> int | None:
    """The block number in ``anvil.json``; it must parse whenever it exists."""
    path = state / "anvil.json"
    if not path.exists():
        return None
    return int(json.loads(path.read_bytes())["block"]["number"], 16)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def start(state: Path) -> Iterator[Starter]:
    """Start the entrypoint in ``state`` with a save interval; whatever a test leaves is killed."""
    chains: list[Chain] = []

    def _start(interval: int) -> Chain:
        chains.append(Chain(state, interval))
        return chains[-1]

    yield _start
    for chain in chains:
        if chain.proc.poll() is None:
            chain.kill()


def test_a_cut_save_is_discarded_and_the_one_before_kept(state: Path, start: Starter) -> None:
    first = start(1)
    first.wait_block(3)
    assert first.stop() == 0
    before = (state / "anvil.json").read_bytes()
    # no periodic save now: what enters the FIFO is the test's cut save, alone
    second = start(3600)
    second.wait_block()
    with (state / ".save").open("wb") as fifo:
        fifo.write(before[: len(before) // 2])
    deadline = time.monotonic() + 10
    while "discarded a save cut short" not in second.log.read_text():
        assert time.monotonic() < deadline, second.log.read_text()
        time.sleep(0.05)
    assert (state / "anvil.json").read_bytes() == before
    last = second.wait_block(second.wait_block() + 1)
    assert second.stop() == 0  # the clean exit's save is whole and replaces it
    assert (saved_block(state) or 0) >= last


def test_a_clean_stop_keeps_every_block(state: Path, start: Starter) -> None:
    chain = start(3600)
    last = chain.wait_block(4)
    assert chain.stop() == 0
    assert (saved_block(state) or 0) >= last
    again = start(3600)
    assert again.wait_block() >= last
    assert again.stop() == 0


def test_kill_9_at_any_moment_keeps_the_last_whole_save(state: Path, start: Starter) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    saved = 0
    for round_ in range(KILL_ROUNDS):
        chain = start(1)
        started = chain.wait_block()
        assert started >= saved, f"seed {seed}, round {round_}: rolled back below the last save"
        saved = chain.wait_saved(started + 1)
        time.sleep(rng.uniform(0, 1.5))  # saves every second: some kills land mid-save
        chain.kill()
        saved = saved_block(state) or 0  # parses, or this round's kill cut the file
    assert saved > 0


def test_a_state_file_anvil_cannot_load_stops_the_start(state: Path, start: Starter) -> None:
    (state / "anvil.json").write_text('{"block": {"number": "0x1')
    chain = start(1)
    assert chain.proc.wait(timeout=30) == 1
    assert "anvil cannot load anvil.json" in chain.log.read_text()
    assert (state / "anvil.json").read_text() == '{"block": {"number": "0x1'
