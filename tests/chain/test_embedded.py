"""Tests of the persistent embedded chain: real py-evm over sqlite, no mocks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.providers import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from node.chain.embedded import (
    CHAIN_DB_FILENAME,
    CHAIN_META_FILENAME,
    COLLEGIUM_DEV_CHAIN_ID,
    DEV_GENESIS_WEI,
    DEV_KEY_FILENAME,
    GENESIS_FUND_WEI,
    EmbeddedChain,
    GenesisMismatchError,
)
from node.errors import ChainError, ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]

# A tiny contract, hand-assembled. Runtime (20 bytes), on any call:
#   v = calldataload(0); sstore(0, v); mstore(0, v); log0(0, 32); return(0, 32)
#   60 00 35 80 60 00 55 60 00 52 60 20 60 00 a0 60 20 60 00 f3
# Init (12 bytes): codecopy(0, 12, 20); return(0, 20)
#   60 14 60 0c 60 00 39 60 14 60 00 f3
RUNTIME_HEX = "6000358060005560005260206000a060206000f3"
INIT_HEX = "6014600c60003960146000f3" + RUNTIME_HEX

GWEI = 10**9


def _send(
    w3: Web3,
    account: LocalAccount,
    nonce: int,
    *,
    to: str | None = None,
    value: int = 0,
    data: str = "",
    gas: int = 21_000,
) -> HexBytes:
    """Sign locally and send one transaction; return its hash."""
    tx: dict[str, Any] = {
        "nonce": nonce,
        "value": value,
        "gas": gas,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
        "chainId": COLLEGIUM_DEV_CHAIN_ID,
        "data": data,
    }
    if to is not None:
        tx["to"] = to
    signed = account.sign_transaction(tx)
    return HexBytes(w3.eth.send_raw_transaction(signed.raw_transaction))


def test_fresh_chain_basics(tmp_path: Path) -> None:
    friend = Account.create()
    with EmbeddedChain.open(tmp_path / "chain", fund=[friend.address]) as chain:
        w3 = chain.w3
        assert w3.eth.chain_id == COLLEGIUM_DEV_CHAIN_ID
        assert w3.eth.block_number == 0
        assert w3.eth.get_balance(friend.address) == GENESIS_FUND_WEI
        assert w3.eth.get_balance(chain.dev_address) == DEV_GENESIS_WEI
        assert w3.eth.get_block(0)["hash"].to_0x_hex() == chain.genesis_hash
    meta = json.loads((tmp_path / "chain" / CHAIN_META_FILENAME).read_text())
    assert meta == {
        "schema_version": 1,
        "chain_id": COLLEGIUM_DEV_CHAIN_ID,
        "genesis_hash": chain.genesis_hash,
    }
    key_file = tmp_path / "chain" / DEV_KEY_FILENAME
    assert key_file.stat().st_mode & 0o077 == 0


def test_reopen_keeps_blocks_state_code_and_receipts(tmp_path: Path) -> None:
    chain_dir = tmp_path / "chain"
    user = Account.create()
    chain = EmbeddedChain.open(chain_dir)
    w3 = chain.w3
    chain.fund(user.address, 10**18)

    deploy = _send(w3, user, 0, data="0x" + INIT_HEX, gas=100_000)
    contract = w3.eth.wait_for_transaction_receipt(deploy)["contractAddress"]
    assert w3.eth.get_code(contract).hex() == RUNTIME_HEX
    call = _send(w3, user, 1, to=contract, data="0x" + (42).to_bytes(32, "big").hex(), gas=60_000)
    call_receipt = w3.eth.wait_for_transaction_receipt(call)
    assert call_receipt["status"] == 1 and len(call_receipt["logs"]) == 1
    hashes = [deploy, call]
    for nonce in range(2, 7):
        hashes.append(_send(w3, user, nonce, to=chain.dev_address, value=1000 + nonce))
    for tx_hash in hashes:
        assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1

    head = w3.eth.block_number
    blocks = [w3.eth.get_block(n)["hash"] for n in range(head + 1)]
    balances = {a: w3.eth.get_balance(a) for a in (user.address, chain.dev_address)}
    receipts = {h: dict(w3.eth.get_transaction_receipt(h)) for h in hashes}
    last_timestamp = w3.eth.get_block("latest")["timestamp"]
    chain.close()
    with pytest.raises(ChainError, match="closed"):
        _ = w3.eth.block_number

    with EmbeddedChain.open(chain_dir) as chain:
        w3 = chain.w3
        assert w3.eth.block_number == head
        assert [w3.eth.get_block(n)["hash"] for n in range(head + 1)] == blocks
        assert {a: w3.eth.get_balance(a) for a in balances} == balances
        assert w3.eth.get_code(contract).hex() == RUNTIME_HEX
        assert int.from_bytes(w3.eth.get_storage_at(contract, 0), "big") == 42
        assert {h: dict(w3.eth.get_transaction_receipt(h)) for h in hashes} == receipts
        assert w3.eth.get_transaction(deploy)["blockNumber"] == receipts[deploy]["blockNumber"]
        assert w3.eth.get_transaction_count(user.address) == 7
        # The pending block was rebuilt from the stored head: the chain goes on.
        more = _send(w3, user, 7, to=chain.dev_address, value=1)
        assert w3.eth.wait_for_transaction_receipt(more)["blockNumber"] == head + 1
        assert chain.mine(3) == head + 4
        stamps = [w3.eth.get_block(n)["timestamp"] for n in range(head - 1, head + 5)]
        assert stamps[1] == last_timestamp
        assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))


def test_reopen_funds_new_empty_addresses(tmp_path: Path) -> None:
    EmbeddedChain.open(tmp_path / "c").close()
    late = Account.create()
    with EmbeddedChain.open(tmp_path / "c", fund=[late.address]) as chain:
        assert chain.w3.eth.get_balance(late.address) == GENESIS_FUND_WEI
        head = chain.w3.eth.block_number
    with EmbeddedChain.open(tmp_path / "c", fund=[late.address]) as chain:
        assert chain.w3.eth.block_number == head  # already funded: no new transfer


def test_genesis_mismatch_is_refused(tmp_path: Path) -> None:
    EmbeddedChain.open(tmp_path / "a").close()
    EmbeddedChain.open(tmp_path / "b").close()
    # A database from another chain under a's metadata.
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / "a" / (CHAIN_DB_FILENAME + suffix)).unlink(missing_ok=True)
    shutil.copy(tmp_path / "b" / CHAIN_DB_FILENAME, tmp_path / "a" / CHAIN_DB_FILENAME)
    with pytest.raises(GenesisMismatchError, match="refusing to open"):
        EmbeddedChain.open(tmp_path / "a")
    # A pinned genesis that is not the one in the directory.
    with pytest.raises(GenesisMismatchError) as info:
        EmbeddedChain.open(tmp_path / "b", expected_genesis_hash="0x" + "ab" * 32)
    assert info.value.expected == "0x" + "ab" * 32
    # Refusals released the directory: it opens fine afterwards.
    EmbeddedChain.open(tmp_path / "b").close()


def test_database_without_metadata_is_refused(tmp_path: Path) -> None:
    EmbeddedChain.open(tmp_path / "c").close()
    (tmp_path / "c" / CHAIN_META_FILENAME).unlink()
    with pytest.raises(ConfigError, match="without chain.json"):
        EmbeddedChain.open(tmp_path / "c")


def test_directory_is_locked_while_open(tmp_path: Path) -> None:
    with EmbeddedChain.open(tmp_path / "c"), pytest.raises(ConfigError, match="in use"):
        EmbeddedChain.open(tmp_path / "c")
    EmbeddedChain.open(tmp_path / "c").close()


def test_concurrent_threads(tmp_path: Path) -> None:
    """4 threads x 20 transfers, each thread its own key, plus the shared dev account."""
    users = [Account.create() for _ in range(4)]
    with EmbeddedChain.open(tmp_path / "c", fund=[u.address for u in users]) as chain:
        w3 = chain.w3
        start = w3.eth.block_number
        errors: list[BaseException] = []
        sent: list[HexBytes] = []
        sent_lock = threading.Lock()

        def work(user: LocalAccount) -> None:
            try:
                for nonce in range(20):
                    tx_hash = _send(w3, user, nonce, to=chain.dev_address, value=1)
                    with sent_lock:
                        sent.append(tx_hash)
                # The shared dev account: eth-tester fills the nonce under the provider lock.
                for _ in range(3):
                    tx_hash = HexBytes(
                        w3.eth.send_transaction(
                            {"from": chain.dev_address, "to": user.address, "value": 5}
                        )
                    )
                    with sent_lock:
                        sent.append(tx_hash)
            except BaseException as exc:  # noqa: BLE001 -- reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(u,)) for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(sent) == 4 * 23
        for tx_hash in sent:
            assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
        for user in users:
            assert w3.eth.get_transaction_count(user.address) == 20
        assert w3.eth.get_transaction_count(chain.dev_address) == 12
        assert w3.eth.block_number == start + 4 * 23  # instant mining: one block per tx


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from eth_account import Account
    from node.chain.embedded import EmbeddedChain, COLLEGIUM_DEV_CHAIN_ID

    chain = EmbeddedChain.open(Path(sys.argv[1]))
    w3 = chain.w3
    user = Account.from_key(sys.argv[2])
    nonce = w3.eth.get_transaction_count(user.address)
    while True:
        signed = user.sign_transaction({
            "nonce": nonce, "to": chain.dev_address, "value": 1, "gas": 21000,
            "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9,
            "chainId": COLLEGIUM_DEV_CHAIN_ID,
        })
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        w3.eth.wait_for_transaction_receipt(tx_hash)
        print("acked", tx_hash.to_0x_hex(), flush=True)
        nonce += 1
    """
)


