"""``collegium devnet``: a loopback devnet of anvil plus N nodes, torn down on Ctrl-C."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from node.errors import CollegiumError

app = typer.Typer(help="Loopback devnet: anvil and several nodes on 127.0.0.1.")


@app.command("up")
def up(
    nodes: Annotated[int, typer.Option("--nodes", "-n", help="how many nodes")] = 3,
    base_dir: Annotated[
        Path | None, typer.Option(help="where the nodes' data dirs go [default: a temp dir]")
    ] = None,
    epoch_period: Annotated[int | None, typer.Option(help="blocks per epoch")] = None,
    block_time: Annotated[
        float | None, typer.Option(help="anvil block time in seconds (default: on demand)")
    ] = None,
) -> None:
    """Start anvil and NODES nodes, print their URLs, and run until Ctrl-C."""
    from node.devnet import start_devnet

    root = base_dir or Path(tempfile.mkdtemp(prefix="collegium-devnet-"))
    try:
        devnet = start_devnet(root, nodes, epoch_period=epoch_period, block_time=block_time)
    except CollegiumError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"chain    {devnet.chain_url}  registry {devnet.registry}")
    for node in devnet.nodes:
        typer.echo(f"node{node.index}    {node.url}  home {node.home}  log {node.log_path}")
    typer.echo("Ctrl-C stops the devnet.")
    try:
        while all(node.running for node in devnet.nodes):
            time.sleep(1)
        typer.echo("a node exited; stopping the devnet", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        devnet.stop()
