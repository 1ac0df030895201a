"""Python CPU of one group commit: ``Intake.commit_verified`` on groups of pre-verified items.

The single-submission path commits groups of ~18 transactions under 64 clients
(``node/groupcommit.py``); the whole node shares one GIL, so the thread CPU a group commit
spends (replay check, row values, bulk insert, zone map, SQL commit) is time no request
thread runs. This measures it alone, outside the node: a fresh index database (SQLite, the
node's engine and migrations), ``--items`` transactions signed and verified before the
clock starts, then ``commit_verified`` on groups of ``--group`` timed with
``time.thread_time`` (the fsync of the commit releases the GIL and costs no CPU here).

SQLite's own work (statement steps, the commit) runs with the GIL released, so every other
group is committed under a ``sys.setprofile`` hook that sums the thread CPU spent inside
``sqlite3`` calls: the others' thread CPU minus that is the Python (GIL) time of a group.

The old code (``--base``, exported with ``git archive``) and this tree run in alternated
subprocesses, ``--rounds`` each; every round prints per group and per item the median and
mean thread CPU, the part in ``sqlite3`` calls and the median wall time. Run from the
repository root::

    PYTHONPATH=. nice python3 bench/commit_group.py --base 2382761
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.trees import export  # noqa: E402

DEFAULT_BASE = "2382761"  # main before this bench (commit_verified as of session 9)
KEY = "0x" + "42" * 32  # a fixed signer: both trees commit the same transactions


class _Store:
    """A content store that keeps nothing (``commit_verified`` stores no bodies)."""

    def add_bytes(self, data: bytes, only_hash: bool = False) -> str:
        return ""


def _verified(domain: Any, count: int) -> list[Any]:
    """Return ``count`` (Submission, VerifiedTx) pairs of one signer, nonces 0…count-1."""
    from eth_account import Account

    from node.ledger.intake import Submission
    from node.ledger.transaction import BusinessTx, sign_tx
    from node.ledger.verifier import verify_many

    wallet = Account.from_key(KEY)
    party = Account.from_key("0x" + "43" * 32).address
    now = int(time.time())
    txs = [
        BusinessTx("main", "invoice", (party,), f"{i}.5", "EUR", "bench", "", i, now)
        for i in range(count)
    ]
    pairs = [(tx, sign_tx(domain, tx, wallet.key)) for tx in txs]
    outcomes = verify_many(domain, pairs)
    return [
        (Submission(tx, sig, wallet.address), outcome)
        for (tx, sig), outcome in zip(pairs, outcomes, strict=True)
    ]


def _intake(url: str) -> Any:
    """Return an ``Intake`` on a fresh index database at ``url``, built as the node builds it."""
    from node.db.session import create_db_engine, make_session_factory, upgrade_database
    from node.ledger.intake import Intake
    from node.ledger.signals import LedgerSignals
    from node.ledger.transaction import Domain

    upgrade_database(url)
    sessions = make_session_factory(create_db_engine(url))
    return Intake(
        sessions=sessions,
        store=_Store(),  # type: ignore[arg-type]
        domain=Domain(1337, "0x" + "11" * 20),
        policy=None,  # type: ignore[arg-type]  # the commit runs no policy check
        signals=LedgerSignals(),
        write_lock=threading.Lock(),
    )


class _InSqlite:
    """A ``sys.setprofile`` hook summing the thread CPU spent inside the methods of
    ``sqlite3`` objects (statement steps and commits: SQLite's own work, run with the GIL
    released, plus the parameter binding)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, _frame: Any, event: str, arg: Any) -> None:
        if event == "c_call" and type(getattr(arg, "__self__", None)).__module__ == "sqlite3":
            self._start = time.thread_time()
        elif event in ("c_return", "c_exception") and self._start:
            self.seconds += time.thread_time() - self._start
            self._start = 0.0


def _spin(stop: threading.Event) -> None:
    """Run Python until ``stop`` (a busy request thread: it holds the GIL but for the
    interpreter's forced switches)."""
    while not stop.is_set():
        sum(range(2_000))


