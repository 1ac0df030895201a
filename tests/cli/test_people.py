"""Every operator/participant command (``node/cli/people.py``) against a real node over real
HTTP, on the embedded chain and on anvil: keys, subsystem, participant, admin, join, tx, fund.
The operator is an external wallet (``init --admin``); the newcomer's wallet never holds ether.
"""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from node.cli.main import app
from node.cli.status import ExitStatus
from tests.support.node import InProcessNode


def cli(running: InProcessNode, *args: str, key: str | None = None) -> tuple[int, str, str]:
    env = {"COLLEGIUM_URL": running.url, "COLLEGIUM_PASSWORD": "pw"}
    if key is not None:
        env["COLLEGIUM_KEY"] = key
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_every_people_command(
    running: InProcessNode, tmp_path: Path, operator: LocalAccount
) -> None:
    op = operator.key.hex()
    keystore = tmp_path / "me.json"
    code, out, _ = cli(running, "keys", "new", "--out", str(keystore), "--json")
    assert code == 0
    me = json.loads(out)["address"]
    assert cli(running, "keys", "address", "--keystore", str(keystore))[1].strip() == me
    mine = ("--keystore", str(keystore))

    # join: request (gasless), list, deny, request again, approve
    assert cli(running, "join", "request", "main", "-m", "hi", *mine)[0] == 0
    code, out, _ = cli(running, "join", "list", "main", "--json")
    assert [(r["address"], r["message"]) for r in json.loads(out)] == [(me, "hi")]
    assert "pending" in cli(running, "join", "status", "main", *mine)[1]
    code, _, err = cli(running, "join", "approve", "main", me, *mine)
    assert code == ExitStatus.NOT_ADMIN and "NotSubsystemAdmin" in err
    assert cli(running, "join", "deny", "main", me, key=op)[0] == 0
    assert cli(running, "join", "list", "main")[1].strip() == "no pending request"
    assert cli(running, "join", "request", "main", *mine)[0] == 0
    assert cli(running, "join", "approve", "main", me, key=op)[0] == 0
    assert me in cli(running, "participant", "list", "main")[1]

    # tx: send (waits for the anchor) and show with a proof checked against chain + gateway
    code, out, err = cli(running, "tx", "send", "--kind", "invoice", "--amount", "3.5",
                         "--currency", "EUR", "--wait", "--json", *mine)  # fmt: skip
    assert code == 0, err
    tx = json.loads(out)
    assert tx["status"] == "anchored" and tx["signer"] == me and tx["proof"] == "valid"
    code, out, err = cli(running, "tx", "show", tx["id"], "--verify")
    assert code == 0 and "VALID" in out, out + err
    assert cli(running, "tx", "show", "0x" + "00" * 32)[0] == ExitStatus.NOT_FOUND

    # subsystem, participant, admin
    assert cli(running, "subsystem", "create", "atelier", *mine)[0] == 0
    assert cli(running, "subsystem", "list")[1].split() == ["main", "atelier"]
    other = Account.create().address
    assert cli(running, "participant", "add", "atelier", other, *mine)[0] == 0
    assert cli(running, "admin", "add", other, "-s", "atelier", *mine)[0] == 0
    code, out, _ = cli(running, "subsystem", "show", "atelier", "--json")
    shown = json.loads(out)
    assert shown["admins"] == [me, other] and shown["participants"] == [me, other]
    assert cli(running, "admin", "remove", other, "-s", "atelier", *mine)[0] == 0
    assert cli(running, "participant", "remove", "atelier", other, *mine)[0] == 0
    assert cli(running, "admin", "list", "-s", "atelier")[1].split() == [me]
    assert cli(running, "admin", "add", other, key=op)[0] == 0
    assert cli(running, "admin", "list")[1].split() == [operator.address, other]
    assert cli(running, "admin", "remove", other, key=op)[0] == 0
    code, _, err = cli(running, "admin", "add", other, *mine)
    assert code == ExitStatus.NOT_ADMIN and "NotSystemAdmin" in err

    # fund works on these dev chains
    code, out, _ = cli(running, "fund", other, "2", "--json")
    assert code == 0 and json.loads(out)["balance"] == 2 * 10**18

    # clear errors: no wallet, bad key, unreachable node
    code, _, err = cli(running, "join", "request", "main")
    assert code == ExitStatus.INVALID_INPUT and "no wallet" in err
    result = CliRunner().invoke(app, ["subsystem", "list", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == ExitStatus.UNREACHABLE


def test_up_with_admin_hands_the_registry_to_the_operator(tmp_path: Path) -> None:
    """A real `collegium up --admin 0x…` process: the operator's wallet is the only system
    admin and admin of main; the node key keeps no admin right."""
    import httpx

    from tests.support.node import node_process

    operator = Account.create().address
    proc = node_process(tmp_path)
    try:
        health = proc.start("--admin", operator)
        assert httpx.get(proc.url + "/api/v1/admins", timeout=10).json()["admins"] == [operator]
        main = httpx.get(proc.url + "/api/v1/subsystems/main/admins", timeout=10).json()
        assert main["admins"] == [operator]
        assert health["node"] not in main["admins"]
    finally:
        proc.stop()
