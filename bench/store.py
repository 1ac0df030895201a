"""Content store benchmark: embedded import and cat throughput, small-object adds.

Runs with no arguments in well under 60 s (``--full`` uses a 100 MiB file as issue 3 states).
Compares, side by side in one run, embedded import of a 64 MiB file (CIDv1 raw leaves and CIDv0)
with raw sha256 over the same bytes, and reports the hashing-cost ratio. Headline figures are
printed last as ``metric: value unit``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.storage import EmbeddedStore  # noqa: E402

MIB = 1024 * 1024
SMALL_OBJECTS = 2000


def _timed(run: object) -> float:
    start = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - start


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
        small = EmbeddedStore(base / "small")
        payloads = [os.urandom(512) for _ in range(SMALL_OBJECTS)]
        small_rate = SMALL_OBJECTS / _timed(lambda: [small.add_bytes(p) for p in payloads])
    sha_rate = size / MIB / sha
    print(f"file: {size_mib} MiB random bytes; raw sha256 {sha_rate:.0f} MiB/s")
    for key, value in figures.items():
        print(f"  {key}: {value:.0f} MiB/s")
    print(
        f"hashing cost (only-hash v1 time / raw sha256 time): {sha_rate / figures['hash_v1']:.2f}x"
    )
    print(f"import_v1: {figures['add_v1']:.0f} MiB/s")
    print(f"import_v0: {figures['add_v0']:.0f} MiB/s")
    print(f"cat_v1: {figures['cat_v1']:.0f} MiB/s")
    print(f"only_hash_v1: {figures['hash_v1']:.0f} MiB/s")
    print(f"sha256_ratio: {sha_rate / figures['hash_v1']:.2f} x")
    print(f"small_adds: {small_rate:.0f} adds/s")


if __name__ == "__main__":
    main()
