"""What the ``transactions`` indexes cost an insert at scale: CPU per row of a group commit.

A fresh index database (the node's migrations, SQLite, WAL, ``synchronous=FULL``) is filled
with ``--rows`` synthetic rows (random signers, ids, CIDs; a few subsystems and kinds; rising
timestamps), then groups of ``--group`` rows are inserted with one multi-row ``INSERT`` and
committed, timed with ``time.thread_time`` (median per row over ``--groups`` groups). The same
is measured with every index, with no explicit index, and without the indexes whose keys are
random (``--random``), alternated ``--rounds`` times. Run from the repository root::

    PYTHONPATH=. python3 bench/index_cost.py --rows 200000
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.db.session import upgrade_database  # noqa: E402

RANDOM_KEYED = ("ix_transactions_cid", "ix_transactions_payload", "ix_transactions_signer_seq")


def _row(seq: int) -> dict[str, Any]:
    return {
        "origin": "",
        "leaf_index": None,
        "tx_id": "0x" + secrets.token_hex(32),
        "signer": "0x" + secrets.token_hex(20),
        "nonce": random.randrange(1 << 40),
        "subsystem": random.choice(["acme", "globex", "initech"]),
        "kind": random.choice(["invoice", "payment", "transfer"]),
        "amount": "100",
        "currency": "EUR",
        "memo": "m" * 40,
        "payload": "bafkrei" + secrets.token_hex(26),
        "payload_hash": "",
        "private": 0,
        "timestamp": 1_765_000_000 + seq // 10,
        "signature": "0x" + secrets.token_hex(65),
        "body": os.urandom(420),
        "leaf_hash": "0x" + secrets.token_hex(32),
        "cid": "bafyrei" + secrets.token_hex(26),
        "status": "pending",
        "received_at": "2026-12-07 12:00:00.000000",
        "anchor_index": None,
    }


class Table:
    """The index database and its insert statements."""

    def __init__(self, path: str, rows: int, group: int) -> None:
        upgrade_database(f"sqlite:///{path}")
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.columns = list(_row(0))
        marks = "(" + ", ".join("?" * len(self.columns)) + ")"
        head = f"INSERT INTO transactions ({', '.join(self.columns)}) VALUES "
        self.group = group
        self.multi = head + ", ".join([marks] * group)
        self.db.execute("BEGIN")
        for seq in range(rows):
            self.db.execute(head + marks, self._values([_row(seq)]))
        self.db.execute("COMMIT")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.seq = rows
        self.indexes = {
            name: sql
            for name, sql in self.db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                " AND tbl_name = 'transactions' AND sql IS NOT NULL"
            )
        }

    def _values(self, rows: list[dict[str, Any]]) -> list[Any]:
        return [row[c] for row in rows for c in self.columns]

    def measure(self, groups: int) -> float:
        """Return the median thread CPU per row of ``groups`` group commits."""
        cpu = []
        for _ in range(groups):
            values = self._values([_row(self.seq + k) for k in range(self.group)])
            self.seq += self.group
            started = time.thread_time()
            self.db.execute("BEGIN")
            self.db.execute(self.multi, values)
            self.db.execute("COMMIT")
            cpu.append(time.thread_time() - started)
        return sorted(cpu)[len(cpu) // 2] / self.group

    def drop(self, names: tuple[str, ...] | list[str]) -> None:
        for name in names:
            self.db.execute(f"DROP INDEX {name}")

    def restore(self, names: tuple[str, ...] | list[str]) -> None:
        for name in names:
            self.db.execute(self.indexes[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows before measuring")
    parser.add_argument("--group", type=int, default=26, help="rows per group commit")
    parser.add_argument("--groups", type=int, default=150, help="group commits per figure")
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="index-cost-") as tmp:
        table = Table(str(Path(tmp) / "index.sqlite"), args.rows, args.group)
        every = list(table.indexes)
        for round_ in range(args.rounds):
            figures = {"every index": table.measure(args.groups)}
            table.drop(every)
            figures["no explicit index"] = table.measure(args.groups)
            table.restore(every)
            table.drop(RANDOM_KEYED)
            figures[f"without {', '.join(RANDOM_KEYED)}"] = table.measure(args.groups)
            table.restore(RANDOM_KEYED)
            for label, seconds in figures.items():
                print(f"round {round_ + 1}: {label}: {seconds * 1e6:.1f} µs CPU per row")
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
