"""``kill -9`` a node while a steady stream of transactions is submitted to it, round after
round: no acknowledged transaction is ever lost, and ``collegium verify`` is clean after
each restart.

A writer thread submits signed transactions to the node, one at a time, alternating the
single endpoint (202) and the batch endpoint (10 items, each 202), and records every id
the node acknowledged. Once the first is acknowledged, after a further random 0.1-1.2 s
(seeded), the node is killed with SIGKILL:
in the middle of a commit, an IPFS import or an anchor transaction, whatever it was doing.
It is restarted on its data directory; every acknowledged id must be there. Every
``VERIFY_EVERY`` rounds and after the last, once the last acknowledged one is anchored (recovery
re-anchors or adopts what the crash interrupted) and nothing is pending,
``collegium verify --data-dir … --chain …`` must exit 0. In the rounds between, the node is
killed again without waiting for its anchors, so later kills also land in the middle of
anchoring what earlier rounds left.

Rounds: 10 in the suite, for its time budget; ``COLLEGIUM_CRASH_ROUNDS=20`` runs the issue's
twenty (they passed in the suite run of 84ff0a7 on 2026-12-07: 515 s beside the other worker,
load 3-13). A round is mostly the node's restart (~5-15 s on the 2-core VM); a verified round
adds the wait for anchoring and the verify run.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import httpx

from node.devnet import Devnet
from tests.devnet.support import health, run_verify, submission, wait_anchored, wait_until
from tests.support.node import domain_of

CRASH_ROUNDS = int(os.environ.get("COLLEGIUM_CRASH_ROUNDS", "10"))
VERIFY_EVERY = 5
KILL_AFTER = (0.1, 1.2)
STREAM_START = 30.0
BATCH_ITEMS = 10
ACCEPTED = (201, 202)
SEED = 8
PAGE = 500


class Writer(threading.Thread):
    """Submit transactions to ``url`` until the node stops answering; keep acknowledged ids."""

    def __init__(self, url: str, wallet: Any) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.wallet = wallet
        self.domain = domain_of(url)
        self.acked: list[str] = []
        self.requests = 0
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                try:
                    if self.requests % 2 == 0:
                        body = submission(self.domain, self.wallet)
                        r = client.post(self.url + "/api/v1/transactions", json=body)
                        if r.status_code in ACCEPTED:
                            self.acked.append(str(r.json()["id"]))
                    else:
                        items = [submission(self.domain, self.wallet) for _ in range(BATCH_ITEMS)]
                        r = client.post(
                            self.url + "/api/v1/transactions/batch", json={"items": items}
                        )
                        if r.status_code == 200:
                            self.acked += [
                                str(x["id"]) for x in r.json()["results"] if x["status"] == 202
                            ]
                    if r.status_code >= 500:
                        self.errors.append(f"{r.status_code} {r.text[:300]}")
                    self.requests += 1
                except httpx.TransportError:
                    return  # the node is gone: whatever had no answer was not acknowledged


def stored_ids(url: str, signer: str) -> set[str]:
    """Return the ids of every transaction by ``signer`` the node at ``url`` lists."""
    ids: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"signer": signer, "limit": PAGE}
        if cursor is not None:
            params["before"] = cursor
        page = httpx.get(url + "/api/v1/transactions", params=params, timeout=30).json()
        ids.update(str(item["id"]) for item in page["items"])
        cursor = page.get("next_cursor")
        if cursor is None:
            return ids


def test_no_acknowledged_transaction_is_lost_to_kill_9(devnet5: Devnet) -> None:
    node = devnet5.nodes[4]
    rng = random.Random(SEED)
    acked: list[str] = []
    for round_ in range(CRASH_ROUNDS):
        started = time.monotonic()
        writer = Writer(node.url, devnet5.operator)
        writer.start()
        wait_until(lambda w=writer: w.acked or w.errors, STREAM_START, "the stream to flow")
        time.sleep(rng.uniform(*KILL_AFTER))
        node.kill()
        writer.join(timeout=30)
        assert not writer.is_alive()
        assert not writer.errors, writer.errors
        node.restart()
        restarted = time.monotonic() - started
        missing = set(writer.acked) - stored_ids(node.url, devnet5.operator.address)
        assert not missing, f"round {round_}: {len(missing)} acknowledged transactions lost"
        acked += writer.acked
        print(f"crash round {round_}: {len(writer.acked)} acknowledged, "
              f"restarted +{restarted:.1f}s")  # fmt: skip
        if (round_ + 1) % VERIFY_EVERY and round_ + 1 < CRASH_ROUNDS:
            continue
        if acked:
            wait_anchored(node.url, acked[-1])
        # and whatever was committed but never acknowledged: nothing pending while verify runs
        wait_until(lambda: not health(node)["transactions"].get("pending"), 60, "no pending")
        anchored = time.monotonic() - started
        code, output = run_verify(node, devnet5)
        assert code == 0, f"round {round_}: verify failed\n{output}"
        print(f"  anchored +{anchored:.1f}s, verified +{time.monotonic() - started:.1f}s; "
              f"{output.strip().splitlines()[-1]}")  # fmt: skip
    assert len(acked) > CRASH_ROUNDS  # the stream was not idle
    lost = set(acked) - stored_ids(node.url, devnet5.operator.address)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged transactions lost"
