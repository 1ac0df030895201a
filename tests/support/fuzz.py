"""Schemathesis over every operation of a real node's OpenAPI: shared by the in-suite fuzz test
(tests/security/test_fuzz.py) and the longer run (bench/fuzz.py).

Each operation gets Schemathesis' coverage cases (the boundaries of every parameter: each
``minimum``/``maximum`` and one past it, empty and over-long strings, wrong types; operations
without a body: the coverage of a body schema can take minutes), then ``examples`` cases in
each generation mode (positive: valid by the schema; negative: violating it), drawn by
Hypothesis from the public ``APIOperation.as_strategy``, all sent over real HTTP. A fixed
seed (``derandomize`` by default) makes a run repeatable. Every response is checked: no
status >= 500, the body conforms to the documented schema, and a CSV export arrives whole
(the chunked body ends, the header row comes first, every record has every column).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from eth_account import Account
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.generation.drivers import CoverageGenerator  # not public: pinned 4.32
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import response_schema_conformance

from node.api.routes.transactions import CSV_COLUMNS
from tests.auth.siwe_helpers import make_message, sign
from tests.support.node import (
    InProcessNode,
    domain_of,
    in_process_node,
    make_submission,
    wait_indexed,
)

CALL_TIMEOUT = 30.0
#: transactions a fuzz target holds (the CSV export streams several pages of them)
SEEDED = 180
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
#: what an authenticated run leaves out: a logout would end its session
KEEP_SESSION = frozenset({"POST /api/v1/auth/logout"})
#: the request bodies declared as raw binary (a subsystem front-end's build archive)
ARCHIVE_MEDIA_TYPES = ("application/x-tar", "application/gzip", "application/zip")


@schemathesis.serializer(*ARCHIVE_MEDIA_TYPES)
def serialize_archive(ctx: Any, value: Any) -> bytes:
    """Send a generated ``format: binary`` body as its bytes (Schemathesis ships no serializer
    for archive media types)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


@dataclass
class Finding:
    """One failed check: where, what was sent, what came back."""

    operation: str
    check: str
    request: str
    status: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.operation} [{self.check}] {self.request} -> {self.status}: {self.detail}"


@dataclass
class FuzzReport:
    """What a run sent and found."""

    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)

    @property
    def server_errors(self) -> list[Finding]:
        return [f for f in self.findings if f.status is not None and f.status >= 500]

    def add(self, other: FuzzReport) -> None:
        self.operations = max(self.operations, other.operations)
        self.cases += other.cases
        self.statuses.update(other.statuses)
        self.findings.extend(other.findings)
        self.seconds += other.seconds


@dataclass
class FuzzTarget:
    """A running node holding data, and a participant's session at it."""

    node: InProcessNode
    participant: Any
    headers: dict[str, str]
    known: dict[str, str] = field(default_factory=dict)


def login(url: str, wallet: Any) -> dict[str, str]:
    """Return the bearer header of a SIWE session of ``wallet`` at the node at ``url``."""
    rules = httpx.get(url + "/api/v1/auth/nonce", timeout=10).json()
    message = make_message(
        wallet, domain=rules["domain"], nonce=rules["nonce"], chain_id=rules["chain_id"],
        scheme=rules["scheme"],
    )  # fmt: skip
    body = {"message": message, "signature": sign(wallet, message)}
    response = httpx.post(url + "/api/v1/auth/login", json=body, timeout=10)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def seed_transactions(running: InProcessNode, count: int) -> dict[str, Any]:
    """Store ``count`` transactions at the node (three kinds, spread-out timestamps, the last
    one anchored) signed by a new participant of "main", so that the queries, proofs and the
    CSV export have rows; return the anchored one (the ``POST /transactions`` answer)."""
    url = running.url
    domain = domain_of(url)
    wallet = Account.create()
    running.node.registry.add_participant("main", wallet.address)
    now = int(time.time())
    items = [
        make_submission(
            domain,
            wallet,
            kind=("invoice", "receipt", "order")[i % 3],
            timestamp=now - 3600 * (count - i),
            nonce=i,
        )  # fmt: skip
        for i in range(count - 1)
    ]
    response = httpx.post(url + "/api/v1/transactions/batch", json={"items": items}, timeout=60)
    response.raise_for_status()
    assert response.json()["accepted"] == count - 1, response.text
    last = make_submission(domain, wallet, nonce=count - 1, timestamp=now)
    anchored = httpx.post(
        url + "/api/v1/transactions", params={"wait": "true"}, json=last, timeout=120
    )
    assert anchored.status_code == 201, anchored.text
    return dict(anchored.json())


