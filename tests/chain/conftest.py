"""Chain fixtures for the registry tests: eth-tester (in memory) and anvil (a real subprocess).

``chain`` is parametrized over both; the anvil case is skipped, with the reason, only when
the anvil binary from contracts/node_modules is absent (run ``npm ci`` in contracts/).
Every account is a fresh ``Account.create()`` funded from the chain's own prefunded accounts
(eth-tester) or with ``anvil_setBalance`` (anvil); no private key is hard-coded.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3
from web3.contract.contract import ContractFunction

from node.chain.registry import Registry

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_BIN = (
    REPO_ROOT / "contracts" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
)
FUND_WEI = 10 * 10**18
ANVIL_START_TIMEOUT_SECONDS = 15.0
TEST_EPOCH_PERIOD = 8


@dataclass
class ChainUnderTest:
    """A running chain: its web3, how to mine blocks and how to fund an address."""

    kind: str
    w3: Web3
    mine: Callable[[int], None]
    fund: Callable[[str, int], None]
    accounts: list[LocalAccount] = field(default_factory=list)

    def new_account(self) -> LocalAccount:
        """Return a fresh, funded account."""
        account: LocalAccount = Account.create()
        self.fund(account.address, FUND_WEI)
        self.accounts.append(account)
        return account

    def mine_to(self, block_number: int) -> None:
        """Mine empty blocks until the latest block is ``block_number`` (or later)."""
        missing = block_number - self.w3.eth.block_number
        if missing > 0:
            self.mine(missing)


def _eth_tester_chain() -> ChainUnderTest:
    w3 = Web3(EthereumTesterProvider())
    faucet = w3.eth.accounts[0]

    def mine(n: int) -> None:
        w3.provider.make_request("evm_mine", [n])  # type: ignore[arg-type]

    def fund(address: str, wei: int) -> None:
        tx_hash = w3.eth.send_transaction({"from": faucet, "to": address, "value": wei})
        w3.eth.wait_for_transaction_receipt(tx_hash)

    return ChainUnderTest("eth_tester", w3, mine, fund)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def eth_tester_chain() -> ChainUnderTest:
    """An in-memory eth-tester (py-evm) chain, one per test session."""
    return _eth_tester_chain()


@pytest.fixture(scope="session")
def anvil_chain() -> Iterator[ChainUnderTest]:
    """An anvil subprocess on a free 127.0.0.1 port, killed at the end of the session."""
    with spawn_anvil() as chain:
        yield chain


@contextmanager
def spawn_anvil(*extra_args: str) -> Iterator[ChainUnderTest]:
    """Run an anvil of its own (for a module whose tests change fees, mining or history)."""
    if not ANVIL_BIN.exists():
        pytest.skip(f"anvil binary absent at {ANVIL_BIN}: run `npm ci` in contracts/")
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(ANVIL_BIN),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--accounts",
            "1",
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 30}))
        deadline = time.monotonic() + ANVIL_START_TIMEOUT_SECONDS
        while not w3.is_connected():
            if proc.poll() is not None:
                stderr = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"anvil exited with {proc.returncode}: {stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"anvil did not answer on port {port} in time")
            time.sleep(0.05)

        def mine(n: int) -> None:
            w3.provider.make_request("anvil_mine", [hex(n)])  # type: ignore[arg-type]

        def fund(address: str, wei: int) -> None:
            w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]

        yield ChainUnderTest("anvil", w3, mine, fund)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def mine_in_one_block(
    chain: ChainUnderTest, sends: Sequence[tuple[LocalAccount, ContractFunction]]
) -> int:
    """Send every ``(account, contract function)`` of ``sends`` (an account may send several,
    in order) with automine off, mine them in one block of an anvil chain and return it."""
    w3 = chain.w3
    nonces = {a.address: int(w3.eth.get_transaction_count(a.address)) for a, _ in sends}
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        hashes = []
        for account, fn in sends:
            tx = fn.build_transaction(
                {"from": account.address, "nonce": nonces[account.address], "gas": 1_000_000}
            )
            nonces[account.address] += 1
            signed = account.sign_transaction(tx)  # type: ignore[arg-type]
            hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
        chain.mine(1)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
    assert all(r["status"] == 1 for r in receipts), receipts
    (block,) = {int(r["blockNumber"]) for r in receipts}
    return block


@pytest.fixture(
    scope="session",
    params=["eth_tester", pytest.param("anvil", marks=pytest.mark.anvil)],
)
def chain(request: pytest.FixtureRequest) -> ChainUnderTest:
    """Each registry test runs once on eth-tester and once on anvil."""
    result: ChainUnderTest = request.getfixturevalue(f"{request.param}_chain")
    return result


@dataclass
class Deployment:
    """A freshly deployed registry; ``admin`` deployed it, ``at(account)`` acts as another."""

    chain: ChainUnderTest
    admin: LocalAccount
    registry: Registry
    epoch_period: int

    def at(self, account: LocalAccount | None) -> Registry:
        """Return a facade of the same registry that signs with ``account``."""
        return Registry(self.chain.w3, self.registry.address, account)


@pytest.fixture
def deployment(chain: ChainUnderTest) -> Deployment:
    """A new Registry with epoch period ``TEST_EPOCH_PERIOD``, deployed by a fresh admin."""
    admin = chain.new_account()
    return Deployment(
        chain, admin, Registry.deploy(chain.w3, admin, TEST_EPOCH_PERIOD), TEST_EPOCH_PERIOD
    )
