"""``collegium verify-tx`` and ``collegium reindex`` against a real node.

The node is real (embedded py-evm chain, registry contract, embedded store, SQLite, HTTP
on 127.0.0.1). ``verify-tx`` gets only the node's ``/rpc`` and its IPFS gateway, as a
third party would. ``reindex`` rebuilds the index of the stopped node from its chain and
store; the restarted node must answer the API exactly as before.
"""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from eth_account import Account
from typer.testing import CliRunner

from node.cli.ledger import ExitStatus, reindex_command, verify_tx_command
from node.config import Settings
from tests.support.node import domain_of, free_port, make_submission, wait_healthy

TX_PATH = "/api/v1/transactions"

cli = typer.Typer()
cli.command("verify-tx")(verify_tx_command)
cli.command("reindex")(reindex_command)


@contextlib.contextmanager
def serve(data_dir: Path, password: str, port: int, **settings: Any) -> Iterator[Any]:
    """Yield (url, node) for a node opened from ``data_dir`` (initialised if new)."""
    from node.api.main import create_app
    from node.runtime import init_node, open_node

    cfg = Settings(data_dir=data_dir, port=port, **settings)
    if not cfg.node_file.exists():
        init_node(cfg, password)
    node = open_node(cfg, password)
    server = uvicorn.Server(
        uvicorn.Config(create_app(node), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        yield url, node
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        node.close()


def api_answers(client: httpx.Client, ids: list[str]) -> dict[str, Any]:
    """Return everything the API says about the ledger (what a reindex must preserve)."""
    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["before"] = cursor
        page = client.get(TX_PATH, params=params).json()
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return {
        "pages": pages,
        "one": [client.get(f"{TX_PATH}/{i}").json() for i in ids],
        "proofs": [client.get(f"{TX_PATH}/{i}/proof").json() for i in ids],
        "anchors": client.get("/api/v1/anchors").json(),
        "csv": client.get("/api/v1/transactions.csv").text,
        "by_time": client.get(TX_PATH, params={"since": 1_700_000_002}).json(),
    }


@pytest.fixture(scope="module")
def ledger_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("cli-ledger") / "data"
    password = secrets.token_hex(8)
    port = free_port()
    with serve(data_dir, password, port, batch_max=4) as (url, node):
        domain = domain_of(url)
        wallet = Account.create()
        node.registry.add_participant("main", wallet.address)
        items = [
            make_submission(domain, wallet, nonce=n, timestamp=1_700_000_000 + n) for n in range(9)
        ]
        with httpx.Client(base_url=url, timeout=60) as client:
            result = client.post(f"{TX_PATH}/batch", json={"items": items}).json()
            ids = [r["id"] for r in result["results"]]
            for tx_id in ids:
                assert node.ledger.wait_anchored(tx_id, 120).status == "anchored"
            before = api_answers(client, ids)
            yield {"url": url, "node": node, "ids": ids, "before": before,
                   "data_dir": data_dir, "password": password, "port": port}  # fmt: skip


def run_verify(tmp_path: Path, bundle: Any, url: str, *extra: str) -> Any:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    return CliRunner().invoke(
        cli, ["verify-tx", str(path), "--chain", url + "/rpc", "--gateway", url, *extra]
    )


def test_verify_tx_accepts_a_real_bundle(ledger_node: dict[str, Any], tmp_path: Path) -> None:
    url = ledger_node["url"]
    for bundle in ledger_node["before"]["proofs"][:3]:
        result = run_verify(tmp_path, bundle, url)
        assert result.exit_code == ExitStatus.SUCCESS, result.output
        assert "VALID" in result.output and "FAIL" not in result.output
        # issue 13: it names the chain it checked and, this being a node's embedded chain,
        # that the check trusts that node
        assert f"checked against chain id 1337 at {url}/rpc" in result.output
        assert "note: this is a Collegium node's own embedded chain" in result.output
    report = json.loads(run_verify(tmp_path, bundle, url, "--json").output)
    assert report["trust"]["chain"] == f"chain id 1337 at {url}/rpc" and report["trust"]["caveat"]
    assert report["ok"] and [c["name"] for c in report["checks"]] == [
        "leaf", "signature", "inclusion", "chain",
    ]  # fmt: skip


def _tampered(bundles: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], str]]:
    good, other = bundles[5], bundles[6]
    cases = []

    def case(name: str, failing: str, **changes: Any) -> None:
        bundle = copy.deepcopy(good)
        bundle.update(changes)
        cases.append((name, bundle, failing))

    flipped = "0x" + ("00" if good["path"][0][2:4] != "00" else "11") + good["path"][0][4:]
    case("path", "inclusion", path=[flipped, *good["path"][1:]])
    case("root", "chain", root="0x" + "ab" * 32)
    case("leaf index", "inclusion", leaf_index=good["leaf_index"] ^ 1)
    case("another leaf's cid", "leaf", cid=other["cid"])
    case("another leaf", "leaf", leaf=other["leaf"])
    case("tx id", "signature", tx_id=other["tx_id"])
    case("anchor", "chain", anchor_index=good["anchor_index"] + 1)
    case("node", "chain", node="0x" + "12" * 20)
    case("chain id", "chain", chain_id=good["chain_id"] + 1)
    return cases


