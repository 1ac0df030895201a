"""Where a node's data lives: the index on PostgreSQL, the blocks and the embedded chain on
other directories ("disks"), a quota on the store. Chosen once (``collegium up`` on a fresh
data dir records them, like ``init``), kept across restarts, shown by ``/health`` and
``collegium status``. A real ``collegium up`` process and a real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from eth_account import Account
from sqlalchemy import create_engine, text

from tests.db.postgres import postgres_server, postgres_url  # noqa: F401
from tests.support.node import domain_of, make_submission, node_process

QUOTA = 64 * 2**20


def test_index_on_postgres_blocks_and_chain_elsewhere(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    node = node_process(tmp_path)
    node.env["COLLEGIUM_REQUIRE_PARTICIPANT"] = "false"
    blocks, chain = tmp_path / "disk2" / "blocks", tmp_path / "disk3" / "chain"
    node.start("--database-url", postgres_url, "--blocks-dir", str(blocks),
               "--chain-dir", str(chain), "--store-quota", "64MiB")  # fmt: skip
    try:
        created = httpx.post(
            node.url + "/api/v1/transactions",
            params={"wait": "true"},
            json=make_submission(domain_of(node.url), Account.create()),
            timeout=60,
        ).json()
        assert created["status"] == "anchored"
        store = httpx.get(node.url + "/health", timeout=10).json()["store"]
        assert store["path"] == str(blocks) and store["quota_bytes"] == QUOTA
        assert 0 < store["used_bytes"] < QUOTA and store["full"] is False
    finally:
        node.stop()
    assert (blocks / "blocks.sqlite").is_file() and any(chain.iterdir())
    for default in ("index.sqlite", "ipfs", "chain"):
        assert not (node.data_dir / default).exists(), f"{default} written in the data dir"
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM transactions")).scalar() == 1
    engine.dispose()

    node.start()  # no flags: the locations recorded at the first start
    try:
        health = httpx.get(node.url + "/health", timeout=10).json()
        assert health["transactions"] == {"anchored": 1} and health["store"]["path"] == str(blocks)
        status = subprocess.run(
            [sys.executable, "-m", "node.cli.main", "status", "--data-dir", str(node.data_dir)],
            env=node.env, capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        assert f"embedded at {blocks}" in status and "of 64.0 MiB" in status, status
        assert "frontend   bafy" in status, status
    finally:
        node.stop()


def test_a_bad_quota_is_a_clear_cli_error(tmp_path: Path) -> None:
    node = node_process(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "init", "--data-dir", str(node.data_dir),
         "--store-quota", "lots"],
        env=node.env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--store-quota" in result.stderr
    assert not node.data_dir.exists()
