"""``collegium verify-tx`` and ``collegium reindex``: the ledger's third-party commands.

Mounted by ``node/cli/main.py``::

    app.command("verify-tx")(ledger.verify_tx_command)
    app.command("reindex")(ledger.reindex_command)

Exit codes follow ``collegium verify``: 0 all checks pass, 1 error, 2 usage,
3 mismatch (the bundle or the index disagrees with the chain/store), 4 unreachable.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from node.cli.probe import is_node_running
from node.cli.status import ExitStatus
from node.errors import CollegiumError

# Commands import the node's modules inside their functions: those pull in web3, py-evm,
# SQLAlchemy and FastAPI (seconds of import), which `collegium --help` and the light
# commands must not wait for.

REINDEX_SUFFIX = ".reindex"
BACKUP_SUFFIX = ".bak"
SQLITE_SIDE_FILES = ("-wal", "-shm")


class BundleNotServed(CollegiumError):
    """The URL of a bundle answered an error (an unknown transaction id, not anchored yet)."""

    def __init__(self, url: str, response: Any) -> None:
        try:
            detail = str(response.json().get("detail") or response.reason_phrase)
        except (ValueError, AttributeError):
            detail = response.text[:200] or response.reason_phrase
        self.status = int(response.status_code)
        hint = " (the node knows no such transaction: check the id)" if self.status == 404 else ""
        super().__init__(f"no proof bundle at {url}: {self.status} {detail}{hint}")


def _load_bundle(source: str) -> Any:
    """Return the bundle JSON from a file, ``-`` (stdin) or an ``http(s)`` URL."""
    if source == "-":
        return json.load(sys.stdin)
    if source.startswith(("http://", "https://")):
        import httpx

        response = httpx.get(source, timeout=30)
        if response.status_code >= 400:
            raise BundleNotServed(source, response)
        return response.json()
    return json.loads(Path(source).read_text())


def verify_tx_command(
    bundle: Annotated[
        str, typer.Argument(help="proof bundle: a JSON file, - for stdin, or its URL")
    ],
    chain: Annotated[str, typer.Option("--chain", help="Ethereum JSON-RPC URL (read only)")],
    gateway: Annotated[str, typer.Option("--gateway", help="IPFS gateway base URL")],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Check one transaction's proof bundle with only a chain RPC and an IPFS gateway.

    Fetches the leaf by CID and checks its hash, recovers the EIP-712 signer, verifies
    the inclusion path and reads the anchored root from the registry. Exits 0 when every
    check passes, 3 on any mismatch, 4 when the chain or the gateway is unreachable.
    """
    from node.chain.backend import describe_chain_trust
    from node.ledger.bundle import BundleError, Unreachable, verify_bundle

    try:
        data = _load_bundle(bundle)
        report = verify_bundle(data, chain_url=chain, gateway_url=gateway)
    except Unreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.UNREACHABLE)) from exc
    except BundleNotServed as exc:
        typer.echo(f"error: {exc}", err=True)
        status = ExitStatus.NOT_FOUND if exc.status == 404 else ExitStatus.ERROR
        raise typer.Exit(int(status)) from exc
    except (BundleError, ValueError, OSError) as exc:
        typer.echo(f"error: bundle unreadable: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.MISMATCH)) from exc
    except Exception as exc:  # httpx errors fetching a bundle URL
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.UNREACHABLE)) from exc
    chain_id = data.get("chain_id") if isinstance(data, dict) else None
    named, caveat = describe_chain_trust(int(chain_id or 0), chain)
    if as_json:
        typer.echo(
            json.dumps({**report.as_dict(), "trust": {"chain": named, "caveat": caveat}}, indent=2)
        )
    else:
        typer.echo(f"transaction {report.tx_id}")
        typer.echo(f"checked against {named}")
        if caveat:
            typer.echo(f"note: {caveat}")
        for check in report.checks:
            typer.echo(f"  {'ok  ' if check.ok else 'FAIL'} {check.name:<10} {check.detail}")
        failed = ", ".join(c.name for c in report.checks if not c.ok)
        verdict = (
            "VALID: included in an anchored tree head"
            if report.ok
            else f"INVALID: FAILED {failed or 'no check ran'}"
        )
        typer.echo(verdict + (f", signed by {report.signer}" if report.ok else ""))
    if not report.ok:
        raise typer.Exit(int(ExitStatus.MISMATCH))


