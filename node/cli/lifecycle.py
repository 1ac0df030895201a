"""``collegium init`` and ``collegium up``: create a node's data directory and wallet, then
run it (open every part, serve the API until stopped)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from node.assignment.constants import ROLES_BY_BIT
from node.cli.options import (
    AdminOpt,
    BlocksDirOpt,
    ChainDirOpt,
    ChainOpt,
    DatabaseOpt,
    DataDirOpt,
    QuotaOpt,
    ask_password,
    fail,
    first_error,
    locations,
    make_settings,
)
from node.cli.status import ExitStatus
from node.config import DEFAULT_HOME_SUBSYSTEM, DEFAULT_PORT
from node.errors import CollegiumError


def init(
    data_dir: DataDirOpt = None,
    home: Annotated[str, typer.Option(help="home subsystem (failure domain)")] = (
        DEFAULT_HOME_SUBSYSTEM
    ),
    capacity: Annotated[int, typer.Option(help="role slots this node can carry")] = 4,
    roles: Annotated[str, typer.Option(help="comma-separated roles offered")] = ",".join(
        ROLES_BY_BIT
    ),
    chain: ChainOpt = None,
    registry: Annotated[
        str | None, typer.Option(help="join an existing registry at this address")
    ] = None,
    registry_from: Annotated[
        str | None,
        typer.Option(
            help="join the registry of the node at this URL (read from its /health; "
            "retried while it starts)"
        ),
    ] = None,
    wait: Annotated[
        float, typer.Option(help="seconds to wait for --registry-from to answer")
    ] = 120.0,
    database_url: DatabaseOpt = None,
    blocks_dir: BlocksDirOpt = None,
    chain_dir: ChainDirOpt = None,
    store_quota: QuotaOpt = None,
    admin: AdminOpt = None,
) -> None:
    """Create the node's data directory and wallet (keystore, password never stored) and
    record where its data lives."""
    from node.runtime import init_node, registry_of

    try:
        settings = make_settings(
            data_dir,
            chain_url=chain,
            **locations(database_url, blocks_dir, chain_dir, store_quota),
        )
    except ValueError as exc:
        raise fail(CollegiumError(first_error(exc)), ExitStatus.INVALID_INPUT) from exc
    try:
        if registry is not None and registry_from is not None:
            raise CollegiumError("give --registry or --registry-from, not both")
        if registry_from is not None:
            registry = registry_of(registry_from, timeout=wait)
        record = init_node(
            settings,
            ask_password(confirm=True),
            home=home,
            capacity=capacity,
            roles=tuple(r.strip() for r in roles.split(",") if r.strip()),
            registry=registry,
            operator=admin,
        )
    except CollegiumError as exc:
        raise fail(exc) from exc
    typer.echo(f"node wallet {record.address} created in {settings.data_dir}")
    if record.operator:
        typer.echo(f"operator (system admin, admin of {record.home!r}): {record.operator}")


def up(
    data_dir: DataDirOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = DEFAULT_PORT,
    chain: ChainOpt = None,
    ipfs: Annotated[
        str | None, typer.Option("--ipfs", help="kubo RPC URL instead of the embedded store")
    ] = None,
    epoch_period: Annotated[
        int | None, typer.Option(help="blocks per epoch when deploying a new registry")
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="URL peers reach this node at (registered on-chain)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="logging level")] = "info",
    database_url: DatabaseOpt = None,
    blocks_dir: BlocksDirOpt = None,
    chain_dir: ChainDirOpt = None,
    store_quota: QuotaOpt = None,
    admin: AdminOpt = None,
) -> None:
    """Run the node: embedded chain and store unless --chain/--ipfs, API on HOST:PORT."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = make_settings(
            data_dir,
            host=host,
            port=port,
            chain_url=chain,
            ipfs_api=ipfs,
            epoch_period=epoch_period,
            public_url=public_url,
            **locations(database_url, blocks_dir, chain_dir, store_quota),
        )
    except ValueError as exc:
        raise fail(CollegiumError(first_error(exc)), ExitStatus.INVALID_INPUT) from exc
    node = _open_or_create_node(settings, admin)
    typer.echo(
        f"Collegium node {node.address} on http://{host}:{port} "
        f"(chain {node.chain.kind} id {node.chain.chain_id}, registry {node.record.registry}, "
        f"store {node.store.backend})"
    )
    _serve(node, host, port, log_level)


def _open_or_create_node(settings: Any, admin: str | None) -> Any:
    """Return the node of ``settings.data_dir`` opened, its wallet created first if it has
    none (the password is asked twice then). Exits on a ``CollegiumError``."""
    from node.runtime import init_node, open_node

    try:
        password = ask_password(confirm=not settings.node_file.exists())
        if not settings.node_file.exists():
            record = init_node(settings, password, operator=admin)
            typer.echo(f"new node wallet {record.address} in {settings.data_dir}")
        return open_node(settings, password)
    except CollegiumError as exc:
        raise fail(exc) from exc


def _serve(node: Any, host: str, port: int, log_level: str) -> None:
    """Serve the node's API on ``host:port`` until stopped, then close the node."""
    import uvicorn

    from node.api.main import create_app
    from node.api.server import CoalescingHttpProtocol

    try:
        uvicorn.run(
            create_app(node, close_on_shutdown=True, freeze_gc=True),
            host=host,
            port=port,
            http=CoalescingHttpProtocol,  # one write per answer: node/api/server.py
            log_level=log_level.lower(),
            # X-Forwarded-For only from proxies the operator lists (uvicorn trusts 127.0.0.1
            # by default, which let any local client pick its own rate-limit bucket)
            proxy_headers=bool(node.settings.trusted_proxies),
            forwarded_allow_ips=",".join(node.settings.trusted_proxies) or None,
        )
    finally:
        node.close()
