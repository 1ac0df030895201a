"""Business transactions end to end on a real node: embedded py-evm chain, registry
contract, embedded content store, SQLite index, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from node.ledger.batch import decode_batch
from node.ledger.hasher import hash_leaf
from node.ledger.transaction import decode_leaf
from node.ledger.verify import verify_consistency, verify_inclusion
from tests.support.blocks import stored_block_keys
from tests.support.node import InProcessNode, domain_of, in_process_node, make_submission

TX_PATH = "/api/v1/transactions"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    # a long participant TTL: only the chain follower can make a removal visible in time
    with in_process_node(
        tmp_path_factory.mktemp("api") / "data", max_tx_bytes=4096, participant_ttl=3600
    ) as running:
        yield running


def enroll(node: InProcessNode, *wallets: Any, subsystem: str = "main") -> None:
    """Make ``wallets`` participants of ``subsystem`` (the node created it: it is admin)."""
    for wallet in wallets:
        node.node.registry.add_participant(subsystem, wallet.address)


def enrolled(node: InProcessNode) -> Any:
    """Return a fresh wallet that participates in ``main``."""
    wallet = Account.create()
    enroll(node, wallet)
    return wallet


@pytest.fixture(scope="module")
def client(node: InProcessNode) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as c:
        yield c


def snapshot(node: InProcessNode) -> tuple[Any, ...]:
    """Return what a rejected request must not change: SQL rows, anchors, pins, blocks."""
    blocks = stored_block_keys(Path(node.node.settings.data_dir, "ipfs"))
    return (
        node.node.ledger.count(),
        node.node.registry.anchor_count(),
        int(node.node.chain.w3.eth.block_number),
        sorted(node.node.store.pins()),
        blocks,
    )


def test_health(client: httpx.Client, node: InProcessNode) -> None:
    epoch_before = node.node.registry.current_epoch()
    health = client.get("/health").json()
    epoch_after = node.node.registry.current_epoch()
    assert health["status"] == "ok"
    assert health["node"] == node.node.address
    assert health["chain"]["kind"] == "embedded"
    assert health["chain"]["chain_id"] == node.node.chain.chain_id
    assert health["chain"]["block_number"] > 0
    assert health["registry"] == node.node.record.registry
    assert health["store"]["backend"] == "embedded"
    # the registry's epoch at the time of the request (an int: None would mean unreadable)
    assert isinstance(health["epoch"], int) and epoch_before <= health["epoch"] <= epoch_after
    assert health["version"]


def test_livez_is_the_cheap_probe(client: httpx.Client, node: InProcessNode) -> None:
    response = client.get("/livez")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["x-collegium-served-by"] == node.node.address  # never proxied


def test_submit_then_get_end_to_end(client: httpx.Client, node: InProcessNode) -> None:
    domain = domain_of(node.url)
    wallet = enrolled(node)
    body = make_submission(domain, wallet)
    response = client.post(TX_PATH, json=body, params={"wait": "true"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["signer"] == wallet.address
    assert created["status"] == "anchored"
    assert response.headers["location"] == f"{TX_PATH}/{created['id']}"

    got = client.get(f"{TX_PATH}/{created['id']}").json()
    assert got == created
    for name, value in body["transaction"].items():
        assert got[name] == value
    # the body in the content store is the canonical leaf the signer signed
    raw = client.get(f"/ipfs/{got['cid']}", params={"format": "raw"})
    assert raw.status_code == 200
    leaf = decode_leaf(raw.content)
    assert leaf.signer == wallet.address and leaf.tx_id == got["id"]
    # the anchor the API names is on-chain, its batch lists the leaf, its root includes it
    anchor = node.node.registry.get_anchor(got["anchor"]["index"])
    assert "0x" + anchor.root.hex() == got["anchor"]["root"]
    assert got["leaf_hash"] == "0x" + hash_leaf(raw.content).hex()
    batch = decode_batch(client.get(f"/ipfs/{anchor.batch_cid}").content)
    assert got["cid"] in batch.leaf_cids
    proof = client.get(f"{TX_PATH}/{got['id']}/proof").json()
    verify_inclusion(
        got["leaf_index"],
        anchor.tree_size,
        hash_leaf(raw.content),
        [bytes.fromhex(p[2:]) for p in proof["path"]],
        anchor.root,
    )
    receipt = node.node.chain.w3.eth.get_transaction_receipt(got["anchor"]["chain_tx_hash"])
    assert receipt["blockNumber"] == got["anchor"]["block_number"] == anchor.block_number
    listed = client.get(TX_PATH, params={"signer": wallet.address}).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    explorer = client.get("/explorer")  # the server-rendered explorer ("/" before the SPA)
    if explorer.status_code == 404:
        explorer = client.get("/")
    assert explorer.status_code == 200 and created["id"][:10] in explorer.text


def _with(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**body, "transaction": {**body["transaction"], **fields}}


def _garbled(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "signature": "0x" + "ff" * 65}


def bad_requests(node: InProcessNode) -> list[tuple[str, int, dict[str, Any] | bytes, str]]:
    domain = domain_of(node.url)
    wallet, mallory = Account.create(), Account.create()
    unsigned = make_submission(domain, wallet)
    del unsigned["signature"]
    return [
        ("unsigned", 422, unsigned, "signature"),
        ("wrongly signed", 401, make_submission(domain, wallet, sign_with=mallory), "recovers"),
        ("garbage signature", 400, _garbled(make_submission(domain, wallet)), "signature"),
        ("malformed json", 422, b'{"transaction": ', "JSON decode error"),
        ("bad amount", 400, make_submission(domain, wallet, amount="1.50"), "amount"),
        ("float amount", 422, _with(make_submission(domain, wallet), amount=1.5), "amount"),
        ("bad party", 422, _with(make_submission(domain, wallet), parties=["0x1234"]), "parties"),
        ("extra field", 422, {**make_submission(domain, wallet), "admin": True}, "admin"),
        ("unknown subsystem", 422, make_submission(domain, wallet, subsystem="nowhere"), "nowhere"),
        ("oversized", 413, make_submission(domain, wallet, memo="x" * 5000), "limit"),
        ("not a participant", 403, make_submission(domain, wallet), "not a participant of 'main'"),
        ("private with amount", 400, make_submission(domain, wallet, private=True, amount="1",
         payload="bafy", payload_hash="0x" + "00" * 32), "encrypted payload"),
        ("public with payload_hash", 400,
         make_submission(domain, wallet, payload_hash="0x" + "00" * 32), "only for private"),
    ]  # fmt: skip


BAD_CASES = 13


def test_bad_case_count(node: InProcessNode) -> None:
    assert len(bad_requests(node)) == BAD_CASES


@pytest.mark.parametrize("case", range(BAD_CASES))
def test_bad_input_is_rejected_and_nothing_is_written(
    client: httpx.Client, node: InProcessNode, case: int
) -> None:
    name, status, body, needle = bad_requests(node)[case]
    before = snapshot(node)
    if isinstance(body, bytes):
        response = client.post(TX_PATH, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(TX_PATH, json=body)
    assert response.status_code == status, (name, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and needle in problem["detail"], (name, problem)
    assert snapshot(node) == before, name


def test_replay_is_rejected(client: httpx.Client, node: InProcessNode) -> None:
    domain = domain_of(node.url)
    wallet = enrolled(node)
    body = make_submission(domain, wallet, nonce=42)
    assert client.post(TX_PATH, json=body, params={"wait": "true"}).status_code == 201
    before = snapshot(node)
    again = client.post(TX_PATH, json=body)
    assert again.status_code == 409 and "replay" in again.json()["detail"]
    same_nonce = make_submission(domain, wallet, nonce=42, amount="1")
    assert client.post(TX_PATH, json=same_nonce).status_code == 409
    assert snapshot(node) == before


def test_chunked_oversized_body_is_rejected(client: httpx.Client, node: InProcessNode) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"transaction": {"memo": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    before = snapshot(node)
    response = client.post(TX_PATH, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert snapshot(node) == before


def test_unknown_transaction_is_404(client: httpx.Client) -> None:
    response = client.get(f"{TX_PATH}/0x" + "00" * 32)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_rpc_passthrough(client: httpx.Client, node: InProcessNode) -> None:
    chain_id = client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
    assert int(chain_id.json()["result"], 16) == node.node.chain.chain_id
    denied = client.post("/rpc", json={"jsonrpc": "2.0", "id": 2, "method": "eth_sendTransaction"})
    assert denied.json()["error"]["code"] == -32601


def test_without_wait_the_receipt_is_pending_then_anchored(
    client: httpx.Client, node: InProcessNode
) -> None:
    domain = domain_of(node.url)
    bodies = [make_submission(domain, enrolled(node)) for _ in range(5)]
    receipts = [client.post(TX_PATH, json=b) for b in bodies]
    assert all(r.status_code in (201, 202) for r in receipts)
    ids = [r.json()["id"] for r in receipts]
    for tx_id in ids:
        row = node.node.ledger.wait_anchored(tx_id, 60)
        assert row is not None and row.status == "anchored"
    for tx_id in ids:
        bundle = client.get(f"{TX_PATH}/{tx_id}/proof").json()
        leaf = bytes.fromhex(bundle["leaf"][2:])
        anchor = node.node.registry.get_anchor(bundle["anchor_index"])
        verify_inclusion(
            bundle["leaf_index"],
            anchor.tree_size,
            hash_leaf(leaf),
            [bytes.fromhex(p[2:]) for p in bundle["path"]],
            anchor.root,
        )
    anchors = client.get("/api/v1/anchors").json()
    assert anchors and anchors[0]["tree_size"] == node.node.ledger.tree_size()
    if len(anchors) > 1:
        a, b = anchors[1], anchors[0]
        proof = client.get(
            "/api/v1/anchors/consistency",
            params={"first": a["tree_size"], "second": b["tree_size"]},
        ).json()["path"]
        verify_consistency(
            a["tree_size"],
            b["tree_size"],
            bytes.fromhex(a["root"][2:]),
            bytes.fromhex(b["root"][2:]),
            [bytes.fromhex(p[2:]) for p in proof],
        )


def test_participant_removal_is_seen_through_the_follower(
    client: httpx.Client, node: InProcessNode
) -> None:
    domain = domain_of(node.url)
    wallet = enrolled(node)
    first = client.post(TX_PATH, json=make_submission(domain, wallet), params={"wait": "true"})
    assert first.status_code == 201
    node.node.registry.remove_participant("main", wallet.address)
    # the cache TTL is an hour: only the follower's invalidation can turn this into 403
    deadline = time.monotonic() + 60
    while True:
        before = snapshot(node)
        response = client.post(TX_PATH, json=make_submission(domain, wallet))
        if response.status_code == 403:
            break
        assert response.status_code == 202 and time.monotonic() < deadline, response.text
        assert node.node.ledger.wait_anchored(response.json()["id"], 60) is not None
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "not a participant of 'main'" in response.json()["detail"]
    assert snapshot(node) == before


def test_batch_submit_reports_each_item(client: httpx.Client, node: InProcessNode) -> None:
    domain = domain_of(node.url)
    alice, bob = enrolled(node), enrolled(node)
    outsider = Account.create()
    existing = make_submission(domain, alice, nonce=7)
    assert client.post(TX_PATH, json=existing).status_code == 202
    good = [make_submission(domain, bob, nonce=n) for n in range(3)]
    items: list[Any] = [
        good[0],
        _garbled(make_submission(domain, alice)),  # 400
        make_submission(domain, outsider),  # 403
        good[1],
        make_submission(domain, bob, nonce=1, amount="9"),  # nonce used earlier in the batch
        existing,  # 409: already stored
        {"transaction": {"kind": "invoice"}},  # 422 schema
        make_submission(domain, alice, memo="x" * 5000),  # 413 for this item only
        good[2],
    ]
    count_before = node.node.ledger.count()
    response = client.post(f"{TX_PATH}/batch", json={"items": items})
    assert response.status_code == 200, response.text
    result = response.json()
    statuses = [r["status"] for r in result["results"]]
    assert statuses == [202, 400, 403, 202, 409, 409, 422, 413, 202]
    assert result["accepted"] == 3 and result["rejected"] == 6
    assert [r["index"] for r in result["results"]] == list(range(len(items)))
    assert "not a participant" in result["results"][2]["problem"]["detail"]
    ids = [result["results"][i]["id"] for i in (0, 3, 8)]
    after = node.node.ledger.count()
    assert sum(after.values()) == sum(count_before.values()) + 3
    for tx_id in ids:
        row = node.node.ledger.wait_anchored(tx_id, 60)
        assert row is not None and row.status == "anchored" and row.signer == bob.address
        proof = client.get(f"{TX_PATH}/{tx_id}/proof").json()
        assert proof["tx_id"] == tx_id
    too_many = client.post(f"{TX_PATH}/batch", json={"items": [{}] * 1001})
    assert too_many.status_code in (413, 422)


def test_group_committed_singles_each_get_their_own_result(
    client: httpx.Client, node: InProcessNode
) -> None:
    """Single POSTs that queue behind one commit are committed as one group; a bad, replayed
    or outsider's request among them gets its own 4xx and the others are stored."""
    from concurrent.futures import ThreadPoolExecutor

    domain = domain_of(node.url)
    alice, bob = enrolled(node), enrolled(node)
    outsider = Account.create()
    existing = make_submission(domain, alice, nonce=11)
    assert client.post(TX_PATH, json=existing).status_code == 202
    bodies: list[dict[str, Any]] = [
        make_submission(domain, bob, nonce=100),  # 202
        _garbled(make_submission(domain, alice)),  # 400: unrecoverable signature
        make_submission(domain, outsider),  # 403: not a participant
        make_submission(domain, bob, nonce=101),  # 202
        existing,  # 409: stored before the window
        {**make_submission(domain, alice), "signer": bob.address},  # 401: another signer
        make_submission(domain, bob, nonce=102),  # 202
        make_submission(domain, alice, subsystem="nowhere"),  # 422: unknown subsystem
        make_submission(domain, bob, nonce=103),  # 202
    ]
    twins = [make_submission(domain, alice, nonce=200, amount=a) for a in ("1", "2")]
    intake = node.node.ledger._intake
    groups_before, count_before = intake.groups, node.node.ledger.count()
    blocker = make_submission(domain, bob, nonce=99)
    write_lock = node.node.ledger._write_lock

    def post(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=node.url, timeout=60) as c:
            return c.post(TX_PATH, json=body)

    with ThreadPoolExecutor(len(bodies) + 3) as pool:
        with write_lock:  # the first commit waits here: the rest queue behind it
            first = pool.submit(post, blocker)
            deadline = time.monotonic() + 30
            while not intake._busy and time.monotonic() < deadline:
                time.sleep(0.01)
            futures = [pool.submit(post, b) for b in [*bodies, *twins]]
            # 4 good, the stored replay and the twins reach the queue; the others fail first
            while len(intake._queue) < 7 and time.monotonic() < deadline:
                time.sleep(0.01)
            queued = len(intake._queue)
            time.sleep(0.05)
        responses = [f.result() for f in futures]
        assert first.result().status_code == 202
    statuses = [r.status_code for r in responses[: len(bodies)]]
    assert statuses == [202, 400, 403, 202, 409, 401, 202, 422, 202], [r.text for r in responses]
    # signer mismatches and outsiders fail in their own thread; the rest shared one group
    assert queued == 7 and intake.largest >= 7 and intake.groups - groups_before == 2
    assert sorted(r.status_code for r in responses[len(bodies) :]) == [202, 409]
    assert "not a participant" in responses[2].json()["detail"]
    count_after = node.node.ledger.count()
    assert sum(count_after.values()) == sum(count_before.values()) + 1 + 4 + 1
    for response in responses:
        if response.status_code == 202:
            created = response.json()
            got = client.get(f"{TX_PATH}/{created['id']}").json()
            volatile = ("status", "anchor", "leaf_index")
            assert {k: v for k, v in got.items() if k not in volatile} == {
                k: v for k, v in created.items() if k not in volatile
            }
            raw = client.get(f"/ipfs/{created['cid']}", params={"format": "raw"})
            assert (
                raw.status_code == 200 and hash_leaf(raw.content).hex() == created["leaf_hash"][2:]
            )


