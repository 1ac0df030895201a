"""``collegium frontend``: publish a front-end to the content store and the registry.

``publish`` adds the build directory (default ``frontend/dist``) as a UnixFS directory, records
its CID in the registry with the node's wallet (a system admin) and pins it, then prints the CID.
``publish --subsystem S`` records it as S's own front-end instead (served at ``/s/S/``; the
node's wallet must be an admin of S).
If the node is running, the transaction goes through its ``/rpc`` (the embedded chain belongs to
that process); otherwise the chain is opened directly.

With an admin's own key (``--keystore`` or ``--key-env``), ``publish --subsystem S --url URL``
works from any machine, with no node data directory: it signs in at the node (SIWE), uploads
the build (``POST /api/v1/subsystems/S/frontend``, as the browser's Admin page does), signs
``setSubsystemFrontend`` with the CID the node answers and has the node relay it. Without
``--url`` the same happens at ``COLLEGIUM_URL``, unless a node's data directory is here: then
the build is added to that node's store directly (no upload limit), as for the system front-end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from web3.middleware import Web3Middleware

from node.cli.options import ask_password
from node.cli.probe import running_node_rpc
from node.cli.status import ExitStatus
from node.config import KEY_ENV, PASSWORD_ENV, URL_ENV, CliSettings
from node.errors import CollegiumError

# Commands import the node's modules inside their functions: those pull in web3, py-evm,
# SQLAlchemy and FastAPI (seconds of import), which `collegium --help` and the light
# commands must not wait for.

app = typer.Typer(help="System front-end (IPFS-hosted web app)", no_args_is_help=True)

#: Exit status of a node's refusal by HTTP status (0: no answer); any other is ``ERROR``.
STATUS_BY_HTTP: Final = {0: ExitStatus.UNREACHABLE, 403: ExitStatus.NOT_ADMIN}


class LatestEstimateMiddleware(Web3Middleware):
    """Estimate gas against ``latest`` instead of ``pending``.

    A node's ``/rpc`` over the embedded chain (eth-tester) has no ``pending`` estimate, and
    eth-tester already estimates in the next block's context, so ``latest`` is the same thing.
    """

    def request_processor(self, method: Any, params: Any) -> Any:
        """Return ``(method, params)`` with a ``pending`` estimate block turned into ``latest``."""
        if method == "eth_estimateGas" and len(params) > 1 and params[1] == "pending":
            params = (params[0], "latest", *params[2:])
        return method, params


def _publish_as_person(
    build_dir: Path | None,
    data_dir: Path | None,
    ipfs: str | None,
    subsystem: str | None,
    keystore: Path | None,
    key_env: str | None,
    url: str | None,
) -> str:
    """Publish the build signed by the admin's own wallet and return its CID: uploaded to the
    node at ``url`` (:func:`_publish_remote`) for a subsystem when ``url`` is given or no node
    data directory is here, else added to the local node's store (:func:`_publish_on_node`).
    Exits 5 (``NOT_ADMIN``) for a non-admin, 4 for an unreachable node, 1 on another error."""
    from node.client import ClientError
    from node.config import Settings

    try:
        settings = Settings(data_dir=data_dir.expanduser()) if data_dir else Settings()
        here = settings.node_file.exists()
        if subsystem is not None and (url is not None or not here):
            return _publish_remote(build_dir, subsystem, keystore, key_env, url)
        if not here:
            raise CollegiumError(
                f"no node data directory at {settings.data_dir}: the system front-end is "
                "published on the node's machine; from elsewhere an admin publishes a "
                "subsystem's front-end (--subsystem S --url URL)"
            )
        return _publish_on_node(build_dir, settings, ipfs, subsystem, keystore, key_env, url)
    except ClientError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(int(STATUS_BY_HTTP.get(exc.status, ExitStatus.ERROR))) from exc
    except CollegiumError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.ERROR)) from exc


def _publish_remote(
    build_dir: Path | None,
    subsystem: str,
    keystore: Path | None,
    key_env: str | None,
    url: str | None,
) -> str:
    """Sign in at the node at ``url`` (default ``COLLEGIUM_URL``) with the wallet, upload the
    build as ``subsystem``'s front-end, sign ``setSubsystemFrontend`` and have the node relay
    it; return the CID. Reads no node data directory."""
    from node.cli.acting import load_wallet
    from node.client import Client
    from node.config import Settings
    from node.frontend import default_build_dir

    wallet = load_wallet(keystore, key_env or KEY_ENV)
    directory = build_dir or default_build_dir(Settings().frontend_dir)
    with Client(url or CliSettings().node_url, wallet) as client:
        published = client.publish_subsystem_frontend(subsystem, directory)
    if published["block_number"] is None:
        typer.echo(f"{subsystem!r} already serves this build", err=True)
    else:
        typer.echo(
            f"published {published['files']} files ({published['bytes']} bytes) as the "
            f"front-end of {subsystem!r} in block {published['block_number']}: "
            f"{client.url}/s/{subsystem}/",
            err=True,
        )
    return str(published["cid"])


def _publish_on_node(
    build_dir: Path | None,
    settings: Any,
    ipfs: str | None,
    subsystem: str | None,
    keystore: Path | None,
    key_env: str | None,
    url: str | None,
) -> str:
    """Add the build to the store of the node whose data directory is here, then have the
    wallet sign ``setSubsystemFrontend`` (or ``setFrontend``) and the node relay it; return
    the CID. Raises ``ClientError`` 403 for a non-admin (before anything is added)."""
    from node.cli.acting import load_wallet
    from node.client import Client, ClientError
    from node.frontend import CID_VERSION, check_build_dir, default_build_dir
    from node.runtime import NodeRecord
    from node.storage import open_store

    wallet = load_wallet(keystore, key_env or KEY_ENV)
    record = NodeRecord.load(settings.node_file)
    client = Client(url or record.endpoint or settings.endpoint, wallet)
    if wallet.address not in client.admins(subsystem):
        where = f"an admin of {subsystem!r}" if subsystem else "a system admin"
        raise ClientError(403, f"{wallet.address} is not {where}", "forbidden")
    directory = check_build_dir(build_dir or default_build_dir(settings.frontend_dir))
    store = open_store(settings.data_dir, ipfs or settings.ipfs_api)
    try:
        cid = str(store.add_path(directory, cid_version=CID_VERSION, pin=True))
    finally:
        store.close()
    if subsystem is None:
        client.act("setFrontend", data=cid)
    elif client.subsystem(subsystem)["frontend_cid"] != cid:
        client.set_subsystem_frontend(subsystem, cid)
    return cid


@contextlib.contextmanager
def open_publisher(
    data_dir: Path | None, chain_url: str | None, ipfs_api: str | None
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(store, registry)`` of the node in ``data_dir``, the registry signing with its
    wallet. Raises ``ConfigError`` when the node never started (no registry recorded)."""
    from node.chain.backend import open_chain, open_rpc
    from node.chain.keys import load_account
    from node.chain.registry import Registry
    from node.config import Settings
    from node.errors import ConfigError
    from node.runtime import NodeRecord, with_record_locations
    from node.storage import open_node_store

    settings = Settings(data_dir=data_dir.expanduser()) if data_dir else Settings()
    settings = with_record_locations(settings)
    record = NodeRecord.load(settings.node_file)
    if record.registry is None:
        raise ConfigError("this node never started: no registry recorded (run `collegium up`)")
    account = load_account(settings.keystore_path, ask_password())
    node_rpc = None if chain_url or record.chain_url else running_node_rpc(record.endpoint)
    url = chain_url or record.chain_url or node_rpc
    chain = (
        open_rpc(url) if url else open_chain(settings.data_dir, None, directory=settings.chain_path)
    )
    if node_rpc is not None:
        chain.w3.middleware_onion.add(LatestEstimateMiddleware)
    try:
        store = open_node_store(
            settings.model_copy(update={"ipfs_api": ipfs_api or settings.ipfs_api})
        )
        try:
            yield store, Registry(chain.w3, record.registry, account)
        finally:
            store.close()
    finally:
        chain.close()


