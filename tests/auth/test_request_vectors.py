"""The node's verifier against the request-signature vectors the front-end's code made.

tests/vectors/request-signatures/ (README there): signed requests produced by the TypeScript in
frontend/src/protocol, the code the browser runs. Each must be served as the wallet's, or refused
with the status and check the vector names; a valid one sent twice is a replay (409).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from node.auth.delegation import compute_system_uri
from node.auth.errors import Misdirected, NotAuthenticated, ReplayedRequest
from node.auth.requests import RequestVerifier, SignedRequest
from node.auth.service import AuthService, SiweRules

VECTORS = Path(__file__).parents[1] / "vectors" / "request-signatures"
CASES = sorted(VECTORS.glob("*.json"))
# what the refusal says for each check a vector fails
WORDS = {
    "destination": "misdirected",
    "content-digest": "Content-Digest does not match",
    "signature": "does not verify",
    "expires": "expired",
    "keyid": "keyid is not the delegated session key",
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def verifier_for(vector: dict[str, Any]) -> RequestVerifier:
    system = vector["system"]
    rules = SiweRules(
        domains=(system["domain"],),
        scheme="https",  # the vectors' SIWE messages carry no scheme (EIP-4361: https)
        chain_id=system["chain_id"],
        system_uri=compute_system_uri(system["chain_id"], system["registry"]),
    )
    now = vector["now"]
    auth = AuthService(None, rules, clock=lambda: datetime.fromtimestamp(now, UTC))  # type: ignore[arg-type]
    return RequestVerifier(
        auth, vector["node"]["address"], clock=lambda: float(now), started_at=vector["node_started"]
    )


def request_of(vector: dict[str, Any]) -> SignedRequest:
    request = vector["request"]
    return SignedRequest(
        method=request["method"],
        path=request["path"],
        query=request["query"].removeprefix("?"),
        headers={name.lower(): value for name, value in vector["headers"].items()},
        body=request["body"].encode("utf-8"),
    )


def test_there_are_valid_and_invalid_vectors() -> None:
    kinds = {load(path)["valid"] for path in CASES}
    assert kinds == {True, False}


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_vector(path: Path) -> None:
    vector = load(path)
    verifier = verifier_for(vector)
    if vector["valid"]:
        assert verifier.verify(request_of(vector)) == vector["wallet"]["address"]
        with pytest.raises(ReplayedRequest):
            verifier.verify(request_of(vector))
        return
    expected = Misdirected if vector["status"] == 421 else NotAuthenticated
    with pytest.raises(expected) as refused:
        verifier.verify(request_of(vector))
    assert type(refused.value) is expected
    assert WORDS[vector["failed_check"]] in str(refused.value)
