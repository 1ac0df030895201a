"""Side by side in-process: the page query of an earlier commit against this tree's, for
``subsystem`` + ``kind`` + 30 days, on an explorer index built by ``bench/explorer.py``.

    python bench/explorer_plans.py /tmp/explorer-1m/node/index.sqlite 6d921b6

Each plan runs the same 100 random filters twice (the first pass warms the cache); printed:
CPU time per query (the query and its rows loaded), and a check that both give the same rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's node, not main's

from node.db.session import create_db_engine, make_session_factory  # noqa: E402
from node.ledger import queries as new  # noqa: E402
from node.ledger.service import TxFilter  # noqa: E402

T = new.T


def load_old(commit: str) -> Any:
    source = subprocess.run(
        ["git", "show", f"{commit}:node/ledger/queries.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "old_queries.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_queries", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("commit", help="the earlier commit whose queries.py to compare")
    args = parser.parse_args()
    old = load_old(args.commit)
    sessions = make_session_factory(create_db_engine(f"sqlite:///{args.index}"))
    rng = random.Random(5)
    with sessions() as session:
        subsystems = list(session.scalars(select(T.subsystem).distinct()))
        kinds = list(session.scalars(select(T.kind).distinct()))
        low, high = session.execute(select(func.min(T.timestamp), func.max(T.timestamp))).one()
        filters = []
        for _ in range(100):
            since = low + rng.randrange(high - low)
            filters.append(
                TxFilter(subsystem=rng.choice(subsystems), kind=rng.choice(kinds),
                         since=since, until=since + 30 * 86_400)
            )  # fmt: skip
        answers: dict[str, list[list[int]]] = {}
        for name, module in (("before", old), ("after", new)) * 2:
            cpu, rows = [], []
            for where in filters:
                started = time.process_time()
                rows.append(
                    [r.seq for r in session.scalars(module.page_query(session, where, None, 50))]
                )
                cpu.append((time.process_time() - started) * 1000)
            answers[name] = rows
            cpu.sort()
            mean = sum(cpu) / len(cpu)
            print(
                f"{name:6s} mean {mean:5.1f} ms  p50 {cpu[50]:5.1f} ms  "
                f"p99 {cpu[98]:5.1f} ms  max {cpu[-1]:5.1f} ms CPU/query",
                flush=True,
            )
        same = answers["before"] == answers["after"]
        print("same rows for all 100 filters" if same else "DIFFERENT ROWS")
        sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
