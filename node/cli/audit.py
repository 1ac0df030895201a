"""``collegium verify``: re-check the stored transactions and the subsystem logs against the
content store and the chain, without a running node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from node.cli.options import ChainOpt, DataDirOpt, fail, node_settings
from node.cli.probe import running_node_rpc
from node.cli.status import ExitStatus
from node.config import Settings
from node.errors import CollegiumError, ConfigError


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
        raise fail(exc, ExitStatus.INVALID_INPUT) from exc
    settings = node_settings(data_dir, chain_url=chain)
    try:
        with _audit_parts(settings) as (sessions, store, registry, node):
            report = audit(sessions, store, registry, node)
            log_audit = audit_logs(sessions, store, member_key)
            from node.chain.backend import describe_chain_trust

            parts_chain = registry.w3.eth.chain_id
            trust = describe_chain_trust(int(parts_chain), _audit_url(settings))
    except CollegiumError as exc:
        raise fail(exc) from exc
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
