"""Start-up recovery on a real chain: the embedded py-evm chain and anvil, real contracts.

A node finds its own anchors by the ``Anchored`` event's indexed ``node`` topic
(``Registry.own_anchors``), so other nodes' anchors cost it nothing. The crash is the real
one's state: the index as it was before an anchor's SQL commit (an SQLite backup taken just
before ``anchor_pending``), the chain and the store as they are after the anchor was mined.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from node.chain.registry import Registry
from node.db.models import Anchor, BusinessTransaction
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.errors import CollegiumError
from node.ledger.registry_events import REORG_WINDOW
from node.ledger.service import LedgerService
from node.ledger.transaction import BusinessTx, Domain, sign_tx
from node.storage import open_store
from tests.chain.conftest import FUND_WEI, ChainUnderTest, anvil_chain, spawn_anvil  # noqa: F401
from tests.support.rpc_proxy import Faults, RpcProxy


@dataclass
class RealChain:
    """A chain to run on: its web3, how to fund an address and how to mine empty blocks."""

    w3: Web3
    fund: Callable[[str], None]
    mine: Callable[[int], None]

    def new_account(self) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.fund(account.address)
        return account


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RealChain]:
    if request.param == "anvil":
        anvil: ChainUnderTest = request.getfixturevalue("anvil_chain")
        yield RealChain(anvil.w3, lambda a: anvil.fund(a, FUND_WEI), anvil.mine)
        return
    from node.chain.embedded import EmbeddedChain

    with EmbeddedChain.open(tmp_path / "chain") as embedded:
        yield RealChain(
            embedded.w3,
            lambda a: embedded.fund(Web3.to_checksum_address(a), FUND_WEI),
            lambda n: embedded.mine(n),
        )


@dataclass
class System:
    """A registry with a subsystem ``main``, a participant ``wallet`` and a registered node
    ``me``; ``others`` are registered nodes whose anchors fill the history."""

    chain: RealChain
    registry: Registry
    me: LocalAccount
    wallet: LocalAccount
    others: list[Registry]
    store: Any
    deployed_block: int

    def ledger(self, db: Path, registry: Registry | None = None) -> LedgerService:
        """Return this node's ledger over the index ``db`` (migrated if new)."""
        url = f"sqlite:///{db}"
        upgrade_database(url)
        sessions = make_session_factory(create_db_engine(url))
        reg = registry or self.registry
        return LedgerService(
            session_factory=sessions, store=self.store, registry=reg,
            domain=Domain(int(self.chain.w3.eth.chain_id), self.registry.address),
            node_address=self.me.address,
        )  # fmt: skip

    def submit(self, ledger: LedgerService, nonce: int) -> str:
        tx = BusinessTx("main", "invoice", (), "1", "EUR", "", "", nonce, 1_764_000_000)
        signature = sign_tx(ledger.domain, tx, self.wallet.key)
        return ledger.submit(tx, signature, self.wallet.address).tx_id

    def others_anchor(self, count: int) -> None:
        """Have the other nodes anchor ``count`` batches (signed here and sent raw without
        waiting for each receipt: the history is a setting, not what is tested)."""
        w3 = self.chain.w3
        chain_id, gas_price = int(w3.eth.chain_id), int(w3.eth.gas_price) * 2
        nonces: dict[str, int] = {}
        sent = None
        for i in range(count):
            other = self.others[i % len(self.others)]
            account = other.account
            assert account is not None
            nonce = nonces.get(account.address)
            if nonce is None:
                nonce = int(w3.eth.get_transaction_count(account.address, "pending"))
            nonces[account.address] = nonce + 1
            call = other.contract.functions.anchor(
                "", secrets.token_bytes(32), i + 1, 1, f"bafy-other-{i}"
            )
            tx = call.build_transaction(
                {"from": account.address, "nonce": nonce, "gas": 300_000,
                 "gasPrice": gas_price, "chainId": chain_id}
            )  # fmt: skip
            sent = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        if sent is not None:
            assert w3.eth.wait_for_transaction_receipt(sent, timeout=60)["status"] == 1


def make_system(chain: RealChain, tmp_path: Path, others: int = 2) -> System:
    me = chain.new_account()
    deployed_block = int(chain.w3.eth.block_number) + 1
    registry = Registry.deploy(chain.w3, me, 8)
    registry.create_subsystem("main")
    registry.register_node("http://me", 2, 15, "main")
    wallet: LocalAccount = Account.create()
    registry.add_participant("main", wallet.address)
    other_registries = []
    for i in range(others):
        other = Registry(chain.w3, registry.address, chain.new_account())
        other.register_node(f"http://other{i}", 1, 1, "main")
        other_registries.append(other)
    store = open_store(tmp_path / "store")
    return System(chain, registry, me, wallet, other_registries, store, deployed_block)


def back_up(db: Path, copy: Path) -> None:
    """Copy the SQLite index ``db`` to ``copy`` as it is now (a consistent snapshot)."""
    src, dst = sqlite3.connect(db), sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def sessions_of(ledger: LedgerService) -> sessionmaker[Session]:
    return ledger._sessions  # the index the ledger writes


