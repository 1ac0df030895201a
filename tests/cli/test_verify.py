"""`collegium verify`: clean on an honest node, names each tampered transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from typer.testing import CliRunner

from node.cli.main import ExitStatus, app
from tests.support.blocks import StoredBlock
from tests.support.node import domain_of, in_process_node, make_submission

runner = CliRunner()


@pytest.fixture(scope="module")
def stopped_node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:  # type: ignore[type-arg]
    data_dir = tmp_path_factory.mktemp("verify") / "data"
    with in_process_node(data_dir, require_participant=False) as node:
        domain = domain_of(node.url)
        created = [
            httpx.post(
                node.url + "/api/v1/transactions",
                params={"wait": "true"},
                json=make_submission(domain, Account.create()),
                timeout=60,
            ).json()
            for _ in range(3)
        ]
    return data_dir, created


def run_verify(data_dir: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["verify", "--data-dir", str(data_dir)])
    return result.exit_code, result.output


def test_verify_clean(stopped_node: tuple[Path, list[dict]]) -> None:  # type: ignore[type-arg]
    data_dir, _ = stopped_node
    code, out = run_verify(data_dir)
    assert code == ExitStatus.SUCCESS, out
    # the node is stopped: the audit reads its own embedded chain, and says whom that trusts
    assert "checked against chain id 1337 at the embedded chain in this data directory" in out
    assert "the check trusts that node" in out
    assert "checked 3 transactions (3 anchored, 0 pending): all match" in out


def test_verify_names_tampered_sql_column(
    stopped_node: tuple[Path, list[dict]],  # type: ignore[type-arg]
) -> None:
    data_dir, created = stopped_node
    victim = created[1]["id"]
    db = sqlite3.connect(data_dir / "index.sqlite")
    original = db.execute("SELECT amount FROM transactions WHERE tx_id=?", (victim,)).fetchone()[0]
    db.execute("UPDATE transactions SET amount='999' WHERE tx_id=?", (victim,))
    db.commit()
    try:
        code, out = run_verify(data_dir)
    finally:
        db.execute("UPDATE transactions SET amount=? WHERE tx_id=?", (original, victim))
        db.commit()
        db.close()
    assert code == ExitStatus.MISMATCH
    assert f"MISMATCH {victim}: index column amount" in out
    assert created[0]["id"] not in out and created[2]["id"] not in out


def test_verify_names_tampered_block(stopped_node: tuple[Path, list[dict]]) -> None:  # type: ignore[type-arg]
    data_dir, created = stopped_node
    victim = created[2]
    # the block holding the victim's body, packed in blocks.sqlite or a file, by its CID
    path = StoredBlock(data_dir / "ipfs", victim["cid"])
    original = path.read_bytes()
    assert _holds(original, victim["leaf_hash"]), "the stored block is not the transaction body"
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    path.write_bytes(bytes(tampered))
    try:
        code, out = run_verify(data_dir)
    finally:
        path.write_bytes(original)
    assert code == ExitStatus.MISMATCH
    assert f"MISMATCH {victim['id']}: content store" in out


def _holds(body: bytes, leaf_hash: str) -> bool:
    from node.ledger.hasher import hash_leaf

    return "0x" + hash_leaf(body).hex() == leaf_hash


@pytest.mark.parametrize("content", [None, "0x1234", "not hex"])
def test_an_unreadable_member_key_is_a_usage_error(tmp_path: Path, content: str | None) -> None:
    key_file = tmp_path / "member.key"
    if content is not None:
        key_file.write_text(content)
    result = CliRunner().invoke(app, ["verify", "--data-dir", str(tmp_path / "none"),
                                      "--member-key-file", str(key_file)])  # fmt: skip
    assert result.exit_code == ExitStatus.INVALID_INPUT, result.output
    assert "wallet key" in result.output
