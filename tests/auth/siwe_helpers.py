"""Build and sign EIP-4361 messages for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account.messages import encode_defunct
from siwe import SiweMessage


def iso(moment: datetime) -> str:
    """Return ``moment`` as an ISO 8601 UTC string with milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_message(
    account: Any,
    *,
    domain: str,
    nonce: str,
    chain_id: int,
    scheme: str | None = "http",
    expiration: datetime | None = None,
    not_before: datetime | None = None,
    issued_at: datetime | None = None,
) -> str:
    """Return the EIP-4361 text of a login message for ``account``."""
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "domain": domain,
        "address": account.address,
        "uri": f"{scheme or 'https'}://{domain}/",
        "version": "1",
        "chain_id": chain_id,
        "issued_at": iso(issued_at or now),
        "nonce": nonce,
        "statement": "Sign in to Collegium",
    }
    if scheme is not None:
        fields["scheme"] = scheme
    if expiration is not None:
        fields["expiration_time"] = iso(expiration)
    if not_before is not None:
        fields["not_before"] = iso(not_before)
    return SiweMessage(**fields).prepare_message()


def sign(account: Any, message: str) -> str:
    """Return the 0x-hex EIP-191 signature of ``message`` by ``account``."""
    return "0x" + bytes(account.sign_message(encode_defunct(text=message)).signature).hex()


def in_minutes(minutes: float) -> datetime:
    """Return now + ``minutes``."""
    return datetime.now(UTC) + timedelta(minutes=minutes)


def bearer_login(url: str, account: Any) -> dict[str, str]:
    """Return the bearer header of a plain SIWE session of ``account`` at the node ``url``
    (valid at that node only: a relayed request needs a session key, node.auth.client)."""
    import httpx

    rules = httpx.get(url + "/api/v1/auth/nonce", timeout=10).json()
    message = make_message(account, domain=rules["domain"], nonce=rules["nonce"],
                           chain_id=rules["chain_id"], scheme=rules["scheme"])  # fmt: skip
    body = {"message": message, "signature": sign(account, message)}
    response = httpx.post(url + "/api/v1/auth/login", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}
