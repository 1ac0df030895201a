"""``collegium ipfs``: add, cat and list pins in the node's content store.

``add`` prints only the root CID, as ``ipfs add -Q`` would; ``cat`` writes raw bytes to stdout.
The data directory is ``--data-dir``, else ``$COLLEGIUM_DATA_DIR``, else ``~/.collegium``;
``--ipfs URL`` uses a kubo node instead of the embedded store.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from node.cli.status import ExitStatus
from node.config import DATA_DIR_ENV, Settings
from node.errors import InvalidCID, NotFoundInStore, StoreError
from node.storage import open_node_store, open_store
from node.storage.base import BlockStore

# Commands import the node's modules inside their functions: those pull in web3, py-evm,
# SQLAlchemy and FastAPI (seconds of import), which `collegium --help` and the light
# commands must not wait for.


app = typer.Typer(help="Content store (IPFS) commands", no_args_is_help=True)
pin_app = typer.Typer(help="Pinned content", no_args_is_help=True)
app.add_typer(pin_app, name="pin")

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help=f"node data directory (default ${DATA_DIR_ENV} or ~/.collegium)"
    ),
]
IpfsOption = Annotated[
    str | None, typer.Option("--ipfs", help="kubo RPC URL instead of the embedded store")
]


def get_data_dir(data_dir: Path | None) -> Path:
    """Return the data directory: the option, else ``$COLLEGIUM_DATA_DIR``, else ~/.collegium."""
    if data_dir is not None:
        return data_dir.expanduser()
    return Settings().data_dir


def _open(data_dir: Path | None, ipfs_api: str | None) -> BlockStore:
    from node.runtime import with_record_locations

    settings = with_record_locations(Settings(data_dir=get_data_dir(data_dir)))
    if not ipfs_api:
        return open_node_store(settings.model_copy(update={"ipfs_api": None}))
    return open_store(settings.data_dir, ipfs_api)


def _fail(exc: StoreError) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    if isinstance(exc, NotFoundInStore):
        return typer.Exit(ExitStatus.NOT_FOUND)
    if isinstance(exc, InvalidCID):
        return typer.Exit(ExitStatus.INVALID_INPUT)
    return typer.Exit(ExitStatus.ERROR)


@app.command()
def add(
    path: Annotated[Path, typer.Argument(help="file or directory (added recursively)")],
    cid_version: Annotated[
        int, typer.Option("--cid-version", min=0, max=1, help="0 (Qm…) or 1 (bafy…, raw leaves)")
    ] = 1,
    only_hash: Annotated[
        bool, typer.Option("--only-hash", "-n", help="only compute the CID, store nothing")
    ] = False,
    pin: Annotated[bool, typer.Option("--pin/--no-pin", help="pin the added content")] = True,
    data_dir: DataDirOption = None,
    ipfs: IpfsOption = None,
) -> None:
    """Add PATH and print its root CID (like ``ipfs add -Q [-r]``)."""
    try:
        cid = _open(data_dir, ipfs).add_path(
            path, cid_version=cid_version, pin=pin, only_hash=only_hash
        )
    except StoreError as exc:
        raise _fail(exc) from None
    typer.echo(cid)


def _stdout() -> BinaryIO:
    return sys.stdout.buffer


@app.command()
def cat(
    cid: Annotated[str, typer.Argument(help="CID, optionally followed by /path/inside")],
    data_dir: DataDirOption = None,
    ipfs: IpfsOption = None,
) -> None:
    """Write the bytes of the file CID[/path] to stdout."""
    root, _, path = cid.removeprefix("/ipfs/").partition("/")
    try:
        pieces = _open(data_dir, ipfs).iter_cat(root, path)
        out = _stdout()
        for piece in pieces:
            out.write(piece)
        out.flush()
    except StoreError as exc:
        raise _fail(exc) from None


@pin_app.command("ls")
def pin_ls(data_dir: DataDirOption = None, ipfs: IpfsOption = None) -> None:
    """List recursively pinned CIDs, one per line (``<cid> recursive``, as kubo)."""
    try:
        pins = _open(data_dir, ipfs).pins()
    except StoreError as exc:
        raise _fail(exc) from None
    for cid in pins:
        typer.echo(f"{cid} recursive")
