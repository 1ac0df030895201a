"""Bodies of concurrent single submissions checked in worker processes driven by the event
loop (``node/api/bodychecks.py``, ``node.worker.LoopWorkers``): the same checks as on the
event loop, body by body, with real worker processes; killed workers change no answer; and
on a real node (embedded chain, real HTTP) concurrent requests go through the workers and
each keeps its own answer, the route's word for word."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
from eth_account import Account

from node.api.bodychecks import POOL_INFLIGHT, POOL_MIN_BODIES, BodyCheck, BodyChecks
from node.errors import ValidationError
from node.ledger.transaction import Domain
from node.worker import split
from tests.support.node import (
    InProcessNode,
    domain_of,
    in_process_node,
    make_submission,
    wait_indexed,
)

DOMAIN = Domain(31337, "0x5FbDB2315678afecb367f642d3e5e8B4c72Ed0D1")
TX_PATH = "/api/v1/transactions"
GARBAGE = "0x" + "ff" * 65  # a well-formed signature that recovers no key


def bodies() -> list[bytes]:
    """Good bodies and each kind of defect the body checks tell apart."""
    wallet, mallory = Account.create(), Account.create()
    good = [json.dumps(make_submission(DOMAIN, wallet, nonce=n)).encode() for n in range(6)]
    defects = [
        b'{"transaction": ',  # not JSON: the route's 422
        b"\xff\xfe",  # not UTF-8
        json.dumps({**make_submission(DOMAIN, wallet), "admin": True}).encode(),  # schema
        json.dumps(make_submission(DOMAIN, wallet, sign_with=mallory)).encode(),  # 401
        json.dumps({**make_submission(DOMAIN, wallet), "signature": GARBAGE}).encode(),  # 400
        json.dumps(make_submission(DOMAIN, wallet, amount="1.50")).encode(),  # not canonical
    ]
    return good[:3] + defects + good[3:]


def same(a: BodyCheck, b: BodyCheck) -> bool:
    """Whether two checks say the same: the same submission, the same verified leaf or the
    same error (type and message)."""
    if a is None or b is None:
        return a is b
    (item_a, out_a), (item_b, out_b) = a, b
    if isinstance(out_a, ValidationError) or isinstance(out_b, ValidationError):
        return type(out_a) is type(out_b) and str(out_a) == str(out_b) and item_a == item_b
    return item_a == item_b and out_a == out_b


async def check_together(checks: BodyChecks, items: list[bytes]) -> list[BodyCheck]:
    """Check ``items`` as concurrent requests arriving in one turn of the loop."""
    return list(await asyncio.gather(*(checks.check(b, POOL_INFLIGHT) for b in items)))


T = TypeVar("T")


def with_workers(scenario: Callable[[BodyChecks], Awaitable[T]], warm: bool = True) -> T:
    """Run ``scenario`` on a new loop with body checks whose two workers are started (and
    have answered) first if ``warm``; end the workers afterwards."""

    async def run() -> T:
        checks = BodyChecks(DOMAIN, 2)
        assert checks.workers is not None
        try:
            if warm:
                started = checks.workers.warm(asyncio.get_running_loop())
                assert started is not None
                await started
                assert checks.workers.usable and len(checks.workers.pids()) == 2
            return await scenario(checks)
        finally:
            checks.close()

    return asyncio.run(run())


def test_the_workers_check_each_body_as_the_loop_does() -> None:
    items = bodies()

    async def scenario(checks: BodyChecks) -> list[BodyCheck]:
        results = await check_together(checks, items)
        assert checks.chunks >= 1  # they went to the workers
        assert checks.workers is not None and checks.workers.pids() != [os.getpid()]
        return results

    results = with_workers(scenario)
    checks = BodyChecks(DOMAIN, 0)
    expected = [checks.check_here(b) for b in items]
    # not JSON, not UTF-8, not the schema: the route answers them
    assert [r is None for r in results] == [False] * 3 + [True] * 3 + [False] * 6
    for got, want, body in zip(results, expected, items, strict=True):
        assert same(got, want), body
    errors = [type(r[1]).__name__ for r in results if r is not None]
    assert errors.count("VerifiedTx") == 6 + 1  # the good ones and the one signed by mallory


class FailingWorkers:
    """Usable workers that fail every chunk (a unit test of the code above the workers)."""

    count, usable = 2, True

    def split(self, items: Any, min_part: int) -> Any:
        return split(items, self.count, min_part)

    def run(self, function: Any, argument: Any) -> asyncio.Future[Any]:
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(RuntimeError("the worker failed"))
        return failed


def test_a_chunk_whose_worker_failed_is_checked_body_by_body_on_the_loop() -> None:
    checks = BodyChecks(DOMAIN, 0)
    checks.workers = FailingWorkers()  # type: ignore[assignment]
    items = bodies()
    results = asyncio.run(check_together(checks, items))
    assert checks.chunks >= 1  # sent, failed, then checked here: each its own answer
    assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))


def test_a_turn_with_few_bodies_is_checked_on_the_loop() -> None:
    items = bodies()[: POOL_MIN_BODIES - 1]

    async def scenario(checks: BodyChecks) -> None:
        results = await check_together(checks, items)
        assert checks.chunks == 0  # a round trip for so few would cost more than it saves
        assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))

    with_workers(scenario)


def test_a_lone_request_or_cold_workers_are_checked_on_the_loop() -> None:
    items = bodies()

    async def scenario(checks: BodyChecks) -> None:
        results = await check_together(checks, items)
        assert checks.workers is not None
        assert checks.chunks == 0 and not checks.workers.usable  # no request waited for one
        assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))

    with_workers(scenario, warm=False)


def test_killed_workers_change_no_answer() -> None:
    items = bodies()

    async def scenario(checks: BodyChecks) -> None:
        assert checks.workers is not None
        for pid in checks.workers.pids():
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)  # dead, and the loop has not seen it yet
        results = await check_together(checks, items)
        assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))
        assert not checks.workers.usable  # started again only when requests crowd in
        restarted = checks.workers.warm(asyncio.get_running_loop())
        assert restarted is not None
        await restarted
        assert checks.workers.usable and checks.workers.replaced == 2
        results = await check_together(checks, items)
        assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))

    with_workers(scenario)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data = tmp_path_factory.mktemp("bodychecks") / "data"
    with in_process_node(data, max_tx_bytes=4096, participant_ttl=3600, verify_workers=2) as n:
        yield n


def test_concurrent_requests_are_checked_in_the_workers_each_with_its_own_answer(
    node: InProcessNode,
) -> None:
    checks: BodyChecks = node.server.config.app.state.body_checks  # type: ignore[attr-defined]
    # every body to the workers, however the requests fall into loop turns (the thresholds
    # themselves: the tests above); the first request starts them
    checks.pool_inflight = checks.pool_min_bodies = checks.warm_inflight = 1
    domain = domain_of(node.url)
    wallets = [Account.create() for _ in range(16)]
    mallory = Account.create()
    for wallet in wallets:
        node.node.registry.add_participant("main", wallet.address)
    wait_indexed(node)  # the follower's invalidations of the enrolments are behind us
    good = [make_submission(domain, w) for w in wallets]
    bad: list[tuple[int, dict[str, Any] | bytes]] = [
        (422, b'{"transaction": '),
        (422, {**make_submission(domain, wallets[0]), "admin": True}),
        (401, make_submission(domain, wallets[1], sign_with=mallory)),
        (400, {**make_submission(domain, wallets[2]), "signature": GARBAGE}),
        (403, make_submission(domain, Account.create())),
    ]
    requests = [*good, good[3], *(b for _, b in bad)]  # good[3] twice: one 202, one 409
    barrier = threading.Barrier(len(requests))

    def post(body: dict[str, Any] | bytes, params: dict[str, str] | None = None) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with httpx.Client(base_url=node.url, timeout=60) as c:
            if params is None:
                barrier.wait()
            return c.post(TX_PATH, content=raw, params=params,
                          headers={"content-type": "application/json"})  # fmt: skip

    with httpx.Client(base_url=node.url, timeout=60) as c:
        assert c.post(TX_PATH, json=bad[3][1]).status_code == 400  # checked here; starts them
    deadline = time.monotonic() + 60
    while not (checks.workers is not None and checks.workers.usable):
        assert time.monotonic() < deadline, "the body check workers did not start"
        time.sleep(0.05)
    before = checks.chunks
    with ThreadPoolExecutor(len(requests)) as threads:
        answers = list(threads.map(post, requests))
    assert checks.chunks > before  # some bodies were checked in the workers
    statuses = [a.status_code for a in answers]
    assert sorted(statuses[: len(good) + 1]) == [202] * len(good) + [409], statuses
    assert statuses[len(good) + 1 :] == [s for s, _ in bad], [a.text for a in answers]
    for (_, body), answer in zip(bad, answers[len(good) + 1 :], strict=True):
        routed = post(body, {"wait": "false"})  # the route's own answer
        assert answer.json() == routed.json() and answer.status_code == routed.status_code
    with httpx.Client(base_url=node.url, timeout=60) as c:
        for answer in answers[: len(good) + 1]:
            if answer.status_code == 202:
                created = answer.json()
                assert c.get(f"{TX_PATH}/{created['id']}").json()["cid"] == created["cid"]
