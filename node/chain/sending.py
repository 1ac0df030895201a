"""Locally signed transactions sent raw (the web3.py "contract" layer's writes).

Every transaction is signed here with a :class:`~eth_account.signers.local.LocalAccount` and
sent raw through the account's :class:`~node.chain.nonces.NonceManager`, so the same code
runs on the embedded eth-tester chain, anvil and any JSON-RPC node. A revert, found by the gas
estimate or by replaying a failed transaction, raises the
:class:`~node.chain.reverts.ContractRevert` it decodes to; any other failure
:class:`TransactionError`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NewType, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import BlockIdentifier, Nonce, TxParams, TxReceipt, Wei

from node.chain.nonces import InsufficientFunds, NonceManager, classify_send_error
from node.chain.reverts import ContractRevert, revert_from_exception
from node.errors import ChainError

TxHash = NewType("TxHash", HexBytes)
"""Hash of a transaction (32 bytes)."""

GAS_MARGIN_NUMERATOR = 6
GAS_MARGIN_DENOMINATOR = 5
"""Gas limit = estimate * 6 / 5: state may change between estimate and inclusion."""

RECEIPT_TIMEOUT_SECONDS = 120.0
"""How long :func:`send_transaction` waits for a receipt."""


class TransactionError(ChainError):
    """A transaction could not be sent, was not mined in time, or failed without a revert."""


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: TxHash
    block_number: int
    gas_used: int


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
    return limit if _is_in_process(w3) else None


def _is_in_process(w3: Web3) -> bool:
    """Return whether ``w3`` reaches the embedded chain (eth-tester in this process)."""
    return isinstance(w3.provider, EthereumTesterProvider)


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
    return None if _is_in_process(w3) else "pending"


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
    """Return the error of a mined, failed transaction, replayed on the state before its
    block, else on the state after it: a transaction earlier in the same block may be what
    made it fail (two nodes fixing one epoch's seed: the second reverts ``SeedAlreadyFixed``,
    which the state before the block does not show)."""
    replay = cast(TxParams, {k: v for k, v in tx.items() if k in ("from", "to", "data", "value")})
    block = int(receipt["blockNumber"])
    for state in (max(block - 1, 0), block):
        try:
            w3.eth.call(replay, block_identifier=state)
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
