"""Sustained mixed load on a 3-node loopback devnet: writes, explorer queries, gateway reads.

Starts anvil (one block a second) and three ``collegium up`` processes on 127.0.0.1
(``node.devnet.start_devnet``), signs the writes in advance, then for ``DURATION`` seconds
runs, concurrently and against all three nodes in turn:

* ``write``: ``POST /api/v1/transactions/batch`` with ``BATCH_ITEMS`` signed transactions;
* ``explorer``: ``GET /api/v1/transactions`` (newest page, by subsystem, by signer, next page);
* ``gateway``: ``GET /ipfs/{cid}`` of transaction bodies written to that node in a warm-up.

Writes are paced at ``WRITE_RATE`` tx/s offered (a rate the anchorers keep up with, so the
load is sustained, not a backlog); readers go as fast as their answers come. Bounded in time
(``DURATION``) and count (the pre-signed batches; ``MAX_READS`` per reader).
After the load it waits (bounded) until the last batch written to each node is anchored.
Prints throughput, p50/p99 latency per kind, errors (non-2xx answers, refused items,
transport errors), the RSS of each node process (psutil, peak of 1 s samples), and the
headline figures last as ``metric: value unit``. ``--full`` runs the load for 60 s.
The client runs on the same two cores as the nodes and anvil.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.devnet import Devnet, start_devnet  # noqa: E402
from node.ledger.transaction import BusinessTx, Domain, sign_tx  # noqa: E402

NODES = 3
DURATION = 20.0
FULL_DURATION = 60.0
BATCH_ITEMS = 50
WRITE_RATE = 500  # tx/s offered: batch k is sent at k x BATCH_ITEMS / WRITE_RATE s, or later
WRITERS = 2
EXPLORERS = 2
GATEWAY_READERS = 2
MAX_READS = 20_000
WARMUP_TXS = 30
ANCHOR_WAIT = 60.0
SETTINGS = {"COLLEGIUM_RATE_LIMIT": "0"}  # every client is 127.0.0.1 here
TIMEOUT = 30.0


@dataclass
class Kind:
    """Latencies (ms) and errors of one kind of request."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    items: int = 0  # transactions written (writes) or requests (reads)
    drain: float = 0.0  # writes: seconds after the load until the last batches were anchored
    unanchored: int = 0  # writes: nodes whose last batch was not anchored within ANCHOR_WAIT
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, ms: float, items: int, errors: int) -> None:
        with self.lock:
            self.latencies.append(ms)
            self.items += items
            self.errors += errors


