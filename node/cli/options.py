"""What every ``collegium`` command shares: the data-location options, settings from the
flags, the wallet password, and how a command fails."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from node.cli.status import ExitStatus
from node.config import PASSWORD_ENV, CliSettings, Settings
from node.errors import CollegiumError

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="node data directory [default: ~/.collegium]"),
]
ChainOpt = Annotated[
    str | None,
    typer.Option("--chain", help="Ethereum JSON-RPC URL instead of the embedded chain"),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="index database: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
        "[default: sqlite in the data dir]",
    ),
]
BlocksDirOpt = Annotated[
    Path | None,
    typer.Option("--blocks-dir", help="embedded block store directory [default: DATA_DIR/ipfs]"),
]
ChainDirOpt = Annotated[
    Path | None,
    typer.Option("--chain-dir", help="embedded chain directory [default: DATA_DIR/chain]"),
]
QuotaOpt = Annotated[
    str | None,
    typer.Option(
        "--store-quota",
        help="space donated to the block store, e.g. 20GiB; writes past it are refused "
        "[default: no limit]",
    ),
]


def locations(
    database_url: str | None,
    blocks_dir: Path | None,
    chain_dir: Path | None,
    store_quota: str | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {"database_url": database_url, "store_quota": store_quota}
    if blocks_dir is not None:
        values["blocks_dir"] = blocks_dir.expanduser().resolve()
    if chain_dir is not None:
        values["chain_dir"] = chain_dir.expanduser().resolve()
    return values


AdminOpt = Annotated[
    str | None,
    typer.Option(
        "--admin",
        help="the operator's wallet address: system admin and admin of the home subsystem "
        "when this node deploys the registry (the node key then is neither)",
    ),
]


def make_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir.expanduser()
    return Settings(**values)


def node_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    """Return ``make_settings`` with the data locations ``collegium init`` recorded filled in."""
    from node.runtime import with_record_locations

    return with_record_locations(make_settings(data_dir, **overrides))


def first_error(exc: ValueError) -> str:
    """Return a one-line message for a settings validation error."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"--{where.replace('_', '-')}: {first.get('msg')} (got {first.get('input')!r})"
    return str(exc)


def ask_password(confirm: bool = False) -> str:
    from_env = CliSettings().password
    if from_env is not None:
        return from_env.get_secret_value()
    if not sys.stdin.isatty():
        raise CollegiumError(f"set {PASSWORD_ENV} (no terminal to prompt for the wallet password)")
    return str(typer.prompt("Wallet password", hide_input=True, confirmation_prompt=confirm))


def fail(exc: Exception, status: ExitStatus = ExitStatus.ERROR) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(int(status))
