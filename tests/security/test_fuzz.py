"""Fuzzing as a habit: Schemathesis over every operation of a real node, as a stranger and as
a participant, and the bounds of the read API's query parameters.

One in-process node (embedded chain and store, real HTTP on 127.0.0.1) in single-node mode
(every role local, so the participant's private-data routes run), holding ``SEEDED``
transactions. Each pass sends Schemathesis' coverage cases (every parameter's boundaries) and
``EXAMPLES`` cases per operation and generation mode (positive and negative), and as many again
with known path values (the home subsystem, an anchored transaction and its CID, the
participant's address); derandomized, so a run is repeatable. 2,332 cases in all (each
pass prints its figures; ``-s``); the longer run is ``python bench/fuzz.py --full``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.api.params import MAX_INDEX_INT
from node.api.routes.transactions import CSV_COLUMNS
from tests.support.fuzz import (
    KEEP_SESSION,
    SEEDED,
    FuzzReport,
    FuzzTarget,
    csv_is_whole,
    fuzz_target,
    run_fuzz,
)

EXAMPLES = 8
MIN_CASES = 1000  # per pass: 1,171 and 1,161 are sent (Hypothesis drops duplicates)
#: tables a client's request could write to (the others are caches and the chain's mirror)
WRITTEN_TABLES = (
    "transactions", "transaction_parties", "participant_keys", "subsystems", "participants",
    "nodes",
)  # fmt: skip


def row_counts(data_dir: Path) -> dict[str, int]:
    """Return the row count of every table clients write, in the index and every subsystem's
    private database (read through a separate SQLite connection: what is committed)."""
    counts: dict[str, int] = {}
    with sqlite3.connect(f"file:{data_dir / 'index.sqlite'}?mode=ro", uri=True) as db:
        for table in WRITTEN_TABLES:
            counts[table] = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    for path in sorted((data_dir / "subsystems").glob("*.sqlite")):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                count = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                counts[f"{path.name}:{table}"] = count
    return counts


@dataclass
class StrangerRun:
    report: FuzzReport
    before: dict[str, int]
    after: dict[str, int]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    with fuzz_target(tmp_path_factory.mktemp("fuzz") / "node") as running:
        yield running


@pytest.fixture(scope="module")
def as_stranger(target: FuzzTarget) -> StrangerRun:
    """Fuzz with no credentials; the store is counted just before and just after."""
    data_dir = target.node.node.settings.data_dir
    before = row_counts(data_dir)
    report = run_fuzz(target.node.url, examples=EXAMPLES, known=target.known)
    print(f"\nfuzz as a stranger: {_summary(report)}")
    return StrangerRun(report, before, row_counts(data_dir))


@pytest.fixture(scope="module")
def as_participant(target: FuzzTarget) -> FuzzReport:
    """Fuzz with a participant's SIWE bearer session (logout left out: it ends the session)."""
    report = run_fuzz(
        target.node.url,
        examples=EXAMPLES,
        headers=target.headers,
        known=target.known,
        skip=KEEP_SESSION,
    )
    print(f"\nfuzz as a participant: {_summary(report)}")
    return report


def _summary(report: FuzzReport) -> str:
    statuses = dict(sorted(report.statuses.items()))
    lines = [
        f"{report.cases} cases, {report.operations} operations, {report.seconds:.0f} s, "
        f"{len(report.findings)} findings, {statuses}"
    ]
    lines += [str(f) for f in report.findings[:20]]
    return "\n".join(lines)


def test_a_stranger_finds_no_server_error_nor_a_wrong_answer(as_stranger: StrangerRun) -> None:
    report = as_stranger.report
    assert report.cases >= MIN_CASES, _summary(report)
    assert report.operations >= 30, _summary(report)
    assert not report.findings, _summary(report)


def test_a_stranger_stores_nothing(as_stranger: StrangerRun, target: FuzzTarget) -> None:
    assert as_stranger.before["transactions"] >= SEEDED  # the counts do see the seeded rows
    assert as_stranger.after == as_stranger.before
    assert httpx.get(target.node.url + "/health", timeout=10).status_code == 200


def test_a_participant_finds_no_server_error_nor_a_wrong_answer(
    as_participant: FuzzReport, target: FuzzTarget
) -> None:
    assert as_participant.cases >= MIN_CASES, _summary(as_participant)
    # the session held all along: the private-data routes answered the participant
    records = as_participant.by_operation["GET /api/v1/subsystems/{name}/data/records"]
    assert records[200] > 0, _summary(as_participant)
    assert not as_participant.findings, _summary(as_participant)
    me = httpx.get(target.node.url + "/api/v1/auth/me", headers=target.headers, timeout=10)
    assert me.status_code == 200


