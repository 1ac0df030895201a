"""`collegium init` refuses a registry address it cannot use, and writes nothing then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli.main import app, format_frontend, format_store
from node.errors import ConfigError
from node.runtime import NodeRecord

runner = CliRunner()


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "--registry is empty"), ("  ", "--registry is empty"), ("0x1234", "not an address"),
     ("node1", "not an address")],
)  # fmt: skip
def test_init_refuses_an_empty_or_malformed_registry(
    tmp_path: Path, value: str, message: str
) -> None:
    data = tmp_path / "node"
    result = runner.invoke(
        app, ["init", "--data-dir", str(data), "--registry", value],
        env={"COLLEGIUM_PASSWORD": "pw"},
    )  # fmt: skip
    assert result.exit_code != 0
    assert message in result.output
    assert not (data / "node.json").exists() and not (data / "keystore.json").exists()


def test_init_records_a_checksummed_registry(tmp_path: Path) -> None:
    data = tmp_path / "node"
    address = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
    result = runner.invoke(
        app, ["init", "--data-dir", str(data), "--registry", address],
        env={"COLLEGIUM_PASSWORD": "pw"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((data / "node.json").read_text())["registry"] == (
        "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    )


def test_registry_from_an_unreachable_node_fails_clearly(tmp_path: Path) -> None:
    from node.devnet import free_port

    data = tmp_path / "node"
    result = runner.invoke(
        app,
        ["init", "--data-dir", str(data), "--registry-from", f"http://127.0.0.1:{free_port()}",
         "--wait", "1"],
        env={"COLLEGIUM_PASSWORD": "pw"},
    )  # fmt: skip
    assert result.exit_code != 0
    assert "cannot read the registry from" in result.output
    assert not (data / "node.json").exists()


def test_a_node_json_with_an_empty_registry_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = tmp_path / "node.json"
    path.write_text(json.dumps({"address": "0x" + "11" * 20, "registry": ""}))
    with pytest.raises(ConfigError, match="not an address: fix it or delete"):
        NodeRecord.load(path)


def test_status_lines_for_store_and_front_end() -> None:
    line = format_store(
        {"backend": "embedded", "path": "/disk2/blocks", "used_bytes": 3 * 2**30,
         "quota_bytes": 4 * 2**30, "full": False}
    )  # fmt: skip
    assert line == "embedded at /disk2/blocks  3.0 GiB used of 4.0 GiB"
    assert "FULL" in format_store({"backend": "embedded", "used_bytes": 9, "quota_bytes": 9,
                                   "full": True})  # fmt: skip
    assert format_frontend({"cid": "bafyA", "bundled": "bafyA"}) == ["frontend   bafyA"]
    differs = format_frontend({"cid": "bafyA", "bundled": "bafyB"})
    assert "bafyB" in differs[1] and "collegium frontend publish" in differs[1]
