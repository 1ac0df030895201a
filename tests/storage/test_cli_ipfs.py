"""``collegium ipfs`` sub-app through Typer's CliRunner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli import ipfs

runner = CliRunner()


def test_add_cat_pin_ls(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    hello = tmp_path / "hello.txt"
    hello.write_text("Hello Worlds!\n")
    added = runner.invoke(
        ipfs.app, ["add", str(hello), "--cid-version", "0", "--data-dir", str(data_dir)]
    )
    assert (
        added.exit_code == 0 and added.stdout == "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH\n"
    )
    cat = runner.invoke(ipfs.app, ["cat", added.stdout.strip(), "--data-dir", str(data_dir)])
    assert cat.exit_code == 0 and cat.stdout_bytes == b"Hello Worlds!\n"
    pins = runner.invoke(ipfs.app, ["pin", "ls", "--data-dir", str(data_dir)])
    assert pins.stdout == "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH recursive\n"


def test_directory_binary_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ipfs.DATA_DIR_ENV, str(tmp_path / "env-data"))
    root = tmp_path / "planets"
    root.mkdir()
    (root / "mars.txt").write_text("Hello Mars!\n")
    (root / "venus.txt").write_text("Hello Venus!\n")
    blob = os.urandom(300_000)
    (root / "blob.bin").write_bytes(blob)
    only = runner.invoke(ipfs.app, ["add", str(root), "--only-hash"])
    assert only.exit_code == 0
    assert not (tmp_path / "env-data" / "ipfs" / "pins.json").exists()
    added = runner.invoke(ipfs.app, ["add", str(root)])
    assert added.stdout == only.stdout and added.stdout.startswith("bafybei")
    cat = runner.invoke(ipfs.app, ["cat", added.stdout.strip() + "/blob.bin"])
    assert cat.exit_code == 0 and cat.stdout_bytes == blob


def test_errors_exit_non_zero(tmp_path: Path) -> None:
    args = ["--data-dir", str(tmp_path)]
    assert (
        runner.invoke(ipfs.app, ["cat", "nonsense", *args]).exit_code
        == ipfs.ExitStatus.INVALID_INPUT
    )
    missing = "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"
    assert runner.invoke(ipfs.app, ["cat", missing, *args]).exit_code == ipfs.ExitStatus.NOT_FOUND
    assert runner.invoke(ipfs.app, ["add", str(tmp_path / "nope"), *args]).exit_code != 0