def test_private_transaction_publishes_only_cid_and_commitment(
    client: httpx.Client, node: InProcessNode
) -> None:
    from node.ledger.transaction import compute_payload_hash

    domain = domain_of(node.url)
    wallet = enrolled(node)
    plaintext = b'{"amount": "1000000", "currency": "EUR", "terms": "secret"}'
    salt = b"\x07" * 32
    cipher_cid = node.node.store.add_bytes(b"<ciphertext from node/storage encryption>")
    body = make_submission(
        domain, wallet, private=True, parties=[], amount="", currency="", memo="",
        payload=cipher_cid, payload_hash=compute_payload_hash(salt, plaintext), kind="contract",
    )  # fmt: skip
    response = client.post(TX_PATH, json=body, params={"wait": "true"})
    assert response.status_code == 201, response.text
    got = response.json()
    assert got["private"] is True and got["payload"] == cipher_cid
    assert got["payload_hash"] == compute_payload_hash(salt, plaintext)
    assert got["amount"] == "" and got["parties"] == [] and got["memo"] == ""
    leaf = client.get(f"/ipfs/{got['cid']}", params={"format": "raw"}).content
    assert b"secret" not in leaf and decode_leaf(leaf).tx.private
    listed = client.get(TX_PATH, params={"signer": wallet.address}).json()["items"]
    assert listed[0]["private"] is True


