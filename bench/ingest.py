"""Ingest throughput of one node: signed business transactions per second, end to end.

Starts a real node in-process (embedded py-evm chain, embedded store, SQLite index,
uvicorn on 127.0.0.1) and measures, side by side in one run:

* ``verify``: EIP-712 signature checks alone (the CPU floor of validation);
* ``ingest``: HTTP POST of signed transactions, each verified, committed to SQL,
  stored in the content store and anchored on-chain in its own chain transaction
  (the foundation's per-transaction anchoring; Merkle batches replace it later).

Runs in under 60 s with no arguments; ``--full`` sends more transactions.
Prints the headline figures last, one per line, as ``metric: value unit``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.ledger.transaction import BusinessTx, verify_signed_tx  # noqa: E402
from tests.support.node import domain_of, in_process_node, make_submission  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="send 1000 transactions")
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    count = args.count or (1000 if args.full else 150)

    with tempfile.TemporaryDirectory() as tmp, in_process_node(Path(tmp) / "data") as node:
        domain = domain_of(node.url)
        wallet = Account.create()
        bodies = [make_submission(domain, wallet, nonce=i) for i in range(count)]

        start = time.perf_counter()
        for body in bodies:
            tx = body["transaction"]
            verify_signed_tx(
                domain,
                BusinessTx(**{**tx, "parties": tuple(tx["parties"])}),
                bytes.fromhex(body["signature"][2:]),
            )
        verify_rate = count / (time.perf_counter() - start)

        def post(body: dict) -> int:  # type: ignore[type-arg]
            with httpx.Client(base_url=node.url, timeout=120) as client:
                return client.post("/api/v1/transactions", json=body).status_code

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            statuses = list(pool.map(post, bodies))
        elapsed = time.perf_counter() - start
        errors = sum(1 for s in statuses if s != 201)
        print(f"transactions: {count}, clients: {args.clients}, elapsed {elapsed:.1f} s")
        print(f"verify: {verify_rate:.0f} tx/s")
        print(f"ingest: {count / elapsed:.1f} tx/s")
        print(f"ingest_errors: {errors} count")


if __name__ == "__main__":
    main()
