"""``collegium``: the node's command line (Typer; one sub-app per command group)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from node import __version__
from node.assignment.constants import ROLES_BY_BIT
from node.cli.probe import running_node_rpc
from node.cli.status import ExitStatus
from node.config import (
    DEFAULT_HOME_SUBSYSTEM,
    DEFAULT_PORT,
    PASSWORD_ENV,
    CliSettings,
    Settings,
)
from node.errors import CollegiumError, ConfigError

# Commands import the node's modules inside their functions: those pull in web3, py-evm,
# SQLAlchemy and FastAPI (seconds of import), which `collegium --help` and the light
# commands must not wait for.

PROGRESS_BAR_WIDTH: Final = 24  # characters of the replica bar in `collegium status`

app = typer.Typer(
    help="Collegium node: open business ledger anchored on-chain, content on IPFS.",
    no_args_is_help=True,
    add_completion=False,
)


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


def _locations(
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


def _settings(data_dir: Path | None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir.expanduser()
    return Settings(**values)


def _node_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    """Return ``_settings`` with the data locations ``collegium init`` recorded filled in."""
    from node.runtime import with_record_locations

    return with_record_locations(_settings(data_dir, **overrides))


def _first_error(exc: ValueError) -> str:
    """Return a one-line message for a settings validation error."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"--{where.replace('_', '-')}: {first.get('msg')} (got {first.get('input')!r})"
    return str(exc)


def _password(confirm: bool = False) -> str:
    from_env = CliSettings().password
    if from_env is not None:
        return from_env.get_secret_value()
    if not sys.stdin.isatty():
        raise CollegiumError(f"set {PASSWORD_ENV} (no terminal to prompt for the wallet password)")
    return str(typer.prompt("Wallet password", hide_input=True, confirmation_prompt=confirm))


def _fail(exc: Exception, status: ExitStatus = ExitStatus.ERROR) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(int(status))


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


@app.command()
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
        settings = _settings(
            data_dir,
            chain_url=chain,
            **_locations(database_url, blocks_dir, chain_dir, store_quota),
        )
    except ValueError as exc:
        raise _fail(CollegiumError(_first_error(exc)), ExitStatus.INVALID_INPUT) from exc
    try:
        if registry is not None and registry_from is not None:
            raise CollegiumError("give --registry or --registry-from, not both")
        if registry_from is not None:
            registry = registry_of(registry_from, timeout=wait)
        record = init_node(
            settings,
            _password(confirm=True),
            home=home,
            capacity=capacity,
            roles=tuple(r.strip() for r in roles.split(",") if r.strip()),
            registry=registry,
            operator=admin,
        )
    except CollegiumError as exc:
        raise _fail(exc) from exc
    typer.echo(f"node wallet {record.address} created in {settings.data_dir}")
    if record.operator:
        typer.echo(f"operator (system admin, admin of {record.home!r}): {record.operator}")


@app.command()
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
        settings = _settings(
            data_dir,
            host=host,
            port=port,
            chain_url=chain,
            ipfs_api=ipfs,
            epoch_period=epoch_period,
            public_url=public_url,
            **_locations(database_url, blocks_dir, chain_dir, store_quota),
        )
    except ValueError as exc:
        raise _fail(CollegiumError(_first_error(exc)), ExitStatus.INVALID_INPUT) from exc
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
        password = _password(confirm=not settings.node_file.exists())
        if not settings.node_file.exists():
            record = init_node(settings, password, operator=admin)
            typer.echo(f"new node wallet {record.address} in {settings.data_dir}")
        return open_node(settings, password)
    except CollegiumError as exc:
        raise _fail(exc) from exc


def _serve(node: Any, host: str, port: int, log_level: str) -> None:
    """Serve the node's API on ``host:port`` until stopped, then close the node."""
    import uvicorn

    from node.api.main import create_app

    try:
        uvicorn.run(
            create_app(node, close_on_shutdown=True, freeze_gc=True),
            host=host,
            port=port,
            log_level=log_level.lower(),
            # X-Forwarded-For only from proxies the operator lists (uvicorn trusts 127.0.0.1
            # by default, which let any local client pick its own rate-limit bucket)
            proxy_headers=bool(node.settings.trusted_proxies),
            forwarded_allow_ips=",".join(node.settings.trusted_proxies) or None,
        )
    finally:
        node.close()