def test_recover_adopts_an_anchor_mined_before_a_crash(chain: RealChain, tmp_path: Path) -> None:
    system = make_system(chain, tmp_path)
    db = tmp_path / "index.sqlite"
    ledger = system.ledger(db)
    first = [system.submit(ledger, n) for n in range(2)]
    assert ledger.anchor_pending() is not None
    system.others_anchor(3)
    later = [system.submit(ledger, n) for n in range(2, 4)]
    back_up(db, tmp_path / "before.sqlite")  # the index as the crash left it
    crashed = ledger.anchor_pending()  # mined; then kill -9 before (in effect) the commit
    assert crashed is not None and crashed.index == 4 and crashed.tree_size == 4
    system.others_anchor(2)

    restarted = system.ledger(tmp_path / "before.sqlite")
    assert [restarted.get(t).status for t in later] == ["pending", "pending"]  # type: ignore[union-attr]
    assert restarted.recover(system.deployed_block) == 2
    for leaf_index, tx_id in enumerate([*first, *later]):
        row = restarted.get(tx_id)
        assert row is not None and row.status == "anchored" and row.leaf_index == leaf_index
    with sessions_of(restarted)() as s:
        adopted = s.get(Anchor, 4)
        assert adopted is not None
        assert (adopted.root, adopted.tree_size, adopted.count) == (crashed.root, 4, 2)
        assert adopted.chain_tx_hash == crashed.chain_tx_hash and adopted.chain_tx_hash
        assert adopted.block_number == crashed.block_number
        assert s.scalar(select(Anchor).where(Anchor.node != system.me.address)) is None
    assert restarted.anchor_pending() is None  # nothing anchored twice
    assert restarted.recover(system.deployed_block) == 0
    newest = system.submit(restarted, 4)
    after = restarted.anchor_pending()
    assert after is not None and after.tree_size == 5  # the log goes on from the adopted head
    assert restarted.get(newest).leaf_index == 4  # type: ignore[union-attr]
    own = list(system.registry.own_anchors(system.me.address, system.deployed_block))
    assert [(a.index, a.tree_size) for a in own] == [(0, 2), (4, 4), (7, 5)]


def test_recover_refuses_a_reused_key_on_a_fresh_data_dir(chain: RealChain, tmp_path: Path) -> None:
    system = make_system(chain, tmp_path, others=1)
    ledger = system.ledger(tmp_path / "index.sqlite")
    for n in range(2):
        system.submit(ledger, n)
    assert ledger.anchor_pending() is not None
    system.others_anchor(2)
    # the same key, a new data directory: its log would restart at leaf 0, a fork of the
    # one on-chain -- refused, pending leaves or not
    fresh = system.ledger(tmp_path / "fresh.sqlite")
    with pytest.raises(CollegiumError, match="does not match"):
        fresh.recover(system.deployed_block)
    system.submit(fresh, 7)
    with pytest.raises(CollegiumError, match="does not match"):
        fresh.recover(system.deployed_block)
    with sessions_of(fresh)() as s:
        assert s.scalar(select(Anchor)) is None
        assert {r.status for r in s.scalars(select(BusinessTransaction))} == {"pending"}


@pytest.fixture
def pruned_anvil() -> Iterator[ChainUnderTest]:
    """An anvil of its own that keeps the states of its last 64 blocks only (mining
    thousands of empty blocks slows down with every state kept)."""
    with spawn_anvil("--prune-history", "64") as anvil:
        yield anvil


@pytest.mark.anvil
def test_start_up_reads_pages_of_logs_not_every_anchor(
    pruned_anvil: ChainUnderTest, tmp_path: Path
) -> None:
    """Through the counting proxy: with many anchors of other nodes on-chain, recovery makes
    O(pages) ``eth_getLogs`` requests and no ``eth_call`` (it used to make one per anchor),
    also behind a provider that caps ``eth_getLogs`` ranges."""
    anvil = pruned_anvil
    chain = RealChain(anvil.w3, lambda a: anvil.fund(a, FUND_WEI), anvil.mine)
    system = make_system(chain, tmp_path, others=3)
    db = tmp_path / "index.sqlite"
    ledger = system.ledger(db)
    system.submit(ledger, 0)
    assert ledger.anchor_pending() is not None
    system.others_anchor(120)
    chain.mine(400)
    system.submit(ledger, 1)
    back_up(db, tmp_path / "before.sqlite")
    crashed = ledger.anchor_pending()
    assert crashed is not None and crashed.index == 121
    system.others_anchor(30)
    chain.mine(300)
    head = int(chain.w3.eth.block_number)
    count = system.registry.anchor_count()
    assert count == 152

    upstream = str(anvil.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    with RpcProxy(upstream) as proxy:
        w3 = Web3(Web3.HTTPProvider(proxy.url))
        # a node with a new key joins: nothing of its own, one request for the whole history
        newcomer = Registry(w3, system.registry.address, Account.create())
        assert list(newcomer.own_anchors(newcomer.account.address)) == []  # type: ignore[union-attr]
        assert proxy.counts["method:eth_getLogs"] == 1
        assert proxy.counts["method:eth_call"] == 0

        # the crashed node restarts behind a provider that caps eth_getLogs at 100 blocks
        proxy.counts.clear()
        proxy.faults = Faults(max_logs_range=100)
        restarted = system.ledger(tmp_path / "before.sqlite", Registry(w3, system.registry.address))
        with sessions_of(restarted)() as s:
            newest = s.get(Anchor, 0)  # its newest indexed anchor: where the scan starts
            assert newest is not None
        assert restarted.recover(system.deployed_block) == 1
        scanned = head - max(system.deployed_block, newest.block_number - REORG_WINDOW) + 1
        pages = -(-scanned // 100)
        assert proxy.counts["logs_range_refused"] > 0
        assert pages <= proxy.counts["method:eth_getLogs"] <= 2 * pages + 10
        assert proxy.counts["method:eth_call"] == 0
        assert proxy.counts["method:eth_getLogs"] < count // 4  # not O(anchors)
    with sessions_of(restarted)() as s:
        adopted = s.get(Anchor, 121)
        assert adopted is not None and adopted.chain_tx_hash == crashed.chain_tx_hash
