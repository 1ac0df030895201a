"""Validation is exact: what an outsider sends is refused with a 4xx problem naming what is wrong,
one bad batch item never sinks the others, and nothing of a refused request is stored.

Everything goes through real HTTP on 127.0.0.1 to a real in-process node (embedded py-evm chain,
registry contract, embedded content store, SQLite index)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account

from node.ledger.transaction import MAX_INDEX_INT, SECP256K1_N
from node.ledger.verifier import POOL_MIN_ITEMS
from tests.api.test_transactions import enrolled, snapshot
from tests.support.node import InProcessNode, domain_of, in_process_node, make_submission

TX_PATH = "/api/v1/transactions"
ZERO_ADDRESS = "0x" + "00" * 20
FAR = 2**64 - 1  # uint64 in EIP-712, but more than the index's signed 64-bit columns hold


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    with in_process_node(
        tmp_path_factory.mktemp("validation") / "data",
        verify_workers=1,
        epoch_service=False,
        sync=False,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(node: InProcessNode) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as c:
        yield c


def settled(node: InProcessNode) -> tuple[Any, ...]:
    """Return ``snapshot(node)`` once nothing accepted earlier still waits for its anchor (the
    anchorer would otherwise change the chain and the index while a test watches them)."""
    deadline = time.monotonic() + 60
    while node.node.ledger.pending_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.node.ledger.pending_count() == 0
    return snapshot(node)


def _problem(response: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = dict(response.json())
    assert problem["status"] == status
    for needle in needles:
        assert needle in problem["detail"], (needle, problem)
    return problem


def _high_s(signature_hex: str) -> str:
    """The other valid signature of the same message by the same key: (r, n - s, v ^ 1)."""
    sig = bytes.fromhex(signature_hex[2:])
    s = int.from_bytes(sig[32:64], "big")
    flipped = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    return "0x" + flipped.hex()


def _low_v(signature_hex: str) -> str:
    """The same signature with v as 0/1 instead of 27/28."""
    sig = bytes.fromhex(signature_hex[2:])
    return "0x" + (sig[:64] + bytes([sig[64] - 27])).hex()


# -- trailing newlines and other near-misses of a format --------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("amount", "1\n"),
        ("currency", "EUR\n"),
        ("kind", "invoice\n"),
        ("subsystem", "main\n"),
    ],
)
def test_a_trailing_newline_is_refused_and_nothing_is_stored(
    client: httpx.Client, node: InProcessNode, field: str, value: str
) -> None:
    body = make_submission(domain_of(node.url), enrolled(node), **{field: value})
    before = settled(node)
    _problem(client.post(TX_PATH, json=body), 400, field)
    assert snapshot(node) == before


@pytest.mark.parametrize("field", ["signature", "signer"])
def test_a_hex_field_with_a_trailing_newline_is_refused(
    client: httpx.Client, node: InProcessNode, field: str
) -> None:
    body = make_submission(domain_of(node.url), enrolled(node))
    body[field] += "\n"
    before = settled(node)
    _problem(client.post(TX_PATH, json=body), 422, field)
    assert snapshot(node) == before


# -- signatures: low s and v in {27, 28} only -------------------------------------------------


@pytest.mark.parametrize("variant", ["high s", "v = 0/1"])
def test_a_malleated_signature_is_refused_and_nothing_is_stored(
    client: httpx.Client, node: InProcessNode, variant: str
) -> None:
    body = make_submission(domain_of(node.url), enrolled(node))
    forged = _high_s(body["signature"]) if variant == "high s" else _low_v(body["signature"])
    before = settled(node)
    _problem(client.post(TX_PATH, json={**body, "signature": forged}), 400, "signature")
    assert snapshot(node) == before
    # the canonical signature of the same transaction is still accepted
    assert client.post(TX_PATH, json=body).status_code == 202


def test_a_high_s_signature_cannot_replace_a_stored_one(
    client: httpx.Client, node: InProcessNode
) -> None:
    body = make_submission(domain_of(node.url), enrolled(node))
    assert client.post(TX_PATH, json=body).status_code == 202
    before = settled(node)
    again = client.post(TX_PATH, json={**body, "signature": _high_s(body["signature"])})
    assert again.status_code == 400, again.text
    assert snapshot(node) == before


# -- parties -----------------------------------------------------------------------------------


def _parties_cases() -> list[tuple[str, list[str], str]]:
    other = Account.create().address
    return [
        ("repeated", [other, other], "more than once"),
        ("repeated in another case", [other, other.lower()], "more than once"),
        ("zero address", [ZERO_ADDRESS], "zero address"),
    ]


@pytest.mark.parametrize("case", range(3))
def test_parties_must_be_distinct_and_non_zero(
    client: httpx.Client, node: InProcessNode, case: int
) -> None:
    name, parties, needle = _parties_cases()[case]
    body = make_submission(domain_of(node.url), enrolled(node), parties=parties)
    before = settled(node)
    _problem(client.post(TX_PATH, json=body), 422, "parties", needle)
    assert snapshot(node) == before, name


# -- integers bounded by the index ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["nonce", "timestamp"])
@pytest.mark.parametrize("value", [FAR, MAX_INDEX_INT + 1])
def test_an_integer_the_index_cannot_hold_is_a_422(
    client: httpx.Client, node: InProcessNode, field: str, value: int
) -> None:
    body = make_submission(domain_of(node.url), enrolled(node), **{field: value})
    before = settled(node)
    _problem(client.post(TX_PATH, json=body), 422, field, str(MAX_INDEX_INT))
    assert snapshot(node) == before


def test_the_largest_integer_the_index_holds_is_accepted(
    client: httpx.Client, node: InProcessNode
) -> None:
    # (a timestamp that large lies in the future: refused below, so the nonce carries it here)
    body = make_submission(domain_of(node.url), enrolled(node), nonce=MAX_INDEX_INT)
    response = client.post(TX_PATH, json=body)
    assert response.status_code == 202, response.text
    got = client.get(f"{TX_PATH}/{response.json()['id']}").json()
    assert got["nonce"] == MAX_INDEX_INT


def test_a_timestamp_far_in_the_future_is_refused_a_past_one_kept(
    client: httpx.Client, node: InProcessNode
) -> None:
    """Issue 13: tx_max_future_seconds (300 s) past the node's clock is refused; the distant
    past is accepted and shown as signed."""
    wallet = enrolled(node)
    for future in (int(time.time()) + 3600, MAX_INDEX_INT):
        body = make_submission(domain_of(node.url), wallet, timestamp=future)
        before = settled(node)
        _problem(client.post(TX_PATH, json=body), 422, "timestamp", "ahead of this node's clock")
        assert snapshot(node) == before
    soon = make_submission(domain_of(node.url), wallet, timestamp=int(time.time()) + 60)
    assert client.post(TX_PATH, json=soon).status_code == 202  # within the skew bound
    past = make_submission(domain_of(node.url), wallet, timestamp=1)
    response = client.post(TX_PATH, json=past)
    assert response.status_code == 202, response.text
    assert client.get(f"{TX_PATH}/{response.json()['id']}").json()["timestamp"] == 1


def test_the_openapi_documents_the_integer_bounds(client: httpx.Client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    fields = schemas["BusinessTxBase"]["properties"]
    for name in ("nonce", "timestamp"):
        # FastAPI's OpenAPI model keeps bounds as floats: the description names the exact one
        assert fields[name]["minimum"] == 0 and fields[name]["maximum"] == float(MAX_INDEX_INT)
        assert str(MAX_INDEX_INT) in fields[name]["description"]
    assert fields["parties"].get("uniqueItems") is True


# -- batches: each item judged on its own ---------------------------------------------------------


def test_a_bad_item_never_sinks_a_batch(client: httpx.Client, node: InProcessNode) -> None:
    domain = domain_of(node.url)
    alice = enrolled(node)
    good = [make_submission(domain, alice, nonce=n) for n in range(3)]
    signed = make_submission(domain, alice, nonce=10)
    other = Account.create().address
    items: list[Any] = [
        good[0],
        make_submission(domain, alice, nonce=FAR),  # 422: more than the index holds
        make_submission(domain, alice, nonce=11, timestamp=FAR),  # 422
        good[1],
        {**signed, "signature": _high_s(signed["signature"])},  # 400: high s
        make_submission(domain, alice, nonce=12, parties=[other, other]),  # 422: repeated party
        make_submission(domain, alice, nonce=13, currency="EUR\n"),  # 400: trailing newline
        good[2],
    ]
    count_before = node.node.ledger.count()
    response = client.post(f"{TX_PATH}/batch", json={"items": items})
    assert response.status_code == 200, response.text
    result = response.json()
    assert [r["status"] for r in result["results"]] == [202, 422, 422, 202, 400, 422, 400, 202]
    assert result["accepted"] == 3 and result["rejected"] == 5
    assert "nonce" in result["results"][1]["problem"]["detail"]
    assert "timestamp" in result["results"][2]["problem"]["detail"]
    assert "signature" in result["results"][4]["problem"]["detail"]
    assert "more than once" in result["results"][5]["problem"]["detail"]
    assert "currency" in result["results"][6]["problem"]["detail"]
    assert sum(node.node.ledger.count().values()) == sum(count_before.values()) + 3
    for i in (0, 3, 7):
        tx_id = result["results"][i]["id"]
        assert client.get(f"{TX_PATH}/{tx_id}").status_code == 200


def test_an_item_that_is_not_an_object_rejects_only_itself(
    client: httpx.Client, node: InProcessNode
) -> None:
    domain = domain_of(node.url)
    alice = enrolled(node)
    good = [make_submission(domain, alice, nonce=n) for n in range(2)]
    count_before = node.node.ledger.count()
    response = client.post(f"{TX_PATH}/batch", json={"items": [good[0], 42, None, "x", good[1]]})
    assert response.status_code == 200, response.text
    result = response.json()
    assert [r["status"] for r in result["results"]] == [202, 422, 422, 422, 202]
    assert "valid dictionary" in result["results"][1]["problem"]["detail"]
    assert sum(node.node.ledger.count().values()) == sum(count_before.values()) + 2


def test_a_large_batch_is_judged_item_by_item_in_the_verifier_pool(
    client: httpx.Client, node: InProcessNode
) -> None:
    domain = domain_of(node.url)
    alice = enrolled(node)
    items = [make_submission(domain, alice, nonce=n) for n in range(POOL_MIN_ITEMS + 4)]
    items[5] = {**items[5], "signature": _high_s(items[5]["signature"])}
    items[9] = {**items[9], "signature": _low_v(items[9]["signature"])}
    items[20] = make_submission(domain, alice, nonce=20, parties=[ZERO_ADDRESS])
    count_before = node.node.ledger.count()
    result = client.post(f"{TX_PATH}/batch", json={"items": items}).json()
    bad = {r["index"]: r["status"] for r in result["results"] if r["status"] != 202}
    assert bad == {5: 400, 9: 400, 20: 422}
    assert result["accepted"] == len(items) - 3
    assert sum(node.node.ledger.count().values()) == sum(count_before.values()) + len(items) - 3


def test_each_item_of_a_large_batch_gets_the_answer_a_small_batch_gives_it(
    client: httpx.Client, node: InProcessNode
) -> None:
    """A batch of ``POOL_MIN_ITEMS`` or more is read and verified in the verifier's workers
    (``node/api/batchitems.py``); each refused item still gets exactly the problem it gets in
    a small batch (read in the node's process), and only the good items are stored."""
    domain = domain_of(node.url)
    alice, stranger = enrolled(node), Account.create()
    used = make_submission(domain, alice, nonce=5_000)
    assert client.post(TX_PATH, json=used).status_code == 202
    items: list[Any] = [
        make_submission(domain, alice, nonce=6_000 + n) for n in range(POOL_MIN_ITEMS + 8)
    ]
    refused: dict[int, Any] = {
        3: {**items[3], "pad": "x" * node.node.settings.max_tx_bytes},  # too large
        4: 42,  # not an object
        5: make_submission(domain, alice, nonce=7_005, parties=[ZERO_ADDRESS]),  # schema
        6: {**items[6], "signature": _high_s(items[6]["signature"])},  # not canonical
        7: {**items[7], "signer": stranger.address},  # not the claimed signer
        8: make_submission(domain, stranger, nonce=8),  # not a participant
        9: used,  # replay of a stored transaction
    }
    for position, item in refused.items():
        items[position] = item
    items[10] = items[2]  # replay inside the batch: the first one wins
    count_before = node.node.ledger.count()
    large = client.post(f"{TX_PATH}/batch", json={"items": items}).json()
    statuses = {r["index"]: r["status"] for r in large["results"] if r["status"] != 202}
    assert statuses == {3: 413, 4: 422, 5: 422, 6: 400, 7: 401, 8: 403, 9: 409, 10: 409}
    for position, item in refused.items():
        small = client.post(f"{TX_PATH}/batch", json={"items": [item]}).json()["results"][0]
        assert large["results"][position]["problem"] == small["problem"], position
    accepted = len(items) - len(statuses)
    assert large["accepted"] == accepted
    assert sum(node.node.ledger.count().values()) == sum(count_before.values()) + accepted


# -- relayed admin transactions --------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(node: InProcessNode) -> Any:
    """A funded wallet that is an admin of the node's home subsystem (not the node's key)."""
    wallet = Account.create()
    node.node.registry.add_subsystem_admin(node.node.record.home, wallet.address)
    node.node.chain.fund(wallet.address, 10**18)
    return wallet


def _relay_url(node: InProcessNode) -> str:
    return f"{node.url}/api/v1/subsystems/{node.node.record.home}/participants/relay"


def _add_participant(
    node: InProcessNode, admin: Any, newcomer: str, *, typed: bool = False, **changes: Any
) -> str:
    """Return the raw transaction, signed by ``admin``, adding ``newcomer`` to the home
    subsystem (``changes`` override nonce, chainId, …)."""
    registry = node.node.registry
    w3 = node.node.chain.w3
    tx: dict[str, Any] = {
        "to": registry.address,
        "data": registry.contract.encode_abi("addParticipant", args=[node.node.record.home,
                                                                     newcomer]),
        "value": 0,
        "chainId": node.node.chain.chain_id,
        "nonce": w3.eth.get_transaction_count(admin.address, "pending"),
        "gas": 300_000,
    }  # fmt: skip
    if typed:
        fee = int(w3.eth.gas_price) * 2
        tx.update(maxFeePerGas=fee, maxPriorityFeePerGas=fee // 2, type=2)
    else:
        tx["gasPrice"] = int(w3.eth.gas_price) * 2
    tx.update(changes)
    tx = {k: v for k, v in tx.items() if v is not None}
    return "0x" + bytes(admin.sign_transaction(tx).raw_transaction).hex()


def _chain_state(node: InProcessNode, admin: Any) -> tuple[int, int, tuple[Any, ...]]:
    """What a refused relay must leave unchanged: the admin's account and the index (the
    block height moves on its own: the epoch service mines empty blocks on a quiet chain)."""
    w3 = node.node.chain.w3
    return (
        int(w3.eth.get_transaction_count(admin.address, "pending")),
        int(w3.eth.get_balance(admin.address)),
        settled(node),
    )


@pytest.mark.parametrize(
    "name, changes",
    [
        ("chain id 1", {"chainId": 1}),
        ("chain id 1, typed", {"chainId": 1, "typed": True}),
        ("no chain id (pre-EIP-155)", {"chainId": None}),
    ],
)
def test_a_relayed_transaction_for_another_chain_is_a_400(
    node: InProcessNode, admin: Any, name: str, changes: dict[str, Any]
) -> None:
    newcomer = Account.create().address
    raw = _add_participant(node, admin, newcomer, **changes)
    before = _chain_state(node, admin)
    _problem(httpx.post(_relay_url(node), json={"raw_transaction": raw}, timeout=30), 400, "chain")
    assert _chain_state(node, admin) == before, name
    assert not node.node.registry.is_participant(node.node.record.home, newcomer)


def test_a_relayed_transaction_with_a_future_nonce_is_a_409(
    node: InProcessNode, admin: Any
) -> None:
    newcomer = Account.create().address
    nonce = node.node.chain.w3.eth.get_transaction_count(admin.address, "pending")
    raw = _add_participant(node, admin, newcomer, nonce=nonce + 3)
    before = _chain_state(node, admin)
    _problem(httpx.post(_relay_url(node), json={"raw_transaction": raw}, timeout=30), 409, "nonce")
    assert _chain_state(node, admin) == before
    assert not node.node.registry.is_participant(node.node.record.home, newcomer)


def test_relaying_the_same_transaction_again_is_a_409(node: InProcessNode, admin: Any) -> None:
    newcomer = Account.create().address
    raw = _add_participant(node, admin, newcomer)
    first = httpx.post(_relay_url(node), json={"raw_transaction": raw}, timeout=30)
    assert first.status_code == 200, first.text
    assert node.node.registry.is_participant(node.node.record.home, newcomer)
    before = _chain_state(node, admin)
    again = httpx.post(_relay_url(node), json={"raw_transaction": raw}, timeout=30)
    _problem(again, 409, "already")
    assert _chain_state(node, admin) == before
    # a different transaction with an already used nonce is refused the same way
    stale = _add_participant(node, admin, Account.create().address, nonce=0)
    _problem(httpx.post(_relay_url(node), json={"raw_transaction": stale}, timeout=30), 409)
    assert _chain_state(node, admin) == before


# -- the gateway's Range header --------------------------------------------------------------


@pytest.mark.parametrize("header", ["bytes=0-" + "9" * 5000, "bytes=" + "1" * 5000 + "-"])
def test_a_range_with_an_absurd_number_is_ignored_not_a_500(
    client: httpx.Client, node: InProcessNode, header: str
) -> None:
    cid = node.node.store.add_bytes(b"a public block of the gateway")
    response = client.get(f"/ipfs/{cid}", headers={"Range": header})
    assert response.status_code == 200, response.text  # RFC 9110: an unusable Range is ignored
    assert response.content == b"a public block of the gateway"
    ranged = client.get(f"/ipfs/{cid}", headers={"Range": "bytes=2-7"})
    assert ranged.status_code == 206 and ranged.content == b"public"
