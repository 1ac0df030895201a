"""What the people commands (:mod:`node.cli.people`, :mod:`node.cli.wallet`) share: their
options, the person's wallet, the :class:`~node.client.Client` that acts with it, a node's
refusal turned into a named exit code, and the output (for people, or JSON with ``--json``).

The wallet is ``--keystore FILE`` (password from ``COLLEGIUM_PASSWORD`` or a prompt) or a hex
key in the environment variable named by ``--key-env`` (default ``COLLEGIUM_KEY``); the node
is ``--url`` (default ``COLLEGIUM_URL`` or http://127.0.0.1:8000).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.cli.options import ask_password
from node.cli.status import ExitStatus
from node.client import Client, ClientError
from node.config import KEY_ENV, PASSWORD_ENV, URL_ENV, CliSettings
from node.errors import CollegiumError

UrlOpt = Annotated[str | None, typer.Option("--url", help=f"node URL [env {URL_ENV}]")]
KeystoreOpt = Annotated[
    Path | None, typer.Option("--keystore", help=f"wallet keystore file ({PASSWORD_ENV})")
]
KeyEnvOpt = Annotated[
    str, typer.Option("--key-env", help="environment variable holding a hex private key")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]

T = TypeVar("T")

#: Exit status of a node's refusal by HTTP status (0: no answer); other 4xx are bad input.
STATUS_BY_HTTP = {0: ExitStatus.UNREACHABLE, 403: ExitStatus.NOT_ADMIN, 404: ExitStatus.NOT_FOUND}


def node_url(url: str | None) -> str:
    """Return ``url``, or the node URL of the settings (``COLLEGIUM_URL``)."""
    return url or CliSettings().node_url


def load_wallet(keystore: Path | None, key_env: str = KEY_ENV) -> LocalAccount:
    """Return the wallet of ``keystore`` (password from ``COLLEGIUM_PASSWORD`` or a prompt)
    or of the hex key in the environment variable ``key_env``."""
    if keystore is not None:
        try:
            data = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            raise CollegiumError(f"cannot read keystore {keystore}: {exc}") from exc
        password = ask_password()
        try:
            return Account.from_key(Account.decrypt(data, password))
        except ValueError as exc:
            raise CollegiumError(f"cannot open keystore {keystore}: {exc}") from exc
    key = CliSettings().key_from(key_env)
    if key is None:
        raise CollegiumError(f"no wallet: pass --keystore FILE or set {key_env} to a hex key")
    try:
        return Account.from_key(key.get_secret_value())
    except (ValueError, TypeError) as exc:
        raise CollegiumError(f"{key_env} does not hold a private key: {exc}") from None


def run(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn a refusal into ``error: …`` on stderr and a named exit code."""
    try:
        return fn()
    except ClientError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        status = STATUS_BY_HTTP.get(exc.status)
        if status is None:
            status = ExitStatus.INVALID_INPUT if 400 <= exc.status < 500 else ExitStatus.ERROR
        raise typer.Exit(int(status)) from exc
    except CollegiumError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.INVALID_INPUT)) from exc


def show(as_json: bool, data: Any, text: str) -> None:
    """Print ``data`` as JSON (``--json``) or ``text``."""
    typer.echo(json.dumps(data, indent=2) if as_json else text)


def acting(url: str | None, keystore: Path | None, key_env: str) -> Client:
    """Return a client of the node at ``url`` that signs with the person's wallet."""
    return Client(node_url(url), run(lambda: load_wallet(keystore, key_env)))


def done(as_json: bool, receipt: dict[str, Any], what: str) -> None:
    """Print ``what`` happened with the transaction and block of ``receipt``."""
    show(as_json, receipt, f"{what} (tx {receipt['tx_hash']}, block {receipt['block_number']})")