def test_sigkill_after_ack_loses_nothing(tmp_path: Path) -> None:
    chain_dir = tmp_path / "chain"
    user = Account.create()
    EmbeddedChain.open(chain_dir, fund=[user.address]).close()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    acked: list[str] = []
    for round_ in range(2):  # kill it twice: the second run resumes a killed database
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(chain_dir), user.key.to_0x_hex()],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        wanted = 3 + 4 * round_
        for line in child.stdout:
            word, tx_hash = line.split()
            assert word == "acked"
            acked.append(tx_hash)
            if len(acked) >= wanted:
                child.send_signal(signal.SIGKILL)  # right after the ack, mid-loop
                break
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL

    with EmbeddedChain.open(chain_dir) as chain:
        w3 = chain.w3
        for tx_hash in acked:
            assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
        # A tx in flight at the kill may or may not have landed; the chain is consistent
        # either way: nonces match and new transactions are mined on top.
        nonce = w3.eth.get_transaction_count(user.address)
        assert nonce >= len(acked)
        tx_hash = _send(w3, user, nonce, to=chain.dev_address, value=1)
        assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1


class JSONShimProvider(BaseProvider):
    """A web3 provider that reaches ``EmbeddedChain.json_rpc`` through real JSON text,
    as an outside client of the node's ``/rpc`` would."""

    def __init__(self, chain: EmbeddedChain) -> None:
        super().__init__()
        self.chain = chain
        self.counter = 0

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.counter += 1
        wire = json.loads(json.dumps({"method": method, "params": params}))
        answer = self.chain.json_rpc(wire["method"], wire["params"], self.counter)
        return cast(RPCResponse, json.loads(json.dumps(answer)))