@pytest.mark.parametrize("case", range(9))
def test_verify_tx_rejects_a_tampered_bundle(
    ledger_node: dict[str, Any], tmp_path: Path, case: int
) -> None:
    name, bundle, failing = _tampered(ledger_node["before"]["proofs"])[case]
    result = run_verify(tmp_path, bundle, ledger_node["url"], "--json")
    assert result.exit_code == ExitStatus.MISMATCH, (name, result.output)
    report = json.loads(result.output)
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert failing in failed, (name, report)


def test_verify_tx_says_failed_for_tampered_leaf_bytes_and_names_an_unknown_id(
    ledger_node: dict[str, Any], tmp_path: Path
) -> None:
    """Flipped leaf bytes still recover to *some* address: the signature check fails all the
    same, and the human output says so; an unknown id is named, not an httpx dump."""
    bundle = copy.deepcopy(ledger_node["before"]["proofs"][2])
    leaf = bytearray(bytes.fromhex(bundle["leaf"][2:]))
    leaf[-1] ^= 0x01  # inside the signature
    bundle["leaf"] = "0x" + leaf.hex()
    result = run_verify(tmp_path, bundle, ledger_node["url"])
    assert result.exit_code == ExitStatus.MISMATCH, result.output
    assert "ok   signature" not in result.output and "FAIL signature" in result.output
    assert "INVALID: FAILED leaf, signature" in result.output
    url = ledger_node["url"]
    unknown = f"{url}/api/v1/transactions/0x{'ab' * 32}/proof"
    result = CliRunner().invoke(cli, ["verify-tx", unknown, "--chain", url + "/rpc",
                                      "--gateway", url])  # fmt: skip
    assert result.exit_code == ExitStatus.NOT_FOUND, result.output
    assert f"no proof bundle at {unknown}: 404" in result.output
    assert "no such transaction" in result.output and "Client error" not in result.output


def test_verify_tx_reports_unreachable_and_malformed(
    ledger_node: dict[str, Any], tmp_path: Path
) -> None:
    bundle = ledger_node["before"]["proofs"][0]
    dead = f"http://127.0.0.1:{free_port()}"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(
        cli, ["verify-tx", str(path), "--chain", ledger_node["url"] + "/rpc", "--gateway", dead]
    )
    assert result.exit_code == ExitStatus.UNREACHABLE, result.output
    path.write_text(json.dumps({"tx_id": "0x00"}))
    result = CliRunner().invoke(
        cli, ["verify-tx", str(path), "--chain", dead, "--gateway", ledger_node["url"]]
    )
    assert result.exit_code == ExitStatus.MISMATCH and "lacks" in result.output