def _copy_pending(old_url: str, new_sessions: Any) -> int:
    """Copy leaves accepted but not yet anchored from the old index; return how many."""
    from sqlalchemy import inspect, select

    from node.db.models import BusinessTransaction, TransactionStatus
    from node.db.session import create_db_engine, make_session_factory
    from node.ledger.rows import new_row
    from node.ledger.transaction import decode_leaf

    engine = create_db_engine(old_url)
    try:
        with engine.connect() as conn:
            if "transactions" not in inspect(conn).get_table_names():
                return 0
        old = make_session_factory(engine)
        with old() as session:
            pending = session.scalars(
                select(BusinessTransaction)
                .where(BusinessTransaction.status == TransactionStatus.PENDING)
                .order_by(BusinessTransaction.seq)
            ).all()
        with new_sessions() as session:
            known = set(
                session.scalars(
                    select(BusinessTransaction.tx_id).where(BusinessTransaction.origin == "")
                ).all()
            )
            copied = 0
            for row in pending:
                if row.tx_id in known:
                    continue
                session.add(new_row(decode_leaf(row.body), row.body, row.cid, row.received_at))
                copied += 1
            session.commit()
        return copied
    finally:
        engine.dispose()


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def reindex_command(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="node data directory [default: ~/.collegium]"),
    ] = None,
    chain: Annotated[
        str | None, typer.Option("--chain", help="Ethereum JSON-RPC URL of the node's chain")
    ] = None,
    into: Annotated[
        str | None,
        typer.Option("--into", help="rebuild into this empty database URL instead of in place"),
    ] = None,
) -> None:
    """Rebuild the index from the chain and the content store alone.

    In place (SQLite only, node stopped): builds a new database next to the old one,
    copies over leaves accepted but not anchored yet, then swaps the files and keeps
    the old one as ``index.sqlite.bak``. With ``--into URL`` the node's database is not
    touched. Exits 3 if the chain and the store disagree.
    """
    from node.config import Settings
    from node.ledger.reindex import ReindexError
    from node.runtime import NodeRecord, with_record_locations

    settings = with_record_locations(
        Settings(data_dir=data_dir.expanduser()) if data_dir else Settings()
    )
    try:
        record = NodeRecord.load(settings.node_file)
        if record.registry is None:
            raise CollegiumError("this node never started: no registry recorded")
        url = chain or settings.chain_url or record.chain_url
        if into is None:
            old_path, new_path = _prepare_in_place(settings, record)
            target = f"sqlite:///{new_path}"
        else:
            target = into
        report, copied, started = _reindex_into(settings, record, url, target, into is None)
        if into is None:
            _swap(old_path, new_path)
    except ReindexError as exc:
        typer.echo(f"MISMATCH {exc}", err=True)
        raise typer.Exit(int(ExitStatus.MISMATCH)) from exc
    except CollegiumError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.ERROR)) from exc
    typer.echo(
        f"reindexed {report.transactions} transactions from {report.own_anchors} of this "
        f"node's anchors and {report.other_transactions} of other nodes' logs "
        f"({report.anchors} anchors on-chain, {report.events} registry events"
        f"{f', {copied} pending leaves kept' if copied else ''}) "
        f"in {time.perf_counter() - started:.1f} s"
    )


def _prepare_in_place(settings: Any, record: Any) -> tuple[Path, Path]:
    """Return the node's SQLite index file and the fresh file to rebuild it in (any stale
    one removed).

    Raises ``CollegiumError`` if the index is not SQLite or the node is running.
    """
    old_path = _sqlite_path(settings.sqlalchemy_url)
    if old_path is None:
        raise CollegiumError("in-place reindex is for SQLite: pass --into DATABASE_URL")
    if is_node_running(record.endpoint):
        raise CollegiumError(f"the node at {record.endpoint} is running: stop it first")
    new_path = old_path.with_name(old_path.name + REINDEX_SUFFIX)
    for stale in [new_path, *(Path(f"{new_path}{s}") for s in SQLITE_SIDE_FILES)]:
        stale.unlink(missing_ok=True)
    return old_path, new_path


def _reindex_into(
    settings: Any, record: Any, url: str | None, target: str, copy_pending: bool
) -> tuple[Any, int, float]:
    """Rebuild the index into the database ``target`` from the chain (``url``, or the
    embedded one) and the node's store; with ``copy_pending`` copy the leaves accepted but
    not anchored from the node's database. Return the report, the leaves copied and when
    the rebuild started (``time.perf_counter()``).

    Raises ``ReindexError`` if the chain and the store disagree.
    """
    from node.chain.backend import open_chain, open_rpc
    from node.db.session import create_db_engine, make_session_factory, upgrade_database
    from node.ledger.reindex import reindex
    from node.storage import open_node_store

    backend = (
        open_rpc(url) if url else open_chain(settings.data_dir, None, directory=settings.chain_path)
    )
    store = open_node_store(settings)
    upgrade_database(target)
    engine = create_db_engine(target)
    started = time.perf_counter()
    try:
        sessions = make_session_factory(engine)
        report = reindex(
            sessions=sessions,
            store=store,
            w3=backend.w3,
            registry_address=record.registry,
            node_address=record.address,
            start_block=record.deployed_block or 0,
        )
        copied = _copy_pending(settings.sqlalchemy_url, sessions) if copy_pending else 0
    finally:
        engine.dispose()
        store.close()
        backend.close()
    return report, copied, started


def _swap(old: Path, new: Path) -> None:
    """Replace the SQLite database ``old`` by ``new``, keeping ``old`` as a backup."""
    backup = old.with_name(old.name + BACKUP_SUFFIX)
    for side in ("", *SQLITE_SIDE_FILES):
        Path(f"{backup}{side}").unlink(missing_ok=True)
        if Path(f"{old}{side}").exists():
            shutil.move(f"{old}{side}", f"{backup}{side}")
    for side in ("", *SQLITE_SIDE_FILES):
        if Path(f"{new}{side}").exists():
            os.replace(f"{new}{side}", f"{old}{side}")
