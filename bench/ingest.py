"""Ingest throughput of one node: signed business transactions per second, end to end.

Starts one anvil and a real node in-process on it (``--chain embedded``: the node's py-evm
chain instead; embedded store, SQLite index, uvicorn on 127.0.0.1) and measures, side by side
in one run:

* ``verify``: EIP-712 digest + signature recovery alone, with the node's fast digest and
  eth-keys (coincurve backend when installed), against eth-account's generic encoder;
* ``ingest_single_durable`` / ``ingest_single_anchored``: one HTTP POST per transaction from
  64 concurrent clients, each from its own 127.0.0.x address and wallet (``bench/single.py``
  phase: group commit), acknowledged = durable in SQL; then until every one is anchored;
  p50/p99 per request (``bench/single.py`` compares with the code before group commit);
* ``ingest_batch``: ``POST /api/v1/transactions/batch`` with ``--batch`` transactions per
  request (``--clients`` client processes, 2 by default, sending requests signed and
  serialised before the clock starts): accepted = durable in SQL; then until every one is
  anchored in a Merkle batch on-chain (bodies in the store, batch document, anchor tx);
* ``onchain_per_tx``: the baseline the ledger replaces, one registry ``anchor`` chain
  transaction per business transaction, on the same anvil through web3.py (skipped, with
  the reason, when the anvil binary is absent; the node then uses its embedded chain);
* ``anchor_gas_per_tx``: gas of the batch phase's anchor transactions / its transactions;
* ``proof_verify``: one RFC 9162 inclusion-proof check.

Runs in under 60 s with no arguments; ``--full`` sends more transactions. Prints the
headline figures last, one per line, as ``metric: value unit``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_keys import KeyAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.ledger.hasher import hash_leaf  # noqa: E402
from node.ledger.proof import inclusion_proof  # noqa: E402
from node.ledger.transaction import (  # noqa: E402
    BusinessTx,
    Domain,
    compute_digest,
    typed_data,
    verify_signed_tx,
)
from node.ledger.verify import verify_inclusion  # noqa: E402
from tests.support.node import domain_of, free_port, in_process_node  # noqa: E402

ANVIL_BIN = (
    Path(__file__).resolve().parents[1]
    / "contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
)
SINGLE_CLIENTS = 64
SINGLE_SECONDS, SINGLE_SECONDS_FULL = 4.0, 10.0
BATCH_COUNT, BATCH_COUNT_FULL = 10_000, 100_000
ONCHAIN_SECONDS = 5.0
V_OFFSET = 27
KEYS = KeyAPI()


def sign_fast(domain: Domain, tx: BusinessTx, key: Any) -> bytes:
    """Return a wallet-style (v = 27/28) signature, via eth-keys on the digest."""
    vrs = key.sign_msg_hash(compute_digest(domain, tx))
    return vrs.to_bytes()[:64] + bytes([vrs.v + V_OFFSET])


def submissions(domain: Domain, wallet: Any, count: int, first_nonce: int) -> list[dict[str, Any]]:
    """Return ``count`` signed submission bodies from ``wallet``."""
    key = KEYS.PrivateKey(bytes(wallet.key))
    party = Account.create().address
    out = []
    now = int(time.time())
    for i in range(count):
        values = {
            "subsystem": "main", "kind": "invoice", "parties": [party], "amount": f"{i}.5",
            "currency": "EUR", "memo": "bench", "payload": "", "nonce": first_nonce + i,
            "timestamp": now,
        }  # fmt: skip
        tx = BusinessTx(**{**values, "parties": (party,)})  # type: ignore[arg-type]
        sig = sign_fast(domain, tx, key)
        out.append({"transaction": values, "signer": wallet.address, "signature": "0x" + sig.hex()})
    return out


def to_tx(body: dict[str, Any]) -> tuple[BusinessTx, bytes]:
    """Return the value object and signature of a submission body."""
    t = body["transaction"]
    return BusinessTx(**{**t, "parties": tuple(t["parties"])}), bytes.fromhex(body["signature"][2:])


def bench_verify(domain: Domain, bodies: list[dict[str, Any]]) -> tuple[float, float]:
    """Return (fast, eth-account) signature checks per second."""
    txs = [to_tx(b) for b in bodies]
    start = time.perf_counter()
    for tx, sig in txs:
        verify_signed_tx(domain, tx, sig)
    fast = len(txs) / (time.perf_counter() - start)
    from eth_account.messages import encode_typed_data

    sample = txs[: max(1, len(txs) // 10)]
    start = time.perf_counter()
    for tx, sig in sample:
        Account.recover_message(
            encode_typed_data(full_message=typed_data(domain, tx)), signature=sig
        )
    slow = len(sample) / (time.perf_counter() - start)
    return fast, slow


def wait_all_anchored(node: Any, timeout: float = 600) -> float:
    """Wait until nothing is pending; return the time it happened (perf_counter)."""
    deadline = time.monotonic() + timeout
    while node.ledger.pending_count():
        if time.monotonic() > deadline:
            raise TimeoutError("leaves still pending")
        with node.ledger.changed:
            node.ledger.changed.wait(0.05)
    return time.perf_counter()


def bench_single(url: str, node: Any, clients: int, seconds: float) -> dict[str, float]:
    """Return the figures of one single-POST phase (``bench/single.py``): ``clients``
    concurrent clients, each from its own 127.0.0.x and wallet (made participants here),
    after an unmeasured warm-up phase as ``bench/single.py`` runs one (the node starts the
    workers that check the bodies of concurrent requests once it sees such requests)."""
    from bench.single import WARM_UP_SECONDS, phase

    wallets = [Account.create() for _ in range(clients)]
    for wallet in wallets:
        node.registry.add_participant("main", wallet.address)
    nonces = [0] * clients
    phase(url, os.getpid(), wallets, nonces, clients, WARM_UP_SECONDS)
    return phase(url, os.getpid(), wallets, nonces, clients, seconds)


def _batch_client(url: str, payloads: list[bytes], ready: Any, go: Any, out: Any) -> None:
    """Client process: wait for ``go``, POST every pre-serialised request, report results."""
    bad = 0
    latencies = []
    with httpx.Client(base_url=url, timeout=300) as client:
        client.get("/health")  # connect before the clock starts
        ready.set()
        go.wait()
        for payload in payloads:
            t0 = time.perf_counter()
            response = client.post(
                "/api/v1/transactions/batch",
                content=payload,
                headers={"content-type": "application/json"},
            )
            latencies.append(time.perf_counter() - t0)
            bad += int(response.json()["rejected"])
    out.put((bad, latencies))


def bench_batch(
    url: str, node: Any, bodies: list[dict[str, Any]], per_request: int, clients: int = 2
) -> tuple[float, float, int, list[float]]:
    """Return (accepted tx/s, anchored tx/s, errors, request latencies in s).

    The clients run in their own processes (so they do not share the node's GIL) and send
    requests signed and serialised before the clock starts.
    """
    import json
    import multiprocessing

    requests = [
        json.dumps({"items": bodies[i : i + per_request]}).encode()
        for i in range(0, len(bodies), per_request)
    ]
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    readies = [context.Event() for _ in range(clients)]
    procs = [
        context.Process(target=_batch_client, args=(url, requests[k::clients], readies[k], go, out))
        for k in range(clients)
    ]
    for proc in procs:
        proc.start()
    for ready in readies:
        if not ready.wait(120):
            raise TimeoutError("bench client did not start")
    # the bench's own objects (the signed bodies, ~150,000 containers) live in the node's
    # process: out of the collector's sight, as a node process freezes its own at start (or
    # every full collection during the phase would walk them), with a node's thresholds
    from node.api.main import tune_gc  # here: the client processes re-import this module

    tune_gc()
    start = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    accepted_at = time.perf_counter()
    anchored_at = wait_all_anchored(node)
    for proc in procs:
        proc.join(30)
    return (
        len(bodies) / (accepted_at - start),
        len(bodies) / (anchored_at - start),
        sum(bad for bad, _ in results),
        [latency for _, lat in results for latency in lat],
    )


@contextlib.contextmanager
def running_anvil() -> Iterator[str | None]:
    """Yield the RPC URL of an anvil on a free port (None, with the reason printed, when the
    anvil binary is absent); stop it at the end."""
    if not ANVIL_BIN.exists():
        print(f"anvil skipped: binary absent at {ANVIL_BIN} (npm ci in contracts/)")
        yield None
        return
    from web3 import Web3

    port = free_port()
    proc = subprocess.Popen(
        [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(port), "--accounts", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        w3 = Web3(Web3.HTTPProvider(url))
        deadline = time.monotonic() + 15
        while not w3.is_connected():
            if time.monotonic() > deadline:
                raise TimeoutError("anvil did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bench_onchain_per_tx(url: str, seconds: float) -> float:
    """Return business tx/s when each is its own registry ``anchor`` tx on anvil at ``url``."""
    from web3 import Web3

    from node.chain.registry import Registry

    w3 = Web3(Web3.HTTPProvider(url))
    account = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])  # type: ignore[arg-type]
    registry = Registry.deploy(w3, account, 100)
    registry.register_node("http://bench", 1, 1, "main")
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        registry.anchor("", (done + 1).to_bytes(32, "big"), done + 1, 1, "bafy-bench")
        done += 1
    return done / (time.perf_counter() - start)


def bench_proof_verify(count: int = 2_000) -> float:
    """Return the mean time of one inclusion-proof check, in microseconds."""
    leaves = [hash_leaf(i.to_bytes(8, "big")) for i in range(4096)]
    from node.ledger.proof import compute_root

    root = compute_root(leaves)
    proofs = [(i, inclusion_proof(i, leaves)) for i in range(0, 4096, 4096 // 64)]
    start = time.perf_counter()
    for n in range(count):
        index, path = proofs[n % len(proofs)]
        verify_inclusion(index, len(leaves), leaves[index], path, root)
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="send more transactions")
    parser.add_argument("--count", type=int, default=None, help="transactions, batch phase")
    parser.add_argument("--batch", type=int, default=1_000, help="transactions per request")
    parser.add_argument("--clients", type=int, default=2, help="batch client processes")
    parser.add_argument("--group", type=int, default=8_192, help="most leaves per anchor")
    parser.add_argument(
        "--chain",
        choices=("anvil", "embedded"),
        default="anvil",
        help="the node's chain: the baseline's anvil (default) or its embedded py-evm chain",
    )
    parser.add_argument(
        "--verify-workers",
        type=int,
        default=None,
        help="the node's signature-check worker processes (default: the node's; 0: in-process)",
    )
    args = parser.parse_args()
    workers = {} if args.verify_workers is None else {"verify_workers": args.verify_workers}
    batch_count = args.count or (BATCH_COUNT_FULL if args.full else BATCH_COUNT)
    single_seconds = SINGLE_SECONDS_FULL if args.full else SINGLE_SECONDS

    print(f"eth-keys backend: {type(KEYS.backend).__name__}")
    with contextlib.ExitStack() as stack:
        anvil = stack.enter_context(running_anvil())
        onchain = None if anvil is None else bench_onchain_per_tx(anvil, ONCHAIN_SECONDS)
        node_chain = anvil if args.chain == "anvil" else None
        print(f"node chain: {'anvil (JSON-RPC)' if node_chain else 'embedded py-evm'}")
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        running = stack.enter_context(
            in_process_node(
                Path(tmp) / "data",
                init={"registry": None},
                batch_max=max(args.batch, args.group),
                rate_limit=0,
                **workers,
                **({"chain_url": node_chain} if node_chain else {}),
            )
        )
        node = running.node
        if node.ledger.verifier is not None:  # spawn the workers before the clock starts
            node.ledger.verifier.warm()
        print(f"verify workers: {node.ledger.verifier.workers if node.ledger.verifier else 0}")
        domain = domain_of(running.url)
        wallet = Account.create()
        node.registry.add_participant("main", wallet.address)
        t0 = time.perf_counter()
        batch = submissions(domain, wallet, batch_count, 0)
        sign_rate = batch_count / (time.perf_counter() - t0)
        verify_fast, verify_slow = bench_verify(domain, batch[:2_000])
        single = bench_single(running.url, node, SINGLE_CLIENTS, single_seconds)
        single_errors = int(single["errors"])
        anchors_before = node.registry.anchor_count()
        accepted, anchored, batch_errors, latencies = bench_batch(
            running.url, node, batch, args.batch, args.clients
        )
        gas = 0
        anchors_after = node.registry.anchor_count()
        for index in range(anchors_before, anchors_after):
            row = node.ledger.anchors(before=index + 1, limit=1)[0]
            gas += int(node.chain.w3.eth.get_transaction_receipt(row.chain_tx_hash)["gasUsed"])
        anchors_made = anchors_after - anchors_before
    proof_us = bench_proof_verify()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"signing (bench clients): {sign_rate:.0f} tx/s")
    print(f"single: {single['ok']:.0f} tx in {single_seconds:.0f} s, {SINGLE_CLIENTS} clients, "
          f"p50 {single['p50']:.0f} ms, p99 {single['p99']:.0f} ms; "
          f"batch: {batch_count} tx in requests of "
          f"{args.batch}, {args.clients} client processes, {anchors_made} anchors; "
          f"batch request p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")  # fmt: skip
    print(f"verify_eth_account: {verify_slow:.0f} tx/s")
    print(f"verify: {verify_fast:.0f} tx/s")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"ingest_single_durable: {single['durable']:.0f} tx/s")
    print(f"ingest_single_anchored: {single['anchored']:.0f} tx/s")
    print(f"ingest_single_p99: {single['p99']:.0f} ms")
    print(f"ingest_batch_durable: {accepted:.0f} tx/s")
    print(f"ingest_batch_anchored: {anchored:.0f} tx/s")
    if onchain is not None:
        print(f"onchain_per_tx_anvil: {onchain:.1f} tx/s")
        print(f"batch_vs_onchain: {anchored / onchain:.0f} x")
    print(f"anchor_gas_per_tx: {gas / batch_count:.1f} gas")
    print(f"proof_verify: {proof_us:.1f} us")
    print(f"ingest_errors: {single_errors + batch_errors} count (single {single_errors}, "
          f"batch {batch_errors})")  # fmt: skip


if __name__ == "__main__":
    main()
