"""Every node indexes every node's anchored leaves: two real nodes on one anvil chain, real
embedded stores, real peer sync over HTTP. A transaction accepted by A is listed by B with a
proof that verifies against the chain (and the other way round); a batch whose leaves do not
hash to its anchored root is logged and skipped, writing nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from node.chain.registry import Registry, compute_roles_mask
from node.db.models import BusinessTransaction, MerkleHead
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.ledger import tree
from node.ledger.batch import Batch
from node.ledger.bundle import verify_bundle
from node.ledger.hasher import hash_leaf
from node.ledger.proof import compute_root
from node.ledger.reindex import reindex
from node.ledger.transaction import BusinessTx, sign_tx, verify_signed_tx
from tests.chain.conftest import ChainUnderTest, anvil_chain  # noqa: F401 (fixture)
from tests.support.ledger import count_log_rows
from tests.support.node import InProcessNode, domain_of, submit_anchored
from tests.support.peers import peer_node

pytestmark = pytest.mark.anvil

TEST_EPOCH_PERIOD = 50
WAIT_SECONDS = 60.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def submit(node: InProcessNode, admin: Registry, count: int) -> list[str]:
    """Submit ``count`` transactions of a new participant to ``node``; wait until anchored."""
    return submit_anchored(node, count, admin)


def listed_ids(node: InProcessNode) -> set[str]:
    page = httpx.get(node.url + "/api/v1/transactions", params={"limit": 500}, timeout=10)
    return {item["id"] for item in page.json()["items"]}


@dataclass
class Pair:
    a: InProcessNode
    b: InProcessNode
    chain_url: str
    chain: ChainUnderTest


@pytest.fixture(scope="module")
def pair(
    anvil_chain: ChainUnderTest,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    chain_url = anvil_chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    tmp = tmp_path_factory.mktemp("logs")
    fast = {"confirmations": 0, "follower_poll": 0.2, "epoch_period": TEST_EPOCH_PERIOD}
    with peer_node(tmp / "a", chain_url, **fast) as a:  # noqa: SIM117 (b needs a's registry)
        with peer_node(tmp / "b", chain_url, registry=a.node.record.registry, **fast) as b:
            yield Pair(a, b, chain_url, anvil_chain)


def test_a_transaction_accepted_by_a_is_listed_by_b_with_a_verifying_proof(pair: Pair) -> None:
    admin = pair.a.node.registry
    from_a = submit(pair.a, admin, 3)
    from_b = submit(pair.b, admin, 2)
    pair.b.node.syncer.run_once()  # fetch A's batches and leaves (the chain references them)
    pair.a.node.syncer.run_once()

    wait_for("B lists A's transactions", lambda: set(from_a) <= listed_ids(pair.b))
    wait_for("A lists B's transactions", lambda: set(from_b) <= listed_ids(pair.a))
    for tx_id in from_a + from_b:
        for node in (pair.a, pair.b):
            response = httpx.get(f"{node.url}/api/v1/transactions/{tx_id}/proof", timeout=10)
            assert response.status_code == 200, response.text
            bundle = response.json()
            report = verify_bundle(bundle, chain_url=pair.chain_url, gateway_url=node.url)
            assert report.ok, report.as_dict()
        proofs = [
            httpx.get(f"{n.url}/api/v1/transactions/{tx_id}/proof", timeout=10).json()
            for n in (pair.a, pair.b)
        ]
        assert proofs[0] == proofs[1]  # the same leaf, path and tree head on both nodes
    # the anchor filter works on the other node's anchors too
    anchor = httpx.get(f"{pair.b.url}/api/v1/transactions/{from_a[0]}", timeout=10).json()
    page = httpx.get(
        pair.b.url + "/api/v1/transactions",
        params={"anchor": anchor["anchor"]["index"]},
        timeout=10,
    ).json()
    assert from_a[0] in {item["id"] for item in page["items"]}
    # B's own log is still only what B accepted; A's log at B is A's size
    with pair.b.node.sessions() as session:
        origins = dict(
            session.execute(
                select(BusinessTransaction.origin, func.count()).group_by(
                    BusinessTransaction.origin
                )
            ).all()
        )
        heads = dict(session.execute(select(MerkleHead.origin, MerkleHead.size)).all())
    a_address = pair.a.node.ledger.node_address
    assert origins[""] == len(from_b)
    assert origins[a_address] == pair.a.node.ledger.tree_size() == len(from_a)
    assert heads.get(a_address, 0) <= len(from_a)


def anchor_foreign_batch(pair: Pair, *, good_root: bool) -> tuple[str, list[str], list[str]]:
    """Anchor, from a new registered wallet that runs no node, a batch of 3 signed leaves
    whose bodies are in B's store; return (its address, leaf CIDs, tx ids)."""
    b = pair.b
    domain = domain_of(b.url)
    account = pair.chain.new_account()
    other = Registry(pair.chain.w3, b.node.record.registry, account)
    other.register_node("http://127.0.0.1:9", 1, compute_roles_mask(["fe_system"]), "main")
    wallet = Account.create()
    pair.a.node.registry.add_participant("main", wallet.address)
    signed = []
    for nonce in range(3):
        tx = BusinessTx("main", "invoice", (wallet.address,), "1", "EUR", "", "", nonce, 1)
        signed.append(verify_signed_tx(domain, tx, sign_tx(domain, tx, wallet.key)))
    leaves = [s.encode() for s in signed]
    cids = [b.node.store.add_bytes(leaf) for leaf in leaves]  # complete in B's store
    batch_cid = b.node.store.add_bytes(Batch(0, tuple(cids), (1, 2, 3)).encode())
    root = compute_root([hash_leaf(leaf) for leaf in leaves]) if good_root else b"\x01" * 32
    other.anchor("", root, 3, 3, batch_cid)
    return account.address, cids, [s.tx_id for s in signed]


