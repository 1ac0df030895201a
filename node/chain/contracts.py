"""Contract artifacts, deployment and locally signed transactions (the web3.py "contract" layer).

The artifacts are the committed output of ``contracts/compile.js`` in ``contracts/build``.
Every transaction is signed here with a :class:`~eth_account.signers.local.LocalAccount` and
sent raw, so the same code runs on the embedded eth-tester chain, anvil and any JSON-RPC node.
A revert raises :class:`ContractRevert`, whose message names the custom error decoded from
the ABI, e.g. ``registry rejected the call: NotRegisteredNode(0xAbC…)``.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NewType, cast

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak, to_checksum_address
from eth_utils.abi import collapse_if_tuple
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import BlockIdentifier, Nonce, TxParams, TxReceipt, Wei

from node.chain.nonces import InsufficientFunds, NonceManager, classify_send_error
from node.errors import ChainError, ConfigError
from node.resources import bundled, contracts_dir


def _artifacts_dir() -> Path:
    try:
        return contracts_dir()
    except ConfigError:
        return bundled("contracts")


ARTIFACTS_DIR: Path = _artifacts_dir()
"""Where ``<Contract>.json`` is: ``contracts/build`` in a checkout (``contracts/compile.js`` writes
it), the wheel's package data otherwise (:mod:`node.resources`)."""

TxHash = NewType("TxHash", HexBytes)
"""Hash of a transaction (32 bytes)."""

GAS_MARGIN_NUMERATOR = 6
GAS_MARGIN_DENOMINATOR = 5
"""Gas limit = estimate * 6 / 5: state may change between estimate and inclusion."""

RECEIPT_TIMEOUT_SECONDS = 120.0
"""How long :func:`send_transaction` waits for a receipt."""

ERROR_STRING_SELECTOR = keccak(text="Error(string)")[:4]
PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]


class ContractRevert(ChainError):
    """A contract rejected a call or transaction; ``error_name``/``error_args`` say why.

    ``error_name`` is the custom error decoded from the ABI (``"NotRegisteredNode"``),
    ``"Error"`` for ``require`` strings, ``"Panic"`` for Solidity panics, or ``None`` when the
    revert carried no data that the ABI explains.
    """

    def __init__(
        self,
        contract: str,
        error_name: str | None,
        error_args: tuple[Any, ...] = (),
        data: bytes = b"",
        detail: str = "",
    ) -> None:
        self.contract = contract
        self.error_name = error_name
        self.error_args = error_args
        self.data = data
        if error_name is None:
            reason = detail or (f"reverted with data 0x{data.hex()}" if data else "reverted")
        else:
            reason = f"{error_name}({', '.join(_format_value(v) for v in error_args)})"
        super().__init__(f"{contract.lower()} rejected the call: {reason}")


class TransactionError(ChainError):
    """A transaction could not be sent, was not mined in time, or failed without a revert."""


class ArtifactError(ChainError):
    """A contract artifact is missing or malformed (run ``npm run build`` in contracts/)."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract, as written by ``contracts/compile.js``."""

    contract_name: str
    abi: tuple[Mapping[str, Any], ...]
    bytecode: HexStr
    deployed_bytecode: HexStr
    compiler_version: str
    source_hash: HexStr


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: TxHash
    block_number: int
    gas_used: int


def load_artifact(name: str, directory: Path | None = None) -> Artifact:
    """Return the artifact ``<directory>/<name>.json`` (default :data:`ARTIFACTS_DIR`).

    Raises :class:`ArtifactError` if the file is absent or lacks a field.
    """
    path = (directory or ARTIFACTS_DIR) / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Artifact(
            contract_name=str(raw["contractName"]),
            abi=tuple(raw["abi"]),
            bytecode=HexStr(raw["bytecode"]),
            deployed_bytecode=HexStr(raw["deployedBytecode"]),
            compiler_version=str(raw["compiler"]["version"]),
            source_hash=HexStr(raw["sourceHash"]),
        )
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"no artifact {path} (run `npm ci && npm run build` in contracts/)"
        ) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"malformed artifact {path}: {exc}") from exc


def compute_error_selectors(abi: Sequence[Mapping[str, Any]]) -> dict[bytes, Mapping[str, Any]]:
    """Return the ABI's custom errors keyed by their 4-byte selector."""
    selectors: dict[bytes, Mapping[str, Any]] = {}
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [collapse_if_tuple(dict(i)) for i in item.get("inputs", [])]
        selectors[keccak(text=f"{item['name']}({','.join(types)})")[:4]] = item
    return selectors


