"""No node speaks for a user (issue 16), from outside: HTTP to a real node, real registry calls.

An attacker registers its own node (open by design) and then tries to act as a participant, as
a subsystem admin and as the system admin (the victim node's operator wallet): with the retired
node-signed ``X-Collegium-User*`` headers, relayed with a valid peer signature; with forged or
borrowed delegations; and by altering, redirecting and replaying a request it relayed for the
user. Every attempt is refused and writes nothing. Run on the embedded chain (an in-process
node) and on anvil (a ``collegium up`` process).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from Crypto.PublicKey import ECC
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from node.auth.client import SessionAuth, compute_delegation_message, open_session
from node.auth.delegation import compute_did_key, encode_delegation_header
from node.auth.peer import PEER_HEADER, sign_peer_request
from node.chain.keys import load_account
from node.chain.registry import Registry, compute_roles_mask
from node.runtime import ALL_ROLES
from tests.auth.siwe_helpers import make_message, sign
from tests.chain.conftest import ChainUnderTest, anvil_chain  # noqa: F401 - fixture
from tests.support.node import in_process_node, node_process

FUNDING_WEI = 10**20
HOME = "main"
RECORDS = f"/api/v1/subsystems/{HOME}/data/records"
SELF_SIGNED = ("/api/v1/auth/login", "/api/v1/transactions")
EXAMPLE_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@dataclass
class Victim:
    """A running node, its operator (system admin, admin of ``main``) and one participant."""

    url: str
    address: str
    operator_address: str
    user: LocalAccount
    attacker: LocalAccount  # a registered node's key


def retired_forward_headers(
    attacker: LocalAccount, method: str, path: str, user: str
) -> dict[str, str]:
    """The node-signed identity headers the old router trusted (now refused everywhere)."""
    ts = int(time.time())
    text = f"collegium/forwarded-user/v1\n{method.upper()} {path}\n{user.lower()}\n{ts}"
    proof = "0x" + bytes(attacker.sign_message(encode_defunct(text=text)).signature).hex()
    return {
        "x-collegium-hops": "1",
        "x-collegium-user": user,
        "x-collegium-user-ts": str(ts),
        "x-collegium-user-proof": proof,
        PEER_HEADER: sign_peer_request(attacker, method, path, 1, ts),
    }


def without_length(request: httpx.Request) -> dict[str, str]:
    """Return a signed request's headers to resend, with or without its body."""
    return {k: v for k, v in request.headers.items() if k.lower() != "content-length"}