def worker(items: int, group: int, warmup: int, busy: bool = False) -> dict[str, Any]:
    """Commit ``2 * items`` verified transactions in groups of ``group``, every other group
    under ``_InSqlite``; return, leaving out the first ``warmup`` groups, the thread CPU and
    wall seconds of the others and the CPU inside ``sqlite3`` calls of those. With ``busy``
    a second thread runs Python all along (as the node's event loop does under load): every
    time a commit gives the GIL up in a ``sqlite3`` call, it waits to get it back."""
    stop = threading.Event()
    if busy:
        threading.Thread(target=_spin, args=(stop,), daemon=True).start()
    try:
        return _commit_groups(items, group, warmup)
    finally:
        stop.set()


def _commit_groups(items: int, group: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="commit-group-") as tmp:
        intake = _intake(f"sqlite:///{Path(tmp) / 'index.sqlite'}")
        verified = _verified(intake.domain, 2 * items)
        cpu, wall, in_sqlite = [], [], []
        for number, start in enumerate(range(0, len(verified), group)):
            chunk = verified[start : start + group]
            hook = _InSqlite() if number % 2 else None
            sys.setprofile(hook)
            t0, w0 = time.thread_time(), time.perf_counter()
            results = intake.commit_verified(chunk)
            elapsed, waited = time.thread_time() - t0, time.perf_counter() - w0
            sys.setprofile(None)
            assert all(hasattr(r, "seq") for r in results), results
            if number < 2 * warmup:
                continue
            if hook is None:
                cpu.append(elapsed)
                wall.append(waited)
            else:
                in_sqlite.append(hook.seconds)
        return {"cpu": cpu, "wall": wall, "sqlite": in_sqlite, "group": group}


def _run(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one worker subprocess on the code of ``tree``; return its timings."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    command += ["--items", str(args.items), "--group", str(args.group)]
    command += ["--warmup", str(args.warmup)] + (["--busy"] if args.busy else [])
    out = subprocess.run(command, env=env, cwd=tree, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _summary(label: str, timings: dict[str, Any]) -> str:
    cpu, wall, group = timings["cpu"], timings["wall"], timings["group"]
    median, in_sqlite = statistics.median(cpu), statistics.median(timings["sqlite"])
    return (
        f"{label}: CPU per group median {median * 1e3:.2f} ms"
        f" (mean {statistics.fmean(cpu) * 1e3:.2f}), per item {median / group * 1e6:.0f} µs;"
        f" in sqlite3 calls ~{in_sqlite * 1e3:.2f} ms, so Python (GIL held)"
        f" ~{(median - in_sqlite) * 1e3:.2f} ms per group, {(median - in_sqlite) / group * 1e6:.0f}"
        f" µs per item; wall per group median {statistics.median(wall) * 1e3:.2f} ms"
        f" ({len(cpu)} groups)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="the 'old' commit")
    parser.add_argument("--items", type=int, default=18 * 120, help="transactions per run")
    parser.add_argument("--group", type=int, default=18, help="items per group commit")
    parser.add_argument("--warmup", type=int, default=10, help="groups left out per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternated old/new runs")
    parser.add_argument("--busy", action="store_true", help="beside a thread running Python")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, os.getcwd())
        print(json.dumps(worker(args.items, args.group, args.warmup, args.busy)))
        return
    print(f"load: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="commit-group-base-") as tmp:
        old = export(args.base, Path(tmp) / "old")
        merged: dict[str, dict[str, Any]] = {}
        for round_ in range(args.rounds):
            for label, tree in (("old", old), ("new", ROOT)):
                timings = _run(tree, args)
                print(f"round {round_ + 1} " + _summary(label, timings), flush=True)
                into = merged.setdefault(
                    label, {"cpu": [], "wall": [], "sqlite": [], "group": args.group}
                )
                for key in ("cpu", "wall", "sqlite"):
                    into[key] += timings[key]
        for label, timings in merged.items():
            print("all " + _summary(label, timings))
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
