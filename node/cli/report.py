"""``collegium status``: a running node's ``/health`` for people (or as JSON), and the lines
it prints (replica bar, store use, front-end)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

import typer

from node.cli.options import DataDirOpt, fail, make_settings
from node.cli.status import ExitStatus
from node.errors import CollegiumError

PROGRESS_BAR_WIDTH: Final = 24  # characters of the replica bar in `collegium status`


def status(
    data_dir: DataDirOpt = None,
    url: Annotated[str | None, typer.Option(help="node URL [default: from the data dir]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the raw JSON")] = False,
) -> None:
    """Show a running node's health: chain, block, epoch, registry, store, transactions."""
    import httpx

    from node.runtime import NodeRecord

    settings = make_settings(data_dir)
    target = url or settings.endpoint
    if url is None and settings.node_file.exists():
        target = NodeRecord.load(settings.node_file).endpoint or target
    try:
        health = httpx.get(target.rstrip("/") + "/health", timeout=5).raise_for_status().json()
    except httpx.HTTPError as exc:
        raise fail(
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
