"""Collisions and leaks closed, from outside: a real node (embedded chain and store) over HTTP
on 127.0.0.1 (issue 16): colliding subsystem names, CSV formula injection, /metrics label
growth, dropped /s/ connections, CORS credentials by default."""

from __future__ import annotations

import csv
import io
import random
import string
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.auth.siwe_helpers import bearer_login
from tests.support.node import InProcessNode, domain_of, in_process_node, make_submission

VICTIM = "acme.corp"
COLLIDER = "x-" + VICTIM.encode().hex()  # the legacy file name of VICTIM, as a plain name
VITE_ORIGIN = "http://localhost:5173"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data_dir: Path = tmp_path_factory.mktemp("leaks") / "node"
    with in_process_node(data_dir, epoch_service=False, sync=False, rate_limit=0) as node:
        yield node


def login(running: InProcessNode, wallet: LocalAccount) -> dict[str, str]:
    return bearer_login(running.url, wallet)


def records_url(running: InProcessNode, name: str) -> str:
    return f"{running.url}/api/v1/subsystems/{name}/data/records"


def test_colliding_subsystem_names_keep_separate_data(running: InProcessNode) -> None:
    registry = running.node.registry
    member: LocalAccount = Account.create()
    for name in (VICTIM, COLLIDER):
        registry.create_subsystem(name)  # the node creates both: it is their participant
        registry.add_participant(name, member.address)
    headers = login(running, member)

    written = {}
    for name in (VICTIM, COLLIDER):
        value = {"key": "k", "value": f"secret of {name}"}
        response = httpx.post(records_url(running, name), headers=headers, json=value, timeout=30)
        assert response.status_code == 201, (name, response.text)
        written[name] = response.json()["cid"]

    for name in (VICTIM, COLLIDER):
        response = httpx.get(records_url(running, name), headers=headers, timeout=30)
        assert response.status_code == 200, (name, response.text)
        records = response.json()["records"]
        assert [(r["cid"], r["value"]) for r in records] == [(written[name], f"secret of {name}")]
    files = sorted(p.name for p in (running.node.settings.data_dir / "subsystems").glob("*.sqlite"))
    assert len(files) == 2


def test_csv_export_escapes_formulas(running: InProcessNode) -> None:
    wallet: LocalAccount = Account.create()
    running.node.registry.add_participant("main", wallet.address)
    domain = domain_of(running.url)
    memos = ['=HYPERLINK("http://evil.invalid","click")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "ok"]
    for memo in memos:
        body = make_submission(domain, wallet, memo=memo)
        response = httpx.post(running.url + "/api/v1/transactions", json=body, timeout=30)
        assert response.status_code in (201, 202), response.text

    export = httpx.get(running.url + "/api/v1/transactions.csv",
                       params={"signer": wallet.address}, timeout=30)  # fmt: skip
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["memo"] for r in rows) == sorted(
        ["'" + m if m[0] in "=+-@\t" else m for m in memos]
    )
    assert {r["amount"] for r in rows} == {"125.5"}  # numbers stay numbers
    assert all(r[c][:1] not in ("=", "+", "-", "@", "\t", "\r") for r in rows for c in r)


def test_random_methods_leave_metrics_bounded(running: InProcessNode) -> None:
    """A client may send any method token: the metrics keep one ``other`` label for the
    methods the HTTP parser lets through (WebDAV's and the like reach the app and get 405),
    and tokens it does not know are refused before the app (400 from uvicorn's httptools
    parser; with h11 they too reach the app as ``other``)."""
    before = httpx.get(running.url + "/metrics", timeout=10).text
    rng = random.Random(16)
    unusual = ["PROPFIND", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "PURGE", "REPORT", "SEARCH"]
    with httpx.Client(timeout=10) as client:
        for method in unusual * 5:
            response = client.request(method, running.url + "/api/v1/subsystems")
            assert response.status_code == 405, (method, response.status_code)
        for _ in range(200):
            method = "".join(rng.choices(string.ascii_uppercase, k=8))
            response = client.request(method, running.url + "/api/v1/subsystems")
            assert response.status_code in (400, 405), (method, response.status_code)
    after = httpx.get(running.url + "/metrics", timeout=10).text
    assert len(after) - len(before) < 4096, len(after) - len(before)
    assert 'method="other"' in after
    assert not any(f'method="{method}"' in after for method in unusual)


def test_every_path_under_s_is_answered(running: InProcessNode) -> None:
    for path in ("/s/main/missing", "/s/main/assets/missing.js", "/s/main/a/b/c.txt"):
        response = httpx.get(running.url + path, timeout=10)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 404


def test_no_cors_credentials_by_default(running: InProcessNode) -> None:
    for origin in (VITE_ORIGIN, "http://127.0.0.1:5173"):
        preflight = httpx.options(
            running.url + "/api/v1/subsystems",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization"},
            timeout=10,
        )  # fmt: skip
        assert "access-control-allow-credentials" not in preflight.headers
        assert "access-control-allow-origin" not in preflight.headers
        simple = httpx.get(running.url + "/api/v1/subsystems", headers={"Origin": origin})
        assert "access-control-allow-origin" not in simple.headers
