"""The single-submission fast path (``node/api/fastsubmit.py``) on a real node (embedded
py-evm chain, registry contract, SQLite, real HTTP): it answers as the FastAPI route does,
hands everything it does not take to the route, and in a group each request keeps its own
answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from eth_account import Account

from tests.support.node import (
    InProcessNode,
    domain_of,
    in_process_node,
    make_submission,
    wait_indexed,
)

TX_PATH = "/api/v1/transactions"
GARBAGE = "0x" + "ff" * 65  # a well-formed signature that recovers no key
ROUTE = {"wait": "false"}  # a query string: the fast path hands the request to the route


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data = tmp_path_factory.mktemp("fast") / "data"
    # a long participant TTL: a cached answer stays cached for the test (the follower's
    # invalidations aside)
    with in_process_node(data, max_tx_bytes=4096, participant_ttl=3600) as running:
        yield running


@pytest.fixture(scope="module")
def client(node: InProcessNode) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as c:
        yield c


@pytest.fixture
def threads_used(node: InProcessNode, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record how each submission reached the ledger: ``later`` (the fast path, checked on
    the event loop, no thread of its own), ``pool`` (the fast path's thread pool: a check
    had to read the registry) or ``route`` (FastAPI's route)."""
    ledger = node.node.ledger
    names: list[str] = []
    submit_one, submit_later = ledger.submit_one, ledger.submit_later

    def spy_one(item: Any) -> Any:
        names.append("pool" if threading.current_thread().name.startswith("submit") else "route")
        return submit_one(item)

    def spy_later(*args: Any) -> None:
        names.append("later")
        submit_later(*args)

    monkeypatch.setattr(ledger, "submit_one", spy_one)
    monkeypatch.setattr(ledger, "submit_later", spy_later)
    return names


def enrolled(node: InProcessNode) -> Any:
    wallet = Account.create()
    node.node.registry.add_participant("main", wallet.address)
    return wallet


def test_the_fast_path_answers_as_the_route(
    client: httpx.Client, node: InProcessNode, threads_used: list[str]
) -> None:
    domain = domain_of(node.url)
    wallet = enrolled(node)
    cold = client.post(TX_PATH, json=make_submission(domain, wallet, nonce=1))
    routed = client.post(TX_PATH, json=make_submission(domain, wallet, nonce=2), params=ROUTE)
    warm = client.post(TX_PATH, json=make_submission(domain, wallet, nonce=3))
    # the signer's first submission reads the registry (in the pool), the next one is cached
    assert threads_used == ["pool", "route", "later"]
    for fast in (cold, warm):
        assert fast.status_code == routed.status_code == 202, (fast.text, routed.text)
        assert fast.headers["content-type"] == routed.headers["content-type"]
        assert fast.headers["content-type"] == "application/json"
        assert fast.headers["location"] == f"{TX_PATH}/{fast.json()['id']}"
        a, b = fast.json(), routed.json()
        assert list(a) == list(b)  # same fields in the same order
        same = ("subsystem", "kind", "amount", "currency", "memo", "signer", "status", "anchor")
        assert {k: a[k] for k in same} == {k: b[k] for k in same}
        got = client.get(f"{TX_PATH}/{a['id']}").json()
        volatile = ("status", "anchor", "leaf_index")
        assert {k: v for k, v in got.items() if k not in volatile} == {
            k: v for k, v in a.items() if k not in volatile
        }


def bad_bodies(node: InProcessNode) -> list[tuple[str, int, dict[str, Any] | bytes]]:
    domain = domain_of(node.url)
    wallet, mallory = enrolled(node), Account.create()
    return [
        ("malformed json", 422, b'{"transaction": '),
        ("extra field", 422, {**make_submission(domain, wallet), "admin": True}),
        ("short signature", 422, {**make_submission(domain, wallet), "signature": "0x12"}),
        ("wrongly signed", 401, make_submission(domain, wallet, sign_with=mallory)),
        ("garbage signature", 400, {**make_submission(domain, wallet), "signature": GARBAGE}),
        ("not a participant", 403, make_submission(domain, Account.create())),
        ("unknown subsystem", 422, make_submission(domain, wallet, subsystem="nowhere")),
    ]  # fmt: skip


def test_refusals_are_word_for_word_the_routes(
    client: httpx.Client, node: InProcessNode, threads_used: list[str]
) -> None:
    for name, status, body in bad_bodies(node):
        answers = []
        for params in ({}, ROUTE):
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers = {"content-type": "application/json"}
            answers.append(client.post(TX_PATH, content=raw, params=params, headers=headers))
        fast, routed = answers
        assert fast.status_code == routed.status_code == status, (name, fast.text, routed.text)
        assert fast.json() == routed.json(), name
        assert fast.headers["content-type"] == routed.headers["content-type"], name
        assert fast.headers["content-type"].startswith("application/problem+json"), name
    # a replay: the ledger's 409 through the fast path, as the route words it
    wallet = enrolled(node)
    wait_indexed(node)  # the follower's invalidation of the enrolment is behind us
    body = make_submission(domain_of(node.url), wallet)
    assert client.post(TX_PATH, json=body).status_code == 202
    # held by the participant cache now: the replay is checked on the event loop ("later")
    assert node.node.ledger.participants.cached_is_participant("main", wallet.address)
    fast, routed = client.post(TX_PATH, json=body), client.post(TX_PATH, json=body, params=ROUTE)
    assert fast.status_code == routed.status_code == 409 and fast.json() == routed.json()
    assert "later" in threads_used


