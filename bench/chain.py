"""Bench: ETH transfers/s on the persistent embedded chain vs an in-memory eth-tester chain.

Both run in this process, interleaved round by round (the machine is shared, so
interleaving spreads noise evenly). Each transfer is pre-signed, then sent with
``eth_sendRawTransaction`` and its receipt fetched: one block per transaction (instant
mining), as the node does. The persistent chain runs with ``synchronous=FULL`` (the default:
fsync per request) and ``NORMAL`` (survives kill -9, not power loss).

Run: ``python bench/chain.py`` (< 60 s) or ``--full`` for more rounds. Headline figures are
printed last, one per line, as ``metric: value unit``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.chain.embedded import EmbeddedChain, Synchronous  # noqa: E402

GWEI = 10**9
ROUNDS = 5
TRANSFERS_PER_ROUND = 100
FULL_ROUNDS = 6
FULL_TRANSFERS_PER_ROUND = 400


class Target:
    """One chain under test: a web3, a funded sender, how many transfers it sent."""

    def __init__(self, name: str, w3: Web3, sender: LocalAccount, close: Callable[[], None]):
        self.name = name
        self.w3 = w3
        self.sender = sender
        self.chain_id = int(w3.eth.chain_id)
        self.nonce = int(w3.eth.get_transaction_count(sender.address))
        self.close = close
        self.rates: list[float] = []

    def run(self, count: int) -> float:
        """Send ``count`` pre-signed transfers, each waited for; return transfers/s."""
        sink = Account.create().address
        raws = []
        for i in range(count):
            tx: dict[str, Any] = {
                "nonce": self.nonce + i,
                "to": sink,
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 2 * GWEI,
                "maxPriorityFeePerGas": GWEI,
                "chainId": self.chain_id,
            }
            raws.append(self.sender.sign_transaction(tx).raw_transaction)
        self.nonce += count
        start = time.perf_counter()
        for raw in raws:
            tx_hash = self.w3.eth.send_raw_transaction(raw)
            self.w3.eth.get_transaction_receipt(tx_hash)
        rate = count / (time.perf_counter() - start)
        self.rates.append(rate)
        return rate


def open_persistent(root: Path, synchronous: Synchronous) -> Target:
    """Return a target over a fresh persistent embedded chain in ``root``."""
    sender: LocalAccount = Account.create()
    chain = EmbeddedChain.open(
        root / synchronous.lower(), [sender.address], synchronous=synchronous
    )
    return Target(f"embedded_persistent_{synchronous.lower()}", chain.w3, sender, chain.close)


def open_memory() -> Target:
    """Return a target over a fresh in-memory eth-tester chain."""
    w3 = Web3(EthereumTesterProvider())
    sender: LocalAccount = Account.create()
    tx_hash = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": sender.address, "value": 10**21}
    )
    w3.eth.wait_for_transaction_receipt(tx_hash)
    return Target("embedded_memory", w3, sender, lambda: None)


def main() -> None:
    """Run the bench and print the headline figures last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more rounds, more transfers")
    args = parser.parse_args()
    rounds = FULL_ROUNDS if args.full else ROUNDS
    per_round = FULL_TRANSFERS_PER_ROUND if args.full else TRANSFERS_PER_ROUND

    with tempfile.TemporaryDirectory(prefix="collegium-bench-chain-") as tmp:
        root = Path(tmp)
        targets = [open_persistent(root, "FULL"), open_persistent(root, "NORMAL"), open_memory()]
        for target in targets:  # warm-up: imports, caches, first blocks
            target.run(10)
            target.rates.clear()
        for round_ in range(rounds):
            line = "  ".join(f"{t.name}={t.run(per_round):6.1f}" for t in targets)
            print(f"round {round_ + 1}/{rounds} (tx/s, {per_round} transfers each): {line}")

        persistent = root / "full"
        head = targets[0].w3.eth.block_number
        db_bytes = sum(p.stat().st_size for p in persistent.iterdir() if p.is_file())
        for target in targets:
            target.close()
        start = time.perf_counter()
        reopened = EmbeddedChain.open(persistent)
        reopen_ms = (time.perf_counter() - start) * 1000
        assert reopened.w3.eth.block_number == head
        reopened.close()

    full, normal, memory = (statistics.median(t.rates) for t in targets)
    print(f"chain dir after {head} blocks: {db_bytes / 1e6:.1f} MB ({db_bytes / head:.0f} B/block)")
    print(f"embedded_persistent: {full:.1f} tx/s")
    print(f"embedded_persistent_normal_sync: {normal:.1f} tx/s")
    print(f"embedded_memory: {memory:.1f} tx/s")
    print(f"persistence_overhead: {memory / full:.2f} x")
    print(f"reopen: {reopen_ms:.0f} ms")


if __name__ == "__main__":
    main()
