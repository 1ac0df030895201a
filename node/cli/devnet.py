"""``collegium devnet``: a loopback devnet of anvil plus N nodes, torn down on Ctrl-C."""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from node.errors import CollegiumError

if TYPE_CHECKING:
    from node.devnet import Devnet

# Commands import the node's modules inside their functions: those pull in web3, py-evm,
# SQLAlchemy and FastAPI (seconds of import), which `collegium --help` and the light
# commands must not wait for.

app = typer.Typer(help="Loopback devnet: anvil and several nodes on 127.0.0.1.")

DEFAULT_HOMES = "main,acme,beta"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM/SIGINT into ``KeyboardInterrupt``; raise it."""
    raise KeyboardInterrupt


@app.command("up")
def up(
    nodes: Annotated[int, typer.Option("--nodes", "-n", help="how many nodes")] = 3,
    base_dir: Annotated[
        Path | None, typer.Option(help="where the nodes' data dirs go [default: a temp dir]")
    ] = None,
    homes: Annotated[
        str, typer.Option(help="home subsystems, comma-separated; node i gets home i mod len")
    ] = DEFAULT_HOMES,
    capacity: Annotated[int, typer.Option(help="role slots each node offers")] = 4,
    epoch_period: Annotated[int | None, typer.Option(help="blocks per epoch")] = None,
    block_time: Annotated[
        float | None, typer.Option(help="anvil block time in seconds (default: on demand)")
    ] = None,
    sync_interval: Annotated[
        float | None, typer.Option(help="seconds between the nodes' peer-sync rounds")
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="start a node again on its data dir when it exits (kill -9)")
    ] = False,
) -> None:
    """Start anvil and NODES nodes, print their URLs, and run until Ctrl-C.

    A node that exits (or is killed) is reported and the others keep running; with
    --restart it is started again on its data directory.
    """
    from node.devnet import OPERATOR_KEY_FILE, start_devnet

    names = tuple(name.strip() for name in homes.split(",") if name.strip())
    settings = {} if sync_interval is None else {"COLLEGIUM_SYNC_INTERVAL": str(sync_interval)}
    root = base_dir or Path(tempfile.mkdtemp(prefix="collegium-devnet-"))
    try:
        devnet = start_devnet(
            root, nodes, homes=names, capacity=capacity, epoch_period=epoch_period,
            block_time=block_time, settings=settings,
        )  # fmt: skip
    except CollegiumError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _print_devnet(devnet, root / OPERATOR_KEY_FILE)
    typer.echo("Ctrl-C (or SIGTERM) stops the devnet.")
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # even when started in the background
    try:
        _watch_nodes(devnet, restart=restart)
        typer.echo("every node exited; stopping the devnet", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut teardown
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        devnet.stop()


def _print_devnet(devnet: Devnet, operator_key: Path) -> None:
    """Print the devnet's chain, registry, operator and each node's URL, home and log."""
    typer.echo(f"chain    {devnet.chain_url}  registry {devnet.registry}")
    typer.echo(f"operator {devnet.operator.address}  key in {operator_key}")
    for node in devnet.nodes:
        typer.echo(f"node{node.index}    {node.url}  home {node.home}  log {node.log_path}")


def _watch_nodes(devnet: Devnet, *, restart: bool) -> None:
    """Report each node that exits (once), start it again with ``restart``; return when every
    node has exited (never with ``restart``)."""
    reported: set[int] = set()
    while restart or any(node.running for node in devnet.nodes):
        for node in devnet.nodes:
            if node.running or node.index in reported:
                continue
            typer.echo(f"node{node.index} exited (log {node.log_path})", err=True)
            if restart:
                node.launch()
                typer.echo(f"node{node.index} restarted on {node.data_dir}", err=True)
            else:
                reported.add(node.index)
        time.sleep(1)
