"""Tests of the node wallet keystore (real eth-account encryption, cheap KDF)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from node.chain.keys import create_keystore, load_account, read_keystore_address
from node.config import PASSWORD_ENV
from node.errors import ConfigError
from tests.support.keys import password_from_env_or_prompt

# Cheap KDF for tests only; production uses eth-account's default scrypt parameters.
FAST = {"kdf": "pbkdf2", "iterations": 2}


def test_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "wallet" / "keystore.json"
    address = create_keystore(path, "correct horse", **FAST)  # type: ignore[arg-type]
    account = load_account(path, "correct horse")
    assert account.address == address
    assert read_keystore_address(path) == address
    # The file is a standard v3 keystore and holds no plaintext key.
    data = json.loads(path.read_text())
    assert data["version"] == 3
    assert account.key.hex().removeprefix("0x") not in path.read_text()


def test_default_kdf_is_scrypt(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "pw")
    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"


def test_wrong_password(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "right", **FAST)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="wrong password for keystore") as info:
        load_account(path, "wrong")
    assert "right" not in str(info.value) and "wrong password" in str(info.value)


def test_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "pw", **FAST)  # type: ignore[arg-type]
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        create_keystore(path, "pw", **FAST)  # type: ignore[arg-type]
    assert path.read_bytes() == before


def test_file_mode_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "pw", **FAST)  # type: ignore[arg-type]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_account(tmp_path / "nope.json", "pw")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_account(bad, "pw")


def test_password_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert password_from_env_or_prompt() == "from-env"


def test_password_prompt_when_env_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "typed")
    assert password_from_env_or_prompt() == "typed"