def test_other_content_types_are_the_routes(
    client: httpx.Client, node: InProcessNode, threads_used: list[str]
) -> None:
    domain = domain_of(node.url)
    wallet = enrolled(node)
    charset = client.post(
        TX_PATH,
        content=httpx.Request("POST", "/", json=make_submission(domain, wallet, nonce=1)).content,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 202 and threads_used == ["pool"], charset.text
    threads_used.clear()
    vendor = client.post(
        TX_PATH,
        content=httpx.Request("POST", "/", json=make_submission(domain, wallet, nonce=2)).content,
        headers={"content-type": "application/vnd.collegium+json"},
    )
    assert vendor.status_code == 202, vendor.text  # the route parses any +json type
    assert threads_used == ["route"]


def test_a_bad_request_among_concurrent_ones_gets_its_own_answer(
    client: httpx.Client, node: InProcessNode, threads_used: list[str]
) -> None:
    domain = domain_of(node.url)
    wallets = [enrolled(node) for _ in range(8)]
    others = [enrolled(node), enrolled(node)]  # enrolled now: an enrolment clears the cache
    wait_indexed(node)  # the follower's invalidation of the enrolments is behind us
    for wallet in wallets:
        assert client.post(TX_PATH, json=make_submission(domain, wallet)).status_code == 202
    cache = node.node.ledger.participants
    for wallet in wallets:  # held by the participant cache: checked on the event loop
        assert cache.is_participant("main", wallet.address)
        assert cache.cached_is_participant("main", wallet.address)
    threads_used.clear()
    good = [make_submission(domain, wallet) for wallet in wallets]
    twin = {**good[0]}  # the same transaction twice: one 202, one 409
    bad: list[tuple[int, dict[str, Any]]] = [
        (400, {**make_submission(domain, others[0]), "signature": GARBAGE}),
        (403, make_submission(domain, Account.create())),
        (422, {**make_submission(domain, others[1]), "admin": True}),
    ]
    bodies = [*good, twin, *(b for _, b in bad)]
    count_before = sum(node.node.ledger.count().values())
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=node.url, timeout=60) as c:
            barrier.wait()
            return c.post(TX_PATH, json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(post, bodies))
    goods = [r.status_code for r in responses[: len(good) + 1]]
    assert sorted(goods) == [202] * len(good) + [409], [r.text for r in responses]
    assert [r.status_code for r in responses[len(good) + 1 :]] == [s for s, _ in bad]
    assert sum(node.node.ledger.count().values()) == count_before + len(good)
    for response in responses:
        if response.status_code == 202:
            created = response.json()
            assert client.get(f"{TX_PATH}/{created['id']}").json()["cid"] == created["cid"]
    assert threads_used.count("later") == len(good) + 1  # the twin's 409 is the commit's


def test_a_body_is_served_right_after_its_202(client: httpx.Client, node: InProcessNode) -> None:
    """A single submission is answered once its row is committed, before its body reaches
    the content store (node/ledger/bodywriter.py); a gateway read sent right after the 202
    waits for that write and gets the body. The body writer is held until the read waits;
    the anchorer (which stores missing bodies before anchoring) is stopped meanwhile."""
    from node.ledger.verifier import compute_leaf_cid

    domain = domain_of(node.url)
    wallet = enrolled(node)
    wait_indexed(node)
    writer = node.node.ledger._accept.bodies
    store_many = writer._store_many
    release = threading.Event()

    def held(bodies: list[bytes]) -> None:
        release.wait(60)
        store_many(bodies)

    writer._store_many = held  # type: ignore[method-assign]
    node.node.anchorer.stop()
    try:
        response = client.post(TX_PATH, json=make_submission(domain, wallet))
        assert response.status_code == 202, response.text  # answered, the write still held
        cid = response.json()["cid"]
        assert writer.is_pending(cid) and not node.node.store.has(cid)
        got = client.get(f"{TX_PATH}/{response.json()['id']}")  # the row: at once
        assert got.status_code == 200 and got.json()["cid"] == cid
        with ThreadPoolExecutor(2) as pool:
            raw = pool.submit(client.get, f"/ipfs/{cid}", params={"format": "raw"})
            file = pool.submit(client.get, f"/ipfs/{cid}")
            while writer.waiting < 2 and not raw.done():  # both reads wait for the write
                threading.Event().wait(0.01)
            release.set()
            raw_body, file_body = raw.result(), file.result()
    finally:
        release.set()
        writer._store_many = store_many  # type: ignore[method-assign]
        node.node.anchorer.start()
    assert raw_body.status_code == 200 and file_body.status_code == 200
    assert raw_body.content == file_body.content
    assert compute_leaf_cid(raw_body.content) == cid
    assert node.node.store.has(cid)