def test_every_integer_parameter_is_bounded_in_the_openapi(target: FuzzTarget) -> None:
    """A new route with an unbounded integer in its URL fails here, before any fuzzing."""
    doc = httpx.get(target.node.url + "/openapi.json", timeout=10).json()
    unbounded = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                options = schema.get("anyOf", [schema])
                for option in options:
                    if option.get("type") != "integer":
                        continue
                    low, high = option.get("minimum"), option.get("maximum")
                    if low is None or high is None or low < -MAX_INDEX_INT - 1:
                        unbounded.append(f"{method.upper()} {path} {parameter['name']}")
    assert not unbounded


@pytest.mark.parametrize(
    "path,query",
    [
        ("/api/v1/transactions", {"since": MAX_INDEX_INT + 1}),
        ("/api/v1/transactions", {"until": 2**64}),
        ("/api/v1/transactions", {"anchor": 2**63}),
        ("/api/v1/transactions", {"before": 2**63}),
        ("/api/v1/transactions", {"before": -1}),
        ("/api/v1/transactions.csv", {"since": 2**63}),
        ("/api/v1/transactions.csv", {"until": 10**30}),
        ("/api/v1/transactions.csv", {"anchor": -1}),
        ("/api/v1/transactions.csv", {"signer": "0xnot-an-address"}),
        ("/api/v1/anchors", {"before": 2**63}),
        ("/api/v1/anchors/consistency", {"first": 1, "second": 2**63}),
    ],
)
def test_out_of_range_parameters_are_refused_before_any_answer(
    target: FuzzTarget, path: str, query: dict[str, Any]
) -> None:
    response = httpx.get(target.node.url + path, params=query, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_largest_values_are_answered(target: FuzzTarget) -> None:
    url = target.node.url
    top = {"since": 0, "until": MAX_INDEX_INT, "before": MAX_INDEX_INT}
    page = httpx.get(url + "/api/v1/transactions", params={**top, "limit": 500}, timeout=30)
    assert page.status_code == 200 and len(page.json()["items"]) == SEEDED
    empty = httpx.get(url + "/api/v1/transactions", params={"since": MAX_INDEX_INT}, timeout=30)
    assert empty.status_code == 200 and empty.json()["items"] == []
    export = httpx.get(url + "/api/v1/transactions.csv", params=top, timeout=30)
    assert export.status_code == 200 and csv_is_whole(export.text) is None
    assert export.text.count("\r\n") == SEEDED + 1
    anchors = httpx.get(url + "/api/v1/anchors", params={"before": MAX_INDEX_INT}, timeout=30)
    assert anchors.status_code == 200 and anchors.json()


def test_a_failure_mid_export_is_seen_by_the_client(
    target: FuzzTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page that fails after the response started (here: the second page's query) cuts the
    stream without its last chunk: the client gets an error, never a short CSV that looks
    whole. The first page (50 rows) arrives; the node is fine afterwards."""
    ledger = target.node.node.ledger
    real_page = ledger.page
    calls = 0

    def failing_page(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("the database went away")
        return real_page(*args, **kwargs)

    monkeypatch.setattr(ledger, "page", failing_page)
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", target.node.url + "/api/v1/transactions.csv", timeout=30) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
    assert calls == 2
    assert received.decode().splitlines()[0].split(",") == list(CSV_COLUMNS)
    monkeypatch.undo()
    whole = httpx.get(target.node.url + "/api/v1/transactions.csv", timeout=30)
    assert whole.status_code == 200 and whole.text.count("\r\n") == SEEDED + 1


@pytest.mark.parametrize(
    "header",
    ["bytes=0-" + "9" * 5000, "bytes=" + "9" * 4400 + "-", "bytes=-" + "1" * 30, "bytes=٣-٤"],
    ids=["last-5000-digits", "first-4400-digits", "suffix-30-digits", "arabic-indic-digits"],
)
def test_a_range_header_too_large_is_ignored(target: FuzzTarget, header: str) -> None:
    """``int()`` refuses 4,301 digits and more: such a ``Range`` is ignored (RFC 9110), not a
    500; a merely huge one is too."""
    url = f"{target.node.url}/ipfs/{target.known['cid']}"
    whole = httpx.get(url, timeout=10)
    assert whole.status_code == 200
    response = httpx.get(url, headers={"Range": header.encode()}, timeout=10)  # type: ignore[dict-item]
    assert response.status_code == 200, response.text
    assert response.content == whole.content
