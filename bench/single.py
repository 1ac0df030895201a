"""Single submissions, before vs after group commit: one ``POST /api/v1/transactions`` per
transaction from many concurrent clients, side by side in one run.

The code of an older commit (``--base``, default main before issue 14) is exported with
``git archive`` into a temporary directory (no worktree is touched); one node runs from it and
one from this tree, each in its own process (embedded py-evm chain, embedded store, SQLite
index, uvicorn on 127.0.0.1, rate limit off; the objects alive once started are frozen out of
the garbage collector's reach, as ``collegium up`` does). For each number of clients the two
nodes are measured alternately (``old``, ``new``, and with ``--full`` again ``new``, ``old``). Each
client is a thread with its own keep-alive connection bound to its own source address
``127.0.0.(k+2)`` and its own participant wallet; requests are signed and serialised before
the clock starts and sent by a minimal HTTP/1.1 writer (so the clients cost little CPU of the
2 cores). Clients run in ``CLIENT_PROCESSES`` processes. Both nodes run with
``require_participant = false`` (the participant check is one cached lookup per signer; adding
64 participants on-chain to each node would cost most of the 60 s).

Each node first gets a ``WARM_UP_SECONDS`` phase at the most clients, not measured: a node
starts its verifier's workers (which check the bodies of concurrent single submissions) in
the background once it sees concurrent requests, so the measured phases see it warm.

Per phase: ``durable`` = acknowledged (202) transactions / phase time (every 202 is committed
to SQL with ``synchronous=FULL``); ``anchored`` = the same count / time until nothing is pending
on the node; p50/p99 of the request latency; ``node CPU`` = CPU time (user + system) of the
node's process during the sending / acknowledged transactions — the figure least disturbed by
other work on a shared machine — and of the processes it started (``its workers'``: the
workers that check the bodies of concurrent requests and, from issue 14's session 12 on, the
SQLite writer process of the group commits); ``clients' CPU`` = the
same for the client processes (what the two cores have left for the node); ``anchors`` =
anchors the node made for the phase; ``node RSS`` = the node process's resident memory after
the phase (VmRSS; its peak since start, VmHWM, in brackets).
Prints the headline figures last as ``metric: value unit``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import submissions  # noqa: E402
from bench.trees import export  # noqa: E402
from tests.support.node import domain_of  # noqa: E402

DEFAULT_BASE = "be8b46f"  # main before issue 14 (single submissions committed one by one)
CLIENTS, CLIENTS_FULL = (8, 32, 64), (8, 32, 64)
PHASE_SECONDS, PHASE_SECONDS_FULL = 3.0, 8.0
# tx/s the clients could reach: bodies signed per phase = this x seconds
MAX_RATE, MAX_RATE_FULL = 1_500, 4_000
CLIENT_PROCESSES = 2
WARM_UP_SECONDS = 2.0  # one unmeasured phase per node first: its verifier workers started
SERVER = r"""
import sys, json, pathlib
sys.path.insert(0, sys.argv[1])
from tests.support.node import in_process_node
with in_process_node(pathlib.Path(sys.argv[2]), init={"registry": None}, rate_limit=0,
                     batch_max=8192, require_participant=False) as running:
    import gc
    gc.collect()
    gc.freeze()  # as a node process does once started (create_app(freeze_gc=True))
    print(running.url, flush=True)
    sys.stdin.read()
