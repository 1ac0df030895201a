"""The nonce manager on a real anvil: fee spikes, lost answers, restarts, an empty wallet.

anvil runs with automine off and a block every second (interval mining), like a real chain,
so a transaction can really sit in the pool; fee spikes are ``anvil_setNextBlockBaseFeePerGas``.
Every test ends with the promise checked on-chain: ``latest`` nonce == ``pending`` nonce (no
stuck nonce) and each payload mined exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from node.chain.nonces import GWEI, InsufficientFunds, NonceManager
from node.chain.provider import FailoverProvider
from tests.chain.conftest import ChainUnderTest, spawn_anvil
from tests.support.rpc_proxy import Faults, RpcProxy

pytestmark = pytest.mark.anvil

ETH = 10**18


@pytest.fixture(scope="module")
def anvil() -> Iterator[ChainUnderTest]:
    with spawn_anvil("--block-time", "1") as chain:
        yield chain


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    answer = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]


def funded(anvil: ChainUnderTest, wei: int = ETH) -> LocalAccount:
    account: LocalAccount = Account.create()
    if wei:
        anvil.fund(account.address, wei)
    return account


def payload(i: int) -> dict[str, Any]:
    """A transfer to a fresh address: its arrival is the proof it was mined (once)."""
    return {"to": Account.create().address, "value": 1000 + i, "gas": 21_000}


def assert_settled(w3: Web3, address: str) -> None:
    latest = w3.eth.get_transaction_count(address, "latest")  # type: ignore[arg-type]
    pending = w3.eth.get_transaction_count(address, "pending")  # type: ignore[arg-type]
    assert latest == pending, f"stuck nonce: latest {latest}, pending {pending}"


def test_a_fee_spike_is_outbid_by_replacement(anvil: ChainUnderTest) -> None:
    w3 = anvil.w3
    account = funded(anvil)
    manager = NonceManager(w3, account, bump_after=1.5, poll=0.1)
    tx = payload(0)
    spike = 200 * GWEI
    rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(spike))
    receipt = manager.send(tx)  # priced for the base fee before the spike
    assert receipt["status"] == 1
    assert manager.stats.replacements >= 1
    mined = w3.eth.get_transaction(receipt["transactionHash"])
    assert mined["maxFeePerGas"] >= spike
    assert w3.eth.get_balance(tx["to"]) == tx["value"]  # mined once
    assert_settled(w3, account.address)


def test_lost_answers_and_rate_limits_neither_lose_nor_double(anvil: ChainUnderTest) -> None:
    upstream = str(anvil.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    faults = Faults(drop_every=2, rate_limit_every=7, retry_after="0.2")
    with RpcProxy(upstream, faults) as proxy:
        provider = FailoverProvider([proxy.url], backoff_base=0.05)
        w3 = Web3(provider)
        account = funded(anvil)
        manager = NonceManager(w3, account, poll=0.1)
        txs = [payload(i) for i in range(6)]
        receipts: list[Any] = []
        lock = threading.Lock()

        errors: list[BaseException] = []

        def worker(chunk: list[dict[str, Any]]) -> None:
            for tx in chunk:
                try:
                    receipt = manager.send(tx)
                except Exception as exc:  # noqa: BLE001 -- reported below
                    errors.append(exc)
                    continue
                with lock:
                    receipts.append(receipt)

        threads = [threading.Thread(target=worker, args=(txs[i::3],)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert proxy.counts["dropped"] >= 3  # answers lost after the send was applied
        assert proxy.counts["429"] >= 1
        provider.close()
    assert not errors
    assert len(receipts) == 6 and all(r["status"] == 1 for r in receipts)
    nonces = sorted(anvil.w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts)
    assert nonces == list(range(6))  # contiguous, none reused
    for tx in txs:
        assert anvil.w3.eth.get_balance(tx["to"]) == tx["value"]  # each exactly once
    assert_settled(anvil.w3, account.address)


def test_receipts_from_a_lagging_backend_are_not_mistaken_for_a_used_nonce(
    anvil: ChainUnderTest,
) -> None:
    # every other answer comes from a backend 3 blocks behind: for three blocks after a
    # transaction is mined, its receipt reads null half the time while the account's nonce
    # (not lagged) already counts it -- which is not another transaction taking the nonce
    upstream = str(anvil.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    with RpcProxy(upstream, Faults(lag_every=2, lag_blocks=3)) as proxy:
        provider = FailoverProvider([proxy.url], backoff_base=0.05)
        account = funded(anvil)
        manager = NonceManager(Web3(provider), account, poll=0.05)
        txs = [payload(i) for i in range(4)]
        try:
            receipts = [manager.send(tx) for tx in txs]
        finally:
            provider.close()
        assert proxy.counts["lagged"] > 0
    assert [anvil.w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts] == [
        0,
        1,
        2,
        3,
    ]
    assert manager.stats.sent == 4  # one transaction per payload: none sent again
    for tx in txs:
        assert anvil.w3.eth.get_balance(tx["to"]) == tx["value"]  # each exactly once
    assert_settled(anvil.w3, account.address)


def test_a_reorg_that_drops_a_lower_nonce_leaves_no_stuck_transaction() -> None:
    # a transaction waits in the pool at nonce 1 when a reorg drops the one at nonce 0 (and
    # does not put it back): nonce 1 can never be mined, whatever its fee, until 0 is filled
    with spawn_anvil("--block-time", "1") as chain:
        w3 = chain.w3
        account = funded(chain)
        manager = NonceManager(w3, account, bump_after=1.0, poll=0.1)
        lost, kept = payload(0), payload(1)
        first = manager.send(lost)
        rpc(w3, "evm_setIntervalMining", 0)  # no block: the next one waits in the pool
        receipts: list[Any] = []
        sender = threading.Thread(target=lambda: receipts.append(manager.send(kept)))
        sender.start()
        deadline = time.monotonic() + 10
        while w3.eth.get_transaction_count(account.address, "pending") < 2:
            assert time.monotonic() < deadline, "the second transaction never reached the pool"
            time.sleep(0.05)
        rpc(w3, "anvil_reorg", w3.eth.block_number - first["blockNumber"] + 1, [])
        assert w3.eth.get_transaction_count(account.address, "latest") == 0
        rpc(w3, "evm_setIntervalMining", 1)
        sender.join(60)
        assert not sender.is_alive()
        assert receipts and receipts[0]["status"] == 1
        assert manager.stats.gaps_filled == 1
        assert w3.eth.get_balance(kept["to"]) == kept["value"]  # mined once
        assert w3.eth.get_balance(lost["to"]) == 0  # lost with the reorg: the caller re-sends
        assert_settled(w3, account.address)


def test_restart_settles_what_a_previous_process_left_pending(anvil: ChainUnderTest) -> None:
    w3 = anvil.w3
    account = funded(anvil)
    # the previous process: a transaction sent at the going price, then a fee spike it
    # cannot pay for, then the process died
    rpc(w3, "evm_setIntervalMining", 0)  # hold the next block until the spike is set
    try:
        base_fee = int(w3.eth.get_block("latest")["baseFeePerGas"])
        stuck_tx = {
            **payload(0),
            "nonce": 0,
            "chainId": w3.eth.chain_id,
            "maxFeePerGas": 2 * base_fee + 1,
            "maxPriorityFeePerGas": 1,
        }
        w3.eth.send_raw_transaction(account.sign_transaction(stuck_tx).raw_transaction)
        rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(max(50 * GWEI, 8 * base_fee)))
    finally:
        rpc(w3, "evm_setIntervalMining", 1)
    assert w3.eth.get_transaction_count(account.address, "pending") == 1
    # the new process
    manager = NonceManager(w3, account, poll=0.1)
    assert manager.recover(wait=1.0) == 1
    assert w3.eth.get_transaction_count(account.address, "latest") == 1
    assert w3.eth.get_balance(stuck_tx["to"]) == 0  # the cancel took the nonce
    tx = payload(1)
    assert manager.send(tx)["status"] == 1
    assert w3.eth.get_balance(tx["to"]) == tx["value"]
    assert_settled(w3, account.address)


def test_an_empty_wallet_fails_cleanly_and_resumes_when_funded(anvil: ChainUnderTest) -> None:
    w3 = anvil.w3
    account = funded(anvil, 0)
    manager = NonceManager(w3, account, poll=0.1)
    with pytest.raises(InsufficientFunds):
        manager.send(payload(0))
    assert manager.last_error is not None and "cannot pay" in manager.last_error
    anvil.fund(account.address, ETH)
    tx = payload(1)
    receipt = manager.send(tx)
    assert receipt["status"] == 1
    assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == 0  # no gap
    assert manager.last_error is None
    assert_settled(w3, account.address)


def test_a_wallet_dry_while_its_transaction_waits_says_so_and_lands_once_funded(
    anvil: ChainUnderTest,
) -> None:
    w3 = anvil.w3
    account = funded(anvil)
    manager = NonceManager(w3, account, bump_after=1.0, poll=0.1)
    tx = payload(0)
    result: dict[str, Any] = {}
    rpc(w3, "evm_setIntervalMining", 0)  # no block: the transaction waits in the pool
    try:
        sender = threading.Thread(target=lambda: result.update(receipt=manager.send(tx)))
        sender.start()
        deadline = time.monotonic() + 10
        while w3.eth.get_transaction_count(account.address, "pending") == 0:  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "the transaction never reached the pool"
            time.sleep(0.05)
        anvil.fund(account.address, 0)  # the wallet runs dry meanwhile
    finally:
        rpc(w3, "evm_setIntervalMining", 1)
    deadline = time.monotonic() + 20
    while not (manager.last_error and "cannot pay" in manager.last_error):
        assert time.monotonic() < deadline, f"never said so: {manager.last_error!r}"
        assert sender.is_alive(), result
        time.sleep(0.1)
    assert w3.eth.get_balance(tx["to"]) == 0  # not mined while dry
    anvil.fund(account.address, ETH)
    sender.join(30)
    assert not sender.is_alive() and result["receipt"]["status"] == 1
    assert w3.eth.get_balance(tx["to"]) == tx["value"]  # mined once
    assert manager.last_error is None
    assert_settled(w3, account.address)
