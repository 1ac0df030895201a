"""Peer sync between real nodes on one anvil chain, over real HTTP, with real embedded stores.

Node A deploys the registry, anchors business transactions and publishes a front-end; node B
joins the same registry and must end up with every referenced block, hash-checked. A tampering
gateway registered as a peer is detected and skipped; a block rotted on B's disk is repaired.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from node.chain.registry import Registry, compute_roles_mask
from node.ledger.batch import decode_batch
from node.storage import BlockCorrupted
from tests.chain.conftest import ChainUnderTest
from tests.support.blocks import read_stored_block, write_stored_block
from tests.support.node import InProcessNode, domain_of, make_submission, submit_anchored
from tests.support.peers import TamperingGateway, peer_node

pytestmark = pytest.mark.anvil

TX_COUNT = 3
BIG_FILE_BYTES = 600 * 1024  # three 256 KiB chunks: a dag-pb root with links
TEST_EPOCH_PERIOD = 50


def anchor_transactions(node: InProcessNode, count: int, admin: Registry | None = None) -> None:
    """Submit ``count`` transactions of a new participant to ``node``; wait until anchored."""
    submit_anchored(node, count, admin)


def referenced_cids(node: InProcessNode) -> list[str]:
    """Return every root the chain references, read from ``node``'s own store and registry."""
    registry = node.node.registry
    out: list[str] = []
    for anchor in registry.anchors():
        out.append(anchor.batch_cid)
        out.extend(decode_batch(node.node.store.cat(anchor.batch_cid)).leaf_cids)
    frontend = registry.frontend_cid()
    if frontend:
        out.append(frontend)
    return out


def publish_frontend(node: InProcessNode, tmp: Path) -> str:
    """Add a small site (index.html and a multi-chunk asset) to ``node`` and set it on-chain."""
    site = tmp / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><p>collegium</p>")
    (site / "assets" / "big.bin").write_bytes(os.urandom(BIG_FILE_BYTES))
    cid = node.node.store.add_path(site)
    node.node.registry.set_frontend(cid)
    return cid


@dataclass
class Cluster:
    a: InProcessNode
    b: InProcessNode
    frontend: str


