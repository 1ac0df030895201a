"""The key directory on a real migrated SQLite index: keys from SIWE logins, announcements and
peers over real HTTP; every key must hash to its address, so a lying peer plants nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker

from node.crypto import InvalidSignature, compute_public_key
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.keys.directory import KeyDirectory, compute_announcement
from tests.auth.siwe_helpers import make_message, sign


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


class Peer:
    """A real HTTP server answering ``GET /api/v1/keys/{address}`` from a dict."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.requests = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                peer.requests += 1
                address = self.path.rsplit("/", 1)[-1].lower()
                key = peer.keys.get(address)
                body = json.dumps({"address": address, "public_key": key}).encode()
                self.send_response(200 if key else 404)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def key_hex(account: LocalAccount) -> str:
    return compute_public_key(bytes(account.key)).hex()


def test_a_siwe_login_signature_yields_the_key(sessions: sessionmaker[Session]) -> None:
    directory = KeyDirectory(sessions)
    wallet, other = Account.create(), Account.create()
    message = make_message(wallet, domain="127.0.0.1:8000", nonce="abcdef0123456789", chain_id=1)
    key = directory.record_login(message, sign(wallet, message))
    assert key is not None and key.hex() == key_hex(wallet)
    assert directory.get(wallet.address.lower()) == key
    # a signature by another key (an ERC-1271 wallet's owner, say) teaches nothing
    assert directory.record_login(message, sign(other, message)) is None
    assert directory.get(other.address) is None
    assert directory.record_login("not a siwe message", sign(wallet, message)) is None


def test_announcements_and_records_must_match_the_address(
    sessions: sessionmaker[Session],
) -> None:
    directory = KeyDirectory(sessions)
    wallet, other = Account.create(), Account.create()
    message = compute_announcement(wallet.address, "atelier")
    forged = "0x" + bytes(other.sign_message(encode_defunct(text=message)).signature).hex()
    with pytest.raises(InvalidSignature):
        directory.record_announcement(wallet.address, "atelier", forged)
    with pytest.raises(InvalidSignature):
        directory.record(wallet.address, compute_public_key(bytes(other.key)), "test")
    good = "0x" + bytes(wallet.sign_message(encode_defunct(text=message)).signature).hex()
    assert directory.record_announcement(wallet.address, "atelier", good).hex() == key_hex(wallet)
    assert [r.address for r in directory.recipients([wallet.address, other.address])] == [
        wallet.address
    ]


def test_keys_learned_from_peers_are_checked_against_the_address(
    sessions: sessionmaker[Session],
) -> None:
    honest_user, lied_about, unknown = Account.create(), Account.create(), Account.create()
    liar = Peer({lied_about.address.lower(): key_hex(Account.create())})
    honest = Peer({honest_user.address.lower(): key_hex(honest_user)})
    try:
        peers = {"0x" + "11" * 20: liar.url, "0x" + "22" * 20: honest.url}
        directory = KeyDirectory(sessions, peers=lambda: peers)
        wanted = [honest_user.address, lied_about.address, unknown.address]
        assert directory.learn_from_peers(wanted) == 1
        assert directory.get(honest_user.address) is not None
        assert directory.get(honest_user.address).hex() == key_hex(honest_user)  # type: ignore[union-attr]
        assert directory.get(lied_about.address) is None  # the liar's key was refused
        asked = liar.requests + honest.requests
        assert directory.learn_from_peers(wanted) == 0  # misses are not asked again at once
        assert liar.requests + honest.requests == asked
    finally:
        liar.close()
        honest.close()