def rows_of(node: InProcessNode, origin: str) -> int:
    return count_log_rows(node.node.sessions, origin)


def test_a_batch_that_does_not_hash_to_its_root_is_skipped_whole(pair: Pair) -> None:
    b = pair.b
    bad_before = b.node.follower.log_indexer.bad_batches
    origin, cids, ids = anchor_foreign_batch(pair, good_root=False)

    wait_for("B to reject the batch", lambda: b.node.follower.log_indexer.bad_batches > bad_before)
    assert rows_of(b, origin) == 0
    assert not set(ids) & listed_ids(b)
    with b.node.sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(BusinessTransaction)
                .where(BusinessTransaction.cid.in_(cids))
            )
            == 0
        )


def test_reorg_of_another_nodes_anchor_drops_its_leaves_and_tree(pair: Pair) -> None:
    b = pair.b
    w3 = pair.chain.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    origin, _, ids = anchor_foreign_batch(pair, good_root=True)
    wait_for("B lists the other log", lambda: set(ids) <= listed_ids(b))
    assert rows_of(b, origin) == 3
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    pair.chain.mine(3)
    wait_for("B drops the reverted leaves", lambda: not set(ids) & listed_ids(b))
    assert rows_of(b, origin) == 0
    with b.node.sessions() as session:
        assert not session.scalar(select(MerkleHead.size).where(MerkleHead.origin == origin))


def test_reindex_rebuilds_the_other_logs_identically(pair: Pair, tmp_path: Path) -> None:
    b = pair.b
    submit(pair.a, pair.a.node.registry, 2)
    b.node.syncer.run_once()
    a_address = pair.a.node.ledger.node_address
    wait_for(
        "B to index all of A's log",
        lambda: rows_of(b, a_address) == pair.a.node.ledger.tree_size(),
    )
    url = f"sqlite:///{tmp_path / 'rebuilt.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    try:
        rebuilt = make_session_factory(engine)
        report = reindex(
            sessions=rebuilt,
            store=b.node.store,
            w3=pair.chain.w3,
            registry_address=b.node.record.registry,
            node_address=b.node.ledger.node_address,
            start_block=b.node.record.deployed_block or 0,
        )
        assert report.other_transactions == rows_of(b, a_address)

        def content(sessions: sessionmaker[Session]) -> set[tuple[Any, ...]]:
            t = BusinessTransaction
            with sessions() as session:
                rows = session.execute(
                    select(
                        t.origin,
                        t.leaf_index,
                        t.tx_id,
                        t.anchor_index,
                        t.leaf_hash,
                        t.received_at,
                        t.status,
                        t.signer,
                        t.amount,
                    )  # fmt: skip
                ).all()
            return {tuple(r) for r in rows}

        assert content(rebuilt) == content(b.node.sessions)
        with rebuilt() as session, b.node.sessions() as live:
            for tx_id in {r[2] for r in content(rebuilt)}:
                row = session.scalar(select(BusinessTransaction).where(
                    BusinessTransaction.tx_id == tx_id))  # fmt: skip
                assert row is not None and row.anchor is not None and row.leaf_index is not None
                assert tree.inclusion_path(
                    session, row.origin, row.leaf_index, row.anchor.tree_size
                ) == tree.inclusion_path(live, row.origin, row.leaf_index, row.anchor.tree_size)
    finally:
        engine.dispose()
