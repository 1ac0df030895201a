"""Bodies of concurrent single submissions checked in the verifier's workers
(``node/api/bodychecks.py``): the same checks as on the event loop, body by body, with real
worker processes; a broken pool changes no answer; and on a real node (embedded chain, real
HTTP) concurrent requests go through the workers and each keeps its own answer, the route's
word for word."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from eth_account import Account

from node.api.bodychecks import POOL_INFLIGHT, POOL_MIN_BODIES, BodyCheck, BodyChecks
from node.errors import ValidationError
from node.ledger.transaction import Domain
from node.ledger.verifier import VerifierPool
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


@pytest.fixture
def pool() -> Iterator[VerifierPool]:
    verifier = VerifierPool(DOMAIN, 2, preload=("node.api.batchitems",))
    verifier.warm()
    yield verifier
    verifier.close()


def test_the_workers_check_each_body_as_the_loop_does(pool: VerifierPool) -> None:
    checks = BodyChecks(DOMAIN, pool)
    items = bodies()
    results = asyncio.run(check_together(checks, items))
    assert checks.chunks >= 1  # they went to the workers
    expected = [checks.check_here(b) for b in items]
    # not JSON, not UTF-8, not the schema: the route answers them
    assert [r is None for r in results] == [False] * 3 + [True] * 3 + [False] * 6
    for got, want, body in zip(results, expected, items, strict=True):
        assert same(got, want), body
    errors = [type(r[1]).__name__ for r in results if r is not None]
    assert errors.count("VerifiedTx") == 6 + 1  # the good ones and the one signed by mallory


class FailingWorkers:
    """A warm pool whose worker fails every chunk (a unit test of the code above the pool)."""

    workers, usable = 2, True
    split = VerifierPool.split

    def submit(self, work: Any, args: Any, items: Any) -> Future[Any]:
        failed: Future[Any] = Future()
        failed.set_exception(RuntimeError("the worker failed"))
        return failed

    def note_broken(self, exc: BaseException) -> None:
        raise AssertionError("not broken, only failed")


def test_a_chunk_whose_worker_failed_is_checked_body_by_body_on_the_loop() -> None:
    checks = BodyChecks(DOMAIN, FailingWorkers())  # type: ignore[arg-type]
    items = bodies()
    results = asyncio.run(check_together(checks, items))
    assert checks.chunks >= 1  # sent, failed, then checked here: each its own answer
    assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))


def test_a_turn_with_few_bodies_is_checked_on_the_loop(pool: VerifierPool) -> None:
    checks = BodyChecks(DOMAIN, pool)
    items = bodies()[: POOL_MIN_BODIES - 1]
    results = asyncio.run(check_together(checks, items))
    assert checks.chunks == 0  # a round trip for so few would cost more than it saves
    assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))


def test_a_lone_request_or_a_cold_pool_is_checked_on_the_loop() -> None:
    cold = VerifierPool(DOMAIN, 1)
    try:
        checks = BodyChecks(DOMAIN, cold)
        items = bodies()
        results = asyncio.run(check_together(checks, items))
        assert checks.chunks == 0 and not cold.ready  # no request waited for a spawn
        assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))
    finally:
        cold.close()


def test_a_broken_pool_changes_no_answer(pool: VerifierPool) -> None:
    checks = BodyChecks(DOMAIN, pool)
    for pid in pool.pids():
        os.kill(pid, signal.SIGKILL)
    items = bodies()
    results = asyncio.run(check_together(checks, items))
    assert pool.replaced == 1 and not pool.ready  # replaced; warmed again only when crowded
    assert all(same(r, checks.check_here(b)) for r, b in zip(results, items, strict=True))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data = tmp_path_factory.mktemp("bodychecks") / "data"
    with in_process_node(data, max_tx_bytes=4096, participant_ttl=3600, verify_workers=2) as n:
        yield n


def test_concurrent_requests_are_checked_in_the_workers_each_with_its_own_answer(
    node: InProcessNode,
) -> None:
    ledger = node.node.ledger
    assert ledger.verifier is not None
    ledger.verifier.warm()
    checks: BodyChecks = node.server.config.app.state.body_checks  # type: ignore[attr-defined]
    # every body to the workers, however the requests fall into loop turns (the thresholds
    # themselves: the tests above)
    checks.pool_inflight = checks.pool_min_bodies = 1
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
