"""Inserting 1,000 index rows into SQLite from Python, side by side in one run:

* ``executemany`` vs multi-row ``VALUES`` (``node.sqlrows.insert_rows``), alone and beside one
  thread running Python (as the node's request, anchorer and sync threads do under load);
* the same ``executemany`` with and without a row trigger on ``transactions`` (an empty one).

    python bench/sqlite_inserts.py [--rounds 4]

Each figure is the median time of one 1,000-row transaction (BEGIN, inserts, COMMIT with
``synchronous=FULL``) into a freshly migrated index (``node.db.session.upgrade_database``).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.db.session import upgrade_database  # noqa: E402
from node.sqlrows import insert_rows  # noqa: E402

COLUMNS = (
    "tx_id", "signer", "nonce", "subsystem", "kind", "amount", "currency", "memo", "payload",
    "payload_hash", "private", "timestamp", "signature", "body", "leaf_hash", "cid", "status",
    "received_at", "origin",
)  # fmt: skip
HEAD = f"INSERT INTO transactions ({', '.join(COLUMNS)})"
ROWS = 1000


class Index:
    def __init__(self) -> None:
        path = Path(tempfile.mkdtemp(prefix="collegium-sqlite-")) / "index.sqlite"
        upgrade_database(f"sqlite:///{path}")
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.count = 0

    def rows(self) -> list[list[Any]]:
        out = []
        for _ in range(ROWS):
            self.count += 1
            k = self.count
            out.append([
                f"0x{k:064x}", "0x" + "ab" * 20, k, "main", "invoice", "12.50", "EUR", "memo " * 8,
                "", "", 0, 1_700_000_000 + k, "0x" + "cd" * 65, os.urandom(400), "0x" + "ef" * 32,
                "bafkrei" + "x" * 52, "pending", "2026-11-25 00:00:00.000000", "",
            ])  # fmt: skip
        return out

    def executemany(self, rows: list[list[Any]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(f"{HEAD} VALUES ({', '.join('?' * len(COLUMNS))})", rows)
        self.db.execute("COMMIT")

    def multirow(self, rows: list[list[Any]]) -> None:
        self.db.execute("BEGIN")
        insert_rows(self.db, HEAD, rows, len(COLUMNS))
        self.db.execute("COMMIT")


def measure(index: Index, insert: Callable[[list[list[Any]]], None], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        rows = index.rows()
        started = time.perf_counter()
        insert(rows)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    index = Index()
    print(f"SQLite {sqlite3.sqlite_version}, {ROWS} rows per transaction, median of {args.rounds}")
    for busy in (False, True):
        stop = threading.Event()
        if busy:
            threading.Thread(target=_spin, args=(stop,), daemon=True).start()
        label = "beside a busy thread" if busy else "alone"
        for name, insert in (("executemany", index.executemany), ("multi-row", index.multirow)):
            rounds = 2 if busy and name == "executemany" else args.rounds  # seconds each
            print(f"{name:12s} {label:22s} {measure(index, insert, rounds):8.1f} ms")
        stop.set()
    index.db.execute("CREATE TRIGGER empty AFTER INSERT ON transactions BEGIN SELECT 1; END")
    with_trigger = measure(index, index.executemany, args.rounds)
    index.db.execute("DROP TRIGGER empty")
    without = measure(index, index.executemany, args.rounds)
    print(f"executemany  with an empty row trigger {with_trigger:.1f} ms, without {without:.1f} ms")


if __name__ == "__main__":
    main()
