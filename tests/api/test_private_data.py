"""Subsystem-private data through a real node (embedded chain, real store, real HTTP, SIWE
logins signed with eth-account): what reaches the store is ciphertext, participants read
plaintext, the be_system code path and non-participants get ciphertext only, removing a
participant rotates the key, and a private business transaction is sealed end to end."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from node.auth.databases import AccessDenied, RoleContext
from node.crypto import NotARecipient, compute_public_key, get_envelope, open_envelope, read_sealed
from node.crypto.sealed import decode_envelope, decode_sealed
from node.keys.directory import KeyDirectory, compute_announcement
from node.keys.private import HostNotParticipant, PrivateData
from node.ledger.transaction import compute_payload_hash
from tests.auth.siwe_helpers import bearer_login, sign
from tests.support.node import InProcessNode, domain_of, in_process_node, make_submission

SECRET = "salary-4242-of-alice"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    data_dir: Path = tmp_path_factory.mktemp("private") / "node"
    with in_process_node(data_dir, epoch_service=False, sync=False) as node:
        yield node


def login(running: InProcessNode, wallet: LocalAccount) -> dict[str, str]:
    return bearer_login(running.url, wallet)


def member_of(running: InProcessNode) -> tuple[LocalAccount, dict[str, str]]:
    wallet: LocalAccount = Account.create()
    running.node.registry.add_participant(running.node.record.home, wallet.address)
    return wallet, login(running, wallet)


def data_url(running: InProcessNode, tail: str) -> str:
    return f"{running.url}/api/v1/subsystems/{running.node.record.home}/data/{tail}"


def write(running: InProcessNode, headers: dict[str, str], key: str, value: str) -> Any:
    """Return the record ``(key, value)`` written through the API."""
    url = data_url(running, "records")
    response = httpx.post(url, headers=headers, json={"key": key, "value": value}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def gateway(running: InProcessNode, cid: str, raw: bool = False) -> bytes:
    response = httpx.get(f"{running.url}/ipfs/{cid}" + ("?format=raw" if raw else ""), timeout=10)
    assert response.status_code == 200, response.text
    return response.content


def private_data_of(running: InProcessNode) -> PrivateData:
    return running.server.config.app.state.private_data  # type: ignore[no-any-return]


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_records_are_sealed_before_the_store_and_participants_read_plaintext(
    running: InProcessNode,
) -> None:
    member, as_member = member_of(running)
    key = httpx.get(f"{running.url}/api/v1/keys/{member.address}", timeout=10)
    assert key.status_code == 200  # captured from the SIWE login signature
    assert key.json()["public_key"] == compute_public_key(bytes(member.key)).hex()

    written = httpx.post(data_url(running, "records"), headers=as_member,
                         json={"key": "payroll", "value": SECRET}, timeout=30)  # fmt: skip
    assert written.status_code == 201, written.text
    record = written.json()
    assert record["value"] == SECRET and record["key_version"] == 1
    read = httpx.get(data_url(running, "records"), headers=as_member, timeout=30)
    assert read.status_code == 200, read.text
    assert [r["value"] for r in read.json()["records"]][:1] == [SECRET]

    # what anyone (a peer's sync, the public gateway) gets for the CID is ciphertext
    for raw in (False, True):
        assert SECRET.encode() not in gateway(running, record["cid"], raw=raw)
    sealed = decode_sealed(gateway(running, record["cid"]))
    assert sealed.commitment.hex() == record["commitment"]
    envelope = decode_envelope(gateway(running, sealed.envelope))
    assert {member.address, running.node.address} <= set(envelope.addresses)
    # the participant's own wallet key opens it, without the node
    assert json.loads(read_sealed(running.node.store, record["cid"], bytes(member.key))) == {
        "format": 1, "key": "payroll", "value": SECRET,
    }  # fmt: skip
    # no file of the node (store blocks, S's database, index database) holds the plaintext
    assert files_containing(running.node.settings.data_dir, SECRET.encode()) == []

    outsider: LocalAccount = Account.create()
    denied = httpx.get(data_url(running, "records"), headers=login(running, outsider))
    assert denied.status_code == 403 and SECRET not in denied.text
    assert httpx.get(data_url(running, "records")).status_code == 401


def test_be_system_and_non_participant_nodes_get_ciphertext_only(running: InProcessNode) -> None:
    member, as_member = member_of(running)
    home = running.node.record.home
    written = httpx.post(data_url(running, "records"), headers=as_member,
                         json={"key": "k", "value": SECRET}, timeout=30).json()  # fmt: skip
    private = private_data_of(running)
    be_system = RoleContext("be_system", None)
    with pytest.raises(AccessDenied):
        private.current_key(be_system, home)
    with pytest.raises(AccessDenied):
        private.open_payload(be_system, home, written["cid"])
    with pytest.raises(AccessDenied):
        private.records(be_system, home, limit=10)
    with pytest.raises(AccessDenied):  # be_subsystem of another subsystem neither
        private.current_key(RoleContext("be_subsystem", "other"), home)

    # a node whose wallet is not a participant (e.g. one hosting only be_system): even with
    # the same store and a be_subsystem context it refuses to hold the key, and its wallet
    # key has no slot in the envelope
    stranger: LocalAccount = Account.create()
    node = running.node
    foreign = PrivateData(private.databases, node.store, node.registry,
                          KeyDirectory(node.sessions), stranger)  # fmt: skip
    with pytest.raises(HostNotParticipant):
        foreign.current_key(RoleContext("be_subsystem", home), home)
    sealed = decode_sealed(node.store.cat(written["cid"]))
    with pytest.raises(NotARecipient):
        open_envelope(get_envelope(node.store, sealed.envelope), bytes(stranger.key))
    with pytest.raises(NotARecipient):
        foreign.open_payload(RoleContext("be_subsystem", home), home, written["cid"])


def test_removing_a_participant_rotates_the_key_for_new_data(running: InProcessNode) -> None:
    node = running.node
    home = node.record.home
    stays, as_stays = member_of(running)
    leaves, as_leaves = member_of(running)
    first = write(running, as_stays, "before", "old-" + SECRET)
    v1 = httpx.get(data_url(running, "key"), headers=as_stays, timeout=30).json()
    assert leaves.address in v1["recipients"]

    node.registry.remove_participant(home, leaves.address)  # the admin (node wallet) removes
    second = write(running, as_stays, "after", "new-" + SECRET)
    assert second["key_version"] == v1["key_version"] + 1
    v2 = httpx.get(data_url(running, "key"), headers=as_stays, timeout=30).json()
    assert v2["key_version"] == second["key_version"]
    assert leaves.address not in v2["recipients"]
    assert {stays.address, node.address} <= set(v2["recipients"])
    envelope = get_envelope(node.store, v2["envelope"])
    assert envelope.previous is not None and leaves.address not in envelope.addresses

    # the removed wallet cannot open what was sealed after its removal ...
    with pytest.raises(NotARecipient):
        read_sealed(node.store, second["cid"], bytes(leaves.key))
    # ... while older data stays under the key it already had (documented: no take-back)
    assert b"old-" in read_sealed(node.store, first["cid"], bytes(leaves.key))
    assert httpx.get(data_url(running, "records"), headers=as_leaves).status_code == 403
    values = [r["value"] for r in httpx.get(data_url(running, "records"), headers=as_stays,
                                            timeout=30).json()["records"]]  # fmt: skip
    assert "new-" + SECRET in values and "old-" + SECRET in values


def test_a_signed_key_announcement_adds_a_participant_to_the_next_envelope(
    running: InProcessNode,
) -> None:
    node = running.node
    writer, as_writer = member_of(running)
    quiet: LocalAccount = Account.create()  # a participant that never logged in here
    node.registry.add_participant(node.record.home, quiet.address)
    before = httpx.get(data_url(running, "key"), headers=as_writer, timeout=30).json()
    assert quiet.address not in before["recipients"]

    message = compute_announcement(quiet.address, node.record.home)
    forged = sign(writer, message)
    body = {"address": quiet.address, "subsystem": node.record.home}
    refused = httpx.post(running.url + "/api/v1/keys", json={**body, "signature": forged})
    assert refused.status_code == 400
    assert httpx.get(f"{running.url}/api/v1/keys/{quiet.address}").status_code == 404
    signature = "0x" + bytes(quiet.sign_message(encode_defunct(text=message)).signature).hex()
    announced = httpx.post(running.url + "/api/v1/keys", json={**body, "signature": signature})
    assert announced.status_code == 201, announced.text

    record = httpx.post(data_url(running, "records"), headers=as_writer,
                        json={"key": "k", "value": "for-quiet"}, timeout=30).json()  # fmt: skip
    after = httpx.get(data_url(running, "key"), headers=as_writer, timeout=30).json()
    assert quiet.address in after["recipients"]
    assert after["key_version"] == before["key_version"]  # an addition re-wraps, no rotation
    assert b"for-quiet" in read_sealed(node.store, record["cid"], bytes(quiet.key))


def test_private_business_transaction_is_sealed_by_the_host(running: InProcessNode) -> None:
    node = running.node
    home = node.record.home
    member, as_member = member_of(running)
    plaintext = json.dumps({"parties": [member.address], "amount": "9100.00",
                            "currency": "EUR", "memo": "acquisition " + SECRET})  # fmt: skip
    sealed = httpx.post(data_url(running, "payloads"), headers=as_member,
                        json={"content": plaintext}, timeout=30)  # fmt: skip
    assert sealed.status_code == 201, sealed.text
    payload: dict[str, Any] = sealed.json()
    salt = bytes.fromhex(payload["salt"][2:])
    assert payload["payload_hash"] == compute_payload_hash(salt, plaintext.encode())

    body = make_submission(domain_of(running.url), member, subsystem=home, kind="acquisition",
                           parties=[], amount="", currency="", memo="", private=True,
                           payload=payload["cid"], payload_hash=payload["payload_hash"],
                           nonce=secrets.randbelow(2**63), timestamp=int(time.time()))  # fmt: skip
    submitted = httpx.post(running.url + "/api/v1/transactions", json=body, timeout=30)
    assert submitted.status_code in (201, 202), submitted.text
    tx = submitted.json()
    assert tx["private"] is True and tx["payload"] == payload["cid"]
    assert tx["payload_hash"] == payload["payload_hash"]
    # public: the leaf and the payload's bytes; neither holds the plaintext
    public = httpx.get(f"{running.url}/api/v1/transactions/{tx['id']}", timeout=10).text
    assert SECRET not in public and "9100.00" not in public
    assert SECRET.encode() not in gateway(running, tx["cid"])
    assert SECRET.encode() not in gateway(running, payload["cid"], raw=True)

    opened = httpx.get(data_url(running, f"payloads/{payload['cid']}"), headers=as_member)
    assert opened.status_code == 200, opened.text
    assert opened.json()["content"] == plaintext
    assert opened.json()["payload_hash"] == tx["payload_hash"]
    outsider = login(running, Account.create())
    denied = httpx.get(data_url(running, f"payloads/{payload['cid']}"), headers=outsider)
    assert denied.status_code == 403 and SECRET not in denied.text
    not_sealed = node.store.add_bytes(b"just public bytes")
    missing = httpx.get(data_url(running, f"payloads/{not_sealed}"), headers=as_member)
    assert missing.status_code == 404