@contextlib.contextmanager
def fuzz_target(data_dir: Path, transactions: int = SEEDED) -> Iterator[FuzzTarget]:
    """Yield a single in-process node (its roles, be_subsystem included, are local) with
    ``transactions`` stored, and the session of a participant of its home subsystem."""
    with in_process_node(data_dir, rate_limit=0, sync=False, epoch_service=False) as running:
        home = running.node.record.home
        participant = Account.create()
        running.node.registry.add_participant(home, participant.address)
        known = {"name": home, "address": participant.address}
        if transactions:
            anchored = seed_transactions(running, transactions)
            known.update(tx_id=anchored["id"], cid=anchored["cid"])
        wait_indexed(running)  # what the setup did on-chain is in the index before any count
        yield FuzzTarget(running, participant, login(running.url, participant), known)


def csv_is_whole(text: str) -> str | None:
    """Return what is wrong with the body of a 200 CSV export, or None if it is whole."""
    if not text.endswith("\r\n"):
        return "the body does not end with a record's CRLF"
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        return f"the first row is not the header: {rows[:1]!r}"
    short = [i for i, row in enumerate(rows) if len(row) != len(CSV_COLUMNS)]
    if short:
        return f"rows {short[:5]} do not have {len(CSV_COLUMNS)} columns"
    return None


def _describe(case: Any) -> str:
    parts = [f"{case.method.upper()} {case.formatted_path}"]
    if case.query:
        parts.append(f"query={case.query!r}")
    if case.path_parameters:
        parts.append(f"path={case.path_parameters!r}")
    if case.headers:
        parts.append(f"headers={case.headers!r}")
    if not isinstance(case.body, NotSet):
        parts.append(f"body={repr(case.body)[:300]}")
    return " ".join(parts)


def _one_case(
    case: Any, session: requests.Session, headers: dict[str, str] | None, report: FuzzReport
) -> None:
    label = f"{case.method.upper()} {case.operation.path}"
    report.cases += 1
    try:
        response = case.call(session=session, headers=headers, timeout=CALL_TIMEOUT)
    except requests.RequestException as exc:  # a stream cut short, a connection dropped
        report.findings.append(Finding(label, "transport", _describe(case), None, repr(exc)))
        return
    report.statuses[response.status_code] += 1
    report.by_operation.setdefault(label, Counter())[response.status_code] += 1
    checks = [not_a_server_error, response_schema_conformance]
    try:
        case.validate_response(response, checks=checks, headers=headers)
    except (AssertionError, BaseExceptionGroup) as exc:  # a Failure, or a FailureGroup of them
        report.findings.append(
            Finding(label, type(exc).__name__, _describe(case), response.status_code,
                    str(exc)[:1500])
        )  # fmt: skip
    if case.operation.path.endswith(".csv") and response.status_code == 200:
        wrong = csv_is_whole(response.text)
        if wrong is not None:
            report.findings.append(
                Finding(label, "csv_whole", _describe(case), response.status_code, wrong)
            )


def _coverage_cases(
    schema: Any, operation: Any, modes: tuple[GenerationMode, ...], path: dict[str, str]
) -> Iterator[Any]:
    """Yield the coverage-phase cases of ``operation`` (``path`` parameters fixed)."""
    generator = CoverageGenerator(
        operation=operation,
        generation_modes=list(modes),
        generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None,
        override=Override(path_parameters=dict(path)),
        feedback=FeedbackSources(),
    )
    yield from generator


def run_fuzz(
    url: str,
    *,
    examples: int,
    headers: dict[str, str] | None = None,
    random_seed: int | None = None,
    modes: tuple[GenerationMode, ...] = MODES,
    skip: frozenset[str] = frozenset(),
    known: dict[str, str] | None = None,
    coverage: bool = True,
) -> FuzzReport:
    """Fuzz every operation of the node at ``url`` but those labelled in ``skip`` (``"POST
    /rpc"``): ``examples`` cases per operation and mode, with ``headers`` on every request;
    derandomized unless ``random_seed`` is given.

    ``known`` path parameters (a subsystem ``name``, a ``tx_id``, a ``cid``, an ``address``
    that exist) give each operation that has them as many cases again with those fixed, so
    that the fuzzing reaches past the 404 of a random name."""
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    schema.config.update(base_url=url)
    report = FuzzReport()
    fixed = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=random_seed is None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every case is reported
        suppress_health_check=list(HealthCheck),
    )
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.label in skip:
                continue
            report.operations += 1
            op_started = time.monotonic()
            names = {p.name for p in operation.path_parameters}
            fixed_path = {k: v for k, v in (known or {}).items() if k in names}
            variants = [{}, fixed_path] if fixed_path else [{}]
            if coverage and not operation.body:
                for path_parameters in variants:
                    for case in _coverage_cases(schema, operation, modes, path_parameters):
                        _one_case(case, session, headers, report)
            for mode, path_parameters in itertools.product(modes, variants):

                def draw(case: Any) -> None:
                    _one_case(case, session, headers, report)

                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters or None
                )
                test = fixed(given(case=strategy)(draw))
                if random_seed is not None:
                    test = seed(random_seed)(test)
                with contextlib.suppress(Unsatisfiable):  # nothing to negate (no parameters)
                    test()
            report.timings[operation.label] = time.monotonic() - op_started
    report.seconds = time.monotonic() - started
    return report