"""


def start_server(tree: Path, data: Path, pure_http: Path | None = None) -> subprocess.Popen:
    """Start a node from the code in ``tree`` (its URL is the first line it prints); with
    ``pure_http`` (see :func:`write_pure_http_shims`) uvicorn finds neither httptools nor
    uvloop and runs h11 on asyncio, as before they were dependencies."""
    env = dict(os.environ)
    if pure_http is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pure_http), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tree), str(data)],
        cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def write_pure_http_shims(into: Path) -> Path:
    """Write ``httptools`` and ``uvloop`` packages that fail to import (uvicorn's ``auto``
    then picks h11 and asyncio); return their directory."""
    for name in ("httptools", "uvloop"):
        (into / name).mkdir(parents=True)
        (into / name / "__init__.py").write_text(f"raise ImportError('{name} hidden (bench)')\n")
    return into


def server_url(proc: subprocess.Popen, tree: Path) -> str:
    """Return the URL a started node prints once healthy."""
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError(f"node from {tree} did not start")
    return url


def request_bytes(host: str, body: dict[str, Any]) -> bytes:
    """Return one serialised HTTP/1.1 keep-alive POST of ``body``."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST /api/v1/transactions HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def read_response(sock: socket.socket, buffer: bytearray) -> int:
    """Read one HTTP response from ``sock`` (leftovers stay in ``buffer``); return its status."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end]).decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    while len(buffer) < end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    del buffer[: end + length]
    return int(head.split(" ", 2)[1])


def client_process(
    port: int, jobs: list[tuple[str, list[bytes]]], seconds: float, ready: Any, go: Any, out: Any
) -> None:
    """Run one client thread per job (source address, requests) for ``seconds``; report
    (acknowledged, errors, latencies, CPU seconds)."""
    import threading

    results: list[tuple[int, int, list[float]]] = []
    lock = threading.Lock()
    sockets = []
    for address, _ in jobs:
        sock = socket.create_connection(("127.0.0.1", port), source_address=(address, 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sockets.append(sock)

    def run(sock: socket.socket, requests: list[bytes], stop_at: float) -> None:
        ok = bad = 0
        latencies: list[float] = []
        buffer = bytearray()
        for request in requests:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            sock.sendall(request)
            code = read_response(sock, buffer)
            latencies.append(time.perf_counter() - t0)
            if code in (201, 202):
                ok += 1
            else:
                bad += 1
        with lock:
            results.append((ok, bad, latencies))

    ready.set()
    go.wait()
    cpu_start = time.process_time()
    stop_at = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=run, args=(sock, requests, stop_at))
        for sock, (_, requests) in zip(sockets, jobs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sock in sockets:
        sock.close()
    out.put(
        (
            sum(r[0] for r in results),
            sum(r[1] for r in results),
            [x for r in results for x in r[2]],
            time.process_time() - cpu_start,
        )
    )


def pending(url: str) -> int:
    """Return the node's pending transactions (``/health``)."""
    health = httpx.get(url + "/health", timeout=30).json()
    return int(health["transactions"].get("pending", 0))


