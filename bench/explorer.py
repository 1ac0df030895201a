"""Explorer query latency with a large index: p50/p99 over HTTP on 127.0.0.1.

Build (in-process, on a fresh node data directory: embedded py-evm chain, embedded store,
SQLite WAL index):

* ``--count`` business transactions (default 1,000,000) are signed with throwaway keys
  (EIP-712 digest, eth-keys/coincurve, 2 worker processes): 2,000 signers, 20 subsystems and
  5,000 parties with skewed popularity, 6 kinds, signed timestamps one every 30 s (± 1 h).
* **Bulk path** (documented, instead of ``POST /transactions/batch`` + the anchorer, which
  would take hours at this size): per ``--batch`` leaves, exactly the rows the ingest path
  and the anchorer write — ``node.ledger.service.row_values`` (the function the batch endpoint
  inserts with), parties, leaf index, status ``anchored`` — with a real anchor: the batch
  document is stored, ``Registry.anchor`` is mined on the chain, and its ``anchors`` row is
  written as the anchorer writes it. Not done: participant checks and signature recovery
  (``bench/ingest.py`` measures those), leaf bodies in the content store (no explorer query
  reads them).
* The Merkle tree is persisted (``node.ledger.tree.catch_up``, timed).

Measure: the node is restarted as a real process (``python -m node.cli.main up``) and each
query below is sent ``--samples`` times, one at a time, with random parameters; p50/p99 of
the full response time (CSV: time to the first 50 rows, one page). Prints one line per
query and the node's RSS (VmRSS, VmHWM) after the run.

    python bench/explorer.py                       # 1,000,000 transactions (~10 min build)
    python bench/explorer.py --count 100000 --keep /tmp/explorer-100k   # reuse with --reuse
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.config import Settings  # noqa: E402
from node.db.models import Anchor, BusinessTransaction, TransactionParty  # noqa: E402
from node.ledger import tree  # noqa: E402
from node.ledger.batch import Batch  # noqa: E402
from node.ledger.hasher import hash_leaf  # noqa: E402
from node.ledger.proof import CompactRange  # noqa: E402
from node.ledger.service import SYSTEM_LOG, compute_leaf_cid, row_values  # noqa: E402
from node.ledger.transaction import (  # noqa: E402
    BusinessTx,
    Domain,
    SignedBusinessTx,
    TxId,
    compute_digest,
)
from tests.support.node import NodeProcess, free_port  # noqa: E402

SIGNERS = 2_000
PARTIES = 5_000
SUBSYSTEMS = [f"sub{i:02d}" for i in range(20)]
KINDS = ["invoice", "payment", "credit-note", "order", "receipt", "refund"]
KINDS_WEIGHTS = [40, 30, 5, 15, 8, 2]
T0 = 1_700_000_000
SECONDS_PER_TX = 30
CHUNK = 10_000
V_OFFSET = 27
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _key(i: int) -> bytes:
    return hashlib.sha256(b"collegium-bench-explorer-signer" + i.to_bytes(4, "big")).digest()


def _party(i: int) -> str:
    digest = hashlib.sha256(b"collegium-bench-explorer-party" + i.to_bytes(4, "big")).digest()
    from eth_utils import to_checksum_address

    return str(to_checksum_address(digest[:20]))


def _zipf_index(rng: random.Random, n: int) -> int:
    """A skewed choice in [0, n): a few very popular values, a long tail of rare ones."""
    return min(n - 1, int(n ** rng.random()) - 1)


def make_chunk(args: tuple[int, int, int, str]) -> list[tuple[dict[str, Any], list[str]]]:
    """Return the index rows (``row_values``) and parties of transactions [first, first+count)."""
    from eth_keys import KeyAPI

    first, count, chain_id, registry = args
    keys = KeyAPI()
    domain = Domain(chain_id, registry)
    rng = random.Random(first)
    out = []
    for k in range(first, first + count):
        signer_i = k % SIGNERS
        key = keys.PrivateKey(_key(signer_i))
        tx = BusinessTx(
            subsystem=SUBSYSTEMS[_zipf_index(rng, len(SUBSYSTEMS))],
            kind=rng.choices(KINDS, KINDS_WEIGHTS)[0],
            parties=tuple(
                _party(_zipf_index(rng, PARTIES)) for _ in range(rng.choice((1, 1, 2, 3)))
            ),
            amount=f"{rng.randrange(1, 10**7)}.{rng.randrange(100):02d}",
            currency=rng.choice(("EUR", "EUR", "USD", "CHF")),
            memo=f"bench {k}",
            payload="",
            nonce=k // SIGNERS,
            timestamp=T0 + k * SECONDS_PER_TX + rng.randrange(-3600, 3600),
        )
        digest = compute_digest(domain, tx)
        vrs = key.sign_msg_hash(digest)
        signature = vrs.to_bytes()[:64] + bytes([vrs.v + V_OFFSET])
        signed = SignedBusinessTx(
            domain, tx, signature, key.public_key.to_checksum_address(), TxId("0x" + digest.hex())
        )
        body = signed.encode()
        received = EPOCH + timedelta(seconds=tx.timestamp + rng.randrange(1, 5))
        out.append((row_values(signed, body, compute_leaf_cid(body), received), list(tx.parties)))
    return out


def build(data_dir: Path, password: str, count: int, batch: int) -> dict[str, float]:
    """Create a node in ``data_dir`` and fill its index with ``count`` anchored transactions."""
    from node.runtime import init_node, open_node

    settings = Settings(data_dir=data_dir, port=free_port(), sync=False)
    init_node(settings, password)
    node = open_node(settings, password)
    if node.follower is not None:  # not needed while bulk-loading (it would wait for locks)
        node.follower.stop()
    started = time.perf_counter()
    frontier = CompactRange()
    try:
        domain = node.ledger.domain
        args = [
            (first, min(CHUNK, count - first), domain.chain_id, domain.verifying_contract)
            for first in range(0, count, CHUNK)
        ]
        pending: list[tuple[dict[str, Any], list[str]]] = []
        with ProcessPoolExecutor(max_workers=2) as pool:
            for chunk in pool.map(make_chunk, args):
                pending.extend(chunk)
                while len(pending) >= batch or (pending and frontier.size + len(pending) == count):
                    _anchor(node, pending[:batch], frontier)
                    del pending[:batch]
                    print(f"  {frontier.size:>9,} anchored "
                          f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        with node.sessions() as session:
            tree.catch_up(session, "")
            session.commit()
        tree_seconds = time.perf_counter() - started
    finally:
        node.close()
    return {"load_s": loaded, "tree_catch_up_s": tree_seconds}


def _anchor(
    node: Any, items: list[tuple[dict[str, Any], list[str]]], frontier: CompactRange
) -> None:
    """Write one batch as the anchorer would: leaf indexes, batch document, anchor, rows."""
    first = frontier.size
    for values, _ in items:
        frontier.append(hash_leaf(values["body"]))
    document = Batch(
        first,
        tuple(v["cid"] for v, _ in items),
        tuple(int((v["received_at"] - EPOCH) / timedelta(microseconds=1)) for v, _ in items),
    )
    batch_cid = node.store.add_bytes(document.encode())
    root = frontier.root()
    receipt = node.registry.anchor(SYSTEM_LOG, root, frontier.size, len(items), batch_cid)
    from sqlalchemy import insert

    with node.sessions() as session:
        anchor = session.merge(
            Anchor(
                index=int(receipt.index), root="0x" + root.hex(), tree_size=frontier.size,
                count=len(items), batch_cid=batch_cid, subsystem=SYSTEM_LOG,
                node=node.ledger.node_address, block_number=int(receipt.block_number),
                chain_tx_hash="0x" + bytes(receipt.tx_hash).hex(),
            )
        )  # fmt: skip
        rows = []
        for offset, (values, _) in enumerate(items):
            rows.append(
                {
                    **values,
                    "status": "anchored",
                    "leaf_index": first + offset,
                    "anchor_index": anchor.index,
                }  # fmt: skip
            )
        seqs = session.scalars(
            insert(BusinessTransaction).returning(
                BusinessTransaction.seq, sort_by_parameter_order=True
            ),
            rows,
        ).all()
        links = [
            {"tx_seq": seq, "position": i, "address": a}
            for seq, (_, parties) in zip(seqs, items, strict=True)
            for i, a in enumerate(parties)
        ]
        session.execute(insert(TransactionParty), links)
        session.commit()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str, samples: int, count: int, seed: int, pid: int, only: Sequence[str] = ()
) -> list[tuple[str, float, float, float]]:
    """Return (query, p50 ms, p99 ms, node CPU ms per request) for every explorer query.

    The node's CPU time per request (from /proc, all its threads) is what the query costs
    the node, whatever else runs on the machine; the latencies include the waits."""
    rng = random.Random(seed)
    client = httpx.Client(base_url=url, timeout=60)
    api = "/api/v1/transactions"
    first_page = client.get(api, params={"limit": 500}).json()["items"]
    max_seq = first_page[0]["seq"]
    ids: list[str] = []
    while len(ids) < samples:  # random transactions, found by cursor
        page = client.get(api, params={"before": rng.randrange(2, max_seq + 1), "limit": 1})
        ids.extend(item["id"] for item in page.json()["items"])
    anchors = client.get("/api/v1/anchors", params={"limit": 500}).json()
    span = count * SECONDS_PER_TX
    from eth_keys import KeyAPI

    keys = KeyAPI()
    signers = [keys.PrivateKey(_key(i)).public_key.to_checksum_address() for i in range(SIGNERS)]

    def party() -> str:
        return _party(_zipf_index(rng, PARTIES))

    def signer() -> str:

        return str(signers[rng.randrange(SIGNERS)])

    def deep() -> int:
        return rng.randrange(1, max_seq // 10)

    def day() -> dict[str, int]:
        since = T0 + rng.randrange(span)
        return {"since": since, "until": since + 86_400}

    def month() -> dict[str, int]:
        since = T0 + rng.randrange(span)
        return {"since": since, "until": since + 30 * 86_400}

    queries: list[tuple[str, Callable[[], Any]]] = [
        ("list, newest page", lambda: client.get(api)),
        ("list, subsystem", lambda: client.get(api, params={"subsystem": rng.choice(SUBSYSTEMS)})),
        ("list, kind", lambda: client.get(api, params={"kind": rng.choice(KINDS)})),
        ("list, party", lambda: client.get(api, params={"party": party()})),
        ("list, signer", lambda: client.get(api, params={"signer": signer()})),
        ("list, time range 1 day", lambda: client.get(api, params=day())),
        ("list, time range 30 days", lambda: client.get(api, params=month())),
        ("list, since only", lambda: client.get(api, params={"since": day()["since"]})),
        ("list, until only", lambda: client.get(api, params={"until": day()["until"]})),
        ("list, anchor", lambda: client.get(api, params={"anchor": rng.choice(anchors)["index"]})),
        (
            "list, subsystem + kind + 30 days",
            lambda: client.get(
                api,
                params={"subsystem": rng.choice(SUBSYSTEMS), "kind": rng.choice(KINDS), **month()},
            ),
        ),  # fmt: skip
        ("cursor page deep (last 10%)", lambda: client.get(api, params={"before": deep()})),
        (
            "cursor page deep, subsystem",
            lambda: client.get(api, params={"before": deep(), "subsystem": rng.choice(SUBSYSTEMS)}),
        ),  # fmt: skip
        (
            "cursor page deep, party",
            lambda: client.get(api, params={"before": deep(), "party": party()}),
        ),  # fmt: skip
        ("one transaction (search by id)", lambda: client.get(f"{api}/{rng.choice(ids)}")),
        ("one transaction's proof", lambda: client.get(f"{api}/{rng.choice(ids)}/proof")),
        (
            "search by address (signer + party)",
            lambda: (
                client.get(api, params={"signer": signer()}),
                client.get(api, params={"party": party()}),
            ),
        ),  # fmt: skip
        ("CSV, first 50 rows", lambda: _csv_first_chunk(client, api, {})),
        (
            "CSV, subsystem, first 50 rows",
            lambda: _csv_first_chunk(client, api, {"subsystem": rng.choice(SUBSYSTEMS)}),
        ),  # fmt: skip
        ("/explorer HTML page", lambda: client.get("/explorer")),
        ("anchors page", lambda: client.get("/api/v1/anchors")),
    ]
    idle_before, idle_started = cpu_seconds(pid), time.perf_counter()
    time.sleep(5)
    idle = (cpu_seconds(pid) - idle_before) / (time.perf_counter() - idle_started)
    print(f"node CPU while idle: {idle * 1000:.0f} ms/s (subtracted below)", flush=True)
    results = []
    for name, call in queries:
        if only and not any(part in name for part in only):
            continue
        call()  # warm
        times = []
        cpu_before, started_all = cpu_seconds(pid), time.perf_counter()
        for _ in range(samples):
            started = time.perf_counter()
            answer = call()
            times.append((time.perf_counter() - started) * 1000)
            for response in answer if isinstance(answer, tuple) else (answer,):
                if isinstance(response, httpx.Response):
                    assert response.status_code == 200, (name, response.status_code, response.text)
        busy = cpu_seconds(pid) - cpu_before - idle * (time.perf_counter() - started_all)
        cpu_ms = max(0.0, busy) * 1000 / samples
        results.append((name, statistics.median(times), percentile(times, 99), cpu_ms))
        print(
            f"{name:40s} p50 {results[-1][1]:7.1f} ms  p99 {results[-1][2]:7.1f} ms  "
            f"node CPU {cpu_ms:6.1f} ms/request  (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    client.close()
    return results


def _csv_first_chunk(client: httpx.Client, api: str, params: dict[str, Any]) -> httpx.Response:
    with client.stream("GET", api + ".csv", params=params) as response:
        assert response.status_code == 200
        received = 0
        for chunk in response.iter_bytes():
            received += chunk.count(b"\n")
            if received > 50:
                break
    return response


def proofs_side_by_side(index: Path, samples: int) -> None:
    """Inclusion proofs in-process: the SQL tree against the O(n) reference, same leaves;
    then the time to persist the whole tree from the leaf hashes (a fresh catch-up)."""
    from sqlalchemy import delete, select

    from node.db.models import MerkleHead, MerkleNode
    from node.db.session import create_db_engine, make_session_factory
    from node.ledger.proof import inclusion_proof

    engine = create_db_engine(f"sqlite:///{index}")
    sessions = make_session_factory(engine)
    rng = random.Random(3)
    with sessions() as session:
        size = tree.log_size(session, "")
        started = time.perf_counter()
        for _ in range(samples):
            tree.inclusion_path(session, "", rng.randrange(size), size)
        sql_ms = (time.perf_counter() - started) * 1000 / samples
        started = time.perf_counter()
        hashes = [
            bytes.fromhex(h[2:])
            for h in session.scalars(
                select(BusinessTransaction.leaf_hash)
                .where(BusinessTransaction.origin == "")
                .order_by(BusinessTransaction.leaf_index)
            )
        ]
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(3):
            i = rng.randrange(size)
            assert inclusion_proof(i, hashes) == tree.inclusion_path(session, "", i, size)
        reference_s = (time.perf_counter() - started) / 3
        session.execute(delete(MerkleNode))
        session.execute(delete(MerkleHead))
        started = time.perf_counter()
        tree.catch_up(session, "")
        catch_up_s = time.perf_counter() - started
        session.commit()
    engine.dispose()
    print(f"inclusion proof, SQL tree: {sql_ms:.2f} ms (mean of {samples}, tree of {size:,})")
    print(f"inclusion proof, O(n) reference: {reference_s:.2f} s + {load_s:.1f} s to load "
          f"{size:,} leaf hashes ({reference_s * 1000 / sql_ms:,.0f}x)")  # fmt: skip
    print(f"tree catch-up from scratch: {catch_up_s:.1f} s")


def rss(pid: int) -> dict[str, str]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {
        line.split(":")[0]: line.split(":")[1].strip()
        for line in status
        if line.startswith(("VmRSS", "VmHWM"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="leaves per anchor")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build into this directory and keep it")
    parser.add_argument("--reuse", action="store_true", help="measure the --keep directory")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="measure only the queries whose name contains this (repeatable)",
    )
    parser.add_argument("--no-proofs", action="store_true", help="skip the in-process proofs")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="collegium-explorer-"))
    data_dir = workdir / "node"
    password_file = workdir / "password"
    if not args.reuse:
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.write_text(secrets.token_hex(8))
        print(f"building {args.count:,} transactions in {data_dir}", flush=True)
        figures = build(data_dir, password_file.read_text(), args.count, args.batch)
        print(f"load: {figures['load_s']:.0f} s, tree catch-up: {figures['tree_catch_up_s']:.1f} s")
    index = data_dir / "index.sqlite"
    print(f"index: {index.stat().st_size / 2**20:,.0f} MiB", flush=True)
    # peer sync off: the bulk path leaves the leaf bodies out of the store, and the syncer
    # would keep looking for a million missing leaves (a core, all the time)
    env = dict(os.environ, COLLEGIUM_PASSWORD=password_file.read_text(), COLLEGIUM_SYNC="false")
    port = free_port()
    node = NodeProcess(f"http://127.0.0.1:{port}", data_dir, port, env)
    node.start()
    try:
        assert node.proc is not None
        print("node RSS after start:", rss(node.proc.pid), flush=True)
        measure(node.url, args.samples, args.count, seed=1, pid=node.proc.pid, only=args.only)
        print("node RSS after the run:", rss(node.proc.pid), flush=True)
    finally:
        node.stop()
    if not args.no_proofs:
        proofs_side_by_side(index, args.samples)


if __name__ == "__main__":
    main()
