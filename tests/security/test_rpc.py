"""What an outsider can make the embedded chain do through ``POST /rpc``, over real HTTP.

A real ``collegium up`` process (embedded py-evm chain): a looping ``eth_call`` is stopped at
``rpc_call_timeout`` while ``/health`` keeps answering, gas is capped at ``rpc_gas_cap``, raw
transactions signed for another chain id (or none) are refused and never mined, and ``/rpc``
has its own rate-limit bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from eth_account import Account

from tests.support.node import NodeProcess, node_process

CALL_TIMEOUT = 2.0
GAS_CAP = 10_000_000  # the default
BLOCK_GAS = 30_000_000
LOOP = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: init code that never ends
# PUSH1 1, PUSH3 <offset>, MSTORE: memory expansion, much gas in little time
MSTORE_3MB = "0x6001623000005200"  # ≈ 19.2M gas
MSTORE_1MB = "0x6001621000005200"  # ≈ 2.2M gas
CHAIN_ID = 1337


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    running = node_process(tmp_path_factory.mktemp("rpc"))
    running.env.update(
        COLLEGIUM_EPOCH_SERVICE="false",
        COLLEGIUM_SYNC="false",
        COLLEGIUM_RPC_CALL_TIMEOUT=str(CALL_TIMEOUT),
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def rpc(node: NodeProcess, method: str, *params: Any, timeout: float = 60) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    response = httpx.post(node.url + "/rpc", json=body, timeout=timeout)
    assert response.status_code == 200, response.text
    return dict(response.json())


def health_latencies(node: NodeProcess, stop: threading.Event) -> list[float]:
    """Poll /health until ``stop``; return how long each answer took."""
    latencies = []
    while not stop.is_set():
        started = time.monotonic()
        assert httpx.get(node.url + "/health", timeout=60).status_code == 200
        latencies.append(time.monotonic() - started)
    return latencies


def test_looping_calls_are_stopped_and_health_keeps_answering(node: NodeProcess) -> None:
    call = {"data": LOOP, "gas": hex(BLOCK_GAS)}
    stop = threading.Event()
    with ThreadPoolExecutor(8) as pool:
        health = pool.submit(health_latencies, node, stop)
        started = time.monotonic()
        answers = list(pool.map(lambda _: rpc(node, "eth_call", call, "latest"), range(6)))
        elapsed = time.monotonic() - started
        stop.set()
        latencies = health.result()
    for answer in answers:
        assert answer["error"]["code"] == -32005, answer
    messages = [answer["error"]["message"] for answer in answers]
    assert any("rpc_call_timeout" in message for message in messages), messages
    # one call holds the chain at a time, for at most CALL_TIMEOUT; the others are refused
    # as busy (30M gas of this loop took ≈ 15 s before, and six calls queued on the lock)
    assert elapsed < 2 * CALL_TIMEOUT + 2, elapsed
    assert latencies and max(latencies) < CALL_TIMEOUT + 1.5, latencies
    estimate = rpc(node, "eth_estimateGas", {"data": LOOP})
    assert estimate["error"]["code"] == -32005, estimate
    assert rpc(node, "eth_chainId")["result"] == hex(CHAIN_ID)


def test_gas_is_capped(node: NodeProcess) -> None:
    over = rpc(node, "eth_call", {"data": MSTORE_3MB, "gas": hex(BLOCK_GAS)}, "latest")
    assert "error" in over, over
    assert f"gas capped at {GAS_CAP}" in over["error"]["message"]
    assert "error" in rpc(node, "eth_call", {"data": MSTORE_3MB}, "latest")  # no gas given
    under = rpc(node, "eth_call", {"data": MSTORE_1MB, "gas": hex(BLOCK_GAS)}, "latest")
    assert under["result"] == "0x", under
    estimate = rpc(node, "eth_estimateGas", {"data": MSTORE_3MB})
    assert estimate["error"]["code"] == -32005, estimate
    assert "rpc_gas_cap" in estimate["error"]["message"]
    assert int(rpc(node, "eth_estimateGas", {"data": MSTORE_1MB})["result"], 16) < GAS_CAP


def send_raw(node: NodeProcess, tx: dict[str, Any], key: bytes) -> dict[str, Any]:
    signed = Account.sign_transaction(tx, key)
    return rpc(node, "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())


def test_raw_transactions_for_another_chain_are_refused_and_not_mined(node: NodeProcess) -> None:
    dev_key = bytes.fromhex(
        (node.data_dir / "chain" / "dev-key.hex").read_text().strip().removeprefix("0x")
    )
    dev = Account.from_key(dev_key)
    sender = Account.create()
    nonce = int(rpc(node, "eth_getTransactionCount", dev.address, "latest")["result"], 16)
    funding = {"to": sender.address, "value": 10**18, "gas": 21_000, "gasPrice": 10**9,
               "nonce": nonce, "chainId": CHAIN_ID}  # fmt: skip
    funded = send_raw(node, funding, dev_key)  # signed for this chain: accepted and mined
    assert "result" in funded, funded
    assert rpc(node, "eth_getTransactionReceipt", funded["result"])["result"]["status"] == "0x1"
    balance = rpc(node, "eth_getBalance", sender.address, "latest")["result"]
    assert int(balance, 16) == 10**18
    height = rpc(node, "eth_blockNumber")["result"]

    transfer = {"to": dev.address, "value": 1, "gas": 21_000, "gasPrice": 10**9, "nonce": 0}
    typed = {"to": dev.address, "value": 1, "gas": 21_000, "maxFeePerGas": 10**9,
             "maxPriorityFeePerGas": 1, "nonce": 0}  # fmt: skip
    attempts = [
        ({**transfer, "chainId": 1}, "chain id 1"),
        ({**transfer, "chainId": 5}, "chain id 5"),
        ({**transfer, "chainId": 31337}, "chain id 31337"),
        ({**typed, "chainId": 1}, "chain id 1"),
        (transfer, "no chain id (pre-EIP-155)"),
    ]
    for tx, named in attempts:
        signed = Account.sign_transaction(tx, sender.key)
        answer = rpc(node, "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
        assert answer.get("error", {}).get("code") == -32602, (named, answer)
        assert named in answer["error"]["message"] and "1337" in answer["error"]["message"]
        assert rpc(node, "eth_getTransactionByHash", "0x" + signed.hash.hex())["result"] is None
    assert rpc(node, "eth_getTransactionCount", sender.address, "latest")["result"] == "0x0"
    assert rpc(node, "eth_getBalance", sender.address, "latest")["result"] == balance
    # the block clock mines an empty block each second: none since holds a transaction
    for number in range(int(height, 16) + 1, int(rpc(node, "eth_blockNumber")["result"], 16) + 1):
        block = rpc(node, "eth_getBlockByNumber", hex(number), False)["result"]
        assert block["transactions"] == [], number


def test_rpc_has_its_own_stricter_rate_limit(node: NodeProcess) -> None:
    time.sleep(2.5)  # the bucket (20/s, burst 40) refills after the tests above
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(20)]
    statuses = []
    for _ in range(5):
        response = httpx.post(node.url + "/rpc", json=batch, timeout=30)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "rpc_rate_limit" in response.json()["detail"]
    assert int(response.headers["retry-after"]) >= 1
    # the general API bucket (200/s, burst 400) is not the one that ran dry
    assert httpx.get(node.url + "/openapi.json", timeout=10).status_code == 200
    too_big = httpx.post(node.url + "/rpc", json=batch + batch[:1], timeout=30)
    assert too_big.status_code == 400 and "rpc_max_batch" in too_big.json()["error"]["message"]