def records(victim: Victim) -> list[Any]:
    """Return the user's records of ``main``, as the user reads them (a node that just
    entered the epoch hosting ``main`` answers 503 with ``Retry-After`` until its follower has
    caught up with the head: a client retries)."""
    auth = open_session(victim.url, victim.user, login=False)
    deadline = time.monotonic() + 60
    response = httpx.get(victim.url + RECORDS, auth=auth, timeout=30)
    while response.status_code == 503 and time.monotonic() < deadline:
        time.sleep(min(float(response.headers.get("retry-after", "1")), 2.0))
        response = httpx.get(victim.url + RECORDS, auth=auth, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


def attack(victim: Victim) -> None:
    """Run every impersonation attempt against ``victim``; all must be refused."""
    before = records(victim)
    base = victim.url
    impersonated = (victim.user.address, victim.operator_address)

    # 1. the retired forwarded-identity headers, signed by a registered node's key
    for who in impersonated:
        for method, path, body in (
            ("GET", "/api/v1/auth/me", None),
            ("GET", RECORDS, None),
            ("POST", RECORDS, {"key": "forged", "value": "by a node"}),
            ("POST", f"/api/v1/subsystems/{HOME}/participants",
             {"action": "add", "address": victim.attacker.address}),
            ("GET", f"/api/v1/system/users/{victim.user.address}", None),
        ):  # fmt: skip
            headers = retired_forward_headers(victim.attacker, method, path, who)
            r = httpx.request(method, base + path, headers=headers, json=body, timeout=30)
            assert r.status_code == 401, (who, method, path, r.status_code, r.text)

    # 1b. the same on every operation whose answer depends on who the user is (401 in OpenAPI)
    spec = httpx.get(base + "/openapi.json", timeout=30).json()
    fills = {"name": HOME, "address": victim.user.address, "cid": EXAMPLE_CID}
    checked = 0
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "401" not in operation.get("responses", {}) or template.startswith(SELF_SIGNED):
                continue  # login and business transactions carry the wallet's own signature
            path = template.format(**fills)
            anonymous = httpx.request(method.upper(), base + path, json={}, timeout=30)
            if anonymous.status_code != 401:
                continue  # public: the answer does not depend on who asks
            for who in impersonated:
                headers = retired_forward_headers(victim.attacker, method, path, who)
                r = httpx.request(method.upper(), base + path, headers=headers, json={},
                                  timeout=30)  # fmt: skip
                assert r.status_code == 401, (who, method, path, r.status_code, r.text)
                checked += 1
    assert checked >= 14, checked  # 7+ user-dependent operations, two victims each

    # 2. a delegation naming the user but signed by the attacker's wallet
    forged_key = ECC.generate(curve="P-256")
    info = httpx.get(base + "/api/v1/auth/nonce", timeout=10).json()
    message = compute_delegation_message(
        domain=info["domain"], scheme=info["scheme"], address=victim.user.address,
        key_id=compute_did_key(forged_key.public_key()), chain_id=info["chain_id"],
        system_uri=info["system"], nonce=info["nonce"],
        issued_at=_now(), expires_at=_now(3600),
    )  # fmt: skip
    signature = (
        "0x" + bytes(victim.attacker.sign_message(encode_defunct(text=message)).signature).hex()
    )
    forged = SessionAuth(forged_key, encode_delegation_header(message, signature))
    r = httpx.get(base + "/api/v1/auth/me", auth=forged, timeout=30)
    assert r.status_code == 401 and "bad-delegation" in r.text, r.text
    login = httpx.post(
        base + "/api/v1/auth/login", json={"message": message, "signature": signature}
    )
    assert login.status_code == 401, login.text

    # 3. the user's real delegation, borrowed by the attacker with its own session key
    real = open_session(base, victim.user, login=False)
    borrowed = SessionAuth(ECC.generate(curve="P-256"), real.delegation)
    r = httpx.post(
        base + RECORDS, auth=borrowed, json={"key": "k", "value": "borrowed"}, timeout=30
    )
    assert r.status_code == 401 and "keyid" in r.text, r.text

    # 4. a request the attacker relayed for the user: altered, redirected, replayed
    genuine = httpx.Request("POST", base + RECORDS, json={"key": "k", "value": "the user's own"})
    real.sign(genuine, victim.address)
    sent = without_length(genuine)
    altered = httpx.post(base + RECORDS, headers=sent, content=b'{"key":"k","value":"altered!!"}')
    assert altered.status_code == 401 and "Content-Digest" in altered.text, altered.text
    elsewhere = httpx.Request("POST", base + RECORDS, json={"key": "k", "value": "the user's own"})
    real.sign(elsewhere, victim.attacker.address)  # signed for the attacker's node...
    moved = without_length(elsewhere) | {"collegium-destination": victim.address}  # ...sent here
    r = httpx.post(base + RECORDS, headers=moved, content=elsewhere.content, timeout=30)
    assert r.status_code == 401 and "does not verify" in r.text, r.text
    first = httpx.post(base + RECORDS, headers=sent, content=genuine.content, timeout=30)
    assert first.status_code == 201, first.text
    assert first.json()["author"] == victim.user.address
    replay = httpx.post(base + RECORDS, headers=sent, content=genuine.content, timeout=30)
    assert replay.status_code == 409, replay.text
    after = records(victim)
    assert len(after) == len(before) + 1  # only the user's own request was written
    assert all(r["value"] != "by a node" for r in after)

    # 5. SIWE: a URI that is not this node, an Issued At in the future
    for uri, issued, reason in (
        ("https://evil.example/", None, "wrong-uri"),
        ("ftp://127.0.0.1/", None, "wrong-uri"),
        (None, "2099-01-01T00:00:00Z", "issued-in-the-future"),
    ):
        info = httpx.get(base + "/api/v1/auth/nonce", timeout=10).json()
        text = make_message(victim.user, domain=info["domain"], nonce=info["nonce"],
                            chain_id=info["chain_id"], scheme=info["scheme"])  # fmt: skip
        if uri is not None:
            text = text.replace(f"URI: {info['scheme']}://{info['domain']}/", f"URI: {uri}")
        if issued is not None:
            text = "\n".join(
                f"Issued At: {issued}" if line.startswith("Issued At:") else line
                for line in text.split("\n")
            )
        r = httpx.post(base + "/api/v1/auth/login",
                       json={"message": text, "signature": sign(victim.user, text)})  # fmt: skip
        assert r.status_code == 401 and r.json()["detail"].startswith(reason), r.text


def _now(ahead: int = 0) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ahead)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Victim]:
    data_dir: Path = tmp_path_factory.mktemp("identity") / "node"
    with in_process_node(data_dir, epoch_service=False, sync=False) as running:
        node = running.node
        user: LocalAccount = Account.create()
        node.registry.add_participant(HOME, user.address)
        attacker: LocalAccount = Account.create()
        node.chain.fund(attacker.address, FUNDING_WEI)
        Registry(node.chain.w3, node.record.registry, attacker).register_node(
            "http://127.0.0.1:9", 4, compute_roles_mask(ALL_ROLES), HOME
        )
        yield Victim(running.url, node.address.lower(), node.address, user, attacker)


