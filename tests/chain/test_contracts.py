"""node.chain.contracts: artifacts, revert decoding, deployment (on eth-tester, no mocks)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak
from web3 import EthereumTesterProvider, Web3

from node.chain.contracts import (
    ArtifactError,
    ContractRevert,
    TransactionError,
    decode_revert,
    deploy,
    extract_revert_data,
    load_artifact,
)
from node.errors import ChainError

if TYPE_CHECKING:
    from tests.chain.conftest import ChainUnderTest

ABI = load_artifact("Registry").abi


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def test_load_artifact_reads_the_committed_build() -> None:
    artifact = load_artifact("Registry")
    assert artifact.contract_name == "Registry"
    assert any(item.get("name") == "anchor" for item in artifact.abi)


def test_load_artifact_errors_are_chain_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="npm ci"):
        load_artifact("Nope")
    (tmp_path / "Bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ChainError, match="malformed"):
        load_artifact("Bad", tmp_path)


def test_decode_custom_error_with_address() -> None:
    account = Account.create().address
    data = selector("NotRegisteredNode(address)") + abi_encode(["address"], [account])
    error = decode_revert("Registry", ABI, data)
    assert (error.error_name, error.error_args) == ("NotRegisteredNode", (account,))
    assert str(error) == f"registry rejected the call: NotRegisteredNode({account})"


def test_decode_custom_error_with_string_and_ints() -> None:
    data = selector("UnknownSubsystem(string)") + abi_encode(["string"], ["acme"])
    assert str(decode_revert("Registry", ABI, data)).endswith('UnknownSubsystem("acme")')
    data = selector("IndexOutOfRange(uint256,uint256)") + abi_encode(["uint256"] * 2, [3, 2])
    assert str(decode_revert("Registry", ABI, data)).endswith("IndexOutOfRange(3, 2)")


def test_decode_standard_errors_and_unknown_data() -> None:
    data = selector("Error(string)") + abi_encode(["string"], ["nope"])
    assert str(decode_revert("Registry", ABI, data)).endswith('Error("nope")')
    data = selector("Panic(uint256)") + abi_encode(["uint256"], [0x11])
    assert str(decode_revert("Registry", ABI, data)).endswith("Panic(0x11)")
    unknown = decode_revert("Registry", ABI, b"\xde\xad\xbe\xef")
    assert unknown.error_name is None and "0xdeadbeef" in str(unknown)


def test_extract_revert_data_from_both_exception_shapes() -> None:
    class WithData(Exception):
        data = "0x01020304"

    assert extract_revert_data(WithData()) == b"\x01\x02\x03\x04"
    assert extract_revert_data(Exception("execution reverted: b'\\x01\\x02'")) == b"\x01\x02"
    assert extract_revert_data(Exception("execution reverted: plain reason")) is None


def test_deploy_returns_the_address_of_the_code(eth_tester_chain: ChainUnderTest) -> None:
    w3 = eth_tester_chain.w3
    account = eth_tester_chain.new_account()
    address = deploy(w3, account, "Registry", 10)
    code = w3.eth.get_code(address)
    assert code.to_0x_hex() == load_artifact("Registry").deployed_bytecode


def test_deploy_reports_a_constructor_revert(eth_tester_chain: ChainUnderTest) -> None:
    account = eth_tester_chain.new_account()
    with pytest.raises(ContractRevert) as info:
        deploy(eth_tester_chain.w3, account, "Registry", 0)
    assert info.value.error_name == "InvalidEpochPeriod"


def test_unfunded_account_is_a_transaction_error() -> None:
    w3 = Web3(EthereumTesterProvider())
    with pytest.raises(TransactionError):
        deploy(w3, Account.create(), "Registry", 10)
