"""Tests of transport selection: embedded py-evm and JSON-RPC (anvil when installed)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eth_account import Account
from web3 import HTTPProvider, Web3

from node.chain.backend import ChainBackend, open_chain, open_embedded, open_rpc, redact_url
from node.chain.embedded import COLLEGIUM_DEV_CHAIN_ID, GENESIS_FUND_WEI
from node.errors import ChainError, ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL = (
    REPO_ROOT / "contracts" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_open_rpc_closed_port_is_a_clear_chain_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ChainError, match="unreachable") as info:
        open_rpc(url, timeout=2.0)
    assert url in str(info.value)


def test_open_rpc_rejects_non_http_urls() -> None:
    with pytest.raises(ChainError, match="http"):
        open_rpc("ws://127.0.0.1:8545")


class _CountingSession(requests.Session):
    closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_close_closes_the_session_a_plain_http_provider_was_built_with() -> None:
    session = _CountingSession()
    w3 = Web3(HTTPProvider("http://127.0.0.1:1", session=session))
    backend = ChainBackend(w3=w3, kind="rpc", chain_id=1, http_session=session)
    backend.close()
    assert session.closed == 1


def test_redact_url_hides_credentials() -> None:
    assert redact_url("https://alice:s3cret@rpc.example:8443/v1?x=1") == (
        "https://rpc.example:8443/v1?x=1"
    )
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"


def test_open_chain_defaults_to_embedded(tmp_path: Path) -> None:
    friend = Account.create()
    with open_chain(tmp_path, None, fund=[friend.address]) as backend:
        assert backend.kind == "embedded"
        assert backend.chain_id == COLLEGIUM_DEV_CHAIN_ID == backend.w3.eth.chain_id
        assert (tmp_path / "chain" / "chain.sqlite3").exists()
        assert backend.w3.eth.get_balance(friend.address) == GENESIS_FUND_WEI
        assert backend.mine(0) == 0
        assert backend.mine(5) == 5
        other = Account.create()
        backend.fund(other.address, 123)
        assert backend.w3.eth.get_balance(other.address) == 123
        assert backend.block_number() == 6
        assert backend.json_rpc("eth_blockNumber", [], 2) == {
            "jsonrpc": "2.0",
            "id": 2,
            "result": "0x6",
        }
        with pytest.raises(ChainError):
            backend.mine(-1)
        # One process, one owner: a second open of the same dir is refused.
        with pytest.raises(ConfigError, match="in use"):
            open_embedded(tmp_path)
    with open_embedded(tmp_path) as again:
        assert again.block_number() == 6
        assert again.dev_address == backend.dev_address


@pytest.fixture
def anvil_backend() -> Iterator[ChainBackend]:
    if not ANVIL.exists():
        pytest.skip("anvil not installed (npm install in contracts/)")
    port = _free_port()
    proc = subprocess.Popen(
        [str(ANVIL), "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                backend = open_rpc(f"http://127.0.0.1:{port}", timeout=2.0)
                break
            except ChainError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield backend
        backend.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.anvil
def test_rpc_mine_and_fund_on_anvil(anvil_backend: ChainBackend) -> None:
    backend = anvil_backend
    assert backend.kind == "rpc" and backend.embedded is None
    assert backend.chain_id == 31337
    start = backend.block_number()
    assert backend.mine(4) == start + 4
    who = Account.create().address
    backend.fund(who, 10**18)
    backend.fund(who, 5)
    assert backend.w3.eth.get_balance(who) == 10**18 + 5
    assert backend.json_rpc("eth_chainId", [], 9) == {"jsonrpc": "2.0", "id": 9, "result": "0x7a69"}
    assert backend.json_rpc("nope_nothing", [], 10)["error"]["code"] == -32601


def test_an_audit_names_its_chain_and_what_it_trusts() -> None:
    from node.chain.backend import describe_chain_trust

    named, caveat = describe_chain_trust(1337, "http://user:pw@127.0.0.1:8000/rpc")
    assert named == "chain id 1337 at http://127.0.0.1:8000/rpc"  # credentials never shown
    assert caveat is not None and "trusts that node" in caveat and "verify-tx" in caveat
    named, caveat = describe_chain_trust(1337, None)
    assert "embedded chain in this data directory" in named and caveat is not None
    assert describe_chain_trust(31337, "http://127.0.0.1:8545") == (
        "chain id 31337 at http://127.0.0.1:8545",
        None,
    )
