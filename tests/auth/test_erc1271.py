"""Contract wallets (ERC-1271) log in when ``isValidSignature`` accepts, on the node's chain.

The two wallets are minimal hand-assembled contracts: one answers the magic value
``0x1626ba7e`` to every call, the other answers zero. An EOA signature by a stranger is
then accepted for the first and rejected for the second, so the check is what decides.
"""

from __future__ import annotations

from typing import Any

import httpx
from eth_account import Account
from eth_utils import to_checksum_address

from tests.auth.siwe_helpers import make_message, sign
from tests.support.node import InProcessNode

# runtime: mstore(0, 0x1626ba7e << 224); return(0, 32)
ACCEPT_RUNTIME = bytes.fromhex("631626ba7e60e01b60005260206000f3")
# runtime: return(0, 32) of zero memory
REJECT_RUNTIME = bytes.fromhex("60206000f3")


def compute_init_code(runtime: bytes) -> bytes:
    """Return init code that deploys ``runtime`` (codecopy + return)."""
    size = len(runtime)
    header_len = 12
    return bytes([0x60, size, 0x60, header_len, 0x60, 0x00, 0x39, 0x60, size, 0x60, 0x00, 0xF3]) + (
        runtime
    )


def deploy(running: InProcessNode, runtime: bytes) -> str:
    w3 = running.node.chain.w3
    account = running.node.account
    tx = {
        "data": compute_init_code(runtime), "value": 0, "gas": 200_000,
        "gasPrice": int(w3.eth.gas_price) * 2, "chainId": running.node.chain.chain_id,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
    }  # fmt: skip
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert w3.eth.get_code(receipt["contractAddress"]) == runtime
    return to_checksum_address(receipt["contractAddress"])


class ContractWallet:
    """Something with an address, as ``make_message`` needs."""

    def __init__(self, address: str) -> None:
        self.address = address


def attempt(running: InProcessNode, rules: dict[str, Any], wallet: Any) -> httpx.Response:
    nonce = httpx.get(running.url + "/api/v1/auth/nonce", timeout=10).json()["nonce"]
    message = make_message(wallet, domain=rules["domain"], nonce=nonce,
                           chain_id=rules["chain_id"], scheme=rules["scheme"])  # fmt: skip
    signature = sign(Account.create(), message)  # not the address's own key: it has none
    body = {"message": message, "signature": signature}
    return httpx.post(running.url + "/api/v1/auth/login", json=body, timeout=10)


def test_contract_wallet_login_follows_is_valid_signature(
    running: InProcessNode, rules: dict[str, Any]
) -> None:
    accepting = ContractWallet(deploy(running, ACCEPT_RUNTIME))
    rejecting = ContractWallet(deploy(running, REJECT_RUNTIME))
    ok = attempt(running, rules, accepting)
    assert ok.status_code == 200, ok.text
    assert ok.json()["address"] == accepting.address
    refused = attempt(running, rules, rejecting)
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("bad-signature")
