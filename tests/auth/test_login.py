"""SIWE login over real HTTP: each rejection is a 401 naming its reason; sessions work."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from eth_account import Account

from tests.auth.siwe_helpers import in_minutes, make_message, sign
from tests.support.node import InProcessNode

LOGIN = "/api/v1/auth/login"


def fresh_nonce(url: str) -> str:
    return str(httpx.get(url + "/api/v1/auth/nonce", timeout=10).json()["nonce"])


def login(url: str, message: str, signature: str) -> httpx.Response:
    return httpx.post(url + LOGIN, json={"message": message, "signature": signature}, timeout=10)


def assert_rejected(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"].startswith(reason), response.json()


def build(running: InProcessNode, rules: dict[str, Any], wallet: Any, **over: Any) -> str:
    fields: dict[str, Any] = {
        "domain": rules["domain"],
        "nonce": fresh_nonce(running.url),
        "chain_id": rules["chain_id"],
        "scheme": rules["scheme"],
    }
    fields.update(over)
    return make_message(wallet, **fields)


def test_nonce_is_random_and_names_the_rules(running: InProcessNode) -> None:
    a = httpx.get(running.url + "/api/v1/auth/nonce", timeout=10).json()
    b = httpx.get(running.url + "/api/v1/auth/nonce", timeout=10).json()
    assert a["nonce"] != b["nonce"] and len(a["nonce"]) >= 16
    assert a["domain"] == running.url.removeprefix("http://")
    assert a["scheme"] == "http"
    assert a["chain_id"] == running.node.chain.chain_id


def test_login_me_logout_with_cookie_and_bearer(
    running: InProcessNode, rules: dict[str, Any]
) -> None:
    wallet = Account.create()
    message = build(running, rules, wallet)
    response = login(running.url, message, sign(wallet, message))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["address"] == wallet.address
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    with httpx.Client(base_url=running.url, cookies=response.cookies, timeout=10) as browser:
        me = browser.get("/api/v1/auth/me")
        assert me.status_code == 200, me.text
        assert me.json()["address"] == wallet.address
        assert me.json()["subsystems"] == []
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert httpx.get(running.url + "/api/v1/auth/me", headers=bearer).status_code == 200
    out = httpx.post(running.url + "/api/v1/auth/logout", headers=bearer)
    assert out.json() == {"logged_out": True}
    assert_rejected(httpx.get(running.url + "/api/v1/auth/me", headers=bearer), "no-session")


def test_me_lists_the_subsystems_from_the_registry(
    running: InProcessNode, rules: dict[str, Any]
) -> None:
    wallet = Account.create()
    running.node.registry.add_participant(running.node.record.home, wallet.address)
    message = build(running, rules, wallet)
    token = login(running.url, message, sign(wallet, message)).json()["token"]
    me = httpx.get(running.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["subsystems"] == [running.node.record.home]
    assert me.json()["admin_of"] == []


def test_no_session_is_401(running: InProcessNode) -> None:
    assert_rejected(httpx.get(running.url + "/api/v1/auth/me"), "no-session")
    bogus = {"Authorization": "Bearer not-a-token"}
    assert_rejected(httpx.get(running.url + "/api/v1/auth/me", headers=bogus), "no-session")


def test_replayed_nonce(running: InProcessNode, rules: dict[str, Any]) -> None:
    wallet = Account.create()
    message = build(running, rules, wallet)
    signature = sign(wallet, message)
    assert login(running.url, message, signature).status_code == 200
    assert_rejected(login(running.url, message, signature), "replayed-nonce")


def test_unknown_nonce(running: InProcessNode, rules: dict[str, Any]) -> None:
    wallet = Account.create()
    message = build(running, rules, wallet, nonce="deadbeefdeadbeefdeadbeef")
    assert_rejected(login(running.url, message, sign(wallet, message)), "unknown-nonce")


def test_expired(running: InProcessNode, rules: dict[str, Any]) -> None:
    wallet = Account.create()
    message = build(running, rules, wallet, issued_at=in_minutes(-10), expiration=in_minutes(-1))
    assert_rejected(login(running.url, message, sign(wallet, message)), "expired")


def test_not_yet_valid(running: InProcessNode, rules: dict[str, Any]) -> None:
    wallet = Account.create()
    message = build(running, rules, wallet, not_before=in_minutes(10))
    assert_rejected(login(running.url, message, sign(wallet, message)), "not-yet-valid")


def test_wrong_domain(running: InProcessNode, rules: dict[str, Any]) -> None:
    wallet = Account.create()
    message = build(running, rules, wallet, domain="evil.example")
    assert_rejected(login(running.url, message, sign(wallet, message)), "wrong-domain")


def test_wrong_scheme(running: InProcessNode, rules: dict[str, Any]) -> None:
    wallet = Account.create()
    message = build(running, rules, wallet, scheme="ftp")
    assert_rejected(login(running.url, message, sign(wallet, message)), "wrong-scheme")


def test_wrong_chain_id(running: InProcessNode, rules: dict[str, Any]) -> None:
    wallet = Account.create()
    message = build(running, rules, wallet, chain_id=rules["chain_id"] + 1)
    assert_rejected(login(running.url, message, sign(wallet, message)), "wrong-chain-id")


def test_wrongly_signed(running: InProcessNode, rules: dict[str, Any]) -> None:
    wallet, other = Account.create(), Account.create()
    message = build(running, rules, wallet)
    assert_rejected(login(running.url, message, sign(other, message)), "bad-signature")


def test_rejected_login_leaves_the_nonce_usable(
    running: InProcessNode, rules: dict[str, Any]
) -> None:
    wallet, other = Account.create(), Account.create()
    message = build(running, rules, wallet)
    assert_rejected(login(running.url, message, sign(other, message)), "bad-signature")
    assert login(running.url, message, sign(wallet, message)).status_code == 200


@pytest.mark.parametrize("message", ["hello", "x" * 100])
def test_malformed(running: InProcessNode, message: str) -> None:
    assert_rejected(login(running.url, message, "0x" + "00" * 65), "malformed-message")


def test_localhost_and_127_0_0_1_are_the_same_loopback_node(
    running: InProcessNode, rules: dict[str, Any]
) -> None:
    """A node at http://127.0.0.1:PORT opened as http://localhost:PORT: its sign-in works;
    another port, or a loopback alias of a node with a public endpoint, does not."""
    from urllib.parse import urlsplit

    from node.api.edge import compute_loopback_aliases

    port = urlsplit(running.url).port
    assert rules["domain"] == f"127.0.0.1:{port}"
    wallet = Account.create()
    message = build(running, rules, wallet, domain=f"localhost:{port}")
    assert login(running.url, message, sign(wallet, message)).status_code == 200
    message = build(running, rules, wallet, domain=f"localhost:{port + 1}")
    assert_rejected(login(running.url, message, sign(wallet, message)), "wrong-domain")
    assert compute_loopback_aliases(urlsplit("https://node.example:8443")) == ()
    assert compute_loopback_aliases(urlsplit("http://localhost:8000")) == (
        "127.0.0.1:8000",
        "[::1]:8000",
    )