@pytest.fixture(scope="module")
def cluster(
    anvil_chain: ChainUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    chain_url = anvil_chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    tmp = tmp_path_factory.mktemp("sync")
    with peer_node(tmp / "a", chain_url, epoch_period=TEST_EPOCH_PERIOD) as a:
        anchor_transactions(a, TX_COUNT)
        frontend = publish_frontend(a, tmp)
        with peer_node(tmp / "b", chain_url, registry=a.node.record.registry) as b:
            yield Cluster(a, b, frontend)


def test_b_syncs_every_anchored_batch_leaf_and_frontend(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    wanted = referenced_cids(a)
    assert len(wanted) >= 1 + TX_COUNT + 1  # at least one batch, every leaf, the front-end

    progress = b.node.syncer.run_once()

    assert (progress.have, progress.want) == (len(wanted), len(wanted))
    assert progress.complete
    for cid in wanted:
        assert cid in b.node.store.pins()
        if cid != cluster.frontend:  # the front-end is a directory: checked through the gateway
            assert b.node.store.cat(cid) == a.node.store.cat(cid)
    page = httpx.get(f"{b.url}/ipfs/{cluster.frontend}/", timeout=10)
    assert page.status_code == 200 and "collegium" in page.text
    big = httpx.get(f"{b.url}/ipfs/{cluster.frontend}/assets/big.bin", timeout=30)
    assert big.content == a.node.store.cat(cluster.frontend, "assets/big.bin")
    health = httpx.get(b.url + "/health", timeout=10).json()
    assert health["sync"]["have"] == health["sync"]["want"] == len(wanted)
    assert health["sync"]["complete"] is True


def test_status_shows_replica_completeness(cluster: Cluster) -> None:
    from typer.testing import CliRunner

    from node.cli.main import app

    progress = cluster.b.node.syncer.run_once()
    result = CliRunner().invoke(app, ["status", "--url", cluster.b.url])

    assert result.exit_code == 0, result.output
    assert f"replica    {progress.have}/{progress.want} roots complete" in result.output


def test_new_anchor_is_synced_in_the_next_round(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    b.node.syncer.run_once()
    before = b.node.syncer.progress()
    anchor_transactions(a, 1)

    progress = b.node.syncer.run_once()

    assert progress.want >= before.want + 2  # one more batch and its leaf
    assert progress.have == progress.want == len(referenced_cids(a))


def test_locally_corrupted_block_is_repaired_from_a_peer(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    b.node.syncer.run_once()
    leaf = decode_batch(a.node.store.cat(a.node.registry.get_anchor(0).batch_cid)).leaf_cids[0]
    stored = read_stored_block(b.node.store.root, leaf)
    assert stored is not None
    write_stored_block(b.node.store.root, leaf, stored[:-1] + b"\x00")
    with pytest.raises(BlockCorrupted):
        b.node.store.get_block(leaf)
    repaired = b.node.syncer.progress().repaired_blocks

    progress = b.node.syncer.run_once(scrub=True)

    assert progress.repaired_blocks == repaired + 1
    assert b.node.store.get_block(leaf) == a.node.store.get_block(leaf)
    assert progress.complete


def test_own_anchors_are_not_walked_again_until_a_scrub_round(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    anchor_transactions(a, 1)  # A stores the batch and its leaf itself, then anchors them
    b.node.syncer.run_once()  # B holds a copy to repair A from
    batch_cid = a.node.registry.get_anchor(a.node.registry.anchor_count() - 1).batch_cid
    leaf = decode_batch(a.node.store.cat(batch_cid)).leaf_cids[0]
    stored = read_stored_block(a.node.store.root, leaf)
    assert stored is not None
    write_stored_block(a.node.store.root, leaf, stored[:-1] + b"\x00")
    repaired = a.node.syncer.progress().repaired_blocks

    ordinary = a.node.syncer.run_once()

    assert ordinary.complete and ordinary.repaired_blocks == repaired  # counted, not read
    with pytest.raises(BlockCorrupted):
        a.node.store.get_block(leaf)

    scrub = a.node.syncer.run_once(scrub=True)

    assert scrub.complete and scrub.repaired_blocks == repaired + 1
    assert a.node.store.get_block(leaf) == b.node.store.get_block(leaf)
    assert scrub.want == len(referenced_cids(a))
    for cid in referenced_cids(a):  # the scrub round pinned A's own roots one by one too
        if cid != cluster.frontend:
            assert cid in a.node.store.pins()


def test_gateway_hit_on_a_corrupted_block_queues_its_repair(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    b.node.syncer.run_once()
    leaf = decode_batch(a.node.store.cat(a.node.registry.get_anchor(0).batch_cid)).leaf_cids[-1]
    write_stored_block(b.node.store.root, leaf, b"rotten")
    assert httpx.get(f"{b.url}/ipfs/{leaf}?format=raw", timeout=10).status_code == 500

    b.node.syncer.run_once()  # an ordinary round: only the queued repair re-checks the block

    answer = httpx.get(f"{b.url}/ipfs/{leaf}?format=raw", timeout=10)
    assert answer.status_code == 200 and answer.content == a.node.store.get_block(leaf)


def test_peer_serving_wrong_blocks_is_detected_and_skipped(
    anvil_chain: ChainUnderTest, tmp_path: Path
) -> None:
    chain_url = anvil_chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    admin = anvil_chain.new_account()
    registry = Registry.deploy(anvil_chain.w3, admin, TEST_EPOCH_PERIOD)
    registry.create_subsystem("main")
    evil_account = anvil_chain.new_account()
    evil = Registry(anvil_chain.w3, registry.address, evil_account)
    with TamperingGateway() as tampering:
        # registered first, so it is the first peer B asks (registry order breaks ties)
        evil.register_node(tampering.url, 1, compute_roles_mask(["fe_system"]), "main")
        with peer_node(tmp_path / "a", chain_url, registry=registry.address) as a:
            tampering.upstream = a.url
            anchor_transactions(a, 2, admin=registry)
            wanted = referenced_cids(a)
            with peer_node(tmp_path / "b", chain_url, registry=registry.address) as b:
                progress = b.node.syncer.run_once()
                peers = b.node.syncer.peer_states()

                assert (progress.have, progress.want) == (len(wanted), len(wanted))
                for cid in wanted:
                    assert b.node.store.cat(cid) == a.node.store.cat(cid)
                assert tampering.requests >= 1
                # detected once, then A is preferred for every other block
                assert peers[tampering.url].bad_blocks == 1
                assert peers[tampering.url].served_blocks == 0
                assert peers[a.url].served_blocks == progress.blocks_fetched
                assert progress.bad_blocks == 1


def test_payload_named_by_a_leaf_is_synced(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    document = os.urandom(5000)  # e.g. the ciphertext of a private payload, or an invoice PDF
    payload = a.node.store.add_bytes(document)
    wallet = Account.create()
    a.node.registry.add_participant("main", wallet.address)
    response = httpx.post(
        a.url + "/api/v1/transactions",
        params={"wait": "true"},
        json=make_submission(domain_of(a.url), wallet, payload=payload),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    assert not b.node.store.has(payload)

    progress = b.node.syncer.run_once()

    assert b.node.store.cat(payload) == document
    assert payload in b.node.store.pins()
    assert progress.complete and progress.have == progress.want


def test_a_sealed_payloads_envelope_and_its_previous_are_synced(
    cluster: Cluster, anvil_chain: ChainUnderTest
) -> None:
    from node.crypto.keys import compute_public_key
    from node.crypto.sealed import (
        Recipient,
        make_envelope,
        new_content_key,
        put_envelope,
        put_sealed,
        read_sealed,
    )
    from node.ledger.transaction import compute_payload_hash

    a, b = cluster.a, cluster.b
    wallet = Account.create()
    me = Recipient(wallet.address, compute_public_key(bytes(wallet.key)))
    old = put_envelope(a.node.store, make_envelope("main", 1, new_content_key(), [me]))
    key = new_content_key()
    envelope = make_envelope("main", 2, key, [me], previous=old)
    current = put_envelope(a.node.store, envelope)
    secret = b"sealed-for-main-only"
    payload = put_sealed(a.node.store, key, current, envelope, secret)
    a.node.registry.add_participant("main", wallet.address)
    body = make_submission(domain_of(a.url), wallet, parties=[], amount="", currency="", memo="",
                           private=True, payload=payload,
                           payload_hash=compute_payload_hash(b"\0" * 32, secret))  # fmt: skip
    response = httpx.post(a.url + "/api/v1/transactions", params={"wait": "true"}, json=body,
                          timeout=60)  # fmt: skip
    assert response.status_code == 201, response.text
    assert not any(b.node.store.has(c) for c in (payload, current, old))

    progress = b.node.syncer.run_once()

    assert all(b.node.store.has(c) for c in (payload, current, old))
    assert {payload, current, old} <= set(b.node.store.pins())
    assert progress.complete and progress.have == progress.want
    assert read_sealed(b.node.store, payload, bytes(wallet.key)) == secret  # keys followed
    assert not any(secret in b.node.store.cat(c) for c in (payload, current, old))

    def replica_of_main() -> dict[str, object] | None:
        replicas = httpx.get(b.url + "/health", timeout=10).json()["replicas"]
        return next((r for r in replicas if r["subsystem"] == "main"), None)

    anvil_chain.mine(3)  # past the follower's confirmations: b indexes a's anchor and leaf
    deadline = time.monotonic() + 30  # /health caches the list of logs 10 s
    while (seen := replica_of_main()) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert seen is not None and (seen["entries"], seen["have"]) == (1, 1), seen
