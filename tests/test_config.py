"""node.config: every ``COLLEGIUM_*`` variable is read through ``Settings`` or ``CliSettings``,
under the names docs/operations.md lists; secrets never show in a repr."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from node.config import DEFAULT_URL, KEY_ENV, CliSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
#: the modules that may touch os.environ: the settings, and devnet building its children's
READS_ENVIRONMENT = {"node/config.py", "node/devnet.py"}
SECRET = "correct horse battery staple"
KEY = "0x" + "ab" * 32


def test_only_the_settings_read_the_environment() -> None:
    readers = set()
    for path in sorted((ROOT / "node").rglob("*.py")):
        for found in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(found, ast.Attribute) and found.attr in {"environ", "getenv"}:
                readers.add(path.relative_to(ROOT).as_posix())
    assert readers == READS_ENVIRONMENT


def test_node_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COLLEGIUM_DATA_DIR", "~/node")
    monkeypatch.setenv("COLLEGIUM_FRONTEND_DIR", "~/build")
    monkeypatch.setenv("COLLEGIUM_DATABASE_URL", f"postgresql+psycopg://u:{SECRET}@db/x")
    settings = Settings()
    assert settings.data_dir == tmp_path / "node"  # ~ expanded, as the default is
    assert settings.frontend_dir == tmp_path / "build"
    assert settings.sqlalchemy_url.endswith("@db/x")
    assert SECRET not in repr(settings) and SECRET not in str(settings)


def test_node_settings_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("COLLEGIUM_DATA_DIR", "COLLEGIUM_FRONTEND_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.data_dir == tmp_path / ".collegium"
    assert settings.frontend_dir is None


def test_cli_settings_read_url_password_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLEGIUM_URL", "http://node.example:8000")
    monkeypatch.setenv("COLLEGIUM_PASSWORD", SECRET)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("ALICE_KEY", KEY.replace("ab", "cd"))
    cli = CliSettings()
    assert cli.node_url == "http://node.example:8000"
    assert cli.password is not None and cli.password.get_secret_value() == SECRET
    assert cli.key_from() is not None and cli.key_from().get_secret_value() == KEY
    named = cli.key_from("ALICE_KEY")
    assert named is not None and named.get_secret_value() == KEY.replace("ab", "cd")
    for shown in (repr(cli), str(cli), repr(named)):
        assert SECRET not in shown and "abab" not in shown and "cdcd" not in shown


def test_cli_settings_unset_and_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLLEGIUM_URL", "COLLEGIUM_PASSWORD", KEY_ENV, "ALICE_KEY"):
        monkeypatch.delenv(name, raising=False)
    cli = CliSettings()
    assert (cli.node_url, cli.password, cli.key_from(), cli.key_from("ALICE_KEY")) == (
        DEFAULT_URL,
        None,
        None,
        None,
    )
    monkeypatch.setenv("COLLEGIUM_URL", "")
    monkeypatch.setenv("COLLEGIUM_PASSWORD", "")  # an empty password is still a password
    monkeypatch.setenv(KEY_ENV, "")
    cli = CliSettings()
    assert cli.node_url == DEFAULT_URL
    assert cli.password is not None and cli.password.get_secret_value() == ""
    assert cli.key_from() is None