def _standard(record: Any) -> dict[str, Any]:
    """Return a web3 record without the spots where web3's in-process eth-tester view is
    not standard JSON-RPC: a 1-byte logsBloom, ``y_parity``, a receipt ``state_root``."""
    out = dict(record)
    out.pop("logsBloom", None)
    out.pop("state_root", None)
    if "y_parity" in out:
        out["yParity"] = out.pop("y_parity")
    return out


def test_json_rpc_speaks_the_standard_dialect(tmp_path: Path) -> None:
    user = Account.create()
    with EmbeddedChain.open(tmp_path / "c", fund=[user.address]) as chain:
        direct = chain.w3
        outside = Web3(JSONShimProvider(chain))
        assert outside.eth.chain_id == COLLEGIUM_DEV_CHAIN_ID
        # Writes from outside: a deployment and a call that logs, signed by the client.
        deploy = _send(outside, user, 0, data="0x" + INIT_HEX, gas=100_000)
        receipt = outside.eth.wait_for_transaction_receipt(deploy)
        contract = receipt["contractAddress"]
        call = _send(
            outside, user, 1, to=contract, data="0x" + (7).to_bytes(32, "big").hex(), gas=60_000
        )
        outside.eth.wait_for_transaction_receipt(call)
        # Reads from outside match the in-process view.
        head = direct.eth.block_number
        assert outside.eth.block_number == head
        for number in range(head + 1):
            seen = outside.eth.get_block(number)
            assert len(seen["logsBloom"]) == 256
            assert _standard(seen) == _standard(direct.eth.get_block(number))
        assert outside.eth.get_block("latest", full_transactions=True)["transactions"][0][
            "hash"
        ] == HexBytes(call)
        for tx_hash in (deploy, call):
            seen_receipt = outside.eth.get_transaction_receipt(tx_hash)
            assert _standard(seen_receipt) == _standard(direct.eth.get_transaction_receipt(tx_hash))
            seen_tx = outside.eth.get_transaction(tx_hash)
            assert _standard(seen_tx) == _standard(direct.eth.get_transaction(tx_hash))
        assert outside.eth.get_balance(user.address) == direct.eth.get_balance(user.address)
        assert outside.eth.get_code(contract) == direct.eth.get_code(contract)
        assert outside.eth.get_storage_at(contract, 0) == direct.eth.get_storage_at(contract, 0)
        logs = outside.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": contract})
        assert logs == direct.eth.get_logs(
            {"fromBlock": 0, "toBlock": "latest", "address": contract}
        )
        assert int.from_bytes(logs[0]["data"], "big") == 7
        # EIP-234: one block's logs by its hash (eth-tester itself knows only ranges)
        logged = direct.eth.get_block(logs[0]["blockNumber"])
        for w3 in (direct, outside):
            by_hash = w3.eth.get_logs(
                {"blockHash": Web3.to_hex(logged["hash"]), "address": contract}
            )
            assert by_hash == logs
            empty = Web3.to_hex(w3.eth.get_block(0)["hash"])
            assert w3.eth.get_logs({"blockHash": empty, "address": contract}) == []
        unknown_block = chain.json_rpc("eth_getLogs", [{"blockHash": "0x" + "ab" * 32}], 8)
        assert "unknown block" in unknown_block["error"]["message"]
        both = chain.json_rpc(
            "eth_getLogs", [{"blockHash": Web3.to_hex(logged["hash"]), "fromBlock": "0x0"}], 9
        )
        assert both["error"]["code"] == -32602 and "EIP-234" in both["error"]["message"]
        assert outside.eth.call({"to": contract, "data": "0x" + "00" * 31 + "09"}) == HexBytes(
            (9).to_bytes(32, "big")
        )
        # Failures are JSON-RPC errors, not exceptions.
        bad = chain.json_rpc("eth_sendRawTransaction", ["0x1234"], 5)
        assert bad["id"] == 5 and bad["error"]["code"] == -32602  # invalid params: not a tx
        unknown = chain.json_rpc("nope_nothing", [], 6)
        assert unknown["error"]["code"] == -32601
        missing = chain.json_rpc("eth_getTransactionReceipt", ["0x" + "00" * 32], 7)
        assert missing["result"] is None