@app.command()
def status(
    data_dir: DataDirOpt = None,
    url: Annotated[str | None, typer.Option(help="node URL [default: from the data dir]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the raw JSON")] = False,
) -> None:
    """Show a running node's health: chain, block, epoch, registry, store, transactions."""
    import httpx

    from node.runtime import NodeRecord

    settings = _settings(data_dir)
    target = url or settings.endpoint
    if url is None and settings.node_file.exists():
        target = NodeRecord.load(settings.node_file).endpoint or target
    try:
        health = httpx.get(target.rstrip("/") + "/health", timeout=5).raise_for_status().json()
    except httpx.HTTPError as exc:
        raise _fail(
            CollegiumError(f"node at {target} is not reachable: {exc}"), ExitStatus.UNREACHABLE
        ) from exc
    if as_json:
        typer.echo(json.dumps(health, indent=2))
        return
    chain = health.get("chain", {})
    reasons = health.get("reasons") or []
    typer.echo(f"status     {'ok' if health.get('status') == 'ok' else 'DEGRADED'}")
    for reason in reasons:
        typer.echo(f"  {reason.get('code')}: {reason.get('message')}")
    typer.echo(f"node       {health.get('node')}  (v{health.get('version')})")
    typer.echo(
        f"chain      {chain.get('kind')} id {chain.get('chain_id')}  "
        f"block {chain.get('block_number')}"
    )
    typer.echo(f"epoch      {health.get('epoch')}")
    typer.echo(f"registry   {health.get('registry')}")
    typer.echo(f"store      {format_store(health.get('store') or {})}")
    for line in format_frontend(health.get("frontend")):
        typer.echo(line)
    if health.get("sync"):
        typer.echo(f"replica    {format_progress(health['sync'])}")
    for log in health.get("replicas") or []:
        if isinstance(log, dict) and "subsystem" in log:
            state = "caught up" if log.get("ready") else "catching up"
            typer.echo(f"log        {log['subsystem']}: {log.get('have')}/{log.get('entries')} "
                       f"sealed objects here ({state})")  # fmt: skip
    typer.echo(f"ledger     {health.get('transactions')}")
    if "epochs" in health:
        from node.epoch.report import format_epoch_status

        for line in format_epoch_status(health["epochs"]):
            typer.echo(line)


def format_progress(sync: dict[str, Any], width: int = PROGRESS_BAR_WIDTH) -> str:
    """Return a one-line replica summary of ``/health``'s ``sync`` object, e.g.
    ``"[############------------] 12/24 roots (syncing)"`` or ``"24/24 roots complete"``."""
    have, want = int(sync.get("have", 0)), int(sync.get("want", 0))
    if not sync.get("rounds"):
        return "sync not run yet"
    if sync.get("complete"):
        line = f"{have}/{want} roots complete"
    else:
        filled = (have * width) // want if want else width
        state = "syncing" if sync.get("syncing") else "incomplete"
        line = f"[{'#' * filled}{'-' * (width - filled)}] {have}/{want} roots ({state})"
    if sync.get("bad_blocks"):
        line += f"; {sync['bad_blocks']} bad blocks from peers rejected"
    if sync.get("last_error"):
        line += f"; last error: {sync['last_error']}"
    return line


def format_store(store: dict[str, Any]) -> str:
    """Return the store line of ``collegium status``: backend, location, use against quota."""
    text = str(store.get("backend"))
    if store.get("path"):
        text += f" at {store['path']}"
    if "used_bytes" in store:
        quota = store.get("quota_bytes")
        text += f"  {_size(int(store['used_bytes']))} used"
        text += f" of {_size(int(quota))}" if quota else " (no quota)"
        if store.get("full"):
            text += "  FULL: writes refused"
    return text


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_frontend(frontend: dict[str, Any] | None) -> list[str]:
    """Return the front-end lines of ``collegium status``."""
    if not frontend:
        return []
    cid, bundled = frontend.get("cid"), frontend.get("bundled")
    lines = [f"frontend   {cid or 'none published'}"]
    if bundled and cid != bundled:
        lines.append(
            f"           this node's bundled front-end is {bundled}, not the registry's: a system "
            "admin publishes it with `collegium frontend publish`"
        )
    return lines


