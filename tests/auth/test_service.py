"""AuthService against a real SQLite index: nonce and session expiry with a test clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account

from node.auth.errors import LoginRejected, NotAuthenticated
from node.auth.service import AuthService, SiweRules
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from tests.auth.siwe_helpers import make_message, sign

DOMAIN = "collegium.test"
CHAIN_ID = 31337


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def service(tmp_path: Path) -> tuple[AuthService, Clock]:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    clock = Clock()
    rules = SiweRules((DOMAIN,), "https", CHAIN_ID, nonce_ttl=60, session_ttl=600)
    return AuthService(make_session_factory(create_db_engine(url)), rules, clock=clock), clock


def test_nonce_expires(service: tuple[AuthService, Clock]) -> None:
    auth, clock = service
    wallet = Account.create()
    nonce = auth.issue_nonce().nonce
    message = make_message(wallet, domain=DOMAIN, nonce=nonce, chain_id=CHAIN_ID, scheme=None)
    clock.now += timedelta(seconds=61)
    with pytest.raises(LoginRejected) as err:
        auth.login(message, sign(wallet, message))
    assert err.value.reason == "nonce-expired"


def test_session_expires_and_is_capped_by_the_message(service: tuple[AuthService, Clock]) -> None:
    auth, clock = service
    wallet = Account.create()
    nonce = auth.issue_nonce().nonce
    # no scheme in the message means https (EIP-4361), which these rules expect
    message = make_message(
        wallet, domain=DOMAIN, nonce=nonce, chain_id=CHAIN_ID, scheme=None,
        expiration=clock.now + timedelta(seconds=120),
    )  # fmt: skip
    result = auth.login(message, sign(wallet, message))
    assert result.expires_at <= clock.now + timedelta(seconds=120)
    assert auth.address_for(result.token) == wallet.address
    assert auth.sessions_of(wallet.address) == 1
    clock.now += timedelta(seconds=121)
    with pytest.raises(NotAuthenticated) as err:
        auth.address_for(result.token)
    assert err.value.reason == "session-expired"


def test_tokens_are_stored_hashed(service: tuple[AuthService, Clock], tmp_path: Path) -> None:
    auth, _ = service
    wallet = Account.create()
    message = make_message(
        wallet, domain=DOMAIN, nonce=auth.issue_nonce().nonce, chain_id=CHAIN_ID, scheme="https"
    )
    token = auth.login(message, sign(wallet, message)).token
    assert token.encode() not in (tmp_path / "index.sqlite").read_bytes()
