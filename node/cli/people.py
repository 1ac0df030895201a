"""The operator's and participants' commands on subsystems, built on :mod:`node.client`.

``collegium subsystem create|list|show``, ``participant add|remove|list``, ``admin
add|remove|list`` and ``join request|status|list|approve|deny``; :func:`mount` adds them and
those of :mod:`node.cli.wallet` (``tx send|show``, ``keys new|address`` and, on dev chains only,
``fund``). Every action is signed with the person's own key (``--keystore FILE`` with
``COLLEGIUM_PASSWORD``, or a hex key in the environment variable named by ``--key-env``, default
``COLLEGIUM_KEY``) and relayed by the node at ``--url`` (default ``COLLEGIUM_URL`` or
http://127.0.0.1:8000), which pays the gas: the wallet needs no ether (:mod:`node.cli.acting`).

Output is for people by default, JSON with ``--json``. Exit codes (``node/cli/status.py``):
0 done, 1 error, 2 bad input (and a refused, expired or replayed action), 3 a proof that does
not hold, 4 node unreachable, 5 not an admin, 6 not found.
"""

from __future__ import annotations

from typing import Annotated

import typer

from node.cli import wallet
from node.cli.acting import (
    JsonOpt,
    KeyEnvOpt,
    KeystoreOpt,
    UrlOpt,
    acting,
    done,
    load_wallet,
    node_url,
    run,
    show,
)
from node.client import Client
from node.config import KEY_ENV

SubsystemOpt = Annotated[
    str | None, typer.Option("--subsystem", "-s", help="a subsystem [default: the system]")
]

subsystem_app = typer.Typer(help="Subsystems: create, list, show", no_args_is_help=True)
participant_app = typer.Typer(help="Participants of a subsystem", no_args_is_help=True)
admin_app = typer.Typer(help="Admins of a subsystem, or of the system", no_args_is_help=True)
join_app = typer.Typer(help="Join requests: ask, see, approve, deny", no_args_is_help=True)


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
    client = acting(url, keystore, key_env)
    receipt = run(lambda: client.create_subsystem(name))
    done(as_json, receipt, f"created {name!r}")


@subsystem_app.command("list")
def subsystem_list(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List every subsystem."""
    names = run(lambda: Client(node_url(url)).subsystems())
    show(as_json, names, "\n".join(names))


@subsystem_app.command("show")
def subsystem_show(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Show a subsystem: admins, participants, pending join requests, front-end."""
    client = Client(node_url(url))
    record = run(lambda: client.subsystem(name))
    record["admins"] = run(lambda: client.admins(name))
    record["join_requests"] = [r["address"] for r in run(lambda: client.join_requests(name))]
    lines = [f"subsystem     {name}", f"front-end     {record['frontend_cid'] or '-'}"]
    lines += [f"admin         {a}" for a in record["admins"]]
    lines += [f"participant   {a}" for a in record["participants"]]
    lines += [f"join request  {a}" for a in record["join_requests"]]
    show(as_json, record, "\n".join(lines))


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
    client = acting(url, keystore, key_env)
    receipt = run(lambda: client.add_participant(name, address))
    done(as_json, receipt, f"{address} is a participant of {name!r}")


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
    client = acting(url, keystore, key_env)
    receipt = run(lambda: client.remove_participant(name, address))
    done(as_json, receipt, f"{address} is no longer a participant of {name!r}")


@participant_app.command("list")
def participant_list(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List the participants of NAME."""
    members = run(lambda: Client(node_url(url)).subsystem(name))["participants"]
    show(as_json, members, "\n".join(members))


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
    client = acting(url, keystore, key_env)
    where = f"of {subsystem!r}" if subsystem else "of the system"
    receipt = run(lambda: client.add_admin(subsystem, address))
    done(as_json, receipt, f"{address} is an admin {where}")


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
    client = acting(url, keystore, key_env)
    where = f"of {subsystem!r}" if subsystem else "of the system"
    receipt = run(lambda: client.remove_admin(subsystem, address))
    done(as_json, receipt, f"{address} is no longer an admin {where}")


@admin_app.command("list")
def admin_list(
    subsystem: SubsystemOpt = None, url: UrlOpt = None, as_json: JsonOpt = False
) -> None:
    """List the admins of --subsystem (or the system admins)."""
    admins = run(lambda: Client(node_url(url)).admins(subsystem))
    show(as_json, admins, "\n".join(admins))


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
    client = acting(url, keystore, key_env)
    receipt = run(lambda: client.request_join(name, message))
    done(as_json, receipt, f"asked to join {name!r}; an admin approves or denies")


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
    who = address or run(lambda: load_wallet(keystore, key_env)).address
    state = run(lambda: Client(node_url(url)).join_status(name, who))
    word = "participant" if state["participant"] else "pending" if state["pending"] else "none"
    show(as_json, state, f"{who} in {name!r}: {word}")


@join_app.command("list")
def join_list(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List the pending join requests of NAME, with their messages."""
    requests = run(lambda: Client(node_url(url)).join_requests(name))
    text = "\n".join(f"{r['address']}  {r['message']}" for r in requests) or "no pending request"
    show(as_json, requests, text)


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
    client = acting(url, keystore, key_env)
    receipt = run(lambda: client.approve(name, address))
    done(as_json, receipt, f"approved: {address} is a participant of {name!r}")


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
    client = acting(url, keystore, key_env)
    receipt = run(lambda: client.deny(name, address))
    done(as_json, receipt, f"denied {address}'s request to join {name!r}")


def mount(app: typer.Typer) -> None:
    """Add these commands, and :mod:`node.cli.wallet`'s, to the ``collegium`` app."""
    app.add_typer(subsystem_app, name="subsystem")
    app.add_typer(participant_app, name="participant")
    app.add_typer(admin_app, name="admin")
    app.add_typer(join_app, name="join")
    app.add_typer(wallet.tx_app, name="tx")
    app.add_typer(wallet.keys_app, name="keys")
    app.command("fund")(wallet.fund_command)


__all__ = ["load_wallet", "mount"]