def test_a_registered_node_cannot_act_for_anyone_on_the_embedded_chain(embedded: Victim) -> None:
    attack(embedded)


@pytest.mark.anvil
@pytest.mark.slow
def test_a_registered_node_cannot_act_for_anyone_on_anvil(
    anvil_chain: ChainUnderTest,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = str(anvil_chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    import subprocess
    import sys

    proc = node_process(tmp_path)
    init = [sys.executable, "-m", "node.cli.main", "init", "--data-dir", str(proc.data_dir),
            "--chain", url, "--home", HOME, "--capacity", "4"]  # fmt: skip
    subprocess.run(init, env=proc.env, check=True, capture_output=True)
    try:
        health = proc.start("--chain", url)
        registry_address = json.loads((proc.data_dir / "node.json").read_text())["registry"]
        operator = load_account(proc.data_dir / "keystore.json", proc.env["COLLEGIUM_PASSWORD"])
        user: LocalAccount = Account.create()
        registry = Registry(anvil_chain.w3, registry_address, operator)
        registry.add_participant(HOME, user.address)
        target = registry.current_epoch() + 1  # the first epoch whose snapshot holds the node
        anvil_chain.mine_to(registry.epoch_start_block(target))
        deadline = time.monotonic() + 60
        while httpx.get(proc.url + "/api/v1/epochs/current").json().get("epoch") != target:
            assert time.monotonic() < deadline, "the node did not reach the next epoch"
            time.sleep(0.2)
        attacker: LocalAccount = Account.create()
        anvil_chain.fund(attacker.address, FUNDING_WEI)
        Registry(anvil_chain.w3, registry_address, attacker).register_node(
            "http://127.0.0.1:9", 4, compute_roles_mask(ALL_ROLES), HOME
        )
        address = str(health["node"])
        attack(Victim(proc.url, address.lower(), address, user, attacker))
    finally:
        proc.stop()
