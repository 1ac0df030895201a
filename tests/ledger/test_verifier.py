"""The verifier pool: the same results as in-process verification, item by item, and no worker
outliving its node (SIGTERM, kill -9); ``check_items`` gives what the general libraries give."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.errors import ValidationError
from node.ledger.hasher import hash_leaf
from node.ledger.service import compute_leaf_cid
from node.ledger.transaction import BusinessTx, Domain, sign_tx, verify_signed_tx
from node.ledger.verifier import (
    MAX_REPLACEMENTS,
    VerifiedTx,
    VerifierPool,
    check_items,
    verify_many,
)
from tests.support.node import domain_of, make_submission, node_process
from tests.support.transactions import (
    business_txs,
    domains,
    reference_cid,
    reference_digest,
    reference_leaf,
    reference_leaf_hash,
    reference_signer,
    sign_digest,
)

DOMAIN = Domain(31337, "0x5FbDB2315678afecb367f642d3e5e8B4c72Ed0D1")
EXIT_WAIT_SECONDS = 10.0
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
secrets = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))


def tx_of(nonce: int, **fields: Any) -> BusinessTx:
    values: dict[str, Any] = {
        "subsystem": "main", "kind": "invoice", "parties": (Account.create().address,),
        "amount": "12.5", "currency": "EUR", "memo": "m", "payload": "", "nonce": nonce,
        "timestamp": 1_700_000_000,
    }  # fmt: skip
    values.update(fields)
    return BusinessTx(**values)


def mixed_items(count: int) -> list[tuple[BusinessTx, bytes]]:
    """``count`` valid items with defective ones in the middle."""
    wallet = Account.create()
    items = []
    for n in range(count):
        tx = tx_of(n)
        items.append((tx, sign_tx(DOMAIN, tx, wallet.key)))
    mid = count // 2
    tx, sig = items[mid]
    items[mid] = (tx, sig[:40] + bytes([sig[40] ^ 0xFF]) + sig[41:])  # bad signature (s)
    items[mid + 1] = (items[mid + 1][0], items[mid + 1][1][:64])  # 64 bytes
    bad_v = bytearray(items[mid + 2][1])
    bad_v[64] = 5
    items[mid + 2] = (items[mid + 2][0], bytes(bad_v))
    high_s = items[mid + 3][1][:32] + SECP256K1_N.to_bytes(32, "big") + items[mid + 3][1][64:]
    items[mid + 3] = (items[mid + 3][0], high_s)
    bad_amount = dataclasses.replace(items[mid + 4][0], amount="1.50")  # not canonical
    items[mid + 4] = (bad_amount, items[mid + 4][1])
    private = tx_of(mid + 5, parties=(), amount="", currency="", memo="", private=True,
                    payload="bafkqaaa", payload_hash="0x" + "ab" * 32)  # fmt: skip
    items[mid + 5] = (private, sign_tx(DOMAIN, private, wallet.key))
    items[mid + 6] = (dataclasses.replace(items[mid + 6][0], nonce=7), items[mid + 6][1])
    return items


def one_by_one(items: list[tuple[BusinessTx, bytes]]) -> list[Any]:
    """What the single-transaction path computes, item by item."""
    out: list[Any] = []
    for tx, sig in items:
        try:
            signed = verify_signed_tx(DOMAIN, tx, sig)
        except ValidationError as exc:
            out.append(exc)
            continue
        body = signed.encode()
        leaf_hash = "0x" + bytes(hash_leaf(body)).hex()
        out.append(VerifiedTx(signed, body, compute_leaf_cid(body), leaf_hash))
    return out


def summary(results: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (type(r).__name__, str(r))
        if isinstance(r, Exception)
        else (r.signed.signer, r.signed.tx_id, r.body, r.cid, r.leaf_hash)
        for r in results
    ]


@pytest.fixture
def pool() -> Any:
    verifier = VerifierPool(DOMAIN, 2)
    yield verifier
    pids = verifier.pids()
    verifier.close()
    assert pids and not [p for p in pids if psutil.pid_exists(p) and is_alive(p)]


def is_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_pool_gives_the_in_process_results(pool: VerifierPool) -> None:
    items = mixed_items(300)
    expected = one_by_one(items)
    got = pool.verify_many(items)
    assert pool.pids(), "a request this large goes to the workers"
    assert summary(got) == summary(expected) == summary(verify_many(DOMAIN, items))
    kinds = [type(r).__name__ for r in got]
    assert kinds.count("ValidationError") == 4  # bad amount, 64 bytes, v, s
    mid = 150
    # the flipped byte still recovers, to another signer, and the tx signed with nonce n but
    # sent with nonce 7 too: the service turns both into SignerMismatch (claimed signer)
    signers = [r if isinstance(r, Exception) else r.signed.signer for r in got]
    assert signers[mid] != signers[0] and signers[mid + 6] != signers[0]
    assert str(got[mid + 1]) == "signature must be 65 bytes, got 64"
    assert signers[mid + 5] == signers[0] and items[mid + 5][0].private
    assert all(r.signed.signature == sig and r.signed.tx is tx
               for r, (tx, sig) in zip(got, items, strict=True)
               if not isinstance(r, Exception))  # fmt: skip


def test_small_requests_stay_in_process(pool: VerifierPool) -> None:
    items = mixed_items(20)
    assert summary(pool.verify_many(items)) == summary(one_by_one(items))
    assert pool.pids() == []
    pool.warm()  # the fixture checks the started workers stop with close()


def test_a_killed_worker_is_replaced(pool: VerifierPool) -> None:
    items = mixed_items(200)
    pool.verify_many(items)
    victim = pool.pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_gone([victim])
    assert summary(pool.verify_many(items)) == summary(one_by_one(items))
    if pool.replaced == 0:  # the executor noticed only now: the next request uses a new pool
        pool.verify_many(items)
    assert summary(pool.verify_many(items)) == summary(one_by_one(items))
    assert victim not in pool.pids()


def wait_gone(pids: list[int], timeout: float = EXIT_WAIT_SECONDS) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if is_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if is_alive(p)]
    return alive


HOLDER = textwrap.dedent(
    """
    import sys, time
    from node.ledger.transaction import Domain
    from node.ledger.verifier import VerifierPool
    pool = VerifierPool(Domain(31337, "0x5FbDB2315678afecb367f642d3e5e8B4c72Ed0D1"), 2)
    pool.warm()
    print(" ".join(map(str, pool.pids())), flush=True)
    time.sleep(600)
    """
)


def test_workers_exit_when_their_process_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        pids = [int(p) for p in holder.stdout.readline().split()]
        assert len(pids) == 2 and all(is_alive(p) for p in pids)
        holder.kill()
        holder.wait(timeout=10)
        assert wait_gone(pids) == []
    finally:
        if holder.poll() is None:
            holder.kill()


def worker_pids(proc: subprocess.Popen[bytes]) -> list[int]:
    children = psutil.Process(proc.pid).children()
    return [c.pid for c in children if "spawn_main" in " ".join(c.cmdline())]


def post_batch(url: str, count: int) -> dict[str, Any]:
    domain = domain_of(url)
    wallet = Account.create()
    items = [make_submission(domain, wallet, nonce=n) for n in range(count)]
    items[count // 2] = make_submission(domain, wallet, sign_with=Account.create(), nonce=count)
    result = httpx.post(url + "/api/v1/transactions/batch", json={"items": items}, timeout=60)
    assert result.status_code == 200
    body: dict[str, Any] = result.json()
    assert body["accepted"] == count - 1
    bad = body["results"][count // 2]
    assert bad["status"] == 401 and "not the claimed signer" in bad["problem"]["detail"]
    return body


def test_node_workers_stop_with_the_node(tmp_path: Path) -> None:
    node = node_process(tmp_path)
    node.env["COLLEGIUM_REQUIRE_PARTICIPANT"] = "false"
    node.env["COLLEGIUM_VERIFY_WORKERS"] = "2"
    node.start()
    try:
        post_batch(node.url, 100)
        assert node.proc is not None
        pids = worker_pids(node.proc)
        assert pids, "a 100-item request goes to a worker"
    finally:
        node.stop()
    assert node.proc.returncode in (0, -signal.SIGTERM)
    assert wait_gone(pids, 0.0) == []  # SIGTERM: closed before the node exited
    node.start()
    try:
        post_batch(node.url, 100)
        pids = worker_pids(node.proc)
        assert pids, "a 100-item request goes to a worker"
    finally:
        node.kill()
    assert wait_gone(pids) == []  # kill -9: the workers notice and exit


def test_after_repeated_failures_verification_stays_in_process() -> None:
    verifier = VerifierPool(DOMAIN, 2)
    try:
        verifier.replaced = MAX_REPLACEMENTS  # as after that many broken pools
        items = mixed_items(200)
        assert summary(verifier.verify_many(items)) == summary(one_by_one(items))
        assert verifier.pids() == []  # no worker was started
    finally:
        verifier.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(domains, st.lists(business_txs, min_size=1, max_size=3), secrets)
def test_check_items_matches_the_libraries(
    domain: Domain, txs: list[BusinessTx], key: bytes
) -> None:
    """Signer, digest, body, CID and leaf hash as eth_account, pyrlp, the stdlib's base32
    and eth_utils' keccak give them, for random valid transactions."""
    items = []
    for tx in txs:
        items.append((tx, sign_digest(reference_digest(domain, tx), key)))
    for (tx, signature), checked in zip(items, check_items(domain, items), strict=True):
        assert not isinstance(checked, ValidationError), checked
        signer, digest, body, cid, leaf_hash = checked
        assert digest == reference_digest(domain, tx)
        assert signer == reference_signer(digest, signature)
        assert body == reference_leaf(domain, tx, signature)
        assert cid == reference_cid(body)
        assert leaf_hash == reference_leaf_hash(body)


@settings(max_examples=300)
@given(st.binary(max_size=2_000))
def test_compute_leaf_cid_matches_the_stdlib(body: bytes) -> None:
    assert compute_leaf_cid(body) == reference_cid(body)