def decode_revert(
    contract: str,
    abi: Sequence[Mapping[str, Any]],
    data: bytes,
    detail: str = "",
    error_type: type[ContractRevert] = ContractRevert,
) -> ContractRevert:
    """Return the ``error_type`` error that revert ``data`` means under ``abi``."""
    selector, payload = data[:4], data[4:]
    try:
        if selector == ERROR_STRING_SELECTOR:
            return error_type(contract, "Error", tuple(abi_decode(["string"], payload)), data)
        if selector == PANIC_SELECTOR:
            (code,) = abi_decode(["uint256"], payload)
            return error_type(contract, "Panic", (hex(code),), data)
        item = compute_error_selectors(abi).get(selector)
        if item is not None:
            types = [collapse_if_tuple(dict(i)) for i in item.get("inputs", [])]
            values = tuple(abi_decode(types, payload))
            values = tuple(
                to_checksum_address(v) if t == "address" else v
                for t, v in zip(types, values, strict=True)
            )
            return error_type(contract, str(item["name"]), values, data)
    except (DecodingError, OverflowError, ValueError):
        pass
    return error_type(contract, None, (), data, detail)


def revert_from_exception(
    contract: str,
    abi: Sequence[Mapping[str, Any]],
    exc: BaseException,
    error_type: type[ContractRevert] = ContractRevert,
) -> ContractRevert | None:
    """Return the ``error_type`` error that ``exc`` reports, or None if it is not a revert."""
    data = extract_revert_data(exc)
    if data:
        return decode_revert(contract, abi, data, str(exc), error_type)
    if _is_revert(exc):
        return error_type(contract, None, (), b"", str(exc))
    return None


def extract_revert_data(exc: BaseException) -> bytes | None:
    """Return the raw revert data carried by a web3 or eth-tester exception, if any.

    web3's JSON-RPC path puts it in ``ContractLogicError.data`` (hex); eth-tester's provider
    raises ``TransactionFailed("execution reverted: b'...'")`` with the bytes' repr.
    """
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes(HexBytes(data))
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    message = str(exc.args[0]) if exc.args else ""
    marker = "execution reverted: "
    if marker in message:
        tail = message.split(marker, 1)[1].strip()
        if tail.startswith(("b'", 'b"')):
            try:
                value = ast.literal_eval(tail)
            except (ValueError, SyntaxError):
                return None
            if isinstance(value, bytes):
                return value
    return None


def _is_revert(exc: BaseException) -> bool:
    if isinstance(exc, ContractLogicError):
        return True
    # eth-tester's TransactionFailed (embedded chain), matched without importing eth-tester
    # (and py-evm) into nodes that talk to an RPC chain
    kind = type(exc)
    return kind.__name__ == "TransactionFailed" and kind.__module__ == "eth_tester.exceptions"


