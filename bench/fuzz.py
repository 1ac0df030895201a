"""Fuzzing: Schemathesis over every operation of a real node, as a stranger and as a participant.

Starts one in-process node (embedded chain and store, real HTTP on 127.0.0.1) in single-node
mode, stores a few hundred transactions (one anchored), and sends generated requests to every
operation of its OpenAPI (tests/support/fuzz.py: positive and negative cases, then as many with
known path values), in rounds: each round is one pass with no credentials and one with a
participant's SIWE bearer session, with its own seed (round 0 is derandomized, like the
in-suite test). Every response is checked: status < 500, the body conforms to the schema, a
CSV export arrives whole.

Runs in under 60 s with no arguments (one round of 4 cases per operation and mode);
``--full`` runs rounds of 100 until at least 40,000 cases were sent. Prints every finding,
as it comes, then the headline figures last, one per line, as ``metric: value unit``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fuzz import KEEP_SESSION, FuzzReport, fuzz_target, run_fuzz  # noqa: E402

FULL_CASES = 40_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help=f"at least {FULL_CASES:,} cases")
    parser.add_argument("--examples", type=int, help="cases per operation, mode and round")
    parser.add_argument("--cases", type=int, help="run rounds until this many cases were sent")
    args = parser.parse_args()
    examples = args.examples or (100 if args.full else 4)
    wanted = args.cases or (FULL_CASES if args.full else 1)
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # the findings say it all

    total = FuzzReport()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, fuzz_target(Path(tmp) / "node") as target:
        ready = time.monotonic() - started
        url = target.node.url
        round_ = 0
        while total.cases < wanted:
            seed = None if round_ == 0 else round_
            for who, headers, skip in (
                ("stranger", None, frozenset[str]()),
                ("participant", target.headers, KEEP_SESSION),
            ):
                report = run_fuzz(
                    url, examples=examples, headers=headers, skip=skip, known=target.known,
                    random_seed=seed,
                )  # fmt: skip
                total.add(report)
                statuses = dict(sorted(report.statuses.items()))
                print(
                    f"round {round_} {who}: {report.cases} cases in {report.seconds:.0f} s, "
                    f"{len(report.findings)} findings, statuses {statuses}",
                    flush=True,
                )
                for finding in report.findings:
                    print(f"FINDING {finding}", flush=True)
            round_ += 1
    elapsed = time.monotonic() - started

    server_errors = sum(n for status, n in total.statuses.items() if status >= 500)
    print(f"node ready (seeded) in {ready:.1f} s; {round_} rounds of {examples} examples")
    print(f"rate: {total.cases / max(total.seconds, 1e-9):.1f} cases/s")
    print(f"elapsed: {elapsed:.0f} s")
    print(f"operations: {total.operations} operations")
    print(f"failed_checks: {len(total.findings)} findings")
    print(f"responses_5xx: {server_errors} responses")
    print(f"cases: {total.cases} requests")


if __name__ == "__main__":
    main()
