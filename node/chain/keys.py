"""The node wallet: an Ethereum keystore (Web3 Secret Storage, v3) file in the data dir.

Private keys and passwords never reach a log, a message or an exception text here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final, Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from node.errors import ConfigError

KEYSTORE_FILE_MODE: Final = 0o600

Kdf = Literal["scrypt", "pbkdf2"]


def create_keystore(
    path: Path,
    password: str,
    *,
    kdf: Kdf | None = None,
    iterations: int | None = None,
) -> ChecksumAddress:
    """Create a fresh key, encrypt it with ``password`` into ``path`` (mode 0600).

    Return the new address. ``kdf``/``iterations`` default to eth-account's (scrypt,
    n=2**18); pass cheaper ones only in tests. Raise ConfigError if ``path`` exists (a
    wallet is never overwritten) or cannot be written.
    """
    path = Path(path)
    account = Account.create()
    keystore = Account.encrypt(account.key, password, kdf=kdf, iterations=iterations)
    data = json.dumps(keystore, indent=2, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: refuse to overwrite, even if another process creates it concurrently.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEYSTORE_FILE_MODE)
    except FileExistsError as exc:
        raise ConfigError(f"keystore {path} already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise ConfigError(f"cannot create keystore {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, KEYSTORE_FILE_MODE)  # the umask may have masked bits; be exact
        with os.fdopen(fd, "w") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise ConfigError(f"cannot write keystore {path}: {exc.strerror}") from exc
    return to_checksum_address(account.address)


def read_keystore_address(path: Path) -> ChecksumAddress:
    """Return the address recorded in the keystore at ``path`` without decrypting it.

    Raise ConfigError if the file is missing, malformed or has no address.
    """
    keystore = _read_keystore(Path(path))
    address = keystore.get("address")
    if not isinstance(address, str):
        raise ConfigError(f"keystore {path} records no address")
    try:
        return to_checksum_address(address)
    except ValueError as exc:
        raise ConfigError(f"keystore {path} records an invalid address") from exc


def load_account(path: Path, password: str) -> LocalAccount:
    """Return the account decrypted from the keystore at ``path`` with ``password``.

    Raise ConfigError if the file is missing or malformed, or "wrong password for keystore
    <path>" if the password does not open it.
    """
    path = Path(path)
    keystore = _read_keystore(path)
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise ConfigError(f"wrong password for keystore {path}") from None
        raise ConfigError(f"keystore {path} cannot be decrypted (malformed)") from None
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"keystore {path} is malformed (missing {exc})") from None
    account: LocalAccount = Account.from_key(key)
    recorded = keystore.get("address")
    if isinstance(recorded, str) and recorded.lower().removeprefix("0x") != (
        account.address.lower().removeprefix("0x")
    ):
        raise ConfigError(f"keystore {path} decrypts to another address than it records")
    return account


def _read_keystore(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"keystore {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read keystore {path}: {exc.strerror}") from None
    try:
        keystore = json.loads(text)
    except ValueError:
        raise ConfigError(f"keystore {path} is not JSON") from None
    if not isinstance(keystore, dict):
        raise ConfigError(f"keystore {path} is not a keystore object")
    return keystore
