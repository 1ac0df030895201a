"""The plumbing under every typed call: one deployed ``Registry`` and how to reach it.

:class:`RegistryBinding` holds the ``Web3``, the contract and the signing account; its
``_send``/``_transact`` sign a write locally and send it raw (:mod:`node.chain.sending`),
``_call`` reads and turns a revert into :class:`RegistryRejected`. The method groups of
:class:`node.chain.registry.Registry` build on it.
"""

from __future__ import annotations

from typing import Any, Self

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from node.chain.contracts import (
    TxResult,
    deploy,
    revert_from_exception,
    send_transaction,
    tx_result,
)
from node.chain.registry.records import (
    CONTRACT_NAME,
    RegistryError,
    RegistryRejected,
    get_registry_artifact,
)


class RegistryBinding:
    """Typed access to one deployed ``Registry`` contract.

    ``account`` signs every write; it may be ``None`` for a read-only facade (a write then
    raises :class:`RegistryError`). Safe to share between threads.
    """

    def __init__(self, w3: Web3, address: str, account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.address: ChecksumAddress = to_checksum_address(address)
        self.account = account
        self.artifact = get_registry_artifact()
        self.contract: Contract = w3.eth.contract(address=self.address, abi=list(self.artifact.abi))

    @classmethod
    def deploy(cls, w3: Web3, account: LocalAccount, epoch_period: int) -> Self:
        """Deploy a new registry (``account`` becomes its first system admin) and return it."""
        address = deploy(w3, account, CONTRACT_NAME, epoch_period, error_type=RegistryRejected)
        return cls(w3, address, account)

    def _send(self, fn: ContractFunction) -> TxResult:
        return tx_result(self._transact(fn))

    def _transact(self, fn: ContractFunction, gas: int | None = None) -> TxReceipt:
        if self.account is None:
            raise RegistryError("this Registry has no account: it can only read")
        return send_transaction(
            self.w3,
            self.account,
            fn,
            CONTRACT_NAME,
            self.artifact.abi,
            error_type=RegistryRejected,
            gas=gas,
        )

    def _call(self, fn: ContractFunction) -> Any:
        try:
            return fn.call()
        except Exception as exc:
            revert = revert_from_exception(CONTRACT_NAME, self.artifact.abi, exc, RegistryRejected)
            if revert is not None:
                raise revert from exc
            raise RegistryError(f"registry call {fn.fn_name} failed: {exc}") from exc

    @property
    def _f(self) -> Any:
        return self.contract.functions