def test_filters_by_time_and_anchor_and_csv_export(
    client: httpx.Client, node: InProcessNode
) -> None:
    import csv
    import io

    domain = domain_of(node.url)
    wallet = enrolled(node)
    stamps = [1_000, 2_000, 3_000, 4_000]
    items = [make_submission(domain, wallet, timestamp=t, kind="order") for t in stamps]
    result = client.post(f"{TX_PATH}/batch", json={"items": items}).json()
    ids = [r["id"] for r in result["results"]]
    for tx_id in ids:
        assert node.node.ledger.wait_anchored(tx_id, 60) is not None
    mine = {"signer": wallet.address}
    ranged = client.get(TX_PATH, params={**mine, "since": 2_000, "until": 4_000}).json()
    assert [i["timestamp"] for i in ranged["items"]] == [3_000, 2_000]
    assert client.get(TX_PATH, params={**mine, "since": 4_001}).json()["items"] == []
    one = client.get(f"{TX_PATH}/{ids[0]}").json()
    by_anchor = client.get(TX_PATH, params={"anchor": one["anchor"]["index"], "limit": 500})
    assert ids[0] in [i["id"] for i in by_anchor.json()["items"]]
    assert all(i["anchor"]["index"] == one["anchor"]["index"] for i in by_anchor.json()["items"])
    # cursor pagination over the same filter
    page1 = client.get(TX_PATH, params={**mine, "limit": 3}).json()
    page2 = client.get(TX_PATH, params={**mine, "limit": 3, "before": page1["next_cursor"]}).json()
    assert [i["id"] for i in page1["items"] + page2["items"]] == ids[::-1]
    assert page2["next_cursor"] is None

    export = client.get("/api/v1/transactions.csv", params={**mine, "since": 2_000})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["id"] for r in rows] == ids[:0:-1]
    assert rows[0]["signer"] == wallet.address and rows[0]["kind"] == "order"
    assert rows[0]["anchor_index"] != "" and rows[0]["amount"] == "125.5"
    everything = client.get("/api/v1/transactions.csv").text.splitlines()
    total = sum(node.node.ledger.count().values())
    assert len(everything) == total + 1
    bad = client.get("/api/v1/transactions.csv", params={"party": "0x12"})
    assert bad.status_code == 400


