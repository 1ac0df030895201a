"""``collegium assign --input`` through Typer's CliRunner (node/cli/assign.py)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from node.cli.assign import ExitStatus, app

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "assignment"
runner = CliRunner()


def write_input(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_prints_the_assignment(tmp_path: Path) -> None:
    vector = json.loads((VECTORS / "unicode-subsystems.json").read_text(encoding="utf-8"))
    path = write_input(tmp_path, json.dumps(vector["input"]))
    result = runner.invoke(app, ["--input", str(path)])
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert json.loads(result.stdout) == vector["output"]
    assert (
        result.stdout
        == json.dumps(vector["output"], sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    )


def test_impossible_topology_exits_2(tmp_path: Path) -> None:
    vector = json.loads((VECTORS / "error-no-eligible-node.json").read_text())
    result = runner.invoke(
        app, ["--input", str(write_input(tmp_path, json.dumps(vector["input"])))]
    )
    assert result.exit_code == ExitStatus.INVALID_INPUT == 2
    assert result.stdout == ""
    assert "error: not_enough_eligible_nodes: slot be_subsystem[sub-00]" in result.stderr


def test_malformed_topology_exits_2(tmp_path: Path) -> None:
    vector = json.loads((VECTORS / "error-bad-seed.json").read_text())
    result = runner.invoke(
        app, ["--input", str(write_input(tmp_path, json.dumps(vector["input"])))]
    )
    assert result.exit_code == 2
    assert "error: invalid_topology: seed:" in result.stderr


def test_invalid_json_and_duplicate_keys_exit_2(tmp_path: Path) -> None:
    for text in ("{not json", '{"seed": 1, "seed": 2}'):
        result = runner.invoke(app, ["--input", str(write_input(tmp_path, text))])
        assert result.exit_code == 2
        assert "error: invalid_json:" in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--input", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "error: unreadable_input:" in result.stderr