def test_reindex_rebuilds_an_identical_index(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from node.db.session import create_db_engine, make_session_factory
    from node.ledger.service import new_row
    from node.ledger.transaction import BusinessTx, Domain, sign_tx, verify_signed_tx
    from node.storage.cids import compute_cid_bytes, format_cid_bytes

    data_dir, password, port = tmp_path / "data", secrets.token_hex(8), free_port()
    with serve(data_dir, password, port, batch_max=3) as (url, node):
        domain = domain_of(url)
        wallet = Account.create()
        node.registry.add_participant("main", wallet.address)
        items = [
            make_submission(domain, wallet, nonce=n, timestamp=1_700_000_000 + n) for n in range(7)
        ]
        from node.ledger.transaction import compute_payload_hash

        items.append(
            make_submission(
                domain, wallet, nonce=99, private=True, parties=[], amount="", currency="",
                memo="", payload="bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
                payload_hash=compute_payload_hash(b"salt", b"plain"), timestamp=1_700_000_009,
            )
        )  # fmt: skip
        with httpx.Client(base_url=url, timeout=60) as client:
            ids = [
                r["id"]
                for r in client.post(f"{TX_PATH}/batch", json={"items": items}).json()["results"]
            ]
            for tx_id in ids:
                assert node.ledger.wait_anchored(tx_id, 120).status == "anchored"
            before = api_answers(client, ids)
        # a rebuild into another database works while the node runs (over its /rpc)
        other = f"sqlite:///{tmp_path / 'other.sqlite'}"
        result = CliRunner().invoke(
            cli, ["reindex", "--data-dir", str(data_dir), "--chain", url + "/rpc", "--into", other]
        )
        assert result.exit_code == 0, result.output
        assert "reindexed 8 transactions" in result.output
        refused = CliRunner().invoke(cli, ["reindex", "--data-dir", str(data_dir)])
        assert refused.exit_code == ExitStatus.ERROR and "running" in refused.output

    # a leaf accepted but not anchored when the node stopped: kept by the in-place reindex
    settings = Settings(data_dir=data_dir)
    engine = create_db_engine(settings.sqlalchemy_url)
    tx = BusinessTx("main", "note", (), "1", "EUR", "", "", 500, 1_600_000_000)
    signed = verify_signed_tx(
        Domain(domain.chain_id, domain.verifying_contract), tx,
        sign_tx(domain, tx, wallet.key),
    )  # fmt: skip
    with make_session_factory(engine)() as session:
        body = signed.encode()
        cid = format_cid_bytes(compute_cid_bytes(body, codec="raw", version=1))
        session.add(new_row(signed, body, cid, datetime.now(UTC)))
        session.commit()
    engine.dispose()

    result = CliRunner().invoke(cli, ["reindex", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "reindexed 8 transactions" in result.output and "1 pending" in result.output
    assert (data_dir / "index.sqlite.bak").exists()

    with (
        serve(data_dir, password, port, batch_max=3, follower=False) as (url, node),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        after = api_answers(client, ids)
        pending = client.get(f"{TX_PATH}/{signed.tx_id}").json()
    assert pending["id"] == signed.tx_id  # kept (and anchored again by the restarted node)
    # the pending leaf is newest: drop it from the lists, everything else is identical
    first_page = after["pages"][0]
    assert first_page["items"][0]["id"] == signed.tx_id
    assert after["one"] == before["one"]
    assert after["proofs"] == before["proofs"]
    old_anchors = {a["index"] for a in before["anchors"]}
    assert [a for a in after["anchors"] if a["index"] in old_anchors] == before["anchors"]
    assert after["by_time"] == before["by_time"]
    rebuilt = [i for p in after["pages"] for i in p["items"] if i["id"] != signed.tx_id]
    assert rebuilt == [i for p in before["pages"] for i in p["items"]]
    csv_after = [line for line in after["csv"].splitlines() if signed.tx_id not in line]
    assert csv_after == before["csv"].splitlines()