def anchors_made(url: str) -> int:
    """Return how many anchors the node's anchorer has made (``/health``)."""
    health = httpx.get(url + "/health", timeout=30).json()
    return int((health.get("log") or {}).get("anchors_made", 0))


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> tuple[float, float]:
    """Return the resident memory of process ``pid`` now and at its peak (VmRSS, VmHWM), MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def workers_cpu_seconds(pid: int) -> dict[int, float]:
    """Return the CPU time used so far by each process ``pid`` started (the node's verifier
    workers), by pid."""
    used = {}
    for child in psutil.Process(pid).children(recursive=True):
        try:
            used[child.pid] = cpu_seconds(child.pid)
        except OSError:  # it left
            continue
    return used


def phase(
    url: str,
    pid: int,
    wallets: list[Any],
    nonces: list[int],
    clients: int,
    seconds: float,
    max_rate: int = MAX_RATE,
) -> dict[str, float]:
    """Run one measured phase; return its figures."""
    domain = domain_of(url)
    host = url.removeprefix("http://")
    port = int(host.rsplit(":", 1)[1])
    per_client = max(20, int(max_rate * seconds / clients))
    jobs = []
    for k in range(clients):
        bodies = submissions(domain, wallets[k], per_client, nonces[k])
        nonces[k] += per_client
        jobs.append((f"127.0.0.{k + 2}", [request_bytes(host, b) for b in bodies]))
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    readies = [context.Event() for _ in range(CLIENT_PROCESSES)]
    procs = [
        context.Process(
            target=client_process,
            args=(port, jobs[i::CLIENT_PROCESSES], seconds, readies[i], go, out),
        )
        for i in range(CLIENT_PROCESSES)
    ]
    for proc in procs:
        proc.start()
    for ready in readies:
        if not ready.wait(120):
            raise TimeoutError("bench client did not start")
    anchors_before = anchors_made(url)
    start = time.perf_counter()
    cpu_start, workers_start = cpu_seconds(pid), workers_cpu_seconds(pid)
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    durable_at = time.perf_counter()
    cpu_used = cpu_seconds(pid) - cpu_start
    workers_used = sum(
        used - workers_start.get(child, 0.0) for child, used in workers_cpu_seconds(pid).items()
    )
    while pending(url):
        time.sleep(0.02)
    anchored_at = time.perf_counter()
    for proc in procs:
        proc.join(30)
    ok = sum(r[0] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    return {
        "ok": ok,
        "errors": sum(r[1] for r in results),
        "durable": ok / (durable_at - start),
        "anchored": ok / (anchored_at - start),
        "cpu_ms": cpu_used / max(ok, 1) * 1000,
        "workers_cpu_ms": workers_used / max(ok, 1) * 1000,
        "client_cpu_ms": sum(r[3] for r in results) / max(ok, 1) * 1000,
        "anchors": anchors_made(url) - anchors_before,
        "rss_mib": rss_mib(pid)[0],
        "peak_rss_mib": rss_mib(pid)[1],
        "p50": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer phases, both orders")
    parser.add_argument("--base", default=DEFAULT_BASE, help="the 'old' commit")
    parser.add_argument("--clients", type=int, nargs="*", default=None)
    parser.add_argument("--new-only", action="store_true", help="measure this tree alone")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="phases in a row per node and client count (the index grows between them)",
    )
    parser.add_argument(
        "--old-pure-http",
        action="store_true",
        help="run the old node on h11 + asyncio (before httptools and uvloop were dependencies)",
    )
    args = parser.parse_args()
    clients = args.clients or (CLIENTS_FULL if args.full else CLIENTS)
    seconds = PHASE_SECONDS_FULL if args.full else PHASE_SECONDS
    most = max(clients)
    wallets = [Account.create() for _ in range(most)]
    figures: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"new": ROOT}
        if not args.new_only:
            trees["old"] = export(args.base, Path(tmp) / "old")
        shims = write_pure_http_shims(Path(tmp) / "pure-http") if args.old_pure_http else None
        procs = {
            n: start_server(tree, Path(tmp) / f"data-{n}", shims if n == "old" else None)
            for n, tree in trees.items()
        }
        servers = {name: (proc, server_url(proc, trees[name])) for name, proc in procs.items()}
        nonces = {name: [0] * most for name in trees}
        try:
            for name, (proc, url) in servers.items():  # warm-up, not measured (see the doc)
                phase(url, proc.pid, wallets, nonces[name], most, WARM_UP_SECONDS, MAX_RATE)
            for n in clients:
                order = [name for name in ("old", "new") if name in trees]
                if args.full:
                    order += order[::-1]
                for name in [name for name in order for _ in range(args.repeat)]:
                    proc, url = servers[name]
                    rate = MAX_RATE_FULL if args.full else MAX_RATE
                    result = phase(url, proc.pid, wallets, nonces[name], n, seconds, rate)
                    figures.setdefault((name, n), []).append(result)
                    print(f"{name} {n:>2} clients: {result['ok']:.0f} ok, "
                          f"{result['errors']:.0f} errors, durable {result['durable']:.0f} tx/s,"
                          f" anchored {result['anchored']:.0f} tx/s, p50 {result['p50']:.0f} ms,"
                          f" p99 {result['p99']:.0f} ms, node CPU {result['cpu_ms']:.2f} ms/tx "
                          f"+ its workers' {result['workers_cpu_ms']:.2f}, "
                          f"clients' CPU {result['client_cpu_ms']:.2f} ms/tx, "
                          f"{result['anchors']:.0f} anchors, node RSS {result['rss_mib']:.0f} MiB "
                          f"(peak {result['peak_rss_mib']:.0f})",
                          flush=True)  # fmt: skip
        finally:
            for proc, _ in servers.values():
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(60)
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for (name, n), runs in sorted(figures.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        best = max(runs, key=lambda r: r["durable"])
        print(f"single_{name}_{n}_durable: {best['durable']:.0f} tx/s")
        print(f"single_{name}_{n}_anchored: {best['anchored']:.0f} tx/s")
        print(f"single_{name}_{n}_p50: {best['p50']:.0f} ms")
        print(f"single_{name}_{n}_p99: {best['p99']:.0f} ms")
        print(f"single_{name}_{n}_node_cpu: {min(r['cpu_ms'] for r in runs):.2f} ms/tx")
        print(f"single_{name}_{n}_workers_cpu: {min(r['workers_cpu_ms'] for r in runs):.2f} ms/tx")
        print(f"single_{name}_{n}_client_cpu: {best['client_cpu_ms']:.2f} ms/tx")
        print(f"single_{name}_{n}_node_rss: {max(r['rss_mib'] for r in runs):.0f} MiB")
    for n in clients:
        if ("old", n) in figures:
            old = max(r["durable"] for r in figures[("old", n)])
            new = max(r["durable"] for r in figures[("new", n)])
            print(f"single_speedup_{n}: {new / old:.1f} x")
            old_cpu = min(r["cpu_ms"] for r in figures[("old", n)])
            new_cpu = min(r["cpu_ms"] for r in figures[("new", n)])
            print(f"single_cpu_ratio_{n}: {old_cpu / new_cpu:.1f} x")


if __name__ == "__main__":
    main()
