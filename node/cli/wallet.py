"""The commands a wallet runs for itself: ``collegium tx send|show`` (business transactions,
their proofs checked against the node's chain RPC and IPFS gateway only), ``keys new|address``
and, on dev chains only, ``fund``. :func:`node.cli.people.mount` adds them to the app; the
options, wallet and exit codes are :mod:`node.cli.acting`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_account import Account

from node.cli.acting import (
    JsonOpt,
    KeyEnvOpt,
    KeystoreOpt,
    UrlOpt,
    acting,
    load_wallet,
    node_url,
    run,
    show,
)
from node.cli.options import ask_password
from node.cli.status import ExitStatus
from node.client import Client
from node.config import KEY_ENV

WEI_PER_ETH = 10**18

tx_app = typer.Typer(help="Business transactions: send, show", no_args_is_help=True)
keys_app = typer.Typer(help="Wallet keys: new keystore, address", no_args_is_help=True)


# ------------------------------------------------------------------ tx


def _verify(client: Client, tx_id: str) -> Any:
    """Return the report of ``tx_id``'s proof checked against the node's chain RPC
    (``/rpc``) and IPFS gateway only."""
    return run(lambda: client.verify(tx_id, chain_url=client.url + "/rpc", gateway_url=client.url))


@tx_app.command("send")
def tx_send(
    subsystem: Annotated[str, typer.Option("--subsystem", "-s")] = "main",
    kind: Annotated[str, typer.Option()] = "note",
    amount: Annotated[str, typer.Option()] = "0",
    currency: Annotated[str, typer.Option()] = "XXX",
    memo: Annotated[str, typer.Option()] = "",
    party: Annotated[list[str] | None, typer.Option("--party", help="repeatable")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait until anchored")] = False,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Sign a business transaction with your wallet and submit it; print its id and status
    and, once anchored (--wait), whether its proof holds against the chain and the gateway."""
    client = acting(url, keystore, key_env)
    fields = {"subsystem": subsystem, "kind": kind, "amount": amount, "currency": currency,
              "memo": memo, "parties": party or []}  # fmt: skip
    tx = run(lambda: client.send_tx(wait=wait, **fields))
    line = f"{tx['id']} {tx['status']}"
    if tx.get("status") == "anchored":  # check the proof at once: chain RPC + gateway only
        report = _verify(client, tx["id"])
        tx["proof"] = "valid" if report.ok else "invalid"
        line += f", proof {tx['proof']}"
    show(as_json, tx, line)
    if tx.get("proof") == "invalid":
        raise typer.Exit(int(ExitStatus.MISMATCH))


@tx_app.command("show")
def tx_show(
    tx_id: str,
    verify: Annotated[bool, typer.Option("--verify", help="check its proof")] = False,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one transaction; with --verify check its proof bundle against the node's chain RPC
    and IPFS gateway only (exit 3 if it does not hold)."""
    client = Client(node_url(url))
    tx = run(lambda: client.get_tx(tx_id))
    lines = [f"{k:<10} {v}" for k, v in tx.items() if not isinstance(v, dict | list)]
    ok = True
    if verify:
        report = _verify(client, tx_id)
        tx["proof"] = report.as_dict()
        ok = bool(report.ok)
        lines.append("proof      " + ("VALID" if ok else "INVALID"))
    show(as_json, tx, "\n".join(lines))
    if not ok:
        raise typer.Exit(int(ExitStatus.MISMATCH))


# ------------------------------------------------------------------ keys, fund


@keys_app.command("new")
def keys_new(
    out: Annotated[Path, typer.Option("--out", help="keystore file to write")] = Path(
        "collegium-key.json"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Create a wallet in a keystore file (password from COLLEGIUM_PASSWORD or a prompt)."""
    if out.exists():
        typer.echo(f"error: {out} exists; choose another --out", err=True)
        raise typer.Exit(int(ExitStatus.INVALID_INPUT))
    password = run(lambda: ask_password(confirm=True))
    account = Account.create()
    out.write_text(json.dumps(Account.encrypt(account.key, password)))
    out.chmod(0o600)
    show(as_json, {"address": account.address, "keystore": str(out)}, account.address)


@keys_app.command("address")
def keys_address(keystore: KeystoreOpt = None, key_env: KeyEnvOpt = KEY_ENV) -> None:
    """Print your wallet's address."""
    typer.echo(run(lambda: load_wallet(keystore, key_env)).address)


def fund_command(
    address: str,
    eth: Annotated[float, typer.Argument(help="ether to give")] = 1.0,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give ADDRESS ether on a dev chain (embedded or anvil); refused on any other chain."""
    wei = int(eth * WEI_PER_ETH)
    result = run(lambda: Client(node_url(url)).fund(address, wei))
    show(as_json, result, f"{result['address']} now holds {result['balance'] / WEI_PER_ETH:g} ETH")