def test_tick_stamps_the_wall_clock_and_never_ahead(tmp_path: Path) -> None:
    from node.chain.embedded import BlockClock

    with EmbeddedChain.open(tmp_path / "c") as chain:
        head = chain.head_timestamp()
        assert head <= time.time()
        time.sleep(max(0.0, head + 1.05 - time.time()))
        assert chain.tick()  # a second passed: one block, stamped now
        assert not chain.tick()  # this second has its block
        assert chain.head_timestamp() <= time.time()
        clock = BlockClock(chain, 0.1)
        clock.start()
        time.sleep(2.2)
        clock.stop()
        assert 1 <= clock.blocks_mined <= 3  # one per second of wall time, not per tick
        assert chain.head_timestamp() <= time.time()


def test_a_burst_of_transactions_waits_for_the_clock_past_max_lead(tmp_path: Path) -> None:
    with EmbeddedChain.open(tmp_path / "c") as chain:
        chain.max_lead = 2
        for _ in range(6):  # six blocks at once would be stamped ~6 s ahead
            chain.fund(chain.dev_address, 1)
            assert chain.head_timestamp() - time.time() <= 2 + 1  # bound, plus the 1 s stamp grain
        assert chain.provider.lead_waits >= 1
        chain.max_lead = None
        for _ in range(6):
            chain.fund(chain.dev_address, 1)
        assert chain.head_timestamp() - time.time() > 2  # without the bound: ahead (a bare chain)
