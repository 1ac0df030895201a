"""Participants and permissions through a real node: each role reads only its own data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from node.auth.databases import AccessDenied, RoleContext, SubsystemDatabases
from tests.auth.siwe_helpers import make_message, sign
from tests.support.node import InProcessNode


def session_for(running: InProcessNode, rules: dict[str, Any], wallet: Any) -> dict[str, str]:
    nonce = httpx.get(running.url + "/api/v1/auth/nonce", timeout=10).json()["nonce"]
    message = make_message(
        wallet, domain=rules["domain"], nonce=nonce, chain_id=rules["chain_id"],
        scheme=rules["scheme"],
    )  # fmt: skip
    body = {"message": message, "signature": sign(wallet, message)}
    response = httpx.post(running.url + "/api/v1/auth/login", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def records_url(running: InProcessNode, name: str) -> str:
    return f"{running.url}/api/v1/subsystems/{name}/data/records"


def test_only_participants_read_and_write_private_data(
    running: InProcessNode, rules: dict[str, Any]
) -> None:
    home = running.node.record.home
    member, outsider = Account.create(), Account.create()
    running.node.registry.add_participant(home, member.address)
    as_member = session_for(running, rules, member)
    as_outsider = session_for(running, rules, outsider)

    written = httpx.post(records_url(running, home), headers=as_member,
                         json={"key": "salary", "value": "secret-4242"})  # fmt: skip
    assert written.status_code == 201, written.text
    assert written.headers["x-collegium-served-by"].lower() == running.node.address.lower()

    read = httpx.get(records_url(running, home), headers=as_member)
    assert read.status_code == 200
    assert [r["value"] for r in read.json()["records"]] == ["secret-4242"]

    denied = httpx.get(records_url(running, home), headers=as_outsider)
    assert denied.status_code == 403
    assert "secret" not in denied.text
    denied_write = httpx.post(records_url(running, home), headers=as_outsider,
                              json={"key": "x", "value": "y"})  # fmt: skip
    assert denied_write.status_code == 403
    assert httpx.get(records_url(running, home)).status_code == 401
    assert (
        httpx.get(records_url(running, "no-such-subsystem"), headers=as_member).status_code == 404
    )

    # S's data is in S's own file, not in the shared index database
    settings = running.node.settings
    assert SubsystemDatabases(settings.data_dir).path_of(home).exists()
    assert b"secret-4242" not in (settings.data_dir / "index.sqlite").read_bytes()


def test_system_data_shows_a_user_only_their_own_memberships(
    running: InProcessNode, rules: dict[str, Any]
) -> None:
    home = running.node.record.home
    member, outsider = Account.create(), Account.create()
    running.node.registry.add_participant(home, member.address)
    as_outsider = session_for(running, rules, outsider)
    mine = httpx.get(f"{running.url}/api/v1/system/users/{outsider.address}", headers=as_outsider)
    assert mine.status_code == 200 and mine.json()["subsystems"] == []
    theirs = httpx.get(f"{running.url}/api/v1/system/users/{member.address}", headers=as_outsider)
    assert theirs.status_code == 403


def test_be_system_code_path_cannot_open_a_subsystem_database(tmp_path: Path) -> None:
    databases = SubsystemDatabases(tmp_path)
    with pytest.raises(AccessDenied):
        databases.open(RoleContext("be_system", None), "alpha")
    with pytest.raises(AccessDenied):
        databases.open(RoleContext("be_subsystem", "beta"), "alpha")
    with pytest.raises(AccessDenied):
        databases.open(RoleContext("fe_subsystem", "alpha"), "alpha")
    assert not (tmp_path / "subsystems" / "alpha.sqlite").exists()
    alpha = databases.open(RoleContext("be_subsystem", "alpha"), "alpha")
    alpha.add_record(cid="bafkreiexample", commitment="00" * 32, key_version=1,
                     author="0x" + "00" * 20)  # fmt: skip
    beta = databases.open(RoleContext("be_subsystem", "beta"), "beta")
    assert beta.records(limit=10) == []
    assert databases.path_of("../etc/passwd").parent == tmp_path / "subsystems"
    databases.close()


def test_admin_adds_a_participant_through_a_relayed_signed_transaction(
    running: InProcessNode, rules: dict[str, Any]
) -> None:
    node = running.node
    home = node.record.home
    newcomer, stranger = Account.create(), Account.create()
    as_stranger = session_for(running, rules, stranger)
    url = f"{running.url}/api/v1/subsystems/{home}/participants"
    refused = httpx.post(url, headers=as_stranger, json={"address": newcomer.address})
    assert refused.status_code == 403

    admin = node.account  # the node's wallet created its home subsystem: it is an admin
    prepared = httpx.post(url, headers=session_for(running, rules, admin),
                          json={"address": newcomer.address})  # fmt: skip
    assert prepared.status_code == 200, prepared.text
    unsigned = prepared.json()
    assert unsigned["from"].lower() == admin.address.lower()
    w3 = node.chain.w3
    tx = {
        "to": unsigned["to"], "data": unsigned["data"], "value": 0, "chainId": unsigned["chain_id"],
        "nonce": w3.eth.get_transaction_count(admin.address, "pending"), "gas": 300_000,
        "gasPrice": int(w3.eth.gas_price) * 2,
    }  # fmt: skip
    raw = "0x" + bytes(admin.sign_transaction(tx).raw_transaction).hex()
    forged = "0x" + bytes(stranger.sign_transaction(tx).raw_transaction).hex()
    assert httpx.post(url + "/relay", json={"raw_transaction": forged}).status_code == 403
    assert httpx.post(url + "/relay", json={"raw_transaction": "0x1234"}).status_code == 400
    relayed = httpx.post(url + "/relay", json={"raw_transaction": raw}, timeout=30)
    assert relayed.status_code == 200, relayed.text
    assert relayed.json()["action"] == "add"
    assert node.registry.is_participant(home, newcomer.address)
    as_newcomer = session_for(running, rules, newcomer)
    assert httpx.get(records_url(running, home), headers=as_newcomer).status_code == 200