@app.command()
def publish(
    build_dir: Annotated[
        Path | None,
        typer.Option("--build-dir", help="built front-end [default: frontend/dist]"),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="node data directory [default: ~/.collegium]")
    ] = None,
    chain: Annotated[
        str | None, typer.Option("--chain", help="Ethereum JSON-RPC URL of the node's chain")
    ] = None,
    ipfs: Annotated[
        str | None, typer.Option("--ipfs", help="kubo RPC URL instead of the embedded store")
    ] = None,
    subsystem: Annotated[
        str | None,
        typer.Option(
            "--subsystem",
            help="publish as this subsystem's own front-end (served at /s/<subsystem>/; "
            "the node's wallet must be one of its admins)",
        ),
    ] = None,
    keystore: Annotated[
        Path | None,
        typer.Option(
            "--keystore",
            help=f"sign with this wallet (an admin) instead of the node's ({PASSWORD_ENV}); "
            "the node relays it",
        ),
    ] = None,
    key_env: Annotated[
        str | None,
        typer.Option("--key-env", help="sign with the hex key in this environment variable"),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help=f"with --subsystem and a key: upload to this node from anywhere (no data "
            f"directory needed) [default: {URL_ENV}, or this machine's node]",
        ),
    ] = None,
) -> None:
    """Add the build to the content store, record its CID in the registry, pin it; print it.

    With ``--keystore`` or ``--key-env`` the registry entry is signed by that wallet (a system
    admin, or an admin of ``--subsystem``) and relayed by the node, which pays the gas;
    otherwise the node's own wallet sends it. ``--subsystem S --url URL`` with a key uploads
    the build to that node (at most 16 MiB packed) from any machine."""
    if keystore is not None or key_env is not None:
        typer.echo(_publish_as_person(build_dir, data_dir, ipfs, subsystem, keystore, key_env, url))
        return
    if url is not None:
        typer.echo("error: --url publishes with an admin's own key: pass --keystore FILE or "
                   "--key-env VAR", err=True)  # fmt: skip
        raise typer.Exit(int(ExitStatus.INVALID_INPUT))
    typer.echo(_publish_as_node(build_dir, data_dir, chain, ipfs, subsystem))


def _publish_as_node(
    build_dir: Path | None,
    data_dir: Path | None,
    chain: str | None,
    ipfs: str | None,
    subsystem: str | None,
) -> str:
    """Publish the build with the node's own wallet (system front-end, or ``subsystem``'s)
    and return its CID. Exits 5 (``NOT_ADMIN``) if the wallet may not, 1 on another error."""
    from node.config import Settings
    from node.frontend import (
        NotSubsystemAdmin,
        NotSystemAdmin,
        default_build_dir,
        publish_subsystem,
    )
    from node.frontend import publish as publish_frontend

    directory = build_dir or default_build_dir(Settings().frontend_dir)
    try:
        with open_publisher(data_dir, chain, ipfs) as (store, registry):
            if subsystem is None:
                return publish_frontend(store, registry, directory)
            return publish_subsystem(store, registry, subsystem, directory)
    except (NotSystemAdmin, NotSubsystemAdmin) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.NOT_ADMIN)) from exc
    except CollegiumError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.ERROR)) from exc
