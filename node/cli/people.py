"""The operator's and participants' commands, built on :mod:`node.client`.

``collegium subsystem create|list|show``, ``participant add|remove|list``, ``admin
add|remove|list``, ``join request|status|list|approve|deny``, ``tx send|show``, ``keys
new|address`` and, on dev chains only, ``fund``. Every action is signed with the person's own
key (``--keystore FILE`` with ``COLLEGIUM_PASSWORD``, or a hex key in the environment variable
named by ``--key-env``, default ``COLLEGIUM_KEY``) and relayed by the node at ``--url`` (default
``COLLEGIUM_URL`` or http://127.0.0.1:8000), which pays the gas: the wallet needs no ether.

Output is for people by default, JSON with ``--json``. Exit codes (``node/cli/status.py``):
0 done, 1 error, 2 bad input (and a refused, expired or replayed action), 3 a proof that does
not hold, 4 node unreachable, 5 not an admin, 6 not found.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.cli.status import ExitStatus
from node.client import Client, ClientError
from node.config import KEY_ENV, PASSWORD_ENV, URL_ENV, CliSettings
from node.errors import CollegiumError

WEI_PER_ETH = 10**18

UrlOpt = Annotated[str | None, typer.Option("--url", help=f"node URL [env {URL_ENV}]")]
KeystoreOpt = Annotated[
    Path | None, typer.Option("--keystore", help=f"wallet keystore file ({PASSWORD_ENV})")
]
KeyEnvOpt = Annotated[
    str, typer.Option("--key-env", help="environment variable holding a hex private key")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
SubsystemOpt = Annotated[
    str | None, typer.Option("--subsystem", "-s", help="a subsystem [default: the system]")
]

subsystem_app = typer.Typer(help="Subsystems: create, list, show", no_args_is_help=True)
participant_app = typer.Typer(help="Participants of a subsystem", no_args_is_help=True)
admin_app = typer.Typer(help="Admins of a subsystem, or of the system", no_args_is_help=True)
join_app = typer.Typer(help="Join requests: ask, see, approve, deny", no_args_is_help=True)
tx_app = typer.Typer(help="Business transactions: send, show", no_args_is_help=True)
keys_app = typer.Typer(help="Wallet keys: new keystore, address", no_args_is_help=True)

T = TypeVar("T")

STATUS_BY_HTTP = {0: ExitStatus.UNREACHABLE, 403: ExitStatus.NOT_ADMIN, 404: ExitStatus.NOT_FOUND}


def _url(url: str | None) -> str:
    return url or CliSettings().node_url


def load_wallet(keystore: Path | None, key_env: str = KEY_ENV) -> LocalAccount:
    """Return the wallet of ``keystore`` (password from ``COLLEGIUM_PASSWORD`` or a prompt)
    or of the hex key in the environment variable ``key_env``."""
    if keystore is not None:
        try:
            data = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            raise CollegiumError(f"cannot read keystore {keystore}: {exc}") from exc
        given = CliSettings().password
        if given is not None:
            password = given.get_secret_value()
        else:
            password = str(typer.prompt("Wallet password", hide_input=True))
        try:
            return Account.from_key(Account.decrypt(data, password))
        except ValueError as exc:
            raise CollegiumError(f"cannot open keystore {keystore}: {exc}") from exc
    key = CliSettings().key_from(key_env)
    if key is None:
        raise CollegiumError(f"no wallet: pass --keystore FILE or set {key_env} to a hex key")
    try:
        return Account.from_key(key.get_secret_value())
    except (ValueError, TypeError) as exc:
        raise CollegiumError(f"{key_env} does not hold a private key: {exc}") from None


def _run(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn a refusal into ``error: …`` on stderr and a named exit code."""
    try:
        return fn()
    except ClientError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        status = STATUS_BY_HTTP.get(exc.status)
        if status is None:
            status = ExitStatus.INVALID_INPUT if 400 <= exc.status < 500 else ExitStatus.ERROR
        raise typer.Exit(int(status)) from exc
    except CollegiumError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(int(ExitStatus.INVALID_INPUT)) from exc


