"""Content store benchmark: embedded import and cat throughput, small-object adds.

Runs with no arguments in well under 60 s (``--full`` uses a 100 MiB file as issue 3 states).
Compares, side by side in one run, embedded import of a 64 MiB file (CIDv1 raw leaves and CIDv0)
with raw sha256 over the same bytes, and reports the hashing-cost ratio. Also measures peer sync
(a second embedded store pulling a 16 MiB file from the first one's trustless gateway, served by
another process as a peer's is, over real HTTP on 127.0.0.1, as one CAR stream with every block
hash-checked; ``--per-block`` adds, in the same run, the block-by-block path with grouped writes
and with one durable write per block, the path before CAR) and subsystem sealing (AES-256-GCM
seal/unseal, ECIES key wrap). Headline figures are printed last as ``metric: value unit``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.storage import EmbeddedStore  # noqa: E402

MIB = 1024 * 1024
SMALL_OBJECTS = 2000
SMALL_THREADS = 16
SYNC_MIB = 16
SYNC_ROUNDS = 5
SEAL_MIB = 16
WRAPS = 200


def _timed(run: object) -> float:
    start = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - start


class _OneRootChain:
    """A chain that references one CID and lists one peer (the bench measures transfer only)."""

    def __init__(self, root: str, peer: str) -> None:
        self.root, self.peer = root, peer

    def anchor_count(self) -> int:
        return 0

    def get_anchor(self, i: int) -> object:
        raise IndexError(i)

    def frontend_cid(self) -> str:
        return self.root

    def subsystems(self) -> list[str]:
        return []

    def subsystem_frontend(self, name: str) -> str:
        return ""

    def nodes(self) -> list[object]:
        from types import SimpleNamespace

        return [SimpleNamespace(address="0x" + "11" * 20, endpoint=self.peer)]


class _OneWritePerBlock:
    """The store as the old per-block path used it: one durable write per fetched block."""

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def put_blocks(self, blocks: list[tuple[str, bytes]]) -> None:
        for cid, data in blocks:
            self._store.put_block(cid, data)


_GATEWAY_PROCESS = """
import socket, sys, uvicorn
from fastapi import FastAPI
from node.api.routes import gateway
from node.storage import EmbeddedStore
app = FastAPI()
app.include_router(gateway.router)
app.state.store = EmbeddedStore(sys.argv[1])
server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
server.run(sockets=[sock])
"""


def _serve_gateway(root: Path) -> tuple[subprocess.Popen[str], int]:
    """Start a peer's gateway over the store at ``root`` in its own process (a peer is
    another node) on 127.0.0.1; return the process and its port."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen(
        [sys.executable, "-c", _GATEWAY_PROCESS, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/ipfs/x", timeout=1)
            return process, port
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "the peer's gateway did not start"
            time.sleep(0.05)


def bench_sync(base: Path, modes: tuple[str, ...]) -> dict[str, tuple[float, int]]:
    """Return {mode: (median MiB/s, blocks)} of a fresh store syncing one 16 MiB file from a
    peer's gateway, per mode: ``car`` (one CAR stream, batched durability), ``per_block``
    (raw blocks, 8 at a time, stored in groups) and ``per_block_old`` (raw blocks, one durable
    write each: the path before CAR). The modes alternate over ``SYNC_ROUNDS`` rounds after
    one warm-up sync, so load changes hit each mode alike."""
    from statistics import median

    source = EmbeddedStore(base / "sync-a")
    root = source.add_bytes(os.urandom(SYNC_MIB * MIB))
    expected = source.cat(root)
    source.close()
    server, port = _serve_gateway(base / "sync-a")
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    blocks: dict[str, int] = {}
    try:
        _sync_once(base / "sync-warm-up", root, port, modes[0], expected)
        for round_ in range(SYNC_ROUNDS):
            for mode in modes:
                sink = base / f"sync-b-{mode}-{round_}"
                elapsed, blocks[mode] = _sync_once(sink, root, port, mode, expected)
                rates[mode].append(SYNC_MIB / elapsed)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {mode: (median(rates[mode]), blocks[mode]) for mode in modes}


def _sync_once(path: Path, root: str, port: int, mode: str, expected: bytes) -> tuple[float, int]:
    """Return (seconds, blocks fetched) of one sync round of a fresh store at ``path``."""
    from node.chain.endpoints import PeerPolicy
    from node.replication.sync import Syncer

    chain = _OneRootChain(root, f"http://127.0.0.1:{port}")
    # the peer is on 127.0.0.1: the default policy refuses private addresses (SSRF)
    policy = PeerPolicy(allow_private=True)
    sink = EmbeddedStore(path)
    store = _OneWritePerBlock(sink) if mode == "per_block_old" else sink
    syncer = Syncer(store, chain, policy=policy)  # type: ignore[arg-type]
    syncer.fetcher.use_car = mode == "car"
    start = time.perf_counter()
    progress = syncer.run_once()
    elapsed = time.perf_counter() - start
    syncer.stop()
    assert progress.complete, progress
    assert sink.cat(root) == expected
    sink.close()
    return elapsed, progress.blocks_fetched


def bench_small_adds(base: Path) -> dict[str, float]:
    """Return 512-byte ``add_bytes`` per second: one caller at a time (one durable commit
    each), ``SMALL_THREADS`` concurrent callers (their adds share commits: group commit), and
    ``add_many`` in lists of 100 (one commit per list)."""
    from concurrent.futures import ThreadPoolExecutor

    payloads = [os.urandom(512) for _ in range(SMALL_OBJECTS)]
    sequential = EmbeddedStore(base / "small-seq")
    part = payloads[: SMALL_OBJECTS // 4]
    rates = {"sequential": len(part) / _timed(lambda: [sequential.add_bytes(p) for p in part])}
    concurrent = EmbeddedStore(base / "small-conc")
    chunks = [payloads[i::SMALL_THREADS] for i in range(SMALL_THREADS)]
    with ThreadPoolExecutor(SMALL_THREADS) as pool:
        rates["concurrent"] = SMALL_OBJECTS / _timed(
            lambda: list(pool.map(lambda c: [concurrent.add_bytes(p) for p in c], chunks))
        )
    many = EmbeddedStore(base / "small-many")
    rates["many"] = SMALL_OBJECTS / _timed(
        lambda: [many.add_many(payloads[i : i + 100]) for i in range(0, SMALL_OBJECTS, 100)]
    )
    return rates


def bench_seal() -> dict[str, float]:
    """Return seal/unseal MiB/s and ECIES key wraps per second."""
    from eth_account import Account

    from node.crypto import Recipient, compute_public_key, make_envelope, new_content_key
    from node.crypto.sealed import seal, unseal

    payload = os.urandom(SEAL_MIB * MIB)
    key = new_content_key()
    start = time.perf_counter()
    sealed = seal(key, "bench", 1, "bafy", payload)
    seal_rate = SEAL_MIB / (time.perf_counter() - start)
    start = time.perf_counter()
    assert unseal(key, sealed) == payload
    unseal_rate = SEAL_MIB / (time.perf_counter() - start)
    accounts = [Account.create() for _ in range(WRAPS)]
    recipients = [Recipient(a.address, compute_public_key(bytes(a.key))) for a in accounts]
    start = time.perf_counter()
    make_envelope("bench", 1, key, recipients)
    wrap_rate = WRAPS / (time.perf_counter() - start)
    return {"seal": seal_rate, "unseal": unseal_rate, "wraps": wrap_rate}


def main() -> None:
    size_mib = 100 if "--full" in sys.argv else 64
    size = size_mib * MIB
    data = os.urandom(size)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as scratch:
        base = Path(scratch)
        source = base / "input.bin"
        source.write_bytes(data)
        sha = _timed(lambda: hashlib.sha256(data).digest())
        figures: dict[str, float] = {}
        for version in (1, 0):
            store = EmbeddedStore(base / f"store-v{version}")
            start = time.perf_counter()
            cid = store.add_path(source, cid_version=version)
            figures[f"add_v{version}"] = size / MIB / (time.perf_counter() - start)
            start = time.perf_counter()
            store.add_path(source, cid_version=version, only_hash=True)
            figures[f"hash_v{version}"] = size / MIB / (time.perf_counter() - start)
            sink = hashlib.sha256()
            start = time.perf_counter()
            for piece in store.iter_cat(cid):
                sink.update(piece)
            figures[f"cat_v{version}"] = size / MIB / (time.perf_counter() - start)
            print(f"v{version}: {cid}")
        small_rates = bench_small_adds(base)
        modes = ("car", "per_block", "per_block_old") if "--per-block" in sys.argv else ("car",)
        try:
            sync = bench_sync(base, modes)
        except AssertionError as exc:  # the syncer found no peer (see docs/benchmarks.md)
            print(f"peer sync failed: {exc}")
            sync = {"car": (0.0, 0)}
    sealing = bench_seal()
    sha_rate = size / MIB / sha
    print(f"file: {size_mib} MiB random bytes; raw sha256 {sha_rate:.0f} MiB/s")
    for key, value in figures.items():
        print(f"  {key}: {value:.0f} MiB/s")
    print(
        f"hashing cost (only-hash v1 time / raw sha256 time): {sha_rate / figures['hash_v1']:.2f}x"
    )
    print(
        f"sync: {SYNC_MIB} MiB file, {sync['car'][1]} blocks fetched over HTTP, each hash-checked"
    )
    print(f"sealing: {SEAL_MIB} MiB payload; envelope for {WRAPS} participants")
    print(f"import_v1: {figures['add_v1']:.0f} MiB/s")
    print(f"import_v0: {figures['add_v0']:.0f} MiB/s")
    print(f"cat_v1: {figures['cat_v1']:.0f} MiB/s")
    print(f"only_hash_v1: {figures['hash_v1']:.0f} MiB/s")
    print(f"sha256_ratio: {sha_rate / figures['hash_v1']:.2f} x")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"small_adds_sequential: {small_rates['sequential']:.0f} adds/s")
    print(f"small_adds_many: {small_rates['many']:.0f} adds/s")
    print(f"small_adds: {small_rates['concurrent']:.0f} adds/s")
    print(f"peer_sync: {sync['car'][0]:.0f} MiB/s (median of {SYNC_ROUNDS})")
    for mode in ("per_block", "per_block_old"):
        if mode in sync:
            print(f"peer_sync_{mode}: {sync[mode][0]:.0f} MiB/s (median of {SYNC_ROUNDS})")
    print(f"seal: {sealing['seal']:.0f} MiB/s")
    print(f"unseal: {sealing['unseal']:.0f} MiB/s")
    print(f"key_wraps: {sealing['wraps']:.0f} wraps/s")


if __name__ == "__main__":
    main()
