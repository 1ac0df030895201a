"""Business transactions end to end on a real node: embedded py-evm chain, registry
contract, embedded content store, SQLite index, over real HTTP on 127.0.0.1."""

from __future__ import annotations

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
from tests.support.node import InProcessNode, domain_of, in_process_node, make_submission

TX_PATH = "/api/v1/transactions"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    with in_process_node(tmp_path_factory.mktemp("api") / "data", max_tx_bytes=4096) as running:
        yield running


@pytest.fixture(scope="module")
def client(node: InProcessNode) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as c:
        yield c


def snapshot(node: InProcessNode) -> tuple[Any, ...]:
    """Return what a rejected request must not change: SQL rows, anchors, pins, blocks."""
    blocks = sorted(
        p.name for p in Path(node.node.settings.data_dir, "ipfs").rglob("*") if p.is_file()
    )
    return (
        node.node.ledger.count(),
        node.node.registry.anchor_count(),
        int(node.node.chain.w3.eth.block_number),
        sorted(node.node.store.pins()),
        blocks,
    )


def test_health(client: httpx.Client, node: InProcessNode) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["node"] == node.node.address
    assert health["chain"]["kind"] == "embedded"
    assert health["chain"]["chain_id"] == node.node.chain.chain_id
    assert health["chain"]["block_number"] > 0
    assert health["registry"] == node.node.record.registry
    assert health["store"]["backend"] == "embedded"
    assert health["epoch"] >= 0 and health["version"]


def test_submit_then_get_end_to_end(client: httpx.Client, node: InProcessNode) -> None:
    domain = domain_of(node.url)
    wallet = Account.create()
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
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(10))
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
    wallet = Account.create()
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
    bodies = [make_submission(domain) for _ in range(5)]
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