def _out(as_json: bool, data: Any, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


def _acting(url: str | None, keystore: Path | None, key_env: str) -> Client:
    return Client(_url(url), _run(lambda: load_wallet(keystore, key_env)))


def _done(as_json: bool, receipt: dict[str, Any], what: str) -> None:
    _out(as_json, receipt, f"{what} (tx {receipt['tx_hash']}, block {receipt['block_number']})")


# ------------------------------------------------------------------ subsystem


@subsystem_app.command("create")
def subsystem_create(
    name: str,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Create subsystem NAME; your wallet becomes its admin and first participant."""
    client = _acting(url, keystore, key_env)
    receipt = _run(lambda: client.create_subsystem(name))
    _done(as_json, receipt, f"created {name!r}")


@subsystem_app.command("list")
def subsystem_list(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List every subsystem."""
    names = _run(lambda: Client(_url(url)).subsystems())
    _out(as_json, names, "\n".join(names))


@subsystem_app.command("show")
def subsystem_show(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Show a subsystem: admins, participants, pending join requests, front-end."""
    client = Client(_url(url))
    record = _run(lambda: client.subsystem(name))
    record["admins"] = _run(lambda: client.admins(name))
    record["join_requests"] = [r["address"] for r in _run(lambda: client.join_requests(name))]
    lines = [f"subsystem     {name}", f"front-end     {record['frontend_cid'] or '-'}"]
    lines += [f"admin         {a}" for a in record["admins"]]
    lines += [f"participant   {a}" for a in record["participants"]]
    lines += [f"join request  {a}" for a in record["join_requests"]]
    _out(as_json, record, "\n".join(lines))


# ------------------------------------------------------------------ participant


@participant_app.command("add")
def participant_add(
    name: str,
    address: str,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Add ADDRESS to subsystem NAME (you must be its admin)."""
    client = _acting(url, keystore, key_env)
    receipt = _run(lambda: client.add_participant(name, address))
    _done(as_json, receipt, f"{address} is a participant of {name!r}")


@participant_app.command("remove")
def participant_remove(
    name: str,
    address: str,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Remove ADDRESS from subsystem NAME (you must be its admin)."""
    client = _acting(url, keystore, key_env)
    receipt = _run(lambda: client.remove_participant(name, address))
    _done(as_json, receipt, f"{address} is no longer a participant of {name!r}")


@participant_app.command("list")
def participant_list(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List the participants of NAME."""
    members = _run(lambda: Client(_url(url)).subsystem(name))["participants"]
    _out(as_json, members, "\n".join(members))


# ------------------------------------------------------------------ admin


@admin_app.command("add")
def admin_add(
    address: str,
    subsystem: SubsystemOpt = None,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Make ADDRESS an admin of --subsystem (or a system admin)."""
    client = _acting(url, keystore, key_env)
    where = f"of {subsystem!r}" if subsystem else "of the system"
    receipt = _run(lambda: client.add_admin(subsystem, address))
    _done(as_json, receipt, f"{address} is an admin {where}")


@admin_app.command("remove")
def admin_remove(
    address: str,
    subsystem: SubsystemOpt = None,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Remove admin ADDRESS of --subsystem (or a system admin); the last admin stays."""
    client = _acting(url, keystore, key_env)
    where = f"of {subsystem!r}" if subsystem else "of the system"
    receipt = _run(lambda: client.remove_admin(subsystem, address))
    _done(as_json, receipt, f"{address} is no longer an admin {where}")


@admin_app.command("list")
def admin_list(
    subsystem: SubsystemOpt = None, url: UrlOpt = None, as_json: JsonOpt = False
) -> None:
    """List the admins of --subsystem (or the system admins)."""
    admins = _run(lambda: Client(_url(url)).admins(subsystem))
    _out(as_json, admins, "\n".join(admins))


# ------------------------------------------------------------------ join


@join_app.command("request")
def join_request(
    name: str,
    message: Annotated[str, typer.Option("--message", "-m")] = "",
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Ask to join NAME (gasless: your wallet needs no ether)."""
    client = _acting(url, keystore, key_env)
    receipt = _run(lambda: client.request_join(name, message))
    _done(as_json, receipt, f"asked to join {name!r}; an admin approves or denies")


@join_app.command("status")
def join_status(
    name: str,
    address: Annotated[str | None, typer.Argument()] = None,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Show ADDRESS's (default: your wallet's) standing with NAME."""
    who = address or _run(lambda: load_wallet(keystore, key_env)).address
    state = _run(lambda: Client(_url(url)).join_status(name, who))
    word = "participant" if state["participant"] else "pending" if state["pending"] else "none"
    _out(as_json, state, f"{who} in {name!r}: {word}")


@join_app.command("list")
def join_list(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List the pending join requests of NAME, with their messages."""
    requests = _run(lambda: Client(_url(url)).join_requests(name))
    text = "\n".join(f"{r['address']}  {r['message']}" for r in requests) or "no pending request"
    _out(as_json, requests, text)


@join_app.command("approve")
def join_approve(
    name: str,
    address: str,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Approve ADDRESS's request to join NAME: it becomes a participant (admins)."""
    client = _acting(url, keystore, key_env)
    receipt = _run(lambda: client.approve(name, address))
    _done(as_json, receipt, f"approved: {address} is a participant of {name!r}")


@join_app.command("deny")
def join_deny(
    name: str,
    address: str,
    url: UrlOpt = None,
    keystore: KeystoreOpt = None,
    key_env: KeyEnvOpt = KEY_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Deny ADDRESS's request to join NAME (admins)."""
    client = _acting(url, keystore, key_env)
    receipt = _run(lambda: client.deny(name, address))
    _done(as_json, receipt, f"denied {address}'s request to join {name!r}")


# ------------------------------------------------------------------ tx


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
    client = _acting(url, keystore, key_env)
    fields = {"subsystem": subsystem, "kind": kind, "amount": amount, "currency": currency,
              "memo": memo, "parties": party or []}  # fmt: skip
    tx = _run(lambda: client.send_tx(wait=wait, **fields))
    line = f"{tx['id']} {tx['status']}"
    if tx.get("status") == "anchored":  # check the proof at once: chain RPC + gateway only
        report = _run(
            lambda: client.verify(tx["id"], chain_url=client.url + "/rpc", gateway_url=client.url)
        )
        tx["proof"] = "valid" if report.ok else "invalid"
        line += f", proof {tx['proof']}"
    _out(as_json, tx, line)
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
    client = Client(_url(url))
    tx = _run(lambda: client.get_tx(tx_id))
    lines = [f"{k:<10} {v}" for k, v in tx.items() if not isinstance(v, dict | list)]
    ok = True
    if verify:
        report = _run(
            lambda: client.verify(tx_id, chain_url=client.url + "/rpc", gateway_url=client.url)
        )
        tx["proof"] = report.as_dict()
        ok = bool(report.ok)
        lines.append("proof      " + ("VALID" if ok else "INVALID"))
    _out(as_json, tx, "\n".join(lines))
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
    given = CliSettings().password
    if given is not None:
        password = given.get_secret_value()
    else:
        password = str(typer.prompt("Wallet password", hide_input=True, confirmation_prompt=True))
    account = Account.create()
    out.write_text(json.dumps(Account.encrypt(account.key, password)))
    out.chmod(0o600)
    _out(as_json, {"address": account.address, "keystore": str(out)}, account.address)


@keys_app.command("address")
def keys_address(keystore: KeystoreOpt = None, key_env: KeyEnvOpt = KEY_ENV) -> None:
    """Print your wallet's address."""
    typer.echo(_run(lambda: load_wallet(keystore, key_env)).address)


def fund_command(
    address: str,
    eth: Annotated[float, typer.Argument(help="ether to give")] = 1.0,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give ADDRESS ether on a dev chain (embedded or anvil); refused on any other chain."""
    wei = int(eth * WEI_PER_ETH)
    result = _run(lambda: Client(_url(url)).fund(address, wei))
    _out(as_json, result, f"{result['address']} now holds {result['balance'] / WEI_PER_ETH:g} ETH")


def mount(app: typer.Typer) -> None:
    """Add these commands to the ``collegium`` app."""
    app.add_typer(subsystem_app, name="subsystem")
    app.add_typer(participant_app, name="participant")
    app.add_typer(admin_app, name="admin")
    app.add_typer(join_app, name="join")
    app.add_typer(tx_app, name="tx")
    app.add_typer(keys_app, name="keys")
    app.command("fund")(fund_command)
