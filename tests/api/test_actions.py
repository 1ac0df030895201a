"""Gasless signed actions through a real node (embedded chain, real HTTP): a newcomer with a
fresh 0-ETH wallet asks to join ``main``, the operator (an external wallet, not the node key)
approves, the newcomer sends a transaction and verifies its proof with only the chain RPC and
the gateway; replayed, expired, forged and non-admin actions get a clear 4xx and change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.chain.actions import Action, sign_action
from node.client import Client, ClientError
from tests.support.node import InProcessNode, in_process_node

OPERATOR: LocalAccount = Account.create()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data_dir: Path = tmp_path_factory.mktemp("actions") / "node"
    with in_process_node(
        data_dir, init={"operator": OPERATOR.address}, epoch_service=False, sync=False
    ) as node:
        yield node


def test_the_operator_not_the_node_key_administers(running: InProcessNode) -> None:
    registry = running.node.registry
    node_key = running.node.address
    assert registry.is_system_admin(OPERATOR.address)
    assert registry.is_subsystem_admin("main", OPERATOR.address)
    assert not registry.is_system_admin(node_key)
    assert not registry.is_subsystem_admin("main", node_key)
    assert registry.is_participant("main", node_key)  # it may still host main's back-end


def test_newcomer_joins_gaslessly_is_approved_and_sends_a_verified_transaction(
    running: InProcessNode,
) -> None:
    w3 = running.node.chain.w3
    newcomer: LocalAccount = Account.create()
    me, operator = Client(running.url, newcomer), Client(running.url, OPERATOR)
    with pytest.raises(ClientError) as refused:
        me.send_tx(kind="note")
    assert refused.value.status == 403

    me.request_join("main", "I run the bakery")
    assert me.join_status("main") == {"subsystem": "main", "address": newcomer.address,
                                      "pending": True, "message": "I run the bakery",
                                      "participant": False}  # fmt: skip
    assert [r["address"] for r in operator.join_requests("main")] == [newcomer.address]

    operator.approve("main", newcomer.address)
    assert me.join_status("main")["participant"] is True
    assert operator.join_requests("main") == []

    tx = me.send_tx(kind="invoice", amount="12.5", currency="EUR", wait=True)
    assert tx["status"] == "anchored", tx
    report = me.verify(tx["id"], chain_url=running.url + "/rpc", gateway_url=running.url)
    assert report.ok, report.as_dict()
    assert report.signer == newcomer.address
    assert w3.eth.get_balance(newcomer.address) == 0
    assert w3.eth.get_balance(OPERATOR.address) == 0


def _post(running: InProcessNode, act: Action, signature: str) -> httpx.Response:
    body = {**act.as_dict(), "signature": signature}
    return httpx.post(running.url + "/api/v1/actions", json=body, timeout=60)


def test_replayed_expired_forged_and_non_admin_actions_are_refused(
    running: InProcessNode,
) -> None:
    registry = running.node.registry
    chain_id, address = running.node.chain.chain_id, str(registry.address)
    owner, stranger = Account.create(), Account.create()

    def signed(who: LocalAccount, action: str, deadline: int = 0, **fields: str) -> tuple:
        act = Action(action=action, signer=who.address, nonce=registry.nonce_of(who.address),
                     deadline=deadline or int(time.time()) + 600, **fields)  # fmt: skip
        return act, sign_action(act, chain_id, address, who)

    first = signed(owner, "createSubsystem", subsystem="guild")
    assert _post(running, *first).status_code == 200
    replay = _post(running, *first)
    assert replay.status_code == 409 and replay.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert "already used" in replay.json()["detail"]

    expired = _post(running, *signed(owner, "createSubsystem", subsystem="x", deadline=1))
    assert expired.status_code == 400 and "deadline" in expired.json()["detail"]

    act, sig = signed(owner, "addParticipant", subsystem="guild", account=stranger.address)
    forged = Action(**{**act.as_dict(), "account": owner.address})
    refused = _post(running, forged, sig)
    assert refused.status_code == 400 and "recovers to" in refused.json()["detail"]

    intruder = _post(
        running, *signed(stranger, "addParticipant", subsystem="guild", account=stranger.address)
    )
    assert intruder.status_code == 403, intruder.text
    assert "NotSubsystemAdmin" in intruder.json()["detail"]
    assert (
        _post(running, *signed(stranger, "addSystemAdmin", account=stranger.address)).status_code
        == 403
    )

    unknown = _post(running, *signed(owner, "mint", subsystem="guild"))
    assert unknown.status_code == 400 and "unknown action" in unknown.json()["detail"]
    # nothing half-written: no nonce used by a refusal, no participant, no subsystem "x"
    assert registry.nonce_of(owner.address) == 1
    assert registry.nonce_of(stranger.address) == 0
    assert not registry.is_participant("guild", stranger.address)
    assert not registry.subsystem_exists("x")


def test_prepared_typed_data_signs_and_relays(running: InProcessNode) -> None:
    who: LocalAccount = Account.create()
    prepared = httpx.post(
        running.url + "/api/v1/actions/typed-data",
        json={"action": "createSubsystem", "signer": who.address, "subsystem": "bakery"},
        timeout=30,
    ).json()
    signed = Account.sign_typed_data(who.key, full_message=prepared["typed_data"])
    body = {**prepared["action"], "signature": "0x" + bytes(signed.signature).hex()}
    relayed = httpx.post(running.url + "/api/v1/actions", json=body, timeout=60)
    assert relayed.status_code == 200, relayed.text
    assert running.node.registry.is_subsystem_admin("bakery", who.address)


def test_the_javascript_example_verifies_a_proof_with_chain_and_gateway_only(
    running: InProcessNode, tmp_path: Path
) -> None:
    """docs/client.md's viem example (frontend/examples/verify-proof.mjs) accepts a real proof
    and refuses one whose path was tampered with."""
    import json
    import shutil
    import subprocess

    node_bin = shutil.which("node")
    example = Path(__file__).resolve().parents[2] / "frontend" / "examples" / "verify-proof.mjs"
    if node_bin is None:
        pytest.skip("node is not installed")
    member: LocalAccount = Account.create()
    Client(running.url, OPERATOR).add_participant("main", member.address)
    tx = Client(running.url, member).send_tx(kind="invoice", amount="7", currency="EUR", wait=True)
    assert tx["status"] == "anchored", tx
    proof_url = f"{running.url}/api/v1/transactions/{tx['id']}/proof"

    def run(source: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([node_bin, str(example), source, running.url + "/rpc", running.url],
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    good = run(proof_url)
    assert good.returncode == 0 and good.stdout.strip().endswith("VALID"), good.stdout + good.stderr
    assert f"signed by {member.address}" in good.stdout
    bundle = httpx.get(proof_url, timeout=30).json()
    bundle["root"] = "0x" + "ab" * 32
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(bundle))
    bad = run(str(tampered))
    assert bad.returncode == 3 and "FAIL inclusion" in bad.stdout, bad.stdout + bad.stderr