def test_explorer_page_summary_is_read_at_most_once_a_second(
    node: InProcessNode, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.api.routes import explorer

    health = node.node.health()  # /health itself: read fresh each time
    first = explorer.summary(node.node)
    assert first["chain"] == {
        key: health["chain"][key] for key in ("kind", "chain_id", "block_number")
    }
    assert first["epoch"] == health["epoch"]
    assert (first["node"], first["registry"]) == (health["node"], health["registry"])
    assert explorer.summary(node.node) is first  # within SUMMARY_TTL: the same reading
    monkeypatch.setattr(explorer, "SUMMARY_TTL", 0.0)
    again = explorer.summary(node.node)
    assert again is not first and again["chain"]["block_number"] == int(
        node.node.chain.w3.eth.block_number
    )
    page = client.get("/explorer")
    assert page.status_code == 200
    assert f"block {node.node.chain.w3.eth.block_number}" in page.text


def test_the_explorer_pages_back_through_every_transaction(
    client: httpx.Client, node: InProcessNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("node.api.routes.explorer.PAGE_SIZE", 1)
    domain, wallet = domain_of(node.url), enrolled(node)
    ids = [client.post(TX_PATH, json=make_submission(domain, wallet, nonce=n)).json()["id"]
           for n in (7001, 7002)]  # fmt: skip
    newest = client.get("/explorer").text
    assert ids[1][:10] in newest and ids[0][:10] not in newest and "Newest</a>" not in newest
    older = newest.split("href='/explorer?before=")[1].split("'")[0]
    page = client.get("/explorer", params={"before": older}).text
    assert ids[0][:10] in page and ids[1][:10] not in page and "Newest</a>" in page
    assert client.get("/explorer", params={"before": -1}).status_code == 422


def test_a_transaction_is_found_by_a_unique_prefix_of_its_id(
    client: httpx.Client, node: InProcessNode
) -> None:
    domain, wallet = domain_of(node.url), enrolled(node)
    tx_id = client.post(TX_PATH, json=make_submission(domain, wallet)).json()["id"]
    for prefix in (tx_id, tx_id[2:], tx_id[:20], tx_id[2:20].upper()):
        found = client.get(f"{TX_PATH}/by-prefix/{prefix}")
        assert found.status_code == 200 and found.json() == {"id": tx_id}, found.text
    assert client.get(f"{TX_PATH}/by-prefix/0x").status_code == 422  # a digit at least
    absent = "0" * 63 + ("1" if tx_id[-1] != "1" else "2")
    assert client.get(f"{TX_PATH}/by-prefix/{absent}").status_code == 404
    items = [make_submission(domain, wallet, nonce=8000 + n) for n in range(17)]
    results = client.post(f"{TX_PATH}/batch", json={"items": items}).json()["results"]
    ids = [r["id"] for r in results]
    heads = [i[2] for i in ids]  # 17 ids, 16 hex digits: two share their first digit
    shared = next(h for h in heads if heads.count(h) > 1)
    ambiguous = client.get(f"{TX_PATH}/by-prefix/{shared}")
    assert ambiguous.status_code == 409 and "type more" in ambiguous.json()["detail"]


def test_a_transaction_is_found_by_the_cid_of_its_leaf_or_payload(
    client: httpx.Client, node: InProcessNode
) -> None:
    from node.storage.cids import compute_cid_bytes, format_cid, format_cid_bytes, parse_cid

    domain, wallet = domain_of(node.url), enrolled(node)
    named = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"  # a dag-pb CIDv0 the body names
    tx_id = client.post(TX_PATH, json=make_submission(domain, wallet, payload=named)).json()["id"]
    leaf = client.get(f"{TX_PATH}/{tx_id}").json()["cid"]
    for spelling in (leaf, parse_cid(leaf).encode("base58btc")):  # any multibase of it
        found = client.get(f"{TX_PATH}/by-cid/{spelling}")
        assert found.status_code == 200, found.text
        assert found.json() == {"id": tx_id, "cid": leaf, "part": "leaf"}
    as_v1 = format_cid(parse_cid(named).set(version=1))
    for spelling in (named, as_v1):  # CIDv0 or v1 of the payload
        found = client.get(f"{TX_PATH}/by-cid/{spelling}")
        assert found.status_code == 200 and found.json()["id"] == tx_id, found.text
        assert found.json()["part"] == "payload"
    unknown = format_cid_bytes(compute_cid_bytes(b"carried by none", codec="raw", version=1))
    missing = client.get(f"{TX_PATH}/by-cid/{unknown}")
    assert missing.status_code == 404 and unknown in missing.json()["detail"]
    for bad in ("not-a-cid", "bafy" + "a" * 200, "Qm123"):
        refused = client.get(f"{TX_PATH}/by-cid/{bad}")
        assert refused.status_code == 400 and "not a CID" in refused.json()["detail"], bad