@app.command()
def verify(
    data_dir: DataDirOpt = None,
    chain: ChainOpt = None,
    member_key_file: Annotated[
        Path | None,
        typer.Option(help="a participant's wallet key (0x hex in a file): also open and "
                     "re-hash every subsystem-log entry it has a slot for"),
    ] = None,
) -> None:  # fmt: skip
    """Re-check every stored transaction against the content store and the chain, and every
    subsystem's log of sealed objects against the store (without keys, or opening them with
    ``--member-key-file``).

    Exits 0 when everything matches and 3 with a report of each mismatch otherwise.
    """
    from node.ledger.audit import audit
    from node.replication.replica import audit_logs

    try:
        member_key = _read_member_key(member_key_file)
    except ConfigError as exc:
        raise _fail(exc, ExitStatus.INVALID_INPUT) from exc
    settings = _node_settings(data_dir, chain_url=chain)
    try:
        with _audit_parts(settings) as (sessions, store, registry, node):
            report = audit(sessions, store, registry, node)
            log_audit = audit_logs(sessions, store, member_key)
            from node.chain.backend import describe_chain_trust

            parts_chain = registry.w3.eth.chain_id
            trust = describe_chain_trust(int(parts_chain), _audit_url(settings))
    except CollegiumError as exc:
        raise _fail(exc) from exc
    log_findings = log_audit.findings
    for finding in report.findings:
        typer.echo(f"MISMATCH {finding}")
    for log_finding in log_findings:
        typer.echo(f"MISMATCH {log_finding}")
    typer.echo(f"checked against {trust[0]}")
    if trust[1]:
        typer.echo(f"note: {trust[1]}")
    typer.echo(
        f"checked {report.checked} transactions ({report.anchored} anchored, "
        f"{report.pending} pending): "
        + ("all match" if report.ok else f"{len(report.findings)} mismatches")
    )
    opened = f", {log_audit.opened} opened" if member_key_file is not None else ""
    typer.echo(
        f"checked {log_audit.checked} entries of the subsystem logs{opened} "
        "(sealed objects and envelopes): "
        + ("all match" if not log_findings else f"{len(log_findings)} mismatches")
    )
    if not report.ok or log_findings:
        raise typer.Exit(int(ExitStatus.MISMATCH))


def _audit_url(settings: Settings) -> str | None:
    """Return the chain RPC URL an audit of ``settings`` uses (None: the embedded chain)."""
    from node.runtime import NodeRecord

    record = NodeRecord.load(settings.node_file)
    return settings.chain_url or record.chain_url or running_node_rpc(record.endpoint)


def _read_member_key(path: Path | None) -> bytes | None:
    """Return the wallet key in ``path`` (0x hex), or None; raises ``ConfigError``."""
    if path is None:
        return None
    try:
        key = bytes.fromhex(path.read_text().strip().removeprefix("0x"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read a wallet key from {path}: {exc}") from exc
    if len(key) != 32:
        raise ConfigError(f"{path} does not hold a 32-byte wallet key")
    return key


class _audit_parts:  # noqa: N801 - used as a context manager
    """Open the index, the store and a read-only registry for an audit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.chain: Any = None
        self.engine: Any = None

    def __enter__(self) -> tuple[Any, Any, Any, str]:
        from node.chain.backend import open_chain, open_rpc
        from node.chain.registry import Registry
        from node.db.session import create_db_engine, make_session_factory
        from node.runtime import NodeRecord
        from node.storage import open_node_store

        settings = self.settings
        record = NodeRecord.load(settings.node_file)
        if record.registry is None:
            raise CollegiumError("this node never started: no registry recorded")
        url = settings.chain_url or record.chain_url or running_node_rpc(record.endpoint)
        self.chain = (
            open_rpc(url)
            if url
            else open_chain(settings.data_dir, None, directory=settings.chain_path)
        )
        registry = Registry(self.chain.w3, record.registry, None)
        store = open_node_store(settings)
        self.engine = create_db_engine(settings.sqlalchemy_url)
        return make_session_factory(self.engine), store, registry, record.address

    def __exit__(self, *exc: object) -> None:
        if self.engine is not None:
            self.engine.dispose()
        if self.chain is not None:
            self.chain.close()


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


__all__ = ["ExitStatus", "app", "main"]


if __name__ == "__main__":
    main()
