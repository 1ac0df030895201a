"""The embedded chain's directory: its layout, ``chain.json``, the dev key and the lock.

Layout: ``chain.sqlite3`` (+ ``-wal``/``-shm``), ``chain.json`` (metadata), ``dev-key.hex``
(the genesis-funded dev key, mode 0600), ``LOCK`` (an ``flock`` held while the chain is open).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.errors import ConfigError

CHAIN_SCHEMA_VERSION: Final = 1
"""Version of the chain directory layout and of ``chain.json``."""

CHAIN_DB_FILENAME: Final = "chain.sqlite3"
CHAIN_META_FILENAME: Final = "chain.json"
DEV_KEY_FILENAME: Final = "dev-key.hex"
LOCK_FILENAME: Final = "LOCK"


@dataclass(frozen=True)
class ChainMeta:
    """The contents of ``chain.json``."""

    schema_version: int
    chain_id: int
    genesis_hash: str

    def to_json(self) -> str:
        """Return the canonical JSON text of this metadata."""
        return json.dumps(
            {
                "schema_version": self.schema_version,
                "chain_id": self.chain_id,
                "genesis_hash": self.genesis_hash,
            },
            indent=2,
            sort_keys=True,
        )


def read_chain_meta(path: Path) -> ChainMeta:
    """Return the metadata stored at ``path``; raise ConfigError if unreadable or malformed."""
    try:
        raw = json.loads(path.read_text())
        return ChainMeta(
            schema_version=int(raw["schema_version"]),
            chain_id=int(raw["chain_id"]),
            genesis_hash=str(raw["genesis_hash"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read chain metadata {path}: {exc}") from exc


def write_file_atomically(path: Path, data: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create_dev_key(path: Path, create: bool) -> LocalAccount:
    """Return the dev account kept at ``path``, creating a random one if ``create``."""
    if not path.exists():
        if not create:
            raise ConfigError(f"chain directory lacks its dev key {path}")
        write_file_atomically(path, "0x" + secrets.token_hex(32) + "\n", mode=0o600)
    try:
        account: LocalAccount = Account.from_key(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read dev key {path}: {exc}") from exc
    return account


class GenesisMismatchError(ConfigError):
    """A chain directory holds a different chain than expected."""

    def __init__(self, chain_dir: Path, expected: str, actual: str) -> None:
        super().__init__(
            f"chain directory {chain_dir} holds genesis {actual}, expected {expected}; "
            "refusing to open it (wrong data dir, or a chain from another setup)"
        )
        self.expected = expected
        self.actual = actual


def acquire_dir_lock(path: Path) -> IO[str]:
    """Return the open lock file of a chain dir; raise ConfigError if another process has it."""
    handle = open(path, "a+")  # noqa: SIM115 -- kept open while the chain is open
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise ConfigError(f"chain directory {path.parent} is in use by another process") from exc
    return handle