def percentile(values: list[float], q: float) -> float:
    """Return the ``q`` quantile (0..1) of ``values`` (0 if empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def signed_items(domain: Domain, wallet: Any, count: int, subsystem: str = "main") -> list[dict]:
    """Return ``count`` signed submission bodies by ``wallet``."""
    now = int(time.time())
    out = []
    for _ in range(count):
        values: dict[str, Any] = {
            "subsystem": subsystem, "kind": "invoice", "parties": [wallet.address],
            "amount": "10.5", "currency": "EUR", "memo": "load", "payload": "",
            "nonce": secrets.randbelow(2**63), "timestamp": now,
        }  # fmt: skip
        tx = BusinessTx(**{**values, "parties": tuple(values["parties"])})
        signature = sign_tx(domain, tx, wallet.key)
        out.append(
            {"transaction": values, "signer": wallet.address, "signature": "0x" + signature.hex()}
        )
    return out


def domain_of(url: str) -> Domain:
    """Return the EIP-712 domain the node at ``url`` verifies against."""
    doc = httpx.get(url + "/api/v1/transactions/typed-data", timeout=10).json()["domain"]
    return Domain(int(doc["chainId"]), doc["verifyingContract"])


def wait_anchored(url: str, tx_id: str, timeout: float) -> float | None:
    """Return the seconds until ``tx_id`` is anchored at ``url`` (None after ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        r = httpx.get(f"{url}/api/v1/transactions/{tx_id}", timeout=10)
        if r.status_code == 200 and r.json()["status"] == "anchored":
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def warm_up(devnet: Devnet) -> dict[str, list[str]]:
    """Write a few transactions to each node and wait until they are anchored; return each
    node's URL -> the CIDs of the bodies it stored (what the gateway readers fetch there)."""
    last: list[tuple[str, str]] = []
    for node in devnet.nodes:
        items = signed_items(domain_of(node.url), devnet.operator, WARMUP_TXS)
        r = httpx.post(node.url + "/api/v1/transactions/batch", json={"items": items}, timeout=30)
        r.raise_for_status()
        result = r.json()["results"][-1]
        if result["status"] != 202:
            raise SystemExit(f"warm-up write refused by node{node.index}: {result}")
        last.append((node.url, result["id"]))
    cids: dict[str, list[str]] = {}
    for url, tx_id in last:
        if wait_anchored(url, tx_id, ANCHOR_WAIT) is None:
            raise SystemExit(f"warm-up transaction {tx_id} not anchored at {url}")
        page = httpx.get(url + f"/api/v1/transactions?limit={WARMUP_TXS}", timeout=10).json()
        cids[url] = [item["cid"] for item in page["items"]]
    return cids


def run_load(
    devnet: Devnet, duration: float, cids: dict[str, list[str]]
) -> tuple[dict[str, Kind], float]:
    """Run the mixed load for ``duration`` seconds; return the kinds and the elapsed time."""
    urls = [n.url for n in devnet.nodes]
    domain = domain_of(urls[0])
    batches_wanted = int(duration * WRITE_RATE) // BATCH_ITEMS
    items = signed_items(domain, devnet.operator, batches_wanted * BATCH_ITEMS)
    batches = [items[i : i + BATCH_ITEMS] for i in range(0, len(items), BATCH_ITEMS)]
    print(f"signed {len(items)} transactions", flush=True)
    kinds = {name: Kind(name) for name in ("write", "explorer", "gateway")}
    stop = threading.Event()
    queue = iter(enumerate(batches))
    start = time.monotonic() + 0.5  # the threads start first
    queue_lock = threading.Lock()
    last_ids: dict[str, str] = {}

    def timed(client: httpx.Client, kind: Kind, method: str, url: str, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            r = client.request(method, url, **kw)
        except httpx.HTTPError:
            kind.record((time.perf_counter() - start) * 1000, 0, 1)
            return None
        ms = (time.perf_counter() - start) * 1000
        if r.status_code >= 300:
            kind.record(ms, 0, 1)
            return None
        return ms, r

    def writer(offset: int) -> None:
        kind = kinds["write"]
        with httpx.Client(timeout=TIMEOUT) as client:
            for n in itertools.count(offset):
                if stop.is_set():
                    return
                with queue_lock:
                    due, batch = next(queue, (0, None))
                if batch is None:
                    return
                delay = start + due * BATCH_ITEMS / WRITE_RATE - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return
                url = urls[n % len(urls)]
                out = timed(client, kind, "POST", url + "/api/v1/transactions/batch",
                            json={"items": batch})  # fmt: skip
                if out is None:
                    continue
                ms, r = out
                results = r.json()["results"]
                ok = [x for x in results if x["status"] == 202]
                kind.record(ms, len(ok), len(results) - len(ok))
                if ok:
                    last_ids[url] = ok[-1]["id"]

    def explorer(offset: int) -> None:
        kind = kinds["explorer"]
        signer = devnet.operator.address
        queries = ["?limit=50", "?subsystem=main&limit=50", f"?signer={signer}&limit=20",
                   "?kind=invoice&limit=100"]  # fmt: skip
        with httpx.Client(timeout=TIMEOUT) as client:
            for n in range(offset, offset + MAX_READS):
                if stop.is_set():
                    return
                url = urls[n % len(urls)] + "/api/v1/transactions" + queries[n % len(queries)]
                out = timed(client, kind, "GET", url)
                if out is None:
                    continue
                ms, r = out
                cursor = r.json().get("next_cursor")
                kind.record(ms, 1, 0)
                if cursor is not None and n % 3 == 0:  # and one page deeper
                    deeper = timed(client, kind, "GET", f"{url}&before={cursor}")
                    if deeper is not None:
                        kind.record(deeper[0], 1, 0)

    def gateway(offset: int) -> None:
        kind = kinds["gateway"]
        with httpx.Client(timeout=TIMEOUT) as client:
            for n in range(offset, offset + MAX_READS):
                if stop.is_set():
                    return
                url = urls[n % len(urls)]
                cid = cids[url][(n * 7) % len(cids[url])]
                out = timed(client, kind, "GET", f"{url}/ipfs/{cid}")
                if out is not None:
                    kind.record(out[0], 1, 0)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    threads += [threading.Thread(target=explorer, args=(i,)) for i in range(EXPLORERS)]
    threads += [threading.Thread(target=gateway, args=(i,)) for i in range(GATEWAY_READERS)]
    for t in threads:
        t.start()
    stop.wait(max(0.0, start - time.monotonic()) + duration)
    stop.set()
    for t in threads:
        t.join(timeout=TIMEOUT)
    elapsed = time.monotonic() - start
    drain = [wait_anchored(url, tx_id, ANCHOR_WAIT) for url, tx_id in last_ids.items()]
    kinds["write"].drain = max((d for d in drain if d is not None), default=0.0)
    kinds["write"].unanchored = sum(d is None for d in drain)
    return kinds, elapsed


class RssSampler(threading.Thread):
    """Sample the RSS of each node process every second; keep the peak."""

    def __init__(self, devnet: Devnet) -> None:
        super().__init__(daemon=True)
        self.procs = {n.index: psutil.Process(n.proc.pid) for n in devnet.nodes if n.proc}
        self.peak = dict.fromkeys(self.procs, 0)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for index, proc in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peak[index] = max(self.peak[index], proc.memory_info().rss)
            self.stop.wait(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help=f"{FULL_DURATION:.0f} s of load")
    args = parser.parse_args()
    duration = FULL_DURATION if args.full else DURATION
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="collegium-load-") as tmp:
        devnet = start_devnet(Path(tmp), NODES, block_time=1, epoch_period=20, settings=SETTINGS)
        try:
            print(f"devnet: {NODES} nodes up in {time.monotonic() - started:.1f}s", flush=True)
            cids = warm_up(devnet)
            print(f"warm-up (anchored): {time.monotonic() - started:.1f}s", flush=True)
            sampler = RssSampler(devnet)
            sampler.start()
            kinds, elapsed = run_load(devnet, duration, cids)
            sampler.stop.set()
            sampler.join()
            rss_now = {n.index: psutil.Process(n.proc.pid).memory_info().rss
                       for n in devnet.nodes if n.proc}  # fmt: skip
        finally:
            devnet.stop()
    write = kinds["write"]
    print(
        f"load: {elapsed:.1f}s, {WRITERS} writers ({BATCH_ITEMS}/batch, {WRITE_RATE} tx/s "
        f"offered), {EXPLORERS} explorer clients and {GATEWAY_READERS} gateway readers "
        f"(unpaced), {NODES} nodes, 127.0.0.1"
    )
    for kind in kinds.values():
        rate = kind.items / elapsed
        unit = "tx/s" if kind.name == "write" else "req/s"
        p50 = statistics.median(kind.latencies or [0])
        p99 = percentile(kind.latencies, 0.99)
        print(f"{kind.name:9s} {kind.items:7d} ({rate:7.1f} {unit})  requests "
              f"{len(kind.latencies):6d}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
              f"errors {kind.errors}")  # fmt: skip
    print(
        f"last batches anchored {write.drain:.1f}s after the load "
        f"({write.unanchored} not within {ANCHOR_WAIT:.0f}s)"
    )
    for index in sorted(sampler.peak):
        print(
            f"node{index} rss: peak {sampler.peak[index] / 2**20:.0f} MiB, "
            f"end {rss_now[index] / 2**20:.0f} MiB"
        )
    errors = sum(k.errors for k in kinds.values()) + write.unanchored
    print(f"total: {time.monotonic() - started:.1f}s")
    print(f"write_throughput: {write.items / elapsed:.0f} tx/s")
    print(f"write_batch_p50: {statistics.median(write.latencies or [0]):.1f} ms")
    print(f"write_batch_p99: {percentile(write.latencies, 0.99):.1f} ms")
    for name in ("explorer", "gateway"):
        kind = kinds[name]
        print(f"{name}_throughput: {kind.items / elapsed:.0f} req/s")
        print(f"{name}_p50: {statistics.median(kind.latencies or [0]):.1f} ms")
        print(f"{name}_p99: {percentile(kind.latencies, 0.99):.1f} ms")
    print(f"errors: {errors} count")
    print(f"node_rss_max: {max(sampler.peak.values()) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