def _format_value(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and not value.startswith("0x"):
        return json.dumps(value)
    return str(value)


_LOCKS_GUARD = threading.Lock()
_LOCKS: dict[str, threading.RLock] = {}


def account_lock(address: str) -> threading.RLock:
    """Return the lock that serialises nonce use, send and wait for ``address``."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(address.lower(), threading.RLock())


def send_transaction(
    w3: Web3,
    account: LocalAccount,
    call: ContractFunction | ContractConstructor,
    contract: str,
    abi: Sequence[Mapping[str, Any]],
    value: int = 0,
    error_type: type[ContractRevert] = ContractRevert,
    gas: int | None = None,
) -> TxReceipt:
    """Sign ``call`` with ``account``, send it raw and return its successful receipt.

    ``gas``: a gas limit known to suffice, instead of an estimate (see
    :func:`embedded_gas_limit`); a revert is then found by replaying the mined transaction.

    Nonce, fees, replacement and the wait are the account's
    :class:`~node.chain.nonces.NonceManager`'s (threads sharing an account are safe). An empty
    wallet raises :class:`~node.chain.nonces.InsufficientFunds`. Raises ``error_type`` (a
    :class:`ContractRevert`) if the contract rejects the call
    (found by gas estimation, or by replaying a failed transaction), :class:`TransactionError`
    for any other failure.
    """
    with account_lock(account.address):
        params: TxParams = {"from": account.address, "value": Wei(value)}
        if gas is not None:
            params["gas"] = gas
        else:
            params["gas"] = _estimate(w3, account, call, params, contract, abi, error_type)
        # placeholders: the nonce manager sets nonce and fees (build_transaction would ask)
        params.update({"nonce": Nonce(0), "maxFeePerGas": Wei(1), "maxPriorityFeePerGas": Wei(1)})
        try:
            tx = call.build_transaction(params)
            receipt = NonceManager.of(w3, account).send(tx)
        except InsufficientFunds:
            raise
        except Exception as exc:
            revert = revert_from_exception(contract, abi, exc, error_type)
            if revert is not None:
                raise revert from exc
            raise TransactionError(f"{contract} transaction failed to send: {exc}") from exc
    if receipt["status"] != 1:
        raise _replay_failure(w3, tx, receipt, contract, abi, error_type)
    return receipt


def embedded_gas_limit(w3: Web3, limit: int) -> int | None:
    """Return ``limit`` on the embedded chain, else None (estimate).

    On the embedded chain an estimate is this process's own CPU: py-evm's binary search runs
    the transaction ~15 times in Python, holding the GIL from the request threads (for a
    Merkle anchor, most of the anchorer's time). A call whose gas is bounded (an anchor writes
    a fixed number of slots) passes a generous ``limit`` there instead; a JSON-RPC chain
    estimates, which costs this node one request and keeps the fee bound tight.
    """
    return limit if isinstance(w3.provider, EthereumTesterProvider) else None


def _estimate(
    w3: Web3,
    account: LocalAccount,
    call: ContractFunction | ContractConstructor,
    params: TxParams,
    contract: str,
    abi: Sequence[Mapping[str, Any]],
    error_type: type[ContractRevert],
) -> int:
    """Return the gas limit for ``call``: its estimate plus the margin; raise the contract's
    revert (found by the estimate), ``InsufficientFunds`` or ``TransactionError``."""
    try:
        estimate = call.estimate_gas(params, block_identifier=_estimate_block(w3))
    except Exception as exc:
        revert = revert_from_exception(contract, abi, exc, error_type)
        if revert is not None and revert.error_name is None:
            # web3's eth-tester provider decodes estimate reverts as Error(string) and
            # drops the selector of custom errors; eth_call keeps the raw bytes.
            revert = _revert_of_call(call, params, contract, abi, error_type) or revert
        if revert is not None:
            raise revert from exc
        if classify_send_error(str(exc)) == "funds":  # an empty wallet fails the estimate
            manager = NonceManager.of(w3, account)
            manager.last_error = f"wallet {account.address} cannot pay for gas: {exc}"
            raise InsufficientFunds(manager.last_error) from exc
        raise TransactionError(f"cannot estimate gas for {contract}: {exc}") from exc
    return int(estimate) * GAS_MARGIN_NUMERATOR // GAS_MARGIN_DENOMINATOR


def _estimate_block(w3: Web3) -> BlockIdentifier | None:
    """Return the block to estimate against: "pending" (the tx lands in the next block).

    eth-tester has no "pending" estimate but already runs estimates in the next block's
    context; a JSON-RPC node (anvil, geth) runs "latest" in the latest block's context.
    """
    return None if isinstance(w3.provider, EthereumTesterProvider) else "pending"


def _revert_of_call(
    call: ContractFunction | ContractConstructor,
    params: TxParams,
    contract: str,
    abi: Sequence[Mapping[str, Any]],
    error_type: type[ContractRevert],
) -> ContractRevert | None:
    """Return the decoded revert of ``call`` run as ``eth_call``, or None if it is not one."""
    try:
        call.call(params) if isinstance(call, ContractFunction) else None
    except Exception as exc:
        revert = revert_from_exception(contract, abi, exc, error_type)
        if revert is not None and revert.error_name is not None:
            return revert
    return None


def _replay_failure(
    w3: Web3,
    tx: TxParams,
    receipt: TxReceipt,
    contract: str,
    abi: Sequence[Mapping[str, Any]],
    error_type: type[ContractRevert],
) -> ChainError:
    """Return the error of a mined, failed transaction, replayed on the state before its block."""
    replay = cast(TxParams, {k: v for k, v in tx.items() if k in ("from", "to", "data", "value")})
    try:
        w3.eth.call(replay, block_identifier=max(receipt["blockNumber"] - 1, 0))
    except Exception as exc:
        revert = revert_from_exception(contract, abi, exc, error_type)
        if revert is not None:
            return revert
    return TransactionError(
        f"{contract} transaction 0x{bytes(receipt['transactionHash']).hex()} failed "
        f"(status 0, gas used {receipt['gasUsed']} of {tx.get('gas')})"
    )


def tx_result(receipt: TxReceipt) -> TxResult:
    """Return the :class:`TxResult` of a successful receipt."""
    return TxResult(
        tx_hash=TxHash(HexBytes(receipt["transactionHash"])),
        block_number=int(receipt["blockNumber"]),
        gas_used=int(receipt["gasUsed"]),
    )


def deploy(
    w3: Web3,
    account: LocalAccount,
    name: str,
    *args: Any,
    error_type: type[ContractRevert] = ContractRevert,
) -> ChecksumAddress:
    """Deploy artifact ``name`` with constructor ``args`` from ``account``; return its address.

    Raises ``error_type`` (a :class:`ContractRevert`) if the constructor reverts,
    :class:`TransactionError` if the transaction fails otherwise, :class:`ArtifactError` if the
    artifact is absent.
    """
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
    receipt = send_transaction(
        w3, account, factory.constructor(*args), name, artifact.abi, error_type=error_type
    )
    address = receipt.get("contractAddress")
    if not address:
        raise TransactionError(f"deploying {name} produced no contract address")
    return to_checksum_address(address)
