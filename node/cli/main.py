"""``collegium``: the node's command line (Typer; one sub-app per command group).

This module only assembles the commands, in the order ``collegium --help`` lists them:
``version`` here, ``init`` and ``up`` (``lifecycle.py``), ``status`` (``report.py``),
``verify`` (``audit.py``), then the command groups of their own modules.
"""

from __future__ import annotations

from typing import Annotated

import typer

from node import __version__
from node.cli import audit, lifecycle, report
from node.cli.report import PROGRESS_BAR_WIDTH, format_frontend, format_progress, format_store
from node.cli.status import ExitStatus

# Commands import the node's modules inside their functions: those pull in web3, py-evm,
# SQLAlchemy and FastAPI (seconds of import), which `collegium --help` and the light
# commands must not wait for.

app = typer.Typer(
    help="Collegium node: open business ledger anchored on-chain, content on IPFS.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"collegium {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Collegium node: open business ledger anchored on-chain, content on IPFS."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


app.command()(lifecycle.init)
app.command()(lifecycle.up)
app.command()(report.status)
app.command()(audit.verify)


def _mount_subcommands() -> None:
    from node.cli import assign, devnet, ipfs

    app.add_typer(ipfs.app, name="ipfs")
    app.add_typer(devnet.app, name="devnet")
    from node.cli import frontend

    app.add_typer(frontend.app, name="frontend")
    app.command("assign")(assign.assign_command)
    from node.cli import ledger

    app.command("verify-tx")(ledger.verify_tx_command)
    app.command("reindex")(ledger.reindex_command)
    from node.cli import people

    people.mount(app)


_mount_subcommands()


def main() -> None:
    """Entry point of the ``collegium`` script."""
    app()


__all__ = [
    "PROGRESS_BAR_WIDTH",
    "ExitStatus",
    "app",
    "format_frontend",
    "format_progress",
    "format_store",
    "main",
]


if __name__ == "__main__":
    main()
